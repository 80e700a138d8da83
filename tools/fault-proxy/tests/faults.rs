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
use shared::domain::CallSid;
use shared::handlers::{call_connect, conference_connect_agent, conference_connect_client};
use shared::handlers::{conference_events, conference_wait, tickets, token};
use shared::testkit::{inbound_call_params, json_post, sid, signed_webhook};
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

/// One request Twilio makes, after whatever it takes to get there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// `conference-connect-client`: a customer calls the support number.
    CallerCalls,
    /// `conference-wait`: the hold message and music (and the check on a customer whose
    /// conference is unknown, which apologises through Twilio's REST API).
    HoldMusic,
    /// `conference-connect-agent`: the agent Warmline dialed answers.
    AgentAnswers,
    /// `conference-events`: the conference ends (the customer hung up).
    ConferenceEnds,
    /// `conference-events`: the agent leaves the conference.
    AgentLeaves,
    /// `conference-events` (agent status): the first agent does not answer.
    AgentDoesNotAnswer,
    /// `call-connect`: an agent calls a customer back from a ticket.
    AgentCallsCustomer,
    /// `call-connect`: a customer calls from the browser.
    BrowserCustomerCalls,
}

const SCENARIOS: [Scenario; 8] = [
    Scenario::CallerCalls,
    Scenario::HoldMusic,
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
            (Self::HoldMusic, _) => Twiml::Hold,
            (Self::ConferenceEnds | Self::AgentLeaves | Self::AgentDoesNotAnswer, _) => Twiml::Empty,
            // Nothing that needs Twilio's REST API stands between the agent and the conference.
            (Self::AgentAnswers, Side::Twilio) => Twiml::Conference,
            (Self::AgentCallsCustomer, Side::Twilio) => Twiml::DialNumber,
            // The rest cannot go on without storage, or without dialing an agent: an apology.
            _ => Twiml::SayThenHangup,
        }
    }
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

async fn agent_answers(rig: &Rig, call: &Call) -> Timed {
    let path = format!("/conference/{}/connect/{}", call.conference, rig.agents[0]);
    let params = [("CallSid", call.agent_call.as_str()), ("CallStatus", "in-progress")];
    timed(conference_connect_agent::handle(&rig.app, signed_webhook(&path, &params))).await
}

/// Sets up a call through the rig while nothing fails, and returns it.
async fn established_call(rig: &Rig, call_sid: &str) -> Result<Call, String> {
    let answer = caller_calls(rig, call_sid).await;
    if read_twiml(&body_text(&answer.response)) != Ok(Twiml::Conference) {
        return Err(format!("set-up failed: {}", body_text(&answer.response)));
    }
    let id = CallSid::parse(call_sid).ok_or("bad sid")?;
    let now = rig.app.clock.now();
    let record = rig.app.calls.conference(&id, now).await.map_err(|err| err.to_string())?.ok_or("no conference")?;
    let agent_call = record.agent_calls.first().ok_or("no agent call recorded")?.to_string();
    Ok(Call { conference: call_sid.to_owned(), agent_call })
}

async fn tickets_for(rig: &Rig, phone_number: &str, name: &str) -> Timed {
    let body = serde_json::json!({ "name": name, "phone_number": phone_number, "description": "fault test" });
    timed(tickets::handle(&rig.app, json_post("/tickets", &body.to_string()))).await
}

