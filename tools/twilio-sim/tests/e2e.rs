//! Warmline's call flows end to end: the real functions behind `cargo lambda watch` with the
//! DynamoDB emulator, all started by `scripts/dev.sh` exactly as `make dev` does, and this
//! simulator (in this process) playing Twilio, every phone and every browser.
//!
//! Why the dev stack rather than calling the handlers in-process: it is what runs locally and
//! what the README promises, it checks the watch router, the API Gateway encoding of form
//! bodies, signatures against PUBLIC_BASE_URL and the tables from template.yaml, and after the
//! one-off start (a few seconds once built) each scenario takes one to a few seconds.
//!
//! One stack serves every scenario; they run one at a time, because all of them ring `agent1`,
//! the first agent on the roster. The stack stops when this process exits, however it exits:
//! the wrapper shell holds a pipe from us and takes its whole process group down on EOF.

// Test code, where a panic is a failed test: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers an integration test crate shares between them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::dev_stack::{DevStack, free_port};
use serde_json::{Value, json};
use twilio_sim::{AnswerMode, Behaviour, BrowserCall, CallStatus, Entry, Event, InboundCall, Server, SimConfig};

const ACCOUNT: &str = "AC5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const AUTH_TOKEN: &str = "e2e-sim-auth-token";
const API_KEY: &str = "SK5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const API_SECRET: &str = "e2e-sim-api-secret";
/// What `scripts/dev.sh` makes every seeded agent's password (WARMLINE_DEV_AGENT_PASSWORD).
const AGENT_PASSWORD: &str = "e2e-agent-password";
const SUPPORT_NUMBER: &str = "+15550002222";
const HOLD_MESSAGE: &str =
    "Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.";
/// Twilio's durations at a tenth: a 60 s ring timeout takes 6 s, the hold message 0.7 s.
const TIME_SCALE: f64 = 0.1;
const STEP: Duration = Duration::from_secs(20);
/// Long enough for a status callback and Warmline's work on it; nothing in the timeline for
/// this long means an earlier scenario has settled.
const QUIET: Duration = Duration::from_millis(400);

struct Stack {
    runtime: tokio::runtime::Runtime,
    server: Server,
    base: String,
    _dev: Mutex<DevStack>,
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(start_stack)
}

/// One scenario at a time, each starting from a quiet simulator.
fn scenario() -> (MutexGuard<'static, ()>, &'static Stack, u64) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let stack = stack();
    let sim = &stack.server.sim;
    sim.hang_up_everything();
    sim.clear_behaviours();
    sim.set_callback_mode(twilio_sim::CallbackMode::default());
    stack.runtime.block_on(async {
        let deadline = Instant::now() + STEP;
        while sim.calls().iter().any(|call| !call.status.is_final()) {
            assert!(Instant::now() < deadline, "calls from an earlier scenario do not end");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The calls' and conferences' last status callbacks, and what Warmline does about them
        // (cancels, say), belong to the earlier scenario: wait until the timeline is quiet.
        let mut seen = sim.timeline().len();
        loop {
            tokio::time::sleep(QUIET).await;
            let now = sim.timeline().len();
            if now == seen {
                break;
            }
            assert!(Instant::now() < deadline, "an earlier scenario does not settle");
            seen = now;
        }
    });
    let since = sim.timeline().len();
    (guard, stack, since)
}

