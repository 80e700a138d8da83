//! Every endpoint Twilio calls, and the JSON endpoints, with the real App (DynamoDB stores, Twilio
//! REST client, production timeouts and retries) while DynamoDB or Twilio's REST API fails in
//! every way the fault proxy knows. Twilio must always get `200 text/xml` TwiML that tells the
//! caller something, within 3 s; a browser gets a clean 503 it can retry, and never a 201 for a
//! ticket that was not stored.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers too: a setup that fails is a failed test"
)]

mod common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{ANSWER_BOUND, Rig, Side, Tables, Timed, Twiml, body_text, header, read_twiml, timed};
use fault_proxy::{DynamoDbError, Fault};
use shared::call_flow::AGENT_SESSION_PARAM;
use shared::domain::CallSid;
use shared::handlers::{call_connect, conference_connect_agent, conference_connect_client};
use shared::handlers::{conference_events, conference_wait, tickets, token};
use shared::testkit::{
    AGENT_APP_SID, CUSTOMER_APP_SID, conference_report, inbound_call_params, json_post, sid, signed_webhook,
};
use tokio::sync::Semaphore;

const FAULTS: [Fault; 8] = [
    Fault::DynamoDb(DynamoDbError::ProvisionedThroughputExceeded),
    Fault::DynamoDb(DynamoDbError::Throttling),
    Fault::Status(500),
    Fault::Status(503),
    Fault::Status(429),
    Fault::Reset,
    Fault::Blackhole,
    Fault::LoseReply,
];

/// Cases run at once, across all the tests of this binary: enough to keep the run short, few
/// enough that the emulator (one Python process) and two cores do not become the bottleneck
/// that the 3 s bound would then measure.
static CASES: Semaphore = Semaphore::const_new(6);

/// Workers of the fault matrix, each with tables of its own, one case after another.
const WORKERS: usize = 6;

/// One request Twilio makes, after whatever it takes to get there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// `conference-connect-client`: a customer calls the support number.
    CallerCalls,
    /// `conference-wait`: the hold music, and the watch over a waiting customer (the router,
    /// their place in line).
    HoldMusic,
    /// `conference-events`: the customer joins their conference, and the router offers them.
    CallerJoins,
    /// `conference-connect-agent`: the agent Warmline rang answers.
    AgentAnswers,
    /// `conference-events`: the conference ends (the customer hung up).
    ConferenceEnds,
    /// `conference-events`: the agent leaves the customer alone: back into line.
    AgentLeaves,
    /// `conference-events` (agent status): the agent lets it ring out: the next agent rings.
    AgentDoesNotAnswer,
    /// `call-connect`: an agent calls a customer back from a ticket.
    AgentCallsCustomer,
    /// `call-connect`: a customer calls from the browser.
    BrowserCustomerCalls,
}

const SCENARIOS: [Scenario; 9] = [
    Scenario::CallerCalls,
    Scenario::HoldMusic,
    Scenario::CallerJoins,
    Scenario::AgentAnswers,
    Scenario::ConferenceEnds,
    Scenario::AgentLeaves,
    Scenario::AgentDoesNotAnswer,
    Scenario::AgentCallsCustomer,
    Scenario::BrowserCustomerCalls,
];