/// Runs `scenario` with `fault` in front of `side` and checks the answer Twilio gets.
async fn run_case(tables: Arc<Tables>, case: u32, scenario: Scenario, side: Side, fault: Fault) -> Case {
    let rig = Rig::new(&tables, case).await;
    let call_sid = sid(0x00fa_0000 + case);
    let mut requests = 0;
    let mut outcome = Case { scenario, side, fault, elapsed: Duration::ZERO, requests: 0, violations: Vec::new() };

    // Set-up while nothing fails.
    let call = match scenario {
        Scenario::AgentAnswers | Scenario::ConferenceEnds | Scenario::AgentLeaves | Scenario::AgentDoesNotAnswer => {
            requests += 1;
            match established_call(&rig, &call_sid).await {
                Ok(call) => Some(call),
                Err(err) => {
                    outcome.violations.push(err);
                    return outcome;
                }
            }
        }
        _ => None,
    };
    if scenario == Scenario::AgentLeaves
        && let Some(call) = &call
    {
        requests += 1;
        let joined = agent_answers(&rig, call).await;
        if read_twiml(&body_text(&joined.response)) != Ok(Twiml::Conference) {
            outcome.violations.push(format!("set-up: the agent could not join: {}", body_text(&joined.response)));
            return outcome;
        }
    }
    let customer_number = format!("+1555{:07}", case);
    if scenario == Scenario::AgentCallsCustomer {
        requests += 1;
        let filed = tickets_for(&rig, &customer_number, "Fault Test").await;
        if filed.response.status() != 201 {
            outcome.violations.push(format!("set-up: ticket not filed: {}", filed.response.status()));
            return outcome;
        }
    }

    rig.proxy(side).set(fault);
    requests += 1;
    let answer = match (scenario, &call) {
        (Scenario::CallerCalls, _) => caller_calls(&rig, &call_sid).await,
        (Scenario::HoldMusic, _) => {
            let params = inbound_call_params(&call_sid);
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // A return: the turn that checks on the customer, and so reaches the upstreams.
            timed(conference_wait::handle(&rig.app, signed_webhook("/conference/wait?held=1", &params))).await
        }
        (Scenario::AgentAnswers, Some(call)) => agent_answers(&rig, call).await,
        (Scenario::ConferenceEnds, Some(call)) => {
            let path = format!("/conference/{}/events", call.conference);
            let params = [("StatusCallbackEvent", "conference-end"), ("FriendlyName", call.conference.as_str())];
            timed(conference_events::handle(&rig.app, signed_webhook(&path, &params))).await
        }
        (Scenario::AgentLeaves, Some(call)) => {
            let path = format!("/conference/{}/events", call.conference);
            let params = [("StatusCallbackEvent", "participant-leave"), ("CallSid", call.agent_call.as_str())];
            timed(conference_events::handle(&rig.app, signed_webhook(&path, &params))).await
        }
        (Scenario::AgentDoesNotAnswer, Some(call)) => {
            let path = format!("/conference/{}/agents/{}/status", call.conference, rig.agents[0]);
            let params = [("CallSid", call.agent_call.as_str()), ("CallStatus", "no-answer")];
            timed(conference_events::handle(&rig.app, signed_webhook(&path, &params))).await
        }
        (Scenario::AgentCallsCustomer, _) => {
            let from = format!("client:{}", rig.agents[0]);
            let params = [("CallSid", call_sid.as_str()), ("From", &from), ("phoneNumber", &customer_number)];
            timed(call_connect::handle(&rig.app, signed_webhook("/call/connect", &params))).await
        }
        (Scenario::BrowserCustomerCalls, _) => {
            let params = [("CallSid", call_sid.as_str()), ("From", "client:customer_0123456789abcdef")];
            timed(call_connect::handle(&rig.app, signed_webhook("/call/connect", &params))).await
        }
        (_, None) => unreachable!("every scenario with a call set one up"),
    };
    rig.proxy(side).pass_through();

    outcome.elapsed = answer.elapsed;
    outcome.requests = requests;
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

    // What the caller will experience next, now that the fault is gone.
    match (scenario, side) {
        (Scenario::CallerCalls | Scenario::BrowserCustomerCalls, Side::Twilio) => {
            // The agent could not be dialed, so the conference must be forgotten: Twilio's retry
            // of this webhook then dials again instead of leaving the caller on hold forever.
            let id = CallSid::parse(&call_sid).unwrap();
            match rig.app.calls.conference(&id, rig.app.clock.now()).await {
                Ok(None) => {}
                Ok(Some(_)) => violations.push("the undialed conference was kept: a retry would not dial".into()),
                Err(err) => violations.push(format!("could not check the conference: {err}")),
            }
        }
        (Scenario::CallerCalls | Scenario::BrowserCustomerCalls, Side::DynamoDb) => {
            let placed = rig.fake_twilio.requests_to("Calls.json").await;
            if !placed.is_empty() {
                violations.push(format!("an agent was dialed for a conference that was not stored: {placed:?}"));
            }
        }
        _ => {}
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_twilio_endpoint_answers_twiml_in_time_under_every_fault() {
    let tables = Arc::new(common::emulator_tables().await);
    let mut running = tokio::task::JoinSet::new();
    let mut case = 0;
    for scenario in SCENARIOS {
        for side in [Side::DynamoDb, Side::Twilio] {
            for fault in FAULTS {
                case += 1;
                let tables = tables.clone();
                running.spawn(async move {
                    let _permit = CASES.acquire().await.unwrap();
                    run_case(tables, case, scenario, side, fault).await
                });
            }
        }
    }
    let cases: Vec<Case> = running.join_all().await;

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
/// what they get on a good day: the conference, with exactly one agent dialed.
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
            let answer = caller_calls(&rig, &sid(0x00fa_0000 + case)).await;
            let twiml = read_twiml(&body_text(&answer.response));
            let dialed = rig.fake_twilio.requests_to("Calls.json").await.len();
            (fault, twiml, dialed, answer.elapsed)
        });
    }
    for (fault, twiml, dialed, elapsed) in running.join_all().await {
        assert_eq!((twiml, dialed), (Ok(Twiml::Conference), 1), "{fault} once");
        assert!(elapsed <= ANSWER_BOUND, "{fault} once: {elapsed:?}");
    }
}

