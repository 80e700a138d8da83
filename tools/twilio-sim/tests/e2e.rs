//! Warmline's call flows end to end: the real functions behind `cargo lambda watch` with the
//! DynamoDB emulator, all started by `scripts/dev.sh` exactly as `make dev` does, and this
//! simulator (in this process) playing Twilio, every phone and every browser. Agents act only
//! through the real API, as their dashboards do: they sign in (`POST /login`), say they are
//! available or away (`PUT /presence`), read their presence and tickets, and dial colleagues in.
//!
//! Why the dev stack rather than calling the handlers in-process: it is what runs locally and
//! what the README promises, it checks the watch router, the API Gateway encoding of form
//! bodies, signatures against PUBLIC_BASE_URL and the tables from template.yaml, and after the
//! one-off start (a few seconds once built) each scenario takes one to a few seconds.
//!
//! One stack serves every scenario but the after-hours one (its stack has BUSINESS_HOURS set to
//! a closed window); they run one at a time, because presence is shared: each scenario says
//! first which agents are available, in the order that makes the first the one idle longest.
//! A stack stops when its test process exits, however it exits: the wrapper shell holds a pipe
//! from us and takes its whole process group down on EOF.
//!
//! In every scenario the customer's call ends only as a customer's call may: they hang up, or
//! Warmline says goodbye after their message (or, after hours, after they left none).

// Test code, where a panic is a failed test: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers an integration test crate shares between them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::dev_stack::{DevStack, free_port};
use serde_json::{Value, json};
use shared::call_flow::{
    AFTER_HOURS, BACK_IN_LINE, HOLD_MESSAGE, LEAVE_A_MESSAGE, MESSAGE_TAKEN, NO_MESSAGE, VOICEMAIL_OFFER,
};
use twilio_sim::demo::{call_action, dial_colleague_in, presence, say_presence, sign_in};
use twilio_sim::{AnswerMode, Behaviour, BrowserCall, CallStatus, Entry, Event, InboundCall, Server, SimConfig};

const ACCOUNT: &str = "AC5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const AUTH_TOKEN: &str = "e2e-sim-auth-token";
const API_KEY: &str = "SK5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const API_SECRET: &str = "e2e-sim-api-secret";
/// What `scripts/dev.sh` makes every agent's password it creates (WARMLINE_DEV_AGENT_PASSWORD).
const AGENT_PASSWORD: &str = "e2e-agent-password";
const SUPPORT_NUMBER: &str = "+15550002222";
/// The agents dev.sh creates (AGENT_IDS): a third one so that two callers can each be with an
/// agent while a colleague is dialed in.
const AGENTS: [&str; 3] = ["agent1", "agent2", "agent3"];
/// Twilio's durations at a tenth: Warmline's 20 s ring takes 2 s, a turn of the hold music 3 s,
/// the offer to leave a message waits 0.8 s for a key. Warmline's own clock is not scaled: a
/// presence holds 90 s, and nobody waits QUEUE_MAX_WAIT_SECONDS (300 s) in these scenarios.
const TIME_SCALE: f64 = 0.1;
const STEP: Duration = Duration::from_secs(20);
/// Long enough for a status callback and Warmline's work on it; nothing in the timeline for
/// this long means an earlier scenario has settled.
const QUIET: Duration = Duration::from_millis(400);

struct Stack {
    server: Server,
    base: String,
    /// Each agent's session, signed in once through `POST /login`.
    cookies: BTreeMap<&'static str, String>,
    _dev: Mutex<DevStack>,
    // Last: the simulator's server task is aborted before its runtime goes.
    runtime: tokio::runtime::Runtime,
}

/// The stack every scenario but the after-hours one shares.
fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| Stack::start("e2e-stack", ""))
}

/// One scenario at a time, each starting from a quiet simulator.
fn scenario() -> (MutexGuard<'static, ()>, &'static Stack, u64) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let stack = stack();
    let since = stack.quiet();
    (guard, stack, since)
}