impl Scenario {
    fn endpoint(self) -> &'static str {
        match self {
            Self::CallerCalls => "conference-connect-client",
            Self::HoldMusic => "conference-wait",
            Self::CallerJoins => "conference-events (participant-join)",
            Self::AgentAnswers => "conference-connect-agent",
            Self::ConferenceEnds => "conference-events (conference-end)",
            Self::AgentLeaves => "conference-events (participant-leave)",
            Self::AgentDoesNotAnswer => "conference-events (agent no-answer)",
            Self::AgentCallsCustomer => "call-connect (agent)",
            Self::BrowserCustomerCalls => "call-connect (customer)",
        }
    }

    /// What the caller may be answered while `side` fails throughout.
    fn expected(self, side: Side) -> Twiml {
        match (self, side) {
            // A caller always gets their conference and music: one write at most stands before
            // it, and a failed one is made up at the first turn of the music.
            (Self::CallerCalls | Self::BrowserCustomerCalls, _) => Twiml::Conference,
            (Self::HoldMusic, _) => Twiml::Hold,
            (Self::CallerJoins | Self::ConferenceEnds | Self::AgentLeaves | Self::AgentDoesNotAnswer, _) => {
                Twiml::Empty
            }
            // Nothing that needs Twilio's REST API stands between the agent and the conference.
            (Self::AgentAnswers, Side::Twilio) => Twiml::Conference,
            // Calling the customer is a REST request: without Twilio, the agent is told.
            (Self::AgentCallsCustomer, Side::Twilio) => Twiml::SayThenHangup,
            // The rest cannot go on without storage: an apology.
            (Self::AgentAnswers | Self::AgentCallsCustomer, Side::DynamoDb) => Twiml::SayThenHangup,
        }
    }

    /// How far the call must have got before the request under test.
    fn set_up(self) -> SetUp {
        match self {
            Self::CallerCalls | Self::BrowserCustomerCalls | Self::AgentCallsCustomer => SetUp::Nothing,
            Self::HoldMusic | Self::CallerJoins => SetUp::Arrived,
            Self::AgentAnswers | Self::ConferenceEnds | Self::AgentDoesNotAnswer => SetUp::Ringing,
            Self::AgentLeaves => SetUp::Answered,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SetUp {
    Nothing,
    /// The customer called; agent1 is available.
    Arrived,
    /// ... joined their conference, and agent1 rings for them.
    Ringing,
    /// ... agent1 answered.
    Answered,
}

/// The outcome of one request under one fault.
struct Case {
    scenario: Scenario,
    side: Side,
    fault: Fault,
    elapsed: Duration,
    /// Handler requests this case sent, set-up included.
    requests: usize,
    violations: Vec<String>,
}

/// A customer's call that has reached a conference, with the agent's call ringing.
struct Call {
    conference: String,
    agent_call: String,
}

async fn caller_calls(rig: &Rig, call_sid: &str) -> Timed {
    let params = inbound_call_params(call_sid);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    timed(conference_connect_client::handle(&rig.app, signed_webhook("/conference/connect/client", &params))).await
}

async fn caller_joins(rig: &Rig, call_sid: &str) -> Timed {
    timed(conference_events::handle(&rig.app, conference_report(call_sid, "participant-join", Some(call_sid)))).await
}

async fn agent_answers(rig: &Rig, call: &Call) -> Timed {
    let path = format!("/conference/{}/connect/{}", call.conference, rig.agents[0]);
    let params = [("CallSid", call.agent_call.as_str()), ("CallStatus", "in-progress")];
    timed(conference_connect_agent::handle(&rig.app, signed_webhook(&path, &params))).await
}

/// The customer's hold music comes back to the waitUrl, as Twilio fetches it at each turn.
async fn hold_music_turn(rig: &Rig, call_sid: &str) -> Timed {
    let params = inbound_call_params(call_sid);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    timed(conference_wait::handle(&rig.app, signed_webhook("/conference/wait?held=1", &params))).await
}

/// Brings a call as far as `set_up` through the rig while nothing fails.
async fn set_up(rig: &Rig, call_sid: &str, set_up: SetUp) -> Result<Option<Call>, String> {
    if set_up == SetUp::Nothing {
        return Ok(None);
    }
    rig.available(&rig.agents[0]).await;
    let answer = caller_calls(rig, call_sid).await;
    if read_twiml(&body_text(&answer.response)) != Ok(Twiml::Conference) {
        return Err(format!("set-up failed: {}", body_text(&answer.response)));
    }
    if set_up == SetUp::Arrived {
        return Ok(None);
    }
    caller_joins(rig, call_sid).await;
    let id = CallSid::parse(call_sid).ok_or("bad sid")?;
    let now = rig.app.clock.now();
    let record = rig.app.calls.conference(&id, now).await.map_err(|err| err.to_string())?.ok_or("no caller")?;
    let (agent_call, _) = record
        .agent_calls
        .first()
        .ok_or_else(|| format!("set-up: no agent call recorded for a caller {:?}", record.state))?;
    let call = Call { conference: call_sid.to_owned(), agent_call: agent_call.to_string() };
    if set_up == SetUp::Answered {
        let joined = agent_answers(rig, &call).await;
        if read_twiml(&body_text(&joined.response)) != Ok(Twiml::Conference) {
            return Err(format!("set-up: the agent could not join: {}", body_text(&joined.response)));
        }
    }
    Ok(Some(call))
}

async fn tickets_for(rig: &Rig, phone_number: &str, name: &str) -> Timed {
    let body = serde_json::json!({ "name": name, "phone_number": phone_number, "description": "fault test" });
    timed(tickets::handle(&rig.app, json_post("/tickets", &body.to_string()))).await
}

/// Runs `scenario` with `fault` in front of `side` and checks the answer Twilio gets, and that
/// nothing is left for the caller that the next trigger does not make up for.
async fn run_case(tables: &Tables, case: u32, scenario: Scenario, side: Side, fault: Fault) -> Case {
    tables.clear_calls().await;
    let rig = Rig::new(tables, case).await;
    let call_sid = sid(0x00fa_0000 + case);
    let mut outcome = Case { scenario, side, fault, elapsed: Duration::ZERO, requests: 0, violations: Vec::new() };

    let call = match set_up(&rig, &call_sid, scenario.set_up()).await {
        Ok(call) => call,
        Err(err) => {
            outcome.violations.push(err);
            return outcome;
        }
    };
    let customer_number = format!("+1555{:07}", case);
    if scenario == Scenario::AgentCallsCustomer {
        let filed = tickets_for(&rig, &customer_number, "Fault Test").await;
        if filed.response.status() != 201 {
            outcome.violations.push(format!("set-up: ticket not filed: {}", filed.response.status()));
            return outcome;
        }
    }
    // The agent's browser holds a token of their current session, issued before the fault.
    let agent_session = match scenario {
        Scenario::AgentCallsCustomer => rig.agent_session(&rig.agents[0]).await,
        _ => String::new(),
    };
    if scenario == Scenario::AgentDoesNotAnswer {
        rig.available(&rig.agents[1]).await;
    }

    rig.proxy(side).set(fault);
    let answer = match (scenario, &call) {
        (Scenario::CallerCalls, _) => caller_calls(&rig, &call_sid).await,
        (Scenario::HoldMusic, _) => hold_music_turn(&rig, &call_sid).await,
        (Scenario::CallerJoins, _) => caller_joins(&rig, &call_sid).await,
        (Scenario::AgentAnswers, Some(call)) => agent_answers(&rig, call).await,
        (Scenario::ConferenceEnds, Some(call)) => {
            timed(conference_events::handle(&rig.app, conference_report(&call.conference, "conference-end", None)))
                .await
        }
        (Scenario::AgentLeaves, Some(call)) => {
            let report = conference_report(&call.conference, "participant-leave", Some(&call.agent_call));
            timed(conference_events::handle(&rig.app, report)).await
        }
        (Scenario::AgentDoesNotAnswer, Some(call)) => {
            let path = format!("/conference/{}/agents/{}/status", call.conference, rig.agents[0]);
            let params = [("CallSid", call.agent_call.as_str()), ("CallStatus", "no-answer")];
            timed(conference_events::handle(&rig.app, signed_webhook(&path, &params))).await
        }
        (Scenario::AgentCallsCustomer, _) => {
            let from = format!("client:{}", rig.agents[0]);
            let params = [
                ("ApplicationSid", AGENT_APP_SID),
                ("CallSid", call_sid.as_str()),
                ("From", &from),
                ("phoneNumber", &customer_number),
                (AGENT_SESSION_PARAM, &agent_session),
            ];
            timed(call_connect::handle(&rig.app, signed_webhook("/call/agent", &params))).await
        }
        (Scenario::BrowserCustomerCalls, _) => {
            let params = [
                ("ApplicationSid", CUSTOMER_APP_SID),
                ("CallSid", call_sid.as_str()),
                ("From", "client:customer_0123456789abcdef"),
            ];
            timed(call_connect::handle(&rig.app, signed_webhook("/call/connect", &params))).await
        }
        (_, None) => unreachable!("every scenario with a call set one up"),
    };
    rig.proxy(side).pass_through();

    outcome.elapsed = answer.elapsed;
    outcome.requests = rig.dynamodb.requests() + rig.twilio.requests();
    let response = &answer.response;
    let body = body_text(response);
    let violations = &mut outcome.violations;
    if response.status() != 200 {
        violations.push(format!("status {} (body {body})", response.status()));
    }
    if !header(response, "content-type").is_some_and(|value| value.starts_with("text/xml")) {
        violations.push(format!("content-type {:?}", header(response, "content-type")));
    }
    if answer.elapsed > ANSWER_BOUND {
        violations.push(format!("answered after {:.2?}, over the {ANSWER_BOUND:?} bound", answer.elapsed));
    }
    match read_twiml(&body) {
        Ok(twiml) if twiml == scenario.expected(side) => {}
        Ok(twiml) => violations.push(format!("{twiml:?}, expected {:?}: {body}", scenario.expected(side))),
        Err(err) => violations.push(err),
    }

    // Whatever the fault cut short, the caller's next hold-music turn makes up for it: a caller
    // who waits is in line and, with an agent available, rung; nobody is rung twice at once.
    let waits = matches!(
        scenario,
        Scenario::CallerCalls | Scenario::BrowserCustomerCalls | Scenario::HoldMusic | Scenario::CallerJoins
    );
    if waits {
        rig.available(&rig.agents[0]).await;
        hold_music_turn(&rig, &call_sid).await;
        let id = CallSid::parse(&call_sid).unwrap();
        let unplaced = rig.app.calls.conference(&id, rig.app.clock.now()).await.ok().flatten();
        if unplaced.is_some_and(|record| !record.ringing.is_empty() && !record.ring_placed) {
            // The work placing the ring was cut short: the watch ends such a ring after a while.
            let wait = shared::call_flow::UNPLACED_RING_SECONDS.unsigned_abs() + 1;
            tokio::time::sleep(Duration::from_secs(wait)).await;
            hold_music_turn(&rig, &call_sid).await;
        }
        match rig.app.calls.conference(&id, rig.app.clock.now()).await {
            Ok(Some(record)) if record.ringing.len() == 1 => {}
            Ok(Some(record)) => violations.push(format!("after the fault, not rung: {:?}", record.state)),
            Ok(None) => violations.push("after the fault, the caller is in no line".into()),
            Err(err) => violations.push(format!("could not check the caller: {err}")),
        }
        let rings = rig.fake_twilio.requests_to("Calls.json").await.len();
        if !(1..=2).contains(&rings) {
            violations.push(format!("{rings} rings for one caller and one agent"));
        }
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_twilio_endpoint_answers_twiml_in_time_under_every_fault() {
    let mut pending = Vec::new();
    for scenario in SCENARIOS {
        for side in [Side::DynamoDb, Side::Twilio] {
            for fault in FAULTS {
                pending.push((u32::try_from(pending.len()).unwrap() + 1, scenario, side, fault));
            }
        }
    }
    let pending = Arc::new(std::sync::Mutex::new(pending));
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let pending = pending.clone();
        running.spawn(async move {
            // Tables of its own: the queue and the free agents are the whole table's.
            let tables = common::emulator_tables().await;
            let mut done = Vec::new();
            loop {
                let next = pending.lock().unwrap().pop();
                let Some((case, scenario, side, fault)) = next else { return done };
                let _permit = CASES.acquire().await.unwrap();
                done.push(run_case(&tables, case, scenario, side, fault).await);
            }
        });
    }
    let cases: Vec<Case> = running.join_all().await.into_iter().flatten().collect();

    let mut report = String::new();
    let requests: usize = cases.iter().map(|case| case.requests).sum();
    writeln!(
        report,
        "{} cases ({} scenarios x 2 upstreams x {} faults), {requests} requests",
        cases.len(),
        SCENARIOS.len(),
        FAULTS.len()
    )
    .unwrap();
    for side in [Side::DynamoDb, Side::Twilio] {
        for fault in FAULTS {
            let slowest = cases
                .iter()
                .filter(|case| case.side == side && case.fault == fault)
                .max_by_key(|case| case.elapsed)
                .unwrap();
            writeln!(report, "  {side} {fault}: slowest {:.2?} ({})", slowest.elapsed, slowest.scenario.endpoint())
                .unwrap();
        }
    }
    let failures: Vec<String> = cases
        .iter()
        .flat_map(|case| {
            case.violations.iter().map(move |violation| {
                format!("{} with {} {}: {violation}", case.scenario.endpoint(), case.side, case.fault)
            })
        })
        .collect();
    eprintln!("{report}");
    assert!(failures.is_empty(), "{} violations:\n{}\n{report}", failures.len(), failures.join("\n"));
}

/// A ticket's item, read straight from the emulator.
async fn stored_ticket(tables: &Tables, id: &str) -> bool {
    let item = tables.direct.get_item().table_name(&tables.tickets).key("id", AttributeValue::S(id.to_owned())).send();
    item.await.unwrap().item.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_endpoints_answer_a_clean_503_and_never_acknowledge_an_unstored_ticket() {
    let tables = Arc::new(common::emulator_tables().await);
    let mut running = tokio::task::JoinSet::new();
    // Persistent faults, and the same faults once (the SDK's retry may get past them).
    let injections = FAULTS.iter().flat_map(|fault| [(*fault, None), (*fault, Some(1))]);
    for (n, (fault, times)) in injections.enumerate() {
        let tables = tables.clone();
        let case = 1000 + u32::try_from(n).unwrap();
        running.spawn(async move {
            let _permit = CASES.acquire().await.unwrap();
            let rig = Rig::new(&tables, case).await;
            let mut violations = Vec::new();
            let name = format!("Fault Case {case}");
            match times {
                None => rig.dynamodb.set(fault),
                Some(times) => rig.dynamodb.set_next(fault, times),
            }
            let filed = tickets_for(&rig, &format!("+1555{case:07}"), &name).await;
            let token = timed(token::handle(&rig.app, json_post("/token", "{}"))).await;
            rig.dynamodb.pass_through();
            let label = format!("{fault}{}", if times.is_some() { " once" } else { "" });

            let response = &filed.response;
            match response.status().as_u16() {
                201 => {
                    let body: serde_json::Value = serde_json::from_str(&body_text(response)).unwrap();
                    let id = body["id"].as_str().unwrap_or_default().to_owned();
                    if !stored_ticket(&tables, &id).await {
                        violations
                            .push(format!("POST /tickets with {label}: 201 for ticket {id}, which is not stored"));
                    }
                    if times.is_none() {
                        violations.push(format!("POST /tickets with {label}: 201 although storage never answered"));
                    }
                }
                503 => {}
                status => violations.push(format!("POST /tickets with {label}: status {status}")),
            }
            // (GET /tickets is for signed-in agents now, and refuses before storage is involved.)
            if response.status() == 503 && header(response, "retry-after").is_none() {
                violations.push(format!("POST /tickets with {label}: 503 without Retry-After"));
            }
            if times.is_none() && response.status() != 503 {
                violations.push(format!("POST /tickets with {label}: {} rather than 503", response.status()));
            }
            if filed.elapsed > ANSWER_BOUND {
                violations.push(format!("POST /tickets with {label}: answered after {:.2?}", filed.elapsed));
            }
            // A customer token needs no storage today; if it ever does, a 503 with a retry hint.
            let response = &token.response;
            let token_ok =
                response.status() == 200 || (response.status() == 503 && header(response, "retry-after").is_some());
            if !token_ok {
                violations.push(format!("POST /token with {label}: {} {}", response.status(), body_text(response)));
            }
            (label, filed.response.status().as_u16(), filed.elapsed, violations)
        });
    }
    let results = running.join_all().await;
    let mut report = String::new();
    for (label, status, slowest, _) in &results {
        writeln!(report, "  DynamoDB {label}: POST /tickets {status}, slowest {slowest:.2?}").unwrap();
    }
    eprintln!("{} ticket cases, {} requests\n{report}", results.len(), results.len() * 2);
    let failures: Vec<&String> = results.iter().flat_map(|(_, _, _, violations)| violations).collect();
    assert!(failures.is_empty(), "{failures:#?}\n{report}");
}

/// The SDK retries a throttled, failed, reset or stalled first attempt, and the caller gets
/// what they get on a good day: the conference, and their place in line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_storage_fault_on_a_new_call_is_retried_past() {
    let tables = Arc::new(common::emulator_tables().await);
    let mut running = tokio::task::JoinSet::new();
    // Not a 429: the SDK does not retry it. A stalled attempt (0.6 s) and a short backoff fit in
    // the 1.5 s operation timeout; a lost reply is resent and finds its own write.
    let faults = FAULTS.into_iter().filter(|fault| !matches!(fault, Fault::Status(429)));
    for (n, fault) in faults.enumerate() {
        let tables = tables.clone();
        let case = 2000 + u32::try_from(n).unwrap();
        running.spawn(async move {
            let _permit = CASES.acquire().await.unwrap();
            let rig = Rig::new(&tables, case).await;
            rig.dynamodb.set_next(fault, 1);
            let call_sid = sid(0x00fa_0000 + case);
            let answer = caller_calls(&rig, &call_sid).await;
            let twiml = read_twiml(&body_text(&answer.response));
            let id = CallSid::parse(&call_sid).unwrap();
            let in_line = rig.app.calls.conference(&id, rig.app.clock.now()).await.unwrap().map(|r| r.version);
            (fault, twiml, in_line, answer.elapsed)
        });
    }
    for (fault, twiml, in_line, elapsed) in running.join_all().await {
        assert_eq!((twiml, in_line), (Ok(Twiml::Conference), Some(1)), "{fault} once");
        assert!(elapsed <= ANSWER_BOUND, "{fault} once: {elapsed:?}");
    }
}

/// The conditional write that puts a caller in line lands, its reply is lost, the SDK resends
/// it, and the resent write meets its own item: it must know it as its own (not as a retried
/// webhook's), and the caller is in line once.
#[tokio::test]
async fn a_lost_reply_to_the_arrival_still_puts_the_caller_in_line_once() {
    let tables = common::emulator_tables().await;
    let _permit = CASES.acquire().await.unwrap();
    let rig = Rig::new(&tables, 3000).await;
    rig.dynamodb.set_next(Fault::LoseReply, 1);
    let call_sid = sid(0x00fa_3000);
    let answer = caller_calls(&rig, &call_sid).await;
    assert_eq!(read_twiml(&body_text(&answer.response)), Ok(Twiml::Conference));
    // At least: on a busy machine the emulator may answer another attempt too late as well.
    assert!(rig.dynamodb.requests() >= 2, "the put, resent");
    let id = CallSid::parse(&call_sid).unwrap();
    let record = rig.app.calls.conference(&id, rig.app.clock.now()).await.unwrap().unwrap();
    assert_eq!(record.version, 1);
    // Twilio retrying the webhook afterwards changes nothing.
    let retry = caller_calls(&rig, &call_sid).await;
    assert_eq!(read_twiml(&body_text(&retry.response)), Ok(Twiml::Conference));
    assert_eq!(rig.app.calls.conference(&id, rig.app.clock.now()).await.unwrap(), Some(record));
}

/// Twilio fails the call that would ring the agent while the customer joins: the offer is
/// undone (the customer waits in their place, the agent is free, and no missed call is held
/// against them), and the customer's next hold-music turn rings the agent once Twilio is back.
#[tokio::test]
async fn an_offer_twilio_did_not_place_is_made_at_the_next_hold_music_turn() {
    let tables = common::emulator_tables().await;
    let _permit = CASES.acquire().await.unwrap();
    let rig = Rig::new(&tables, 3001).await;
    let call_sid = sid(0x00fa_3001);
    set_up(&rig, &call_sid, SetUp::Arrived).await.unwrap();
    rig.twilio.set(Fault::Status(503));
    let report = caller_joins(&rig, &call_sid).await;
    assert_eq!(read_twiml(&body_text(&report.response)), Ok(Twiml::Empty));
    // While Twilio still fails, the customer keeps their music.
    let turn = hold_music_turn(&rig, &call_sid).await;
    assert_eq!(read_twiml(&body_text(&turn.response)), Ok(Twiml::Hold));
    rig.twilio.pass_through();
    assert_eq!(rig.fake_twilio.requests_to("Calls.json").await.len(), 0);

    let turn = hold_music_turn(&rig, &call_sid).await;
    assert_eq!(read_twiml(&body_text(&turn.response)), Ok(Twiml::Hold));
    assert!(turn.elapsed <= ANSWER_BOUND, "{:?}", turn.elapsed);
    assert_eq!(rig.fake_twilio.requests_to("Calls.json").await.len(), 1, "rung once Twilio is back");
    let agent = shared::domain::AgentId::parse(&rig.agents[0]).unwrap();
    let state = rig.app.calls.agent_state(&agent, rig.app.clock.now()).await.unwrap().unwrap();
    assert_eq!(state.missed_at, None);
}

/// Twilio stalls while a no-answer is handled: ringing the next agent waits out its REST
/// timeout. The report is answered within the bound all the same, and the customer's next
/// hold-music turn rings the next agent.
#[tokio::test]
async fn a_report_cut_short_by_a_stalled_twilio_is_answered_in_time_and_finished_later() {
    let tables = common::emulator_tables().await;
    let _permit = CASES.acquire().await.unwrap();
    let rig = Rig::new(&tables, 3002).await;
    let call_sid = sid(0x00fa_3002);
    let call = set_up(&rig, &call_sid, SetUp::Ringing).await.unwrap().unwrap();
    rig.available(&rig.agents[1]).await;
    let path = format!("/conference/{}/agents/{}/status", call.conference, rig.agents[0]);
    let params = [("CallSid", call.agent_call.as_str()), ("CallStatus", "no-answer")];
    rig.twilio.set(Fault::Blackhole);
    let report = timed(conference_events::handle(&rig.app, signed_webhook(&path, &params))).await;
    rig.twilio.pass_through();
    assert_eq!(read_twiml(&body_text(&report.response)), Ok(Twiml::Empty));
    assert!(report.elapsed <= shared::pipeline::WEBHOOK_DEADLINE + Duration::from_millis(300), "{:?}", report.elapsed);

    let turn = hold_music_turn(&rig, &call_sid).await;
    assert_eq!(read_twiml(&body_text(&turn.response)), Ok(Twiml::Hold));
    let rung: Vec<String> = rig
        .fake_twilio
        .requests_to("Calls.json")
        .await
        .into_iter()
        .filter_map(|form| form.into_iter().find(|(name, _)| name == "To").map(|(_, to)| to))
        .collect();
    // The client's address, before the ring's custom parameters.
    let last = rung.last().and_then(|to| to.split('?').next());
    assert_eq!(last, Some(format!("client:{}", rig.agents[1]).as_str()), "{rung:?}");
}