/// The conditional write that creates a conference lands, its reply is lost, the SDK resends
/// it, and the resent write meets its own item: it must know it as its own (not as a retried
/// webhook's) and dial the first agent, once.
#[tokio::test]
async fn a_lost_reply_to_the_conference_write_still_dials_the_first_agent_once() {
    let tables = common::emulator_tables().await;
    let _permit = CASES.acquire().await.unwrap();
    let rig = Rig::new(&tables, 3000).await;
    rig.dynamodb.set_next(Fault::LoseReply, 1);
    let answer = caller_calls(&rig, &sid(0x00fa_3000)).await;
    let twiml = read_twiml(&body_text(&answer.response));
    // At least: on a busy machine the emulator may answer another attempt too late as well.
    assert!(rig.dynamodb.requests() >= 3, "the put, resent, then the agent call remembered");
    assert_eq!((twiml, rig.fake_twilio.requests_to("Calls.json").await.len()), (Ok(Twiml::Conference), 1));
    // Twilio retrying the webhook afterwards dials nobody again.
    let retry = caller_calls(&rig, &sid(0x00fa_3000)).await;
    assert_eq!(read_twiml(&body_text(&retry.response)), Ok(Twiml::Conference));
    assert_eq!(rig.fake_twilio.requests_to("Calls.json").await.len(), 1);
}

/// The customer's hold music comes back to the waitUrl, as Twilio fetches it at each turn.
async fn hold_music_turn(rig: &Rig, call: &Call) -> Timed {
    let params = inbound_call_params(&call.conference);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    timed(conference_wait::handle(&rig.app, signed_webhook("/conference/wait?held=1", &params))).await
}

/// Whether the customer's call was sent the apology (a redirect to TwiML that says it).
async fn customer_told(rig: &Rig, call: &Call) -> bool {
    let updates = rig.fake_twilio.requests_to(&format!("Calls/{}.json", call.conference)).await;
    updates
        .iter()
        .flatten()
        .any(|(name, value)| name == "Twiml" && value.contains(shared::call_flow::NO_AGENT_AVAILABLE))
}

/// Every agent has been tried and Twilio fails the update that apologises to the customer. The
/// conference is given up on, so no further report will come; the customer's next hold-music
/// turn finds that, and the apology is said then.
#[tokio::test]
async fn an_apology_twilio_did_not_take_is_said_at_the_next_hold_music_turn() {
    let tables = common::emulator_tables().await;
    let _permit = CASES.acquire().await.unwrap();
    let rig = Rig::new(&tables, 3001).await;
    let call = established_call(&rig, &sid(0x00fa_3001)).await.unwrap();
    let path = format!("/conference/{}/agents/{}/status", call.conference, rig.agents[0]);
    let params = [("CallSid", call.agent_call.as_str()), ("CallStatus", "no-answer")];
    rig.twilio.set(Fault::Status(503));
    timed(conference_events::handle(&rig.app, signed_webhook(&path, &params))).await;
    // While Twilio still fails, the customer keeps their music.
    let turn = hold_music_turn(&rig, &call).await;
    assert_eq!(read_twiml(&body_text(&turn.response)), Ok(Twiml::Hold));
    rig.twilio.pass_through();
    assert!(!customer_told(&rig, &call).await);

    let turn = hold_music_turn(&rig, &call).await;
    assert_eq!(read_twiml(&body_text(&turn.response)), Ok(Twiml::Hold));
    assert!(turn.elapsed <= ANSWER_BOUND, "{:?}", turn.elapsed);
    assert!(customer_told(&rig, &call).await, "the customer is told once Twilio is back");
    assert_eq!(rig.fake_twilio.requests_to("Calls.json").await.len(), 1, "nobody else was rung");
}

/// Twilio stalls while a report is handled: ringing the next agent waits out its REST timeout
/// and the apology would wait out another. The report is answered within the bound all the
/// same, and the customer's next hold-music turn finishes what was cut short.
#[tokio::test]
async fn a_report_cut_short_by_a_stalled_twilio_is_answered_in_time_and_finished_later() {
    let tables = common::emulator_tables().await;
    let _permit = CASES.acquire().await.unwrap();
    let rig = Rig::new(&tables, 3002).await;
    let call = established_call(&rig, &sid(0x00fa_3002)).await.unwrap();
    let path = format!("/conference/{}/agents/{}/status", call.conference, rig.agents[0]);
    let params = [("CallSid", call.agent_call.as_str()), ("CallStatus", "no-answer")];
    rig.twilio.set(Fault::Blackhole);
    let report = timed(conference_events::handle(&rig.app, signed_webhook(&path, &params))).await;
    rig.twilio.pass_through();
    assert_eq!(read_twiml(&body_text(&report.response)), Ok(Twiml::Empty));
    assert!(report.elapsed <= shared::pipeline::WEBHOOK_DEADLINE + Duration::from_millis(300), "{:?}", report.elapsed);

    let turn = hold_music_turn(&rig, &call).await;
    assert_eq!(read_twiml(&body_text(&turn.response)), Ok(Twiml::Hold));
    assert!(customer_told(&rig, &call).await, "nobody is left to ring: the customer is told");
}
