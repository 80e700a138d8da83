//! Fifty customers call at once through the local stack (the real functions behind
//! `cargo lambda watch`, the DynamoDB emulator, both started by `scripts/dev.sh`), with this
//! simulator playing Twilio. Each must get their own conference, every agent call must ring
//! into the conference it was placed for, and the Calls table must hold exactly what the calls
//! did: nothing lost, nothing crossed between callers.
//!
//! The product rings the roster in order for every caller, and an agent takes one call at a
//! time. So, like a small team at a rush, the roster here is five agents who each take the
//! longest-waiting caller and decline the others' rings (`busy`), which moves every other
//! caller on to the next agent at once. Five callers reach an agent; the other 45 have tried
//! the whole roster and hear the apology. That drives 240 agent calls, their status callbacks
//! and 45 apologies through the stack concurrently.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::dev_stack::{DevStack, free_port};
use serde_json::{Value, json};
use twilio_sim::{AnswerMode, Behaviour, CallStatus, Entry, Event, InboundCall, Server, SimConfig};

const ACCOUNT: &str = "AC5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c";
const AUTH_TOKEN: &str = "concurrency-sim-auth-token";
const API_KEY: &str = "SK5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c";
const API_SECRET: &str = "concurrency-sim-api-secret";
const SUPPORT_NUMBER: &str = "+15550003333";
const CUSTOMERS: usize = 50;
const AGENTS: usize = 5;
/// Twilio's durations at three times: an agent's ring lasts 60 s. Fifty calls through one
/// instance of each function take a while to all ring agent1, and the round needs every one
/// still ringing when the agent declines the others.
const TIME_SCALE: f64 = 3.0;
const STEP: Duration = Duration::from_secs(50);
const QUIET: Duration = Duration::from_millis(600);

fn roster() -> Vec<String> {
    (1..=AGENTS).map(|n| format!("agent{n}")).collect()
}

fn start_stack(port: u16, sim_url: &str) -> Stack {
    let settings = format!(
        "TWILIO_ACCOUNT_SID={ACCOUNT}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\nTWILIO_API_KEY={API_KEY}\n\
         TWILIO_API_SECRET={API_SECRET}\nTWILIO_NUMBER={SUPPORT_NUMBER}\nTWILIO_TWIML_APP_SID=AP{}\n\
         TWILIO_API_BASE_URL={sim_url}\nPUBLIC_BASE_URL=http://127.0.0.1:{port}\nAGENT_IDS={}\n",
        "5c".repeat(16),
        roster().join(",")
    );
    Stack(DevStack::start("concurrency-stack", port, &settings, &[]))
}

struct Stack(DevStack);

impl Stack {
    /// Until the router answers, then every function the calls use is started once (an
    /// unsigned webhook is refused and changes nothing), so the first ones are not slower.
    async fn wait_until_serving(&mut self) {
        self.0.wait_until_serving().await;
        let http = reqwest::Client::new();
        let sid = format!("CA{}", "0".repeat(32));
        for path in [
            "/conference/connect/client".to_owned(),
            "/conference/wait".to_owned(),
            format!("/conference/{sid}/connect/agent1"),
            format!("/conference/{sid}/events"),
        ] {
            let response = http.post(format!("{}{path}", self.0.base)).send().await.unwrap();
            assert_eq!(response.status(), 403, "{path}");
        }
    }

    /// Every item of the Calls table, read from the emulator over DynamoDB's JSON protocol.
    async fn calls_table(&self) -> Vec<Value> {
        let http = reqwest::Client::new();
        let endpoint = self.0.setting("AWS_ENDPOINT_URL_DYNAMODB");
        let table = self.0.setting("CALLS_TABLE");
        let mut items = Vec::new();
        let mut start: Option<Value> = None;
        loop {
            let mut body = json!({ "TableName": table, "ConsistentRead": true });
            if let Some(key) = start.take() {
                body["ExclusiveStartKey"] = key;
            }
            let response = http
                .post(&endpoint)
                .header("x-amz-target", "DynamoDB_20120810.Scan")
                .header("content-type", "application/x-amz-json-1.0")
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                )
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let page: Value = response.json().await.unwrap();
            items.extend(page["Items"].as_array().unwrap_or_else(|| panic!("not a scan: {page}")).iter().cloned());
            match page.get("LastEvaluatedKey") {
                Some(key) => start = Some(key.clone()),
                None => return items,
            }
        }
    }
}

fn s<'a>(item: &'a Value, name: &str) -> &'a str {
    item[name]["S"].as_str().unwrap_or_else(|| panic!("no string {name} in {item}"))
}