fn start_stack() -> Stack {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = SimConfig {
        account_sid: ACCOUNT.into(),
        auth_token: AUTH_TOKEN.into(),
        api_key: Some(API_KEY.into()),
        api_secret: Some(API_SECRET.into()),
        phone_number: SUPPORT_NUMBER.into(),
        twiml_app_sid: format!("AP{}", "5e".repeat(16)),
        time_scale: TIME_SCALE,
        default_answer_after: Duration::from_millis(100),
        ..SimConfig::for_warmline(&base)
    };
    let server = runtime.block_on(Server::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();

    let settings = format!(
        "TWILIO_ACCOUNT_SID={ACCOUNT}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\nTWILIO_API_KEY={API_KEY}\n\
         TWILIO_API_SECRET={API_SECRET}\nTWILIO_NUMBER={SUPPORT_NUMBER}\nTWILIO_TWIML_APP_SID=AP{}\n\
         TWILIO_API_BASE_URL={}\nPUBLIC_BASE_URL={base}\n",
        "5e".repeat(16),
        server.url()
    );
    let mut dev = DevStack::start("e2e-stack", port, &settings, &[("WARMLINE_DEV_AGENT_PASSWORD", AGENT_PASSWORD)]);
    runtime.block_on(dev.wait_until_serving());
    runtime.block_on(warm_up(&base));
    Stack { runtime, server, base, _dev: Mutex::new(dev) }
}

/// `cargo lambda watch` starts each function on its first request; starting them all now keeps
/// that second out of the scenarios' timing (an unsigned webhook is refused and changes nothing).
async fn warm_up(base: &str) {
    let http = reqwest::Client::new();
    let sid = format!("CA{}", "0".repeat(32));
    for path in [
        "/conference/connect/client".to_owned(),
        "/conference/wait".to_owned(),
        format!("/conference/{sid}/connect/agent1"),
        format!("/conference/{sid}/events"),
        "/call/connect".to_owned(),
    ] {
        let response = http.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    // Agents only: refused before any work.
    let response = http.get(format!("{base}/tickets?limit=1")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = http.post(format!("{base}/conference/nobody/call")).header("origin", base).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

impl Stack {
    fn sim(&self) -> &twilio_sim::Sim {
        &self.server.sim
    }

    async fn expect(&self, since: u64, what: &str, predicate: impl Fn(&Entry) -> bool) -> Entry {
        match self.sim().timeline().wait_for(since, STEP, predicate).await {
            Ok(entry) => entry,
            Err(entries) => panic!("never happened: {what}\n{}", twilio_sim::timeline::render(&entries)),
        }
    }

    /// The call Warmline placed to `to` (through the REST API) after `since`.
    async fn placed_call(&self, since: u64, to: &str, nth: usize) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let calls: Vec<String> = self
                .sim()
                .timeline()
                .entries_since(since)
                .into_iter()
                .filter(|e| matches!(&e.event, Event::CallStarted { direction, to: t, .. } if direction == "outbound-api" && t == to))
                .filter_map(|e| e.call_sid)
                .collect();
            if let Some(sid) = calls.get(nth) {
                return sid.clone();
            }
            assert!(Instant::now() < deadline, "Warmline never called {to}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn joined(&self, since: u64, sid: &str) -> Entry {
        self.expect(since, "a conference join", |e| {
            e.call_sid.as_deref() == Some(sid) && matches!(e.event, Event::ConferenceJoined { .. })
        })
        .await
    }

    async fn ended(&self, since: u64, sid: &str) -> Entry {
        self.expect(since, "a call to end", |e| {
            e.call_sid.as_deref() == Some(sid) && matches!(e.event, Event::CallEnded { .. })
        })
        .await
    }

    /// Twilio has told Warmline that the conference ended, and Warmline has finished with it
    /// (the timeline records a callback once it is answered). A person on the dashboard or at a
    /// ringing browser acts later than that; a script acting at once would race the callback.
    async fn warmline_heard_the_end(&self, since: u64, conference: &str) -> Entry {
        let url_end = format!("/conference/{conference}/events");
        self.expect(since, "Warmline hears that the conference ended", |e| {
            matches!(&e.event, Event::StatusCallback { url, event, status: Some(200) } if url.ends_with(&url_end) && event == "conference-end")
        })
        .await
    }

    /// agent1 rings until the customer has heard the hold message and the music has started.
    async fn hears_hold_music(&self, since: u64, customer: &str) {
        self.expect(since, "the customer hears the hold music", |e| {
            of(e, customer) && matches!(e.event, Event::Play { hold: true, .. })
        })
        .await;
    }

    /// The dashboard's "Dial agent 2 in", by `agent` signed in: a POST to the stack, not
    /// through Twilio.
    async fn dial_agent_in(&self, agent: &str) -> (u16, Value) {
        let cookie = twilio_sim::demo::sign_in(&self.base, agent, AGENT_PASSWORD).await.unwrap();
        let response = twilio_sim::demo::dial_colleague_in(&self.base, &cookie, agent).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn status(&self, sid: &str) -> CallStatus {
        self.sim().call(sid).unwrap().status
    }

    fn entries(&self, since: u64) -> Vec<Entry> {
        self.sim().timeline().entries_since(since)
    }

    fn print(&self, since: u64) -> String {
        twilio_sim::timeline::render(&self.entries(since))
    }
}

fn answers_after(ms: u64) -> Behaviour {
    Behaviour { answer: AnswerMode::Auto, after_ms: Some(ms), ..Behaviour::default() }
}

fn index(entries: &[Entry], what: &str, predicate: impl Fn(&Entry) -> bool) -> usize {
    entries
        .iter()
        .position(predicate)
        .unwrap_or_else(|| panic!("missing: {what}\n{}", twilio_sim::timeline::render(entries)))
}

fn of(entry: &Entry, sid: &str) -> bool {
    entry.call_sid.as_deref() == Some(sid)
}

/// Nothing Twilio would have complained about, and no caller left in silence.
fn assert_clean(entries: &[Entry]) {
    for entry in entries {
        let bad = match &entry.event {
            Event::TwimlError { .. } | Event::TwimlWarning { .. } | Event::HoldSilence => true,
            // TwiML handed over in a REST request is not fetched: it has no HTTP status.
            Event::Webhook { method, status: None, .. } if method == "REST" => false,
            Event::Webhook { status, .. } | Event::StatusCallback { status, .. } => *status != Some(200),
            Event::Rest { status, .. } => !(200..300).contains(status),
            _ => false,
        };
        assert!(!bad, "unexpected: {entry:?}\n{}", twilio_sim::timeline::render(entries));
    }
}

/// A customer calls, waits with the message and music, agent 1 answers; returns the customer's
/// and agent 1's calls.
async fn customer_reaches_agent1(stack: &Stack, since: u64, name: &str, from: &str) -> (String, String) {
    let sim = stack.sim();
    sim.set_behaviour("client:agent1", Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() });
    sim.set_behaviour("client:agent2", answers_after(200));
    let customer =
        sim.dial_in(InboundCall { from: Some(from.into()), name: Some(name.into()), ..InboundCall::default() });
    let agent1 = stack.placed_call(since, "client:agent1", 0).await;
    stack.hears_hold_music(since, &customer).await;
    assert!(sim.answer(&agent1));
    stack.expect(since, "the conference starts", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;
    (customer, agent1)
}

#[test]
fn full_warm_transfer() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557654321").await;

        let (status, body) = stack.dial_agent_in("agent1").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!((body["agent"].as_str(), body["conference_id"].as_str()), (Some("agent2"), Some(customer.as_str())));
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        assert_eq!(body["call_sid"].as_str(), Some(agent2.as_str()));
        stack.joined(since, &agent2).await;
        let conference = stack.sim().conference(&customer).unwrap();
        let talking: Vec<&str> = conference.participants.iter().map(|p| p.party.as_str()).collect();
        assert_eq!(talking, ["customer", "agent1", "agent2"], "all three talk");

        stack.sim().hang_up(&agent1);
        stack.ended(since, &agent1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let conference = stack.sim().conference(&customer).unwrap();
        let talking: Vec<&str> = conference.participants.iter().map(|p| p.party.as_str()).collect();
        assert_eq!(talking, ["customer", "agent2"], "agent1 left; the customer and agent2 stay");
        assert_eq!(stack.status(&customer), CallStatus::InProgress);

        stack.sim().hang_up(&agent2);
        stack.ended(since, &customer).await;
        for sid in [&customer, &agent1, &agent2] {
            assert_eq!(stack.status(sid), CallStatus::Completed);
        }
        assert_eq!(
            stack.sim().conference(&customer).unwrap().ended_reason.as_deref(),
            Some("agent2 left, with endConferenceOnExit")
        );

        // The whole story, in order.
        let entries = stack.entries(since);
        let base = &stack.base;
        let steps = [
            index(&entries, "the customer dials", |e| of(e, &customer) && matches!(&e.event, Event::CallStarted { direction, to, .. } if direction == "inbound" && to == SUPPORT_NUMBER)),
            index(&entries, "Warmline dials agent1", |e| matches!(&e.event, Event::Rest { path, summary, status: 201, .. } if path.ends_with("/Calls.json") && summary.contains("To=client:agent1") && summary.contains(&format!("Url=/conference/{customer}/connect/agent1")))),
            index(&entries, "Warmline puts the customer in a conference", |e| of(e, &customer) && matches!(&e.event, Event::Webhook { url, status: Some(200), twiml: Some(twiml), .. } if *url == format!("{base}/conference/connect/client") && twiml.starts_with("Dial Conference"))),
            index(&entries, "the customer waits", |e| of(e, &customer) && matches!(&e.event, Event::ConferenceJoined { waiting: true, start_conference_on_enter: false, end_conference_on_exit: true, .. })),
            index(&entries, "the hold message", |e| of(e, &customer) && e.event == Event::Say { text: HOLD_MESSAGE.into(), hold: true }),
            index(&entries, "the hold music plays", |e| of(e, &customer) && matches!(&e.event, Event::Play { url, hold: true, .. } if url.ends_with("BusyStrings.mp3"))),
            index(&entries, "agent1 answers", |e| of(e, &agent1) && e.event == Event::Answered),
            index(&entries, "agent1 joins", |e| of(e, &agent1) && matches!(&e.event, Event::ConferenceJoined { waiting: false, start_conference_on_enter: true, end_conference_on_exit: false, .. })),
            index(&entries, "the conference starts", |e| matches!(&e.event, Event::ConferenceStarted { conference, .. } if *conference == customer)),
            index(&entries, "Warmline dials agent2", |e| matches!(&e.event, Event::Rest { summary, status: 201, .. } if summary.contains("To=client:agent2") && summary.contains(&format!("Url=/conference/{customer}/connect/agent2")))),
            index(&entries, "agent2 joins", |e| of(e, &agent2) && matches!(&e.event, Event::ConferenceJoined { waiting: false, end_conference_on_exit: true, .. })),
            index(&entries, "agent1 leaves", |e| of(e, &agent1) && matches!(e.event, Event::ConferenceLeft { .. })),
            index(&entries, "agent2 leaves", |e| of(e, &agent2) && matches!(e.event, Event::ConferenceLeft { .. })),
            index(&entries, "the conference ends", |e| matches!(&e.event, Event::ConferenceEnded { conference, .. } if *conference == customer)),
            index(&entries, "the customer is disconnected", |e| of(e, &customer) && matches!(&e.event, Event::ConferenceLeft { reason, .. } if reason == "the conference ended")),
            index(&entries, "the customer's call ends", |e| of(e, &customer) && matches!(e.event, Event::CallEnded { .. })),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        assert_clean(&entries);
        let dials = entries.iter().filter(|e| matches!(&e.event, Event::Rest { path, .. } if path.ends_with("/Calls.json"))).count();
        assert_eq!(dials, 2, "agent1 once, agent2 once");
    });
}

#[test]
fn the_customer_hangs_up_first_and_everyone_is_disconnected() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650001").await;
        let (status, body) = stack.dial_agent_in("agent1").await;
        assert_eq!(status, 201, "{body}");
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        stack.joined(since, &agent2).await;

        stack.sim().hang_up(&customer);
        for sid in [&customer, &agent1, &agent2] {
            stack.ended(since, sid).await;
            assert_eq!(stack.status(sid), CallStatus::Completed);
        }
        let conference = stack.sim().conference(&customer).unwrap();
        assert_eq!(conference.ended_reason.as_deref(), Some("customer left, with endConferenceOnExit"));
        let entries = stack.entries(since);
        for agent in [&agent1, &agent2] {
            index(&entries, "the agent is disconnected by the conference's end", |e| {
                of(e, agent)
                    && matches!(&e.event, Event::ConferenceLeft { reason, .. } if reason == "the conference ended")
            });
        }
        assert_clean(&entries);
    });
}

#[test]
fn two_customers_at_once_each_agent2_lands_in_the_right_conference() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        // agent1 takes one call at a time: both ring, agent1 picks them up when told.
        sim.set_behaviour("client:agent1", Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() });
        sim.set_behaviour("client:agent2", answers_after(200));
        let first = sim.dial_in(InboundCall {
            from: Some("+15557650011".into()),
            name: Some("customer A".into()),
            ..InboundCall::default()
        });
        let second = sim.dial_in(InboundCall {
            from: Some("+15557650022".into()),
            name: Some("customer B".into()),
            ..InboundCall::default()
        });
        let ringing =
            [stack.placed_call(since, "client:agent1", 0).await, stack.placed_call(since, "client:agent1", 1).await];
        let agent1_for = |customer: &str| {
            let url_end = format!("/conference/{customer}/connect/agent1");
            ringing
                .iter()
                .find(|sid| sim.call(sid).unwrap().url.is_some_and(|url| url.ends_with(&url_end)))
                .cloned()
                .unwrap_or_else(|| panic!("no agent1 call for {customer}:\n{}", stack.print(since)))
        };

        let mut agent2_calls = Vec::new();
        for (n, customer) in [&first, &second].into_iter().enumerate() {
            let agent1 = agent1_for(customer);
            assert!(sim.answer(&agent1));
            stack.joined(since, &agent1).await;
            let (status, body) = stack.dial_agent_in("agent1").await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["conference_id"].as_str(), Some(customer.as_str()), "agent2 goes where agent1 is");
            let agent2 = stack.placed_call(since, "client:agent2", n).await;
            stack.joined(since, &agent2).await;
            // agent1 hands over and takes the next caller.
            sim.hang_up(&agent1);
            stack.ended(since, &agent1).await;
            agent2_calls.push(agent2);
        }

        for ((customer, agent2), name) in
            [&first, &second].into_iter().zip(&agent2_calls).zip(["customer A", "customer B"])
        {
            let conference = sim.conference(customer).unwrap();
            let talking: Vec<(&str, &str)> =
                conference.participants.iter().map(|p| (p.party.as_str(), p.call_sid.as_str())).collect();
            assert_eq!(talking, [(name, customer.as_str()), ("agent2", agent2.as_str())], "{}", stack.print(since));
            assert_eq!(conference.history, [name, "agent1", "agent2"]);
        }
        for agent2 in &agent2_calls {
            sim.hang_up(agent2);
        }
        for customer in [&first, &second] {
            stack.ended(since, customer).await;
        }
        assert_clean(&stack.entries(since));
    });
}