impl Stack {
    /// dev.sh with the simulator as Twilio, the agents of `AGENTS`, and `settings` on top (lines
    /// of a `.env`).
    fn start(name: &str, settings: &str) -> Self {
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
             TWILIO_API_BASE_URL={}\nPUBLIC_BASE_URL={base}\nAGENT_IDS={}\nQUEUE_MAX_WAIT_SECONDS=300\n{settings}",
            "5e".repeat(16),
            server.url(),
            AGENTS.join(","),
        );
        let env = [
            ("WARMLINE_DEV_AGENT_PASSWORD", AGENT_PASSWORD),
            // The functions dev.sh built, for the whole run: an edit elsewhere in the tree while
            // the scenarios run must not rebuild and restart them mid-call.
            ("WARMLINE_NO_RELOAD", "1"),
        ];
        let mut dev = DevStack::start(name, port, &settings, &env);
        runtime.block_on(dev.wait_until_serving());
        runtime.block_on(warm_up(&base));
        let cookies = runtime.block_on(async {
            let mut cookies = BTreeMap::new();
            for agent in AGENTS {
                cookies.insert(agent, sign_in(&base, agent, AGENT_PASSWORD).await.unwrap());
            }
            cookies
        });
        Self { server, base, cookies, _dev: Mutex::new(dev), runtime }
    }

    /// Ends whatever an earlier scenario left going, waits until the timeline is still, and
    /// returns where it stands.
    fn quiet(&self) -> u64 {
        let sim = self.sim();
        sim.hang_up_everything();
        sim.clear_behaviours();
        sim.set_callback_mode(twilio_sim::CallbackMode::default());
        self.runtime.block_on(async {
            let deadline = Instant::now() + STEP;
            while sim.calls().iter().any(|call| !call.status.is_final()) {
                assert!(Instant::now() < deadline, "calls from an earlier scenario do not end");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // The calls' and conferences' last status callbacks, and what Warmline does about
            // them (cancels, say), belong to the earlier scenario: wait until the timeline is quiet.
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
        sim.timeline().len()
    }

    fn sim(&self) -> &twilio_sim::Sim {
        &self.server.sim
    }

    /// The agents' dashboards: everyone says they are away, then `agents` say they are
    /// available, in this order, so the first has been idle longest.
    async fn only_available(&self, agents: &[&str]) {
        for agent in AGENTS {
            self.say(agent, "away").await;
        }
        for agent in agents {
            let presence = self.say(agent, "available").await;
            assert_eq!(presence["status"], "available", "{agent} is free at the start: {presence}");
        }
    }

    /// `agent`'s dashboard says `status` (`PUT /presence`); the presence Warmline answers.
    async fn say(&self, agent: &str, status: &str) -> Value {
        say_presence(&self.base, &self.cookies[agent], status).await.unwrap()
    }

    /// What `agent`'s dashboard shows (`GET /presence`).
    async fn presence(&self, agent: &str) -> Value {
        presence(&self.base, &self.cookies[agent]).await.unwrap()
    }

    /// The dashboard's "Dial a colleague in", by `agent`: a POST to the stack, not through
    /// Twilio; the colleague is the available agent idle longest.
    async fn dial_colleague(&self, agent: &str) -> (u16, Value) {
        let response = dial_colleague_in(&self.base, &self.cookies[agent], agent).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// One of the dashboard's buttons on a live call (`POST /calls/{customer}/{action}`), by
    /// `agent`, with `to` the colleague where the action takes one.
    async fn act(&self, agent: &str, customer: &str, action: &str, to: Option<&str>) -> Value {
        let body = to.map_or_else(|| json!({}), |to| json!({ "to": to }));
        let response = call_action(&self.base, &self.cookies[agent], customer, action, &body).await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "{action}: {answer}\n{}", self.print(0));
        answer
    }

    /// Whether the customer is on hold in their live conference, as Twilio has it.
    fn on_hold(&self, customer: &str) -> bool {
        let conference = self.sim().conference(customer).unwrap();
        conference.participants.iter().any(|p| p.call_sid == customer && p.hold)
    }

    /// The customer hears the hold URL Warmline gave (its music) after `since`.
    async fn hears_music_on_hold(&self, since: u64, customer: &str) -> Entry {
        let held = self
            .expect(since, "Warmline puts the customer on hold", |e| {
                matches!(&e.event, Event::Rest { path, summary, status: 200, .. } if path.ends_with(&format!("/Participants/{customer}.json")) && summary.contains("Hold=true"))
            })
            .await;
        self.expect(held.seq, "the customer hears the music on hold", |e| {
            of(e, customer)
                && matches!(&e.event, Event::Webhook { url, status: Some(200), .. } if url.ends_with("/conference/wait?held=1"))
        })
        .await
    }

    /// A Voice SDK Access Token from `POST /token`, as the customer page (`agent: None`) or
    /// `agent`'s dashboard fetches it: the browser connects with it, and its app decides which
    /// Voice URL Twilio asks about the call.
    async fn access_token(&self, agent: Option<&str>) -> String {
        let mut request = reqwest::Client::new().post(format!("{}/token", self.base)).header("origin", &self.base);
        if let Some(agent) = agent {
            request = request.header("cookie", &self.cookies[agent]);
        }
        let response = request.json(&json!({})).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// The tickets an agent sees on the dashboard (`GET /tickets`), newest first.
    async fn tickets(&self) -> Vec<Value> {
        let response = reqwest::Client::new()
            .get(format!("{}/tickets?limit=100", self.base))
            .header("cookie", &self.cookies["agent1"])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        page["tickets"].as_array().unwrap().clone()
    }

    /// The voicemail ticket of the caller from `number`, once Twilio's recording status
    /// callback has made it.
    async fn voicemail_ticket(&self, number: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let tickets = self.tickets().await;
            if let Some(ticket) = tickets.iter().find(|t| t["phone_number"] == number && !t["voicemail"].is_null()) {
                return ticket.clone();
            }
            assert!(Instant::now() < deadline, "no voicemail ticket for {number}: {tickets:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn expect(&self, since: u64, what: &str, predicate: impl Fn(&Entry) -> bool) -> Entry {
        match self.sim().timeline().wait_for(since, STEP, predicate).await {
            Ok(entry) => entry,
            Err(entries) => panic!("never happened: {what}\n{}", twilio_sim::timeline::render(&entries)),
        }
    }

    /// The `nth` call Warmline placed to `to` (through the REST API) after `since`.
    async fn placed_call(&self, since: u64, to: &str, nth: usize) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let calls: Vec<String> = self
                .entries(since)
                .into_iter()
                .filter(|e| matches!(&e.event, Event::CallStarted { direction, to: t, .. } if direction == "outbound-api" && t == to))
                .filter_map(|e| e.call_sid)
                .collect();
            if let Some(sid) = calls.get(nth) {
                return sid.clone();
            }
            assert!(Instant::now() < deadline, "Warmline never called {to} (#{nth}):\n{}", self.print(since));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Which customer's conference a call Warmline placed to an agent brings them into.
    fn rings_for(&self, agent_call: &str) -> String {
        let url = self.sim().call(agent_call).unwrap().url.unwrap();
        url.split("/conference/").nth(1).unwrap().split('/').next().unwrap().to_owned()
    }

    async fn joined(&self, since: u64, sid: &str) -> Entry {
        self.expect(since, "a conference join", |e| of(e, sid) && matches!(e.event, Event::ConferenceJoined { .. }))
            .await
    }

    async fn ended(&self, since: u64, sid: &str) -> Entry {
        self.expect(since, "a call to end", |e| of(e, sid) && matches!(e.event, Event::CallEnded { .. })).await
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

    /// Warmline has heard how its call to an agent ended (its status callback is answered).
    async fn warmline_heard_how_it_ended(&self, since: u64, agent_call: &str) -> Entry {
        self.expect(since, "Warmline hears how the agent's call ended", |e| {
            of(e, agent_call)
                && matches!(&e.event, Event::StatusCallback { event, status: Some(200), .. } if event == "completed")
        })
        .await
    }

    /// Warmline has heard that someone (the customer, first) joined the customer's conference
    /// after `since` (its callback is answered): from then on they are in line to be offered.
    async fn warmline_heard_the_join(&self, since: u64, customer: &str) -> Entry {
        let url_end = format!("/conference/{customer}/events");
        self.expect(since, "Warmline hears the customer join", |e| {
            matches!(&e.event, Event::StatusCallback { url, event, status: Some(200) } if url.ends_with(&url_end) && event == "participant-join")
        })
        .await
    }

    async fn hears_hold_music(&self, since: u64, customer: &str) -> Entry {
        self.expect(since, "the customer hears the hold music", |e| {
            of(e, customer) && matches!(e.event, Event::Play { hold: true, .. })
        })
        .await
    }

    fn status(&self, sid: &str) -> CallStatus {
        self.sim().call(sid).unwrap().status
    }

    /// Who is in the live (or else the latest) conference named after `customer`.
    fn talking(&self, customer: &str) -> Vec<String> {
        self.sim().conference(customer).unwrap().participants.into_iter().map(|p| p.party).collect()
    }

    fn entries(&self, since: u64) -> Vec<Entry> {
        self.sim().timeline().entries_since(since)
    }

    fn print(&self, since: u64) -> String {
        twilio_sim::timeline::render(&self.entries(since))
    }
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
        format!("/voicemail/{sid}/choice"),
        "/call/connect".to_owned(),
    ] {
        let response = http.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    // Agents only: refused before any work.
    for path in ["/tickets?limit=1", "/presence"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let response = http.post(format!("{base}/conference/nobody/call")).header("origin", base).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

fn answers_after(ms: u64) -> Behaviour {
    Behaviour { answer: AnswerMode::Auto, after_ms: Some(ms), ..Behaviour::default() }
}

fn manual() -> Behaviour {
    Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() }
}

fn customer(name: &str, from: &str) -> InboundCall {
    InboundCall { from: Some(from.into()), name: Some(name.into()), ..InboundCall::default() }
}

fn index(entries: &[Entry], what: &str, predicate: impl Fn(&Entry) -> bool) -> usize {
    index_after(entries, 0, what, predicate)
}

/// The position of the first entry at or after `from` that matches.
fn index_after(entries: &[Entry], from: usize, what: &str, predicate: impl Fn(&Entry) -> bool) -> usize {
    entries
        .iter()
        .skip(from)
        .position(predicate)
        .map(|position| position + from)
        .unwrap_or_else(|| panic!("missing: {what}\n{}", twilio_sim::timeline::render(entries)))
}

fn count(entries: &[Entry], predicate: impl Fn(&Entry) -> bool) -> usize {
    entries.iter().filter(|e| predicate(e)).count()
}

fn of(entry: &Entry, sid: &str) -> bool {
    entry.call_sid.as_deref() == Some(sid)
}

/// A call Warmline placed through the REST API (`Calls.json`), to `to`, for `customer` (whose
/// call the ring names first among its custom parameters).
fn dials(entry: &Entry, to: &str, customer: &str) -> bool {
    let url = format!("Url=/conference/{customer}/connect/{}", to.trim_start_matches("client:"));
    let address = format!("To={to}?conference={customer}");
    matches!(&entry.event, Event::Rest { path, summary, status: 201, .. } if path.ends_with("/Calls.json") && summary.contains(&address) && summary.contains(&url))
}

fn any_dial(entry: &Entry) -> bool {
    matches!(&entry.event, Event::Rest { path, .. } if path.ends_with("/Calls.json"))
}

/// Warmline gives the customer's call new TwiML through the REST API.
fn updates(entry: &Entry, customer: &str) -> bool {
    matches!(&entry.event, Event::Rest { path, summary, status: 200, .. } if path.ends_with(&format!("/Calls/{customer}.json")) && summary.contains("Twiml="))
}

fn says(entry: &Entry, sid: &str, text: &str) -> bool {
    of(entry, sid) && matches!(&entry.event, Event::Say { text: said, hold: false } if said == text)
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

/// How a customer's call may end: by their own hang-up, or with Warmline's `<Hangup>` after the
/// goodbye that follows their message, or after hours after they left none. Never by an agent
/// leaving, the conference ending or Twilio running out of TwiML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    TheyHungUp,
    AfterTheirMessage,
    AfterHoursWithoutAMessage,
}

/// The customer's call ended, once, as `ending` says, and by nothing else: the timeline's
/// `HungUp` says who ended it.
fn assert_customer_ended(entries: &[Entry], customer: &str, party: &str, ending: Ending) {
    let render = || twilio_sim::timeline::render(entries);
    let hung_up: Vec<&str> = entries
        .iter()
        .filter(|e| of(e, customer))
        .filter_map(|e| match &e.event {
            Event::HungUp { by } => Some(by.as_str()),
            _ => None,
        })
        .collect();
    let by = if ending == Ending::TheyHungUp { party } else { "TwiML <Hangup>" };
    assert_eq!(hung_up, [by], "{party}'s call must end {ending:?}:\n{}", render());
    if ending != Ending::TheyHungUp {
        let goodbye = if ending == Ending::AfterTheirMessage { MESSAGE_TAKEN } else { NO_MESSAGE };
        let last_said = entries
            .iter()
            .filter(|e| of(e, customer))
            .filter_map(|e| match &e.event {
                Event::Say { text, hold: false } => Some(text.as_str()),
                _ => None,
            })
            .next_back();
        assert_eq!(last_said, Some(goodbye), "{party} hears the goodbye last:\n{}", render());
    }
    let ended = entries.iter().filter(|e| of(e, customer) && matches!(e.event, Event::CallEnded { .. })).count();
    assert_eq!(ended, 1, "{party}'s call ends once:\n{}", render());
}

/// A customer calls, waits with the message and music, agent1 (available longest) answers;
/// returns the customer's and agent1's calls.
async fn customer_reaches_agent1(stack: &Stack, since: u64, name: &str, from: &str) -> (String, String) {
    let sim = stack.sim();
    sim.set_behaviour("client:agent1", manual());
    sim.set_behaviour("client:agent2", answers_after(200));
    stack.only_available(&["agent1", "agent2"]).await;
    let customer = sim.dial_in(customer(name, from));
    let agent1 = stack.placed_call(since, "client:agent1", 0).await;
    assert_eq!(stack.rings_for(&agent1), customer);
    stack.hears_hold_music(since, &customer).await;
    assert!(sim.answer(&agent1));
    stack.expect(since, "the conference starts", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;
    (customer, agent1)
}

#[test]
fn full_warm_transfer_and_the_customer_is_back_in_line_when_the_last_agent_leaves() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557654321").await;
        assert_eq!(stack.presence("agent1").await["status"], "busy");

        let (status, body) = stack.dial_colleague("agent1").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!((body["agent"].as_str(), body["conference_id"].as_str()), (Some("agent2"), Some(customer.as_str())));
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        assert_eq!(body["call_sid"].as_str(), Some(agent2.as_str()));
        stack.joined(since, &agent2).await;
        assert_eq!(stack.talking(&customer), ["customer", "agent1", "agent2"], "all three talk");
        assert_eq!(stack.presence("agent2").await["status"], "busy");

        sim.hang_up(&agent1);
        stack.ended(since, &agent1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stack.talking(&customer), ["customer", "agent2"], "agent1 left; the customer and agent2 stay");
        assert_eq!(stack.status(&customer), CallStatus::InProgress);
        assert_eq!(stack.presence("agent1").await["status"], "available", "agent1 is free again");

        // The last agent leaves: the customer is not hung up but put back in line, in front,
        // and offered to the agent free longest (agent1, whose browser now rings).
        let requeued = sim.timeline().len();
        sim.hang_up(&agent2);
        let back = stack
            .expect(requeued, "the customer hears they are back in line", |e| says(e, &customer, BACK_IN_LINE))
            .await;
        let rejoined = stack
            .expect(back.seq, "the customer waits in their conference again", |e| {
                of(e, &customer) && matches!(e.event, Event::ConferenceJoined { waiting: true, .. })
            })
            .await;
        stack.hears_hold_music(rejoined.seq, &customer).await;
        let agent1_again = stack.placed_call(since, "client:agent1", 1).await;
        assert_eq!(stack.rings_for(&agent1_again), customer);
        assert_eq!(stack.status(&customer), CallStatus::InProgress);

        sim.hang_up(&customer);
        stack.ended(since, &customer).await;
        stack.warmline_heard_the_end(rejoined.seq, &customer).await;
        let canceled = stack.ended(since, &agent1_again).await;
        assert!(matches!(&canceled.event, Event::CallEnded { status, .. } if status == "canceled"), "{canceled:?}");
        stack.warmline_heard_how_it_ended(since, &agent1_again).await;
        for sid in [&customer, &agent1, &agent2] {
            assert_eq!(stack.status(sid), CallStatus::Completed);
        }
        for agent in ["agent1", "agent2"] {
            let presence = stack.presence(agent).await;
            assert_eq!((presence["status"].as_str(), &presence["missed_call_at"]), (Some("available"), &Value::Null));
        }

        // The whole story, in order.
        let entries = stack.entries(since);
        let base = &stack.base;
        let joined = index(&entries, "the customer waits", |e| of(e, &customer) && matches!(&e.event, Event::ConferenceJoined { waiting: true, start_conference_on_enter: false, end_conference_on_exit: true, .. }));
        let steps = [
            index(&entries, "the customer dials", |e| of(e, &customer) && matches!(&e.event, Event::CallStarted { direction, to, .. } if direction == "inbound" && to == SUPPORT_NUMBER)),
            index(&entries, "Warmline puts the customer in a conference", |e| of(e, &customer) && matches!(&e.event, Event::Webhook { url, status: Some(200), twiml: Some(twiml), .. } if *url == format!("{base}/conference/connect/client") && twiml.starts_with("Dial Conference"))),
            joined,
            index_after(&entries, joined, "Warmline dials agent1 once the customer joined", |e| dials(e, "client:agent1", &customer)),
            index(&entries, "agent1 answers", |e| of(e, &agent1) && e.event == Event::Answered),
            index(&entries, "agent1 joins", |e| of(e, &agent1) && matches!(&e.event, Event::ConferenceJoined { waiting: false, start_conference_on_enter: true, end_conference_on_exit: false, .. })),
            index(&entries, "the conference starts", |e| matches!(&e.event, Event::ConferenceStarted { conference, .. } if *conference == customer)),
            index(&entries, "Warmline dials agent2", |e| dials(e, "client:agent2", &customer)),
            index(&entries, "agent2 joins, and may leave without ending it", |e| of(e, &agent2) && matches!(&e.event, Event::ConferenceJoined { waiting: false, end_conference_on_exit: false, .. })),
            index(&entries, "agent1 leaves", |e| of(e, &agent1) && matches!(e.event, Event::ConferenceLeft { .. })),
            index(&entries, "agent2 leaves", |e| of(e, &agent2) && matches!(e.event, Event::ConferenceLeft { .. })),
            index(&entries, "Warmline gives the customer new TwiML", |e| updates(e, &customer)),
            index(&entries, "the customer leaves the conference for the next", |e| of(e, &customer) && matches!(&e.event, Event::ConferenceLeft { reason, .. } if reason == "the REST API redirected the call")),
            index(&entries, "the customer hears they are back in line", |e| says(e, &customer, BACK_IN_LINE)),
            index(&entries, "the customer waits again", |e| e.seq == rejoined.seq),
            index(&entries, "Warmline dials agent1 again", |e| e.seq > rejoined.seq && dials(e, "client:agent1", &customer)),
            index(&entries, "the customer hangs up", |e| of(e, &customer) && matches!(&e.event, Event::HungUp { by } if by == "customer")),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        index(&entries, "the hold message", |e| of(e, &customer) && e.event == Event::Say { text: HOLD_MESSAGE.into(), hold: true });
        index(&entries, "the hold music", |e| of(e, &customer) && matches!(&e.event, Event::Play { url, hold: true, .. } if url.ends_with("BusyStrings.mp3")));
        assert_eq!(count(&entries, any_dial), 3, "agent1, agent2, agent1 again:\n{}", stack.print(since));
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

#[test]
fn the_customer_hangs_up_first_and_everyone_is_disconnected_and_free() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650001").await;
        let (status, body) = stack.dial_colleague("agent1").await;
        assert_eq!(status, 201, "{body}");
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        stack.joined(since, &agent2).await;

        stack.sim().hang_up(&customer);
        for sid in [&customer, &agent1, &agent2] {
            stack.ended(since, sid).await;
            assert_eq!(stack.status(sid), CallStatus::Completed);
        }
        stack.warmline_heard_the_end(since, &customer).await;
        let conference = stack.sim().conference(&customer).unwrap();
        assert_eq!(conference.ended_reason.as_deref(), Some("customer left, with endConferenceOnExit"));
        for agent in ["agent1", "agent2"] {
            assert_eq!(stack.presence(agent).await["status"], "available", "{agent} is free again");
        }
        let entries = stack.entries(since);
        for agent in [&agent1, &agent2] {
            index(&entries, "the agent is disconnected by the conference's end", |e| {
                of(e, agent)
                    && matches!(&e.event, Event::ConferenceLeft { reason, .. } if reason == "the conference ended")
            });
        }
        assert_eq!(count(&entries, any_dial), 2, "{}", stack.print(since));
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// Caller A is offered to the agent idle longest; callers B and C then wait while every
/// available agent is busy, and each agent who comes free takes the longest-waiting of them. A
/// colleague dialed in lands in the conference of the agent who dialed, not another's.
#[test]
fn callers_go_in_arrival_order_to_the_agent_idle_longest_and_colleagues_land_in_the_right_call() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        for agent in AGENTS {
            sim.set_behaviour(&format!("client:{agent}"), manual());
        }
        stack.only_available(&["agent1", "agent2"]).await;
        let a = sim.dial_in(customer("customer A", "+15557650011"));
        let ring_a = stack.placed_call(since, "client:agent1", 0).await;
        assert_eq!(stack.rings_for(&ring_a), a, "agent1 has been idle longest");
        assert!(sim.answer(&ring_a));
        stack.joined(since, &ring_a).await;

        // agent2 steps away: agent1, available but on a call, is all there is, so B and C wait
        // for them in line rather than being offered to leave a message.
        stack.say("agent2", "away").await;
        let waiting_since = sim.timeline().len();
        let b = sim.dial_in(customer("customer B", "+15557650022"));
        stack.warmline_heard_the_join(since, &b).await;
        let c = sim.dial_in(customer("customer C", "+15557650033"));
        stack.warmline_heard_the_join(since, &c).await;
        // A turn of C's hold music comes back (and runs the router): still nobody to offer.
        let c_music = stack.hears_hold_music(since, &c).await;
        stack
            .expect(c_music.seq, "a turn of C's hold music comes back", |e| {
                of(e, &c)
                    && matches!(&e.event, Event::Webhook { url, status: Some(200), .. } if url.ends_with("/conference/wait?held=1"))
            })
            .await;
        let entries = stack.entries(waiting_since);
        assert_eq!(count(&entries, any_dial), 0, "nobody is free:\n{}", stack.print(since));
        assert!(!entries.iter().any(|e| matches!(e.event, Event::GatherStarted { .. })), "{}", stack.print(since));

        // Each agent who comes free takes the caller who has waited longest.
        stack.say("agent2", "available").await;
        let ring_b = stack.placed_call(since, "client:agent2", 0).await;
        assert_eq!(stack.rings_for(&ring_b), b, "B waited longer than C");
        assert!(sim.answer(&ring_b));
        stack.joined(since, &ring_b).await;
        stack.say("agent3", "available").await;
        let ring_c = stack.placed_call(since, "client:agent3", 0).await;
        assert_eq!(stack.rings_for(&ring_c), c);
        assert!(sim.answer(&ring_c));
        stack.joined(since, &ring_c).await;

        // agent1 wants a colleague, but everyone is on a call.
        let (status, body) = stack.dial_colleague("agent1").await;
        assert_eq!((status, body), (409, json!({"error": "no colleague is available"})));

        // C says goodbye, which frees agent3; agent1 dials them into A's call.
        sim.hang_up(&c);
        stack.ended(since, &ring_c).await;
        stack.warmline_heard_the_end(since, &c).await;
        let (status, body) = stack.dial_colleague("agent1").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!((body["agent"].as_str(), body["conference_id"].as_str()), (Some("agent3"), Some(a.as_str())));
        let agent3_for_a = stack.placed_call(since, "client:agent3", 1).await;
        assert_eq!(stack.rings_for(&agent3_for_a), a);
        assert!(sim.answer(&agent3_for_a));
        stack.joined(since, &agent3_for_a).await;

        let who = |customer: &str| {
            let conference = sim.conference(customer).unwrap();
            let talking: Vec<(String, String)> =
                conference.participants.into_iter().map(|p| (p.party, p.call_sid)).collect();
            (talking, conference.history)
        };
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(party, sid)| ((*party).to_owned(), (*sid).to_owned())).collect()
        };
        assert_eq!(
            who(&a),
            (
                owned(&[("customer A", &a), ("agent1", &ring_a), ("agent3", &agent3_for_a)]),
                vec!["customer A".to_owned(), "agent1".to_owned(), "agent3".to_owned()]
            ),
            "{}",
            stack.print(since)
        );
        assert_eq!(
            who(&b),
            (owned(&[("customer B", &b), ("agent2", &ring_b)]), vec!["customer B".to_owned(), "agent2".to_owned()])
        );
        assert_eq!(sim.conference(&c).unwrap().history, ["customer C", "agent3"]);

        for customer in [&a, &b] {
            sim.hang_up(customer);
            stack.ended(since, customer).await;
            stack.warmline_heard_the_end(since, customer).await;
        }
        for agent in AGENTS {
            assert_eq!(stack.presence(agent).await["status"], "available", "{agent} is free again");
        }
        let entries = stack.entries(since);
        assert_eq!(count(&entries, any_dial), 4, "one ring per caller, and the colleague:\n{}", stack.print(since));
        for (sid, party) in [(&a, "customer A"), (&b, "customer B"), (&c, "customer C")] {
            assert_customer_ended(&entries, sid, party, Ending::TheyHungUp);
        }
        assert_clean(&entries);
    });
}

/// agent1 lets the offer ring out (Warmline's 20 s, 2 s here), agent2 rejects it: each is set
/// away with a missed call on their dashboard, and the caller is offered to the next available
/// agent, agent3, who answers. The caller talks a while and hangs up.
#[test]
fn an_agent_who_lets_it_ring_out_or_rejects_is_set_away_and_the_next_agent_rings() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", Behaviour { answer: AnswerMode::Never, ..Behaviour::default() });
        sim.set_behaviour("client:agent2", Behaviour { answer: AnswerMode::Reject, after_ms: Some(300), ..Behaviour::default() });
        sim.set_behaviour("client:agent3", answers_after(200));
        stack.only_available(&["agent1", "agent2", "agent3"]).await;
        let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let customer = sim.dial_in(InboundCall {
            from: Some("+15557650044".into()),
            name: Some("customer".into()),
            hangup_after_talking_ms: Some(800),
            ..InboundCall::default()
        });

        let agent1 = stack.placed_call(since, "client:agent1", 0).await;
        let ended = stack.ended(since, &agent1).await;
        assert!(matches!(&ended.event, Event::CallEnded { status, .. } if status == "no-answer"), "{ended:?}");
        let started_ringing = stack.entries(since).into_iter().find(|e| of(e, &agent1)).unwrap();
        let rang = ended.at_ms - started_ringing.at_ms;
        assert!((1_900..4_000).contains(&rang), "agent1 rang {rang} ms, not Warmline's 20 s (scaled)");
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        let ended = stack.ended(since, &agent2).await;
        assert!(matches!(&ended.event, Event::CallEnded { status, .. } if status == "busy"), "{ended:?}");
        let agent3 = stack.placed_call(since, "client:agent3", 0).await;
        stack.joined(since, &agent3).await;
        assert_eq!(stack.talking(&customer), ["customer", "agent3"]);

        for agent in ["agent1", "agent2"] {
            let presence = stack.presence(agent).await;
            assert_eq!(presence["status"], "away", "{agent} missed the call: {presence}");
            let missed = presence["missed_call_at"].as_str().unwrap_or_else(|| panic!("{agent}: {presence}"));
            let missed_at = time::OffsetDateTime::parse(missed, &time::format_description::well_known::Rfc3339).unwrap();
            let missed_at = u64::try_from(missed_at.unix_timestamp()).unwrap();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            assert!((started..=now).contains(&missed_at), "{agent}: {presence}");
        }
        stack.ended(since, &customer).await;
        stack.warmline_heard_the_end(since, &customer).await;
        assert_eq!(stack.presence("agent3").await["status"], "available");

        let entries = stack.entries(since);
        let steps = [
            index(&entries, "Warmline dials agent1 for 20 s with a status callback", |e| dials(e, "client:agent1", &customer) && matches!(&e.event, Event::Rest { summary, .. } if summary.contains("Timeout=20") && summary.contains(&format!("StatusCallback=/conference/{customer}/agents/agent1/status")))),
            index(&entries, "agent1 does not answer", |e| of(e, &agent1) && matches!(&e.event, Event::CallEnded { status, .. } if status == "no-answer")),
            index(&entries, "Warmline dials agent2", |e| dials(e, "client:agent2", &customer)),
            index(&entries, "agent2 rejects", |e| of(e, &agent2) && matches!(&e.event, Event::CallEnded { status, .. } if status == "busy")),
            index(&entries, "Warmline dials agent3", |e| dials(e, "client:agent3", &customer)),
            index(&entries, "agent3 joins", |e| of(e, &agent3) && matches!(e.event, Event::ConferenceJoined { .. })),
            index(&entries, "the customer hangs up", |e| of(e, &customer) && matches!(&e.event, Event::HungUp { by } if by == "customer")),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        for (agent, call) in [("agent1", &agent1), ("agent2", &agent2)] {
            let url_end = format!("/conference/{customer}/agents/{agent}/status");
            index(&entries, "Twilio tells Warmline how the agent's call ended", |e| {
                of(e, call) && matches!(&e.event, Event::StatusCallback { url, event, status: Some(200) } if url.ends_with(&url_end) && event == "completed")
            });
        }
        assert_eq!(count(&entries, any_dial), 3, "each agent once:\n{}", stack.print(since));
        assert!(!entries.iter().any(|e| matches!(e.event, Event::GatherStarted { .. })), "{}", stack.print(since));
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// Nobody is available: the caller is offered to leave a message, presses 1, speaks, and the
/// message becomes a ticket that an agent sees with its recording, which plays.
#[test]
fn with_nobody_available_the_caller_leaves_a_message_that_becomes_a_ticket_with_its_recording() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        stack.only_available(&[]).await;
        let number = "+15557650055";
        let customer = sim.dial_in(customer("customer", number));
        stack.expect(since, "the offer to leave a message", |e| says(e, &customer, VOICEMAIL_OFFER)).await;
        assert!(sim.press(&customer, "1"));
        stack
            .expect(since, "the recording starts", |e| {
                of(e, &customer) && matches!(e.event, Event::RecordingStarted { beep: true, max_length_seconds: 120, .. })
            })
            .await;
        assert!(sim.speak(&customer, 4));
        stack.ended(since, &customer).await;

        let ticket = stack.voicemail_ticket(number).await;
        let recording = sim.recordings().into_iter().find(|r| r.call_sid == customer).unwrap();
        assert_eq!((recording.status.as_str(), recording.duration_seconds), ("completed", 4));
        let id = ticket["id"].as_str().unwrap();
        assert_eq!(
            ticket,
            json!({
                "id": id,
                "name": "Phone caller",
                "phone_number": number,
                "description": "Voicemail",
                "created_at": ticket["created_at"],
                "status": "open",
                "voicemail": { "duration_seconds": 4, "recording_url": format!("/tickets/{id}/recording") },
            })
        );
        // The dashboard's player fetches the audio through Warmline, which has it from Twilio.
        let url = format!("{}{}", stack.base, ticket["voicemail"]["recording_url"].as_str().unwrap());
        let http = reqwest::Client::new();
        let audio = http.get(&url).header("cookie", &stack.cookies["agent2"]).send().await.unwrap();
        assert_eq!(audio.status(), 200);
        assert_eq!(audio.headers()["content-type"], "audio/mpeg");
        let bytes = audio.bytes().await.unwrap();
        let from_twilio = http
            .get(format!("{}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{}.mp3", stack.server.url(), recording.sid))
            .basic_auth(API_KEY, Some(API_SECRET))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(!bytes.is_empty() && bytes == from_twilio, "the recording's own audio");
        assert_eq!(http.get(&url).send().await.unwrap().status(), 401, "agents only");

        let entries = stack.entries(since);
        let recorded_url = format!("/voicemail/{customer}/recording");
        let steps = [
            index(&entries, "the customer waits in their conference", |e| of(e, &customer) && matches!(e.event, Event::ConferenceJoined { waiting: true, .. })),
            index(&entries, "Warmline takes the customer out of line to offer a message", |e| updates(e, &customer)),
            index(&entries, "the customer leaves the conference", |e| of(e, &customer) && matches!(&e.event, Event::ConferenceLeft { reason, .. } if reason == "the REST API redirected the call")),
            index(&entries, "a key is awaited", |e| of(e, &customer) && matches!(e.event, Event::GatherStarted { num_digits: Some(1), timeout_seconds: 8, .. })),
            index(&entries, "the offer", |e| says(e, &customer, VOICEMAIL_OFFER)),
            index(&entries, "the customer presses 1", |e| of(e, &customer) && matches!(&e.event, Event::GatherEnded { digits, action: true, .. } if digits == "1")),
            index(&entries, "Warmline hears the choice", |e| of(e, &customer) && matches!(&e.event, Event::Webhook { url, status: Some(200), .. } if url.ends_with(&format!("/voicemail/{customer}/choice")))),
            index(&entries, "before the beep", |e| says(e, &customer, LEAVE_A_MESSAGE)),
            index(&entries, "the recording starts", |e| of(e, &customer) && matches!(e.event, Event::RecordingStarted { .. })),
            index(&entries, "the customer speaks", |e| of(e, &customer) && e.event == Event::Spoke { seconds: 4 }),
            index(&entries, "the recording ends after the silence", |e| of(e, &customer) && matches!(&e.event, Event::RecordingCompleted { ended_by, empty: false, .. } if ended_by == "timeout")),
            index(&entries, "Warmline hears the message is done", |e| of(e, &customer) && matches!(&e.event, Event::Webhook { url, status: Some(200), .. } if url.ends_with(&format!("/voicemail/{customer}/done")))),
            index(&entries, "the thanks", |e| says(e, &customer, MESSAGE_TAKEN)),
            index(&entries, "the call ends", |e| of(e, &customer) && matches!(e.event, Event::CallEnded { .. })),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        index(&entries, "Twilio tells Warmline the recording is ready", |e| {
            matches!(&e.event, Event::StatusCallback { url, status: Some(200), .. } if url.ends_with(&recorded_url))
        });
        assert_eq!(count(&entries, any_dial), 0, "nobody is rung:\n{}", stack.print(since));
        assert_customer_ended(&entries, &customer, "customer", Ending::AfterTheirMessage);
        assert_clean(&entries);
    });
}

/// Offered to leave a message, the caller presses nothing: they are back in line, in their
/// conference with the hold music, and offered to the first agent who becomes available.
#[test]
fn a_caller_who_presses_nothing_stays_in_line_and_is_offered_to_an_agent_who_becomes_available() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", answers_after(200));
        stack.only_available(&[]).await;
        let customer = sim.dial_in(InboundCall {
            from: Some("+15557650066".into()),
            name: Some("customer".into()),
            hangup_after_talking_ms: Some(500),
            ..InboundCall::default()
        });
        let gave_up = stack
            .expect(since, "the offer times out", |e| {
                of(e, &customer)
                    && matches!(&e.event, Event::GatherEnded { digits, ended_by, .. } if digits.is_empty() && ended_by == "timeout")
            })
            .await;
        let rejoined = stack
            .expect(gave_up.seq, "the customer waits in line again", |e| {
                of(e, &customer) && matches!(e.event, Event::ConferenceJoined { waiting: true, .. })
            })
            .await;
        stack.hears_hold_music(rejoined.seq, &customer).await;
        stack.warmline_heard_the_join(rejoined.seq, &customer).await;
        assert_eq!(count(&stack.entries(since), any_dial), 0);

        // agent1 comes back to their desk: the waiting caller is offered to them at once.
        stack.say("agent1", "available").await;
        let agent1 = stack.placed_call(since, "client:agent1", 0).await;
        assert_eq!(stack.rings_for(&agent1), customer);
        stack.joined(since, &agent1).await;
        stack.ended(since, &customer).await;
        stack.warmline_heard_the_end(rejoined.seq, &customer).await;
        assert_eq!(stack.presence("agent1").await["status"], "available");

        let entries = stack.entries(since);
        let steps = [
            index(&entries, "the offer", |e| says(e, &customer, VOICEMAIL_OFFER)),
            index(&entries, "no key", |e| e.seq == gave_up.seq),
            index(&entries, "Twilio goes back into line", |e| of(e, &customer) && matches!(&e.event, Event::Webhook { url, status: Some(200), twiml: Some(twiml), .. } if url.ends_with(&format!("/voicemail/{customer}/back")) && twiml.starts_with("Dial Conference"))),
            index(&entries, "the customer waits again", |e| e.seq == rejoined.seq),
            index(&entries, "Warmline dials agent1", |e| dials(e, "client:agent1", &customer)),
            index(&entries, "agent1 joins", |e| of(e, &agent1) && matches!(e.event, Event::ConferenceJoined { waiting: false, .. })),
            index(&entries, "the customer hangs up", |e| of(e, &customer) && matches!(&e.event, Event::HungUp { by } if by == "customer")),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        assert_eq!(count(&entries, |e| matches!(e.event, Event::GatherStarted { .. })), 1, "offered once");
        assert!(!entries.iter().any(|e| matches!(e.event, Event::RecordingStarted { .. })));
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

#[test]
fn a_browser_customer_calls_support() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", manual());
        stack.only_available(&["agent1"]).await;
        let token = Some(stack.access_token(None).await);
        let name = Some("customer_e2e0001".into());
        let params = [("callerName".to_owned(), "Ada Lovelace".to_owned())].into();
        let customer = sim.browser_call(BrowserCall { token, name, params, ..BrowserCall::default() }).unwrap();
        let agent1 = stack.placed_call(since, "client:agent1", 0).await;
        assert_eq!(stack.rings_for(&agent1), customer);
        // What the agent's Voice SDK receives with the ring, before anyone answers.
        let context = sim.call(&agent1).unwrap().custom_parameters;
        assert_eq!(context, [("conference".into(), customer.clone()), ("callerName".into(), "Ada Lovelace".into())].into());
        stack.hears_hold_music(since, &customer).await;
        assert!(sim.answer(&agent1));
        stack.joined(since, &agent1).await;
        assert_eq!(stack.talking(&customer), ["customer_e2e0001", "agent1"]);

        sim.hang_up(&customer);
        stack.ended(since, &agent1).await;
        stack.warmline_heard_the_end(since, &customer).await;
        let entries = stack.entries(since);
        index(&entries, "the customers' TwiML App's Voice URL", |e| {
            of(e, &customer) && matches!(&e.event, Event::Webhook { url, twiml: Some(t), .. } if url.ends_with("/call/connect") && t.starts_with("Dial Conference"))
        });
        index(&entries, "the hold music", |e| of(e, &customer) && matches!(e.event, Event::Play { hold: true, .. }));
        assert_customer_ended(&entries, &customer, "customer_e2e0001", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// An agent calls a ticket's number from the dashboard: Warmline calls the customer into a
/// conference of the agent's, so the agent can hold them like any support caller. A customer
/// who does not answer ends the agent's call with a word.
#[test]
fn an_agent_calls_the_phone_number_of_a_ticket_and_holds_the_customer() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let (number, busy_number) = ("+15557650077", "+15557650078");
        for (number, name) in [(number, "Ada"), (busy_number, "Bob")] {
            let response = reqwest::Client::new()
                .post(format!("{}/tickets", stack.base))
                .json(&json!({ "name": name, "phone_number": number, "description": "Mallet broke" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
        sim.set_behaviour(number, Behaviour { answer: AnswerMode::Manual, name: Some("Ada".into()), ..Behaviour::default() });
        stack.only_available(&["agent1"]).await;
        let params = [("phoneNumber".to_owned(), number.to_owned())].into();
        let token = Some(stack.access_token(Some("agent1")).await);
        let agent = sim.browser_call(BrowserCall { token, params, ..BrowserCall::default() }).unwrap();
        let customer = stack.placed_call(since, number, 0).await;
        let leg = sim.call(&customer).unwrap();
        assert_eq!((leg.from.as_str(), leg.party.as_str()), (SUPPORT_NUMBER, "Ada"));
        stack.joined(since, &agent).await;
        assert_eq!(stack.presence("agent1").await["status"], "busy", "no support call is offered meanwhile");
        assert!(sim.answer(&customer));
        stack.joined(since, &customer).await;
        assert_eq!(stack.talking(&customer), ["agent1", "Ada"]);

        stack.act("agent1", &customer, "hold", None).await;
        assert!(stack.on_hold(&customer), "Ada hears music:\n{}", stack.print(since));
        stack.act("agent1", &customer, "resume", None).await;
        assert!(!stack.on_hold(&customer));

        sim.hang_up(&customer);
        stack.ended(since, &agent).await;
        stack.warmline_heard_the_end(since, &customer).await;
        assert_eq!(stack.presence("agent1").await["status"], "available", "agent1 is free again");
        let entries = stack.entries(since);
        let steps = [
            index(&entries, "the agents' TwiML App's Voice URL", |e| of(e, &agent) && matches!(&e.event, Event::Webhook { url, status: Some(200), twiml: Some(t), .. } if url.ends_with("/call/agent") && t.starts_with("Dial Conference"))),
            index(&entries, "Ada picks up and joins", |e| of(e, &customer) && matches!(&e.event, Event::Webhook { url, status: Some(200), twiml: Some(t), .. } if url.ends_with("/call/customer/agent1") && t.starts_with("Dial Conference"))),
            index(&entries, "Ada goes on hold", |e| participant_change(e, &customer, "Hold=true")),
            index(&entries, "Ada comes off hold", |e| participant_change(e, &customer, "Hold=false")),
            index(&entries, "Ada hangs up", |e| of(e, &customer) && matches!(&e.event, Event::HungUp { by } if by == "Ada")),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        assert_clean(&entries);

        // A busy number: the agent hears so and their call ends; they are free.
        let since = sim.timeline().len();
        sim.set_behaviour(busy_number, Behaviour { answer: AnswerMode::Reject, ..Behaviour::default() });
        let params = [("phoneNumber".to_owned(), busy_number.to_owned())].into();
        let token = Some(stack.access_token(Some("agent1")).await);
        let agent = sim.browser_call(BrowserCall { token, params, ..BrowserCall::default() }).unwrap();
        stack.ended(since, &agent).await;
        let entries = stack.entries(since);
        index(&entries, "the agent is told", |e| says(e, &agent, shared::call_flow::CUSTOMER_NOT_REACHED));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stack.presence("agent1").await["status"], "available");

        // A number on no ticket: refused with a spoken message, nothing dialed.
        let since = sim.timeline().len();
        let params = [("phoneNumber".to_owned(), "+15557659999".to_owned())].into();
        let token = Some(stack.access_token(Some("agent1")).await);
        let refused = sim.browser_call(BrowserCall { token, params, ..BrowserCall::default() }).unwrap();
        stack.ended(since, &refused).await;
        let entries = stack.entries(since);
        index(&entries, "the refusal", |e| of(e, &refused) && matches!(&e.event, Event::Webhook { twiml: Some(t), .. } if t.starts_with("Say") && t.ends_with("Hangup")));
        assert!(!entries.iter().any(any_dial), "{}", stack.print(since));
    });
}

/// Forged webhooks (wrong signature) are refused: no caller is put in line, so an available
/// agent is rung for nobody, and their presence does not change.
#[test]
fn a_forged_webhook_changes_nothing() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", manual());
        stack.only_available(&["agent1"]).await;
        let before = stack.presence("agent1").await;
        let forged = sim.dial_in(InboundCall {
            from: Some("+15557650088".into()),
            forge_signature: true,
            ..InboundCall::default()
        });
        let browser = sim
            .browser_call(BrowserCall {
                identity: "customer_forger".into(),
                forge_signature: true,
                ..BrowserCall::default()
            })
            .unwrap();
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
        assert_eq!(stack.presence("agent1").await, before, "agent1 still waits for a real caller");
    });
}

/// A customer's page passes a ticket's `phoneNumber` and one of Twilio's own names to
/// `device.connect({params})`, hoping to be taken for an agent. Its token grants the customers'
/// app only, so Twilio asks `/call/connect`, where the smuggled name comes a second time after
/// Twilio's own: refused, nobody rung, nothing dialed.
#[test]
fn a_customer_cannot_pass_for_an_agent() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", manual());
        stack.only_available(&["agent1"]).await;
        let before = stack.presence("agent1").await;
        let number = "+15557650066";
        let response = reqwest::Client::new()
            .post(format!("{}/tickets", stack.base))
            .json(&json!({ "name": "Mallory", "phone_number": number, "description": "Call me back" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let agents_app = SimConfig::for_warmline(&stack.base).agent_twiml_app_sid;
        let mut calls = Vec::new();
        for (name, value) in [("From", "client:agent1"), ("ApplicationSid", agents_app.as_str()), ("AccountSid", ACCOUNT)] {
            let params = [("phoneNumber".to_owned(), number.to_owned()), (name.to_owned(), value.to_owned())].into();
            let token = Some(stack.access_token(None).await);
            calls.push(sim.browser_call(BrowserCall { token, params, ..BrowserCall::default() }).unwrap());
        }
        for sid in &calls {
            stack.ended(since, sid).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let entries = stack.entries(since);
        for sid in &calls {
            index(&entries, "Twilio asks the customers' app, and Warmline refuses", |e| {
                of(e, sid) && matches!(&e.event, Event::Webhook { url, status: Some(403), .. } if url.ends_with("/call/connect"))
            });
            index(&entries, "so Twilio gives up with 11200", |e| {
                of(e, sid) && matches!(e.event, Event::TwimlError { code: 11200, .. })
            });
            assert!(sim.conference(sid).is_none());
        }
        assert!(!entries.iter().any(|e| matches!(e.event, Event::Dial { .. } | Event::Rest { .. })), "{}", stack.print(since));
        assert_eq!(stack.presence("agent1").await, before, "agent1 still waits for a real caller");
    });
}

/// The customer hangs up while agent1's browser still rings: Twilio reports the conference's
/// end, Warmline cancels agent1's call, and agent1 cannot answer into an empty conference. A
/// ring canceled because the caller left is no missed call: agent1 stays available.
#[test]
fn an_agent_who_answers_after_the_customer_hung_up_is_not_left_alone() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", manual());
        stack.only_available(&["agent1"]).await;
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
        stack.warmline_heard_how_it_ended(since, &agent1).await;
        let entries = stack.entries(since);
        index(&entries, "Warmline cancels agent1's call", |e| {
            matches!(&e.event, Event::Rest { path, summary, status: 200, .. } if path.ends_with(&format!("/Calls/{agent1}.json")) && summary == "Status=canceled")
        });
        assert!(
            !entries.iter().any(|e| of(e, &agent1) && matches!(e.event, Event::ConferenceJoined { .. })),
            "{}",
            stack.print(since)
        );
        assert_eq!(count(&entries, any_dial), 1, "nobody else rings for a call that is over:\n{}", stack.print(since));
        let presence = stack.presence("agent1").await;
        assert_eq!((presence["status"].as_str(), &presence["missed_call_at"]), (Some("available"), &Value::Null));
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// Once the call has ended, "Dial a colleague in" from agent1's dashboard answers 409 and rings
/// nobody, though agent2 is available: Warmline freed agent1 when Twilio reported the end.
#[test]
fn dialing_a_colleague_in_after_the_call_ended_is_refused() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650099").await;
        stack.sim().hang_up(&customer);
        stack.ended(since, &agent1).await;
        stack.warmline_heard_the_end(since, &customer).await;
        let (status, body) = stack.dial_colleague("agent1").await;
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
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// BUSINESS_HOURS for a weekday three days from today (UTC): closed all through the test,
/// whenever it runs.
fn closed_all_day_today() -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let days_since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 86_400;
    // 1970-01-01 was a Thursday (index 3, from Monday).
    let today = usize::try_from((days_since_epoch + 3) % 7).unwrap();
    format!("{} 09:00-17:00 UTC", DAYS[(today + 3) % 7])
}

/// Outside business hours (a stack of its own, with BUSINESS_HOURS closed all day): the caller
/// hears that the line is closed and goes straight to the beep; their message becomes a ticket.
/// A caller who says nothing is told goodbye. Nobody is rung, though agent1 is available.
#[test]
fn after_hours_the_caller_leaves_a_message_and_nobody_is_rung() {
    // Unquoted, as a person writes it in .env: make dev quotes it for `cargo lambda watch`.
    let stack = Stack::start("e2e-after-hours", &format!("BUSINESS_HOURS={}\n", closed_all_day_today()));
    let since = stack.quiet();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        sim.set_behaviour("client:agent1", answers_after(100));
        stack.only_available(&["agent1"]).await;
        let number = "+15557650111";
        let caller = sim.dial_in(customer("caller", number));
        stack
            .expect(since, "the beep", |e| of(e, &caller) && matches!(e.event, Event::RecordingStarted { beep: true, .. }))
            .await;
        assert!(sim.speak(&caller, 3));
        stack.ended(since, &caller).await;
        let ticket = stack.voicemail_ticket(number).await;
        assert_eq!((ticket["name"].as_str(), ticket["description"].as_str()), (Some("Phone caller"), Some("Voicemail")));
        assert_eq!(ticket["voicemail"]["duration_seconds"], 3);

        let silent_number = "+15557650122";
        let silent = sim.dial_in(customer("silent caller", silent_number));
        stack.ended(since, &silent).await;
        tokio::time::sleep(QUIET).await;
        assert!(
            !stack.tickets().await.iter().any(|t| t["phone_number"] == silent_number),
            "no message, no ticket"
        );

        let entries = stack.entries(since);
        let steps = [
            index(&entries, "the line is closed", |e| says(e, &caller, AFTER_HOURS)),
            index(&entries, "before the beep", |e| says(e, &caller, LEAVE_A_MESSAGE)),
            index(&entries, "the recording starts", |e| of(e, &caller) && matches!(e.event, Event::RecordingStarted { .. })),
            index(&entries, "the caller speaks", |e| of(e, &caller) && e.event == Event::Spoke { seconds: 3 }),
            index(&entries, "Warmline hears the message is done", |e| of(e, &caller) && matches!(&e.event, Event::Webhook { url, status: Some(200), .. } if url.ends_with(&format!("/voicemail/{caller}/done")))),
            index(&entries, "the thanks", |e| says(e, &caller, MESSAGE_TAKEN)),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        let silent_steps = [
            index(&entries, "the line is closed", |e| says(e, &silent, AFTER_HOURS)),
            index(&entries, "the recording ends empty", |e| of(e, &silent) && matches!(e.event, Event::RecordingCompleted { empty: true, .. })),
            index(&entries, "goodbye", |e| says(e, &silent, NO_MESSAGE)),
        ];
        assert!(silent_steps.is_sorted(), "steps out of order {silent_steps:?}:\n{}", stack.print(since));
        assert_eq!(count(&entries, any_dial), 0, "nobody is rung:\n{}", stack.print(since));
        assert!(!entries.iter().any(|e| matches!(e.event, Event::ConferenceJoined { .. })), "{}", stack.print(since));
        assert_eq!(stack.presence("agent1").await["status"], "available");
        assert_customer_ended(&entries, &caller, "caller", Ending::AfterTheirMessage);
        assert_customer_ended(&entries, &silent, "silent caller", Ending::AfterHoursWithoutAMessage);
        assert_clean(&entries);
    });
}

/// What the ledger says of one call (`GET /tickets/{ticket_id}/calls`), and what the
/// simulator's own timeline says of it: the milliseconds it waited and talked.
struct LedgerCheck {
    call: String,
    outcome: &'static str,
    waited_ms: Option<u64>,
    talked_ms: Option<u64>,
}

/// The ticket's calls once every one of `calls` has left line: reports delivered in reverse
/// come only after each call ends.
async fn ledger_calls(stack: &Stack, ticket: &str, calls: &[LedgerCheck]) -> Vec<Value> {
    let deadline = Instant::now() + STEP;
    loop {
        let response = reqwest::Client::new()
            .get(format!("{}/tickets/{ticket}/calls", stack.base))
            .header("cookie", &stack.cookies["agent3"])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        let listed = page["calls"].as_array().unwrap().clone();
        let settled = calls.iter().all(|check| {
            listed.iter().any(|call| call["call_id"] == check.call.as_str() && call["outcome"] == check.outcome)
        });
        if settled || Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Milliseconds between the first entries that match, from the simulator's timeline.
fn between(entries: &[Entry], from: impl Fn(&Entry) -> bool, to: impl Fn(&Entry) -> bool) -> u64 {
    let at = |predicate: &dyn Fn(&Entry) -> bool| entries.iter().find(|e| predicate(e)).map(|e| e.at_ms).unwrap();
    at(&to) - at(&from)
}

/// Calls answered, abandoned and left as a message each leave one record in the ledger, on the
/// ticket of their number, with the outcome and the wait and talk the simulator saw (within a
/// second); with every status callback sent twice and each call's held to its end and sent
/// newest first, the same. (Reversed, the caller's join comes after their call: nobody is
/// offered a message on arrival then, so the message is left only in order.)
#[test]
fn every_call_leaves_one_ledger_record_however_its_reports_come() {
    let (_serial, stack, _) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let modes = [twilio_sim::CallbackMode::default(), twilio_sim::CallbackMode { duplicate: true, reverse: true }];
        for (round, mode) in modes.into_iter().enumerate() {
            let since = sim.timeline().len();
            sim.set_callback_mode(mode);
            let number = format!("+1555766{:04}", (std::process::id() % 4000) * 2 + round as u32);
            let filed = reqwest::Client::new()
                .post(format!("{}/tickets", stack.base))
                .json(&json!({ "name": "Ledger", "phone_number": number, "description": "Calls" }))
                .send()
                .await
                .unwrap();
            assert_eq!(filed.status(), 201);
            let ticket = filed.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

            // Answered by agent1 after 300 ms of ringing; the customer talks for a second.
            sim.set_behaviour("client:agent1", answers_after(300));
            stack.only_available(&["agent1"]).await;
            let from = Some(number.clone());
            let answered = sim.dial_in(InboundCall {
                from: from.clone(),
                name: Some("answered".into()),
                hangup_after_talking_ms: Some(1_000),
                ..InboundCall::default()
            });
            stack.ended(since, &answered).await;
            stack.warmline_heard_the_end(since, &answered).await;
            // Abandoned: agent1 lets it ring, and the customer hangs up after 1.5 s.
            sim.set_behaviour("client:agent1", manual());
            let abandoned = sim.dial_in(InboundCall {
                from: from.clone(),
                name: Some("abandoned".into()),
                hangup_after_ms: Some(1_500),
                ..InboundCall::default()
            });
            stack.ended(since, &abandoned).await;
            stack.warmline_heard_the_end(since, &abandoned).await;
            let mut voicemail = None;
            if !mode.reverse {
                stack.only_available(&[]).await;
                let caller = sim.dial_in(customer("voicemail", &number));
                stack.expect(since, "the offer to leave a message", |e| says(e, &caller, VOICEMAIL_OFFER)).await;
                assert!(sim.press(&caller, "1"));
                stack
                    .expect(since, "the recording starts", |e| {
                        of(e, &caller) && matches!(e.event, Event::RecordingStarted { .. })
                    })
                    .await;
                assert!(sim.speak(&caller, 2));
                stack.ended(since, &caller).await;
                voicemail = Some(caller);
            }

            let entries = stack.entries(since);
            let started = |sid: &str| {
                let sid = sid.to_owned();
                move |e: &Entry| of(e, &sid) && matches!(e.event, Event::CallStarted { .. })
            };
            let ended = |sid: &str| {
                let sid = sid.to_owned();
                move |e: &Entry| of(e, &sid) && matches!(e.event, Event::CallEnded { .. })
            };
            let agent_answered = |e: &Entry| e.party.as_deref() == Some("agent1") && matches!(e.event, Event::Answered);
            let mut checks = vec![
                LedgerCheck {
                    call: answered.clone(),
                    outcome: "answered",
                    waited_ms: Some(between(&entries, started(&answered), agent_answered)),
                    talked_ms: Some(between(&entries, agent_answered, ended(&answered))),
                },
                LedgerCheck {
                    call: abandoned.clone(),
                    outcome: "abandoned",
                    waited_ms: Some(between(&entries, started(&abandoned), ended(&abandoned))),
                    talked_ms: None,
                },
            ];
            checks.extend(voicemail.map(|call| LedgerCheck {
                call,
                outcome: "voicemail",
                waited_ms: None,
                talked_ms: None,
            }));
            let listed = ledger_calls(stack, &ticket, &checks).await;
            assert_eq!(listed.len(), checks.len(), "one record a call ({mode:?}): {listed:#?}");
            for check in &checks {
                let records: Vec<&Value> =
                    listed.iter().filter(|call| call["call_id"] == check.call.as_str()).collect();
                assert_eq!(records.len(), 1, "{} ({mode:?}): {listed:#?}", check.call);
                let record = records[0];
                assert_eq!(record["outcome"], check.outcome, "{mode:?}: {record:#}\n{}", stack.print(since));
                assert_eq!(
                    (&record["direction"], &record["channel"], &record["caller"]),
                    (&json!("inbound"), &json!("phone"), &json!(number))
                );
                for (field, expected) in [("waited_seconds", check.waited_ms), ("talked_seconds", check.talked_ms)] {
                    match expected {
                        Some(ms) => {
                            let seconds = record[field].as_u64().unwrap_or_else(|| panic!("{field} of {record:#}"));
                            assert!(
                                seconds.abs_diff((ms + 500) / 1000) <= 1 && (seconds * 1000).abs_diff(ms) <= 1_000,
                                "{field}: {seconds} s against {ms} ms ({mode:?})"
                            );
                        }
                        None => assert_eq!(record[field], Value::Null, "{field} ({mode:?})"),
                    }
                }
            }
            let roles: Vec<&Value> =
                listed.iter().filter(|call| call["call_id"] == answered.as_str()).map(|call| &call["agents"]).collect();
            assert_eq!(roles, [&json!([{"agent": "agent1", "role": "answered"}])], "{mode:?}");
        }
    });
}

/// The Participants API change Warmline asked for on `call`, in its timeline summary (`Hold=true`,
/// `Hold=false`) or its removal.
fn participant_change(entry: &Entry, call: &str, change: &str) -> bool {
    matches!(&entry.event, Event::Rest { method, path, summary, status, .. } if path.ends_with(&format!("/Participants/{call}.json")) && (200..300).contains(status) && (summary.contains(change) || (change == "DELETE" && method == "DELETE")))
}

/// agent1 consults agent2 with the customer on hold, then completes: the customer comes off
/// hold with agent2, agent1 leaves and is free.
#[test]
fn consult_then_complete_hands_the_customer_to_the_colleague() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650201").await;
        let consulting = stack.act("agent1", &customer, "consult", None).await;
        assert_eq!(consulting["call"]["transfer"]["to"], "agent2");
        stack.hears_music_on_hold(since, &customer).await;
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        stack.joined(since, &agent2).await;
        assert!(stack.on_hold(&customer), "the agents talk privately:\n{}", stack.print(since));

        let completed = stack.act("agent1", &customer, "complete", None).await;
        assert_eq!(completed["call"]["on_hold"], false);
        stack.ended(since, &agent1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stack.talking(&customer), ["customer", "agent2"]);
        assert!(!stack.on_hold(&customer));
        assert_eq!(stack.presence("agent1").await["status"], "available", "agent1 is free again");
        assert_eq!(stack.presence("agent2").await["status"], "busy");

        sim.hang_up(&customer);
        stack.warmline_heard_the_end(since, &customer).await;
        let entries = stack.entries(since);
        let steps = [
            index(&entries, "the customer goes on hold", |e| participant_change(e, &customer, "Hold=true")),
            index(&entries, "Warmline dials agent2", |e| dials(e, "client:agent2", &customer)),
            index(&entries, "agent2 joins", |e| of(e, &agent2) && matches!(e.event, Event::ConferenceJoined { .. })),
            index(&entries, "the customer comes off hold", |e| participant_change(e, &customer, "Hold=false")),
            index(&entries, "agent1 leaves", |e| of(e, &agent1) && matches!(e.event, Event::ConferenceLeft { .. })),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        index(&entries, "agent1 is removed through the Participants API", |e| participant_change(e, &agent1, "DELETE"));
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// agent1 consults agent2 and cancels while agent2's browser still rings: the ring stops, the
/// customer comes off hold with agent1, and agent2 is not counted as having missed a call.
#[test]
fn consult_then_cancel_takes_the_customer_back() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650202").await;
        sim.set_behaviour("client:agent2", manual());
        stack.act("agent1", &customer, "consult", Some("agent2")).await;
        stack.hears_music_on_hold(since, &customer).await;
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;

        let canceled = stack.act("agent1", &customer, "cancel", None).await;
        assert_eq!(canceled["call"]["transfer"], Value::Null);
        let ended = stack.ended(since, &agent2).await;
        assert!(matches!(&ended.event, Event::CallEnded { status, .. } if status == "canceled"), "{ended:?}");
        stack.warmline_heard_how_it_ended(since, &agent2).await;
        assert!(!stack.on_hold(&customer));
        assert_eq!(stack.talking(&customer), ["customer", "agent1"]);
        let presence = stack.presence("agent2").await;
        assert_eq!((presence["status"].as_str(), &presence["missed_call_at"]), (Some("available"), &Value::Null));

        sim.hang_up(&customer);
        stack.ended(since, &agent1).await;
        stack.warmline_heard_the_end(since, &customer).await;
        let entries = stack.entries(since);
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// agent1 transfers cold to agent2 and leaves at once; the customer holds until agent2
/// answers, then talks with them.
#[test]
fn a_cold_transfer_answered_reaches_the_colleague() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650203").await;
        sim.set_behaviour("client:agent2", manual());
        stack.act("agent1", &customer, "transfer", Some("agent2")).await;
        stack.ended(since, &agent1).await;
        stack.hears_music_on_hold(since, &customer).await;
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stack.presence("agent1").await["status"], "available", "agent1 is free at once");
        assert!(stack.on_hold(&customer));

        assert!(sim.answer(&agent2));
        stack.joined(since, &agent2).await;
        // Twilio's report that agent2 is in takes the customer off hold.
        stack.expect(since, "the customer comes off hold", |e| participant_change(e, &customer, "Hold=false")).await;
        assert!(!stack.on_hold(&customer), "{}", stack.print(since));
        assert_eq!(stack.talking(&customer), ["customer", "agent2"]);

        sim.hang_up(&customer);
        stack.warmline_heard_the_end(since, &customer).await;
        let entries = stack.entries(since);
        let steps = [
            index(&entries, "the customer goes on hold", |e| participant_change(e, &customer, "Hold=true")),
            index(&entries, "Warmline dials agent2", |e| dials(e, "client:agent2", &customer)),
            index(&entries, "agent1 is removed", |e| participant_change(e, &agent1, "DELETE")),
            index(&entries, "agent2 answers", |e| of(e, &agent2) && e.event == Event::Answered),
            index(&entries, "the customer comes off hold", |e| participant_change(e, &customer, "Hold=false")),
        ];
        assert!(steps.is_sorted(), "steps out of order {steps:?}:\n{}", stack.print(since));
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}