fn strings(item: &Value, name: &str) -> Vec<String> {
    let value = &item[name];
    let list = value["SS"].as_array().or_else(|| value["L"].as_array()).cloned().unwrap_or_default();
    list.iter().map(|v| v.as_str().or_else(|| v["S"].as_str()).unwrap().to_owned()).collect()
}

fn number(item: &Value, name: &str) -> i64 {
    item[name]["N"].as_str().unwrap_or_else(|| panic!("no number {name} in {item}")).parse().unwrap()
}

/// The customer whose conference a call to an agent was placed for, from its TwiML URL.
fn conference_of(url: &str) -> Option<&str> {
    url.split("/conference/").nth(1)?.split('/').next()
}

/// Waits until the timeline has been still for a moment: every callback has been answered and
/// nothing Warmline did in response is still in flight.
async fn settle(sim: &twilio_sim::Sim) {
    let deadline = Instant::now() + STEP;
    let mut seen = sim.timeline().len();
    loop {
        tokio::time::sleep(QUIET).await;
        let now = sim.timeline().len();
        if now == seen {
            return;
        }
        assert!(Instant::now() < deadline, "the calls do not settle");
        seen = now;
    }
}

fn render(entries: &[Entry]) -> String {
    let text = twilio_sim::timeline::render(entries);
    // The whole story of 50 callers is long; its end says what went wrong.
    text.lines().rev().take(80).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

#[test]
fn fifty_customers_at_once_each_get_their_own_conference_and_records() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = SimConfig {
        account_sid: ACCOUNT.into(),
        auth_token: AUTH_TOKEN.into(),
        api_key: Some(API_KEY.into()),
        api_secret: Some(API_SECRET.into()),
        phone_number: SUPPORT_NUMBER.into(),
        twiml_app_sid: format!("AP{}", "5c".repeat(16)),
        time_scale: TIME_SCALE,
        ..SimConfig::for_warmline(&base)
    };
    let server: Server = runtime.block_on(Server::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();
    let mut stack = start_stack(port, &server.url());
    runtime.block_on(stack.wait_until_serving());
    let sim = &server.sim;
    let agents = roster();
    for agent in &agents {
        sim.set_behaviour(&format!("client:{agent}"), Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() });
    }

    runtime.block_on(async {
        let started = Instant::now();
        let customers: Vec<String> = (0..CUSTOMERS)
            .map(|n| {
                sim.dial_in(InboundCall {
                    from: Some(format!("+1555765{n:04}")),
                    name: Some(format!("customer{n:02}")),
                    ..InboundCall::default()
                })
            })
            .collect();
        let name_of: BTreeMap<&str, String> =
            customers.iter().enumerate().map(|(n, sid)| (sid.as_str(), format!("customer{n:02}"))).collect();

        // Round by round, the next agent takes the longest-waiting caller and declines the rest.
        let mut waiting: Vec<&str> = customers.iter().map(String::as_str).collect();
        let mut served: Vec<(&str, &str, String)> = Vec::new();
        for agent in &agents {
            let to = format!("client:{agent}");
            let deadline = Instant::now() + STEP;
            let ringing: BTreeMap<String, String> = loop {
                let ringing: BTreeMap<String, String> = sim
                    .calls()
                    .into_iter()
                    .filter(|call| call.to == to && call.status == CallStatus::Ringing)
                    .filter_map(|call| Some((conference_of(call.url.as_deref()?)?.to_owned(), call.sid)))
                    .collect();
                if ringing.len() == waiting.len() {
                    break ringing;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} of {} waiting callers ring {agent}:\n{}",
                    ringing.len(),
                    waiting.len(),
                    render(&sim.timeline().entries_since(0))
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert_eq!(ringing.keys().map(String::as_str).collect::<BTreeSet<_>>(), waiting.iter().copied().collect());
            let customer = waiting.remove(0);
            let answered = ringing[customer].clone();
            assert!(sim.answer(&answered));
            for (other, call) in &ringing {
                if other != customer {
                    assert!(sim.reject(call), "{agent} declines {other}");
                }
            }
            served.push((customer, agent.as_str(), answered));
        }
        for sid in &waiting {
            let deadline = Instant::now() + STEP;
            while !sim.call(sid).unwrap().status.is_final() {
                assert!(Instant::now() < deadline, "{sid} still waits after the whole roster declined");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        settle(sim).await;
        eprintln!("{CUSTOMERS} callers through {AGENTS} agents in {:.1} s", started.elapsed().as_secs_f64());

        let entries = sim.timeline().entries_since(0);
        // 50 conferences, one per caller, named after the caller's call, the caller first in.
        let conferences = sim.conferences();
        let names: BTreeSet<&str> = conferences.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, customers.iter().map(String::as_str).collect(), "one conference per caller");
        assert_eq!(conferences.len(), CUSTOMERS);
        for conference in &conferences {
            assert_eq!(conference.history.first(), Some(&name_of[conference.name.as_str()]), "{conference:?}");
        }

        // Every agent call went to the conference it was placed for, and each caller's chain
        // rang each agent at most once, in roster order.
        let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut agent_calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for call in sim.calls().into_iter().filter(|call| call.direction == "outbound-api") {
            let url = call.url.clone().unwrap();
            let conference = conference_of(&url).unwrap().to_owned();
            let agent = call.to.strip_prefix("client:").unwrap().to_owned();
            assert!(url.ends_with(&format!("/conference/{conference}/connect/{agent}")), "{url}");
            assert!(name_of.contains_key(conference.as_str()), "a call for no caller: {url}");
            chains.entry(conference.clone()).or_default().push(agent);
            agent_calls.entry(conference).or_default().insert(call.sid);
        }
        for (customer, agent, _) in &served {
            let position = agents.iter().position(|a| a == agent).unwrap();
            assert_eq!(chains[*customer], agents[..=position], "{customer}");
        }
        for customer in &waiting {
            assert_eq!(chains[*customer], agents, "{customer}: the whole roster, each agent once");
        }
        let dials: usize = chains.values().map(Vec::len).sum();
        assert_eq!(dials, (0..AGENTS).map(|k| CUSTOMERS - k).sum::<usize>());

        // The served callers talk to their own agent, on the call that agent answered.
        for (customer, agent, answered) in &served {
            let conference = sim.conference(customer).unwrap();
            let talking: Vec<(&str, &str)> =
                conference.participants.iter().map(|p| (p.party.as_str(), p.call_sid.as_str())).collect();
            assert_eq!(talking, [(name_of[customer].as_str(), *customer), (*agent, answered.as_str())]);
        }
        // The others heard the apology once, and their calls ended.
        let apology = shared::call_flow::NO_AGENT_AVAILABLE;
        for customer in &waiting {
            let heard = entries
                .iter()
                .filter(|e| e.call_sid.as_deref() == Some(*customer))
                .filter(|e| e.event == Event::Say { text: apology.into(), hold: false })
                .count();
            assert_eq!(heard, 1, "{customer}");
            assert_eq!(sim.call(customer).unwrap().status, CallStatus::Completed);
        }
        for entry in &entries {
            let failed = match &entry.event {
                Event::TwimlError { .. } | Event::HoldSilence => true,
                Event::Webhook { method, status, .. } => method != "REST" && *status != Some(200),
                Event::StatusCallback { status, .. } => *status != Some(200),
                Event::Rest { status, .. } => !(200..300).contains(status),
                _ => false,
            };
            assert!(!failed, "{entry:?}");
        }

        // The Calls table holds exactly the five live calls: each record, its one participant,
        // and the agent's pointer to it; the abandoned callers left nothing behind.
        let items = stack.calls_table().await;
        let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
        let mut expected = BTreeSet::new();
        for (customer, agent, answered) in &served {
            let position = agents.iter().position(|a| a == agent).unwrap();
            let conference_pk = format!("CONF#{customer}");
            let record = items.iter().find(|i| s(i, "pk") == conference_pk && s(i, "sk") == "CONF").unwrap();
            assert_eq!(strings(record, "tried"), agents[..=position], "{customer}");
            assert_eq!(strings(record, "joined"), [*agent]);
            let stored_calls: BTreeSet<String> = strings(record, "agent_calls").into_iter().collect();
            assert_eq!(stored_calls, agent_calls[*customer], "{customer}: the calls placed for it, no other's");
            let participant = items.iter().find(|i| s(i, "pk") == conference_pk && s(i, "sk") != "CONF").unwrap();
            assert_eq!(
                (s(participant, "sk"), s(participant, "call_sid")),
                (format!("AGENT#{agent}").as_str(), answered.as_str())
            );
            let pointer = items.iter().find(|i| s(i, "pk") == format!("AGENT#{agent}")).unwrap();
            assert_eq!(s(pointer, "conference_id"), *customer, "{agent} is in the call they answered");
            expected.extend([(conference_pk.clone(), "CONF".to_owned()), (conference_pk, format!("AGENT#{agent}"))]);
            expected.insert((format!("AGENT#{agent}"), "CONF".to_owned()));
        }
        let keys: BTreeSet<(String, String)> =
            items.iter().map(|i| (s(i, "pk").to_owned(), s(i, "sk").to_owned())).collect();
        assert_eq!(keys, expected);
        assert_eq!(items.len(), expected.len());
        for item in &items {
            let expires_at = number(item, "expires_at");
            assert!(now < expires_at && expires_at <= now + 24 * 3600, "{item}");
        }
    });
    drop(stack);
}