/// Nobody takes the call: agent1's browser rings for Warmline's 20 s ring timeout (2 s here),
/// Twilio reports `no-answer`, and Warmline rings agent2; when agent2 does not answer either,
/// every agent on the roster has been tried, so the customer hears an apology and the call ends
/// instead of hold music forever.
#[test]
fn when_no_agent_answers_the_customer_hears_an_apology_and_is_hung_up() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", Behaviour { answer: AnswerMode::Never, ..Behaviour::default() });
        sim.set_behaviour("client:agent2", Behaviour { answer: AnswerMode::Never, ..Behaviour::default() });
        let customer = sim.dial_in(InboundCall {
            from: Some("+15557650033".into()),
            name: Some("customer".into()),
            ..InboundCall::default()
        });
        let ring_time = |agent: &str, ended: &Entry| {
            ended.at_ms - stack.entries(since).iter().find(|e| of(e, agent)).unwrap().at_ms
        };
        let mut agent_calls = Vec::new();
        for to in ["client:agent1", "client:agent2"] {
            let agent = stack.placed_call(since, to, 0).await;
            let ended = stack.ended(since, &agent).await;
            assert!(matches!(&ended.event, Event::CallEnded { status, .. } if status == "no-answer"), "{ended:?}");
            let rang = ring_time(&agent, &ended);
            assert!((1_900..4_000).contains(&rang), "{to} rang {rang} ms, not Warmline's 20 s (scaled)");
            agent_calls.push(agent);
        }
        let ended = stack.ended(since, &customer).await;
        assert!(matches!(&ended.event, Event::CallEnded { status, .. } if status == "completed"));
        assert_eq!(sim.conference(&customer).unwrap().status, twilio_sim::sim::ConferenceStatus::Completed);
        stack.warmline_heard_the_end(since, &customer).await;

        let entries = stack.entries(since);
        let apology = shared::call_flow::NO_AGENT_AVAILABLE;
        let steps = [
            index(&entries, "Warmline dials agent1 for 20 s with a status callback", |e| matches!(&e.event, Event::Rest { path, summary, status: 201, .. } if path.ends_with("/Calls.json") && summary.contains("To=client:agent1") && summary.contains("Timeout=20") && summary.contains(&format!("StatusCallback=/conference/{customer}/agents/agent1/status")))),
            index(&entries, "the customer hears the hold music", |e| of(e, &customer) && matches!(e.event, Event::Play { hold: true, .. })),
            index(&entries, "agent1 does not answer", |e| of(e, &agent_calls[0]) && matches!(&e.event, Event::CallEnded { status, .. } if status == "no-answer")),
            index(&entries, "Warmline dials agent2", |e| matches!(&e.event, Event::Rest { path, summary, status: 201, .. } if path.ends_with("/Calls.json") && summary.contains("To=client:agent2") && summary.contains("Timeout=20") && summary.contains(&format!("Url=/conference/{customer}/connect/agent2")))),
            index(&entries, "agent2 does not answer", |e| of(e, &agent_calls[1]) && matches!(&e.event, Event::CallEnded { status, .. } if status == "no-answer")),
            index(&entries, "Warmline gives the customer's call new TwiML", |e| matches!(&e.event, Event::Rest { path, summary, status: 200, .. } if path.ends_with(&format!("/Calls/{customer}.json")) && summary.contains("Twiml="))),
            index(&entries, "the customer leaves the conference", |e| of(e, &customer) && matches!(&e.event, Event::ConferenceLeft { reason, .. } if reason == "the REST API redirected the call")),
            index(&entries, "the customer hears the apology", |e| of(e, &customer) && e.event == Event::Say { text: apology.into(), hold: false }),
            index(&entries, "the call ends", |e| of(e, &customer) && matches!(e.event, Event::CallEnded { .. })),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        for (agent, call) in ["agent1", "agent2"].iter().zip(&agent_calls) {
            let url_end = format!("/conference/{customer}/agents/{agent}/status");
            index(&entries, "Twilio tells Warmline how the agent's call ended", |e| {
                of(e, call) && matches!(&e.event, Event::StatusCallback { url, event, status: Some(200) } if url.ends_with(&url_end) && event == "completed")
            });
        }
        let dials = entries
            .iter()
            .filter(|e| matches!(&e.event, Event::Rest { path, .. } if path.ends_with("/Calls.json")))
            .count();
        assert_eq!(dials, 2, "each agent once:\n{}", stack.print(since));
        let apologies =
            entries.iter().filter(|e| of(e, &customer) && e.event == Event::Say { text: apology.into(), hold: false });
        assert_eq!(apologies.count(), 1);
        assert_clean(&entries);
    });
}