/// A cold transfer the colleague rejects: the customer is never left on hold alone; they go
/// back to the front of the line and are offered to the next agent free.
#[test]
fn a_cold_transfer_nobody_answers_puts_the_customer_back_in_line() {
    let (_serial, stack, since) = scenario();
    stack.runtime.block_on(async {
        let sim = stack.sim();
        let (customer, agent1) = customer_reaches_agent1(stack, since, "customer", "+15557650204").await;
        sim.set_behaviour("client:agent2", manual());
        stack.act("agent1", &customer, "transfer", Some("agent2")).await;
        stack.ended(since, &agent1).await;
        let agent2 = stack.placed_call(since, "client:agent2", 0).await;
        stack.hears_music_on_hold(since, &customer).await;
        assert!(sim.reject(&agent2));
        stack.expect(since, "the customer hears they are back in line", |e| says(e, &customer, BACK_IN_LINE)).await;
        // agent1 is free again, and the router offers them the customer at the front.
        let agent1_again = stack.placed_call(since, "client:agent1", 1).await;
        assert_eq!(stack.rings_for(&agent1_again), customer);
        assert_eq!(stack.presence("agent2").await["status"], "away", "a rejected call is a missed call");

        sim.hang_up(&customer);
        stack.warmline_heard_the_end(since, &customer).await;
        stack.ended(since, &agent1_again).await;
        let entries = stack.entries(since);
        assert_customer_ended(&entries, &customer, "customer", Ending::TheyHungUp);
        assert_clean(&entries);
    });
}