#[test]
fn a_browser_customer_calls_support() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() });
        let customer = sim.browser_call(BrowserCall { identity: "customer_e2e0001".into(), ..BrowserCall::default() });
        let agent1 = stack.placed_call(since, "client:agent1", 0).await;
        stack.hears_hold_music(since, &customer).await;
        assert!(sim.answer(&agent1));
        stack.joined(since, &agent1).await;
        let conference = sim.conference(&customer).unwrap();
        let talking: Vec<&str> = conference.participants.iter().map(|p| p.party.as_str()).collect();
        assert_eq!(talking, ["customer_e2e0001", "agent1"]);

        sim.hang_up(&customer);
        stack.ended(since, &agent1).await;
        let entries = stack.entries(since);
        index(&entries, "the TwiML App's Voice URL", |e| {
            of(e, &customer) && matches!(&e.event, Event::Webhook { url, twiml: Some(t), .. } if url.ends_with("/call/connect") && t.starts_with("Dial Conference"))
        });
        index(&entries, "the hold music", |e| of(e, &customer) && matches!(e.event, Event::Play { hold: true, .. }));
        assert_clean(&entries);
    });
}

#[test]
fn an_agent_calls_the_phone_number_of_a_ticket() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let number = "+15557650044";
        let response = reqwest::Client::new()
            .post(format!("{}/tickets", stack.base))
            .json(&json!({ "name": "Ada", "phone_number": number, "description": "Mallet broke" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        sim.set_behaviour(
            number,
            Behaviour { answer: AnswerMode::Auto, after_ms: Some(200), hangup_after_ms: Some(800), name: Some("Ada".into()) },
        );
        let params = [("phoneNumber".to_owned(), number.to_owned())].into();
        let agent = sim.browser_call(BrowserCall { identity: "agent1".into(), params, ..BrowserCall::default() });
        stack.ended(since, &agent).await;

        let calls = sim.calls();
        let leg = calls.iter().find(|c| c.parent_call_sid.as_deref() == Some(agent.as_str())).expect("a call to the ticket's number");
        assert_eq!((leg.to.as_str(), leg.from.as_str(), leg.party.as_str()), (number, SUPPORT_NUMBER, "Ada"));
        assert_eq!((leg.status, stack.status(&agent)), (CallStatus::Completed, CallStatus::Completed));
        let entries = stack.entries(since);
        let bridged = index(&entries, "agent and customer talk", |e| of(e, &agent) && matches!(e.event, Event::Bridged { .. }));
        let hung_up = index(&entries, "Ada hangs up", |e| of(e, &leg.sid) && matches!(&e.event, Event::HungUp { by } if by == "Ada"));
        assert!(bridged < hung_up);
        assert_clean(&entries);

        // A number on no ticket: refused with a spoken message, nothing dialed.
        let since = sim.timeline().len();
        let params = [("phoneNumber".to_owned(), "+15557659999".to_owned())].into();
        let refused = sim.browser_call(BrowserCall { identity: "agent1".into(), params, ..BrowserCall::default() });
        stack.ended(since, &refused).await;
        let entries = stack.entries(since);
        index(&entries, "the refusal", |e| of(e, &refused) && matches!(&e.event, Event::Webhook { twiml: Some(t), .. } if t.starts_with("Say") && t.ends_with("Hangup")));
        assert!(!entries.iter().any(|e| matches!(e.event, Event::Dial { .. })), "{}", stack.print(since));
    });
}

#[test]
fn a_forged_webhook_changes_nothing() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let forged = sim.dial_in(InboundCall {
            from: Some("+15557650055".into()),
            forge_signature: true,
            ..InboundCall::default()
        });
        let browser = sim.browser_call(BrowserCall {
            identity: "customer_forger".into(),
            forge_signature: true,
            ..BrowserCall::default()
        });
        for sid in [&forged, &browser] {
            stack.ended(since, sid).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let entries = stack.entries(since);
        for sid in [&forged, &browser] {
            index(&entries, "Warmline refuses the forged request", |e| {
                of(e, sid) && matches!(e.event, Event::Webhook { status: Some(403), .. })
            });
            index(&entries, "so Twilio gives up with 11200", |e| {
                of(e, sid) && matches!(e.event, Event::TwimlError { code: 11200, .. })
            });
            index(&entries, "and apologises", |e| {
                of(e, sid) && e.event == Event::Say { text: twilio_sim::call::APPLICATION_ERROR.into(), hold: false }
            });
        }
        assert!(
            !entries.iter().any(|e| matches!(e.event, Event::Rest { .. })),
            "nothing dialed:\n{}",
            stack.print(since)
        );
        assert!(sim.conference(&forged).is_none() && sim.conference(&browser).is_none());
    });
}

/// The customer hangs up while agent1's browser still rings: Twilio reports the conference's
/// end, Warmline cancels agent1's call, and agent1 cannot answer into an empty conference.
#[test]
fn an_agent_who_answers_after_the_customer_hung_up_is_not_left_alone() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() });
        let customer = sim.dial_in(InboundCall { name: Some("customer".into()), ..InboundCall::default() });
        let agent1 = stack.placed_call(since, "client:agent1", 0).await;
        stack.joined(since, &customer).await;
        sim.hang_up(&customer);
        stack.ended(since, &customer).await;
        stack.warmline_heard_the_end(since, &customer).await;
        sim.answer(&agent1);
        let ended = stack.ended(since, &agent1).await;
        assert!(
            matches!(&ended.event, Event::CallEnded { status, .. } if status == "canceled"),
            "agent1's browser stops ringing: {ended:?}\n{}",
            stack.print(since)
        );
        let entries = stack.entries(since);
        index(&entries, "Warmline cancels agent1's call", |e| {
            matches!(&e.event, Event::Rest { path, summary, status: 200, .. } if path.ends_with(&format!("/Calls/{agent1}.json")) && summary == "Status=canceled")
        });
        assert!(
            !entries.iter().any(|e| of(e, &agent1) && matches!(e.event, Event::ConferenceJoined { .. })),
            "{}",
            stack.print(since)
        );
        let dials = entries
            .iter()
            .filter(|e| matches!(&e.event, Event::Rest { path, .. } if path.ends_with("/Calls.json")))
            .count();
        assert_eq!(dials, 1, "nobody else rings for a call that is over:\n{}", stack.print(since));
        assert_clean(&entries);
    });
}

/// Once the call has ended, "Dial agent 2 in" from agent1's dashboard answers 409 and rings
/// nobody: Warmline forgot which conference agent1 was in when Twilio reported its end.
#[test]
fn dialing_agent2_in_after_the_call_ended_is_refused() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650066").await;
        stack.sim().hang_up(&customer);
        stack.ended(since, &agent1).await;
        stack.warmline_heard_the_end(since, &customer).await;
        let (status, body) = stack.dial_agent_in("agent1").await;
        assert_eq!(status, 409, "{body}\n{}", stack.print(since));
        assert_eq!(body, json!({"error": "agent1 is not in a call right now"}));
        let entries = stack.entries(since);
        assert!(
            !entries
                .iter()
                .any(|e| matches!(&e.event, Event::Rest { summary, .. } if summary.contains("To=client:agent2"))),
            "{}",
            stack.print(since)
        );
        assert_clean(&entries);
    });
}
