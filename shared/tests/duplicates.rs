//! Twilio delivers a webhook again when it is slow to answer, sends status callbacks twice and
//! out of order, and its deliveries overlap. Here the handlers run over the real DynamoDB store
//! on the emulator, because it is the store's conditional writes and transactions, not the
//! memory store's mutex, that must make every repeat a no-op. Deliveries marked "at once" run
//! on separate threads and start together behind a barrier.
//!
//! Needs the emulator (`WARMLINE_TEST_DYNAMODB_ENDPOINT`, which `make test` sets) and the
//! venv's Python (the tables come from template.yaml through scripts/create_tables.py).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Response};
use shared::App;
use shared::app::Ports;
use shared::call_flow::CALL_ENDED;
use shared::domain::{AgentId, AgentState, Availability, CallSid, CallerState, Conference};
use shared::handlers::{conference_connect_agent, conference_connect_client, conference_events};
use shared::store::CallStore;
use shared::store::dynamo::DynamoCallStore;
use shared::testkit::{
    BASE, EMPTY_TWIML, NOW, TestApp, XML_HEAD, agent_call, body_text, conference_sid, inbound_call_params, placed_sid,
    sid, signed_webhook_json,
};
use shared::twilio::CallUpdate;

type Item = HashMap<String, AttributeValue>;

/// Fresh tables from template.yaml, made by the script `make dev` uses, in the emulator.
struct Emulator {
    client: aws_sdk_dynamodb::Client,
    calls_table: String,
}

impl Emulator {
    async fn start() -> Self {
        let tables = shared::test_support::emulator_tables().await;
        Self { client: tables.client.clone(), calls_table: tables.name("CallsTable") }
    }

    fn store(&self) -> DynamoCallStore {
        DynamoCallStore::new(self.client.clone(), self.calls_table.clone())
    }

    /// The callers' items left in the Calls table.
    async fn callers(&self) -> Vec<String> {
        self.keys().await.into_iter().filter(|(pk, _)| pk.starts_with("CONF#")).map(|(pk, _)| pk).collect()
    }

    /// Every item of the Calls table as (pk, sk, item), sorted by key.
    async fn items(&self) -> Vec<(String, String, Item)> {
        let scan = self.client.scan().table_name(&self.calls_table).consistent_read(true).send().await.unwrap();
        let mut items: Vec<_> =
            scan.items().iter().map(|item| (text(item, "pk"), text(item, "sk"), item.clone())).collect();
        items.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        items
    }

    async fn keys(&self) -> Vec<(String, String)> {
        self.items().await.into_iter().map(|(pk, sk, _)| (pk, sk)).collect()
    }
}

fn text(item: &Item, name: &str) -> String {
    item.get(name).and_then(|value| value.as_s().ok()).cloned().unwrap_or_default()
}

/// The handler test kit's app (recording dialer, clock at `NOW`) over the DynamoDB store.
struct Harness {
    kit: TestApp,
    app: App,
    store: Arc<DynamoCallStore>,
}

impl Harness {
    fn over(emulator: &Emulator) -> Arc<Self> {
        let kit = TestApp::new();
        let store = Arc::new(emulator.store());
        let app = App::new(kit.app.config.clone(), Ports { calls: store.clone(), ..kit.ports() });
        Arc::new(Self { kit, app, store })
    }

    fn placed_to(&self) -> Vec<String> {
        self.kit.dialer.placed().iter().map(rung_client).collect()
    }

    /// The agent calls placed for `customer` that still ring, sorted.
    async fn ringing_calls(&self, customer: &str) -> Vec<String> {
        let Some(record) = self.conference(customer).await else { return Vec::new() };
        // An agent rung again for the same caller has an earlier call that was refused or
        // canceled already: only the latest call to each agent still ringing rings.
        let mut calls: Vec<String> =
            record.ringing.iter().filter_map(|agent| record.latest_call_to(agent)).map(ToString::to_string).collect();
        calls.sort();
        calls
    }

    async fn conference(&self, id: &str) -> Option<Conference> {
        self.store.conference(&call(id), NOW).await.unwrap()
    }

    async fn agent(&self, agent: &str) -> AgentState {
        self.store.agent_state(&AgentId::parse(agent).unwrap(), NOW).await.unwrap().unwrap()
    }

    /// `agent` (enrolled) says they are available, through the call flow over the emulator.
    async fn available(&self, agent: &str) {
        self.kit.enroll(agent).await;
        let links = shared::testkit::links();
        let id = AgentId::parse(agent).unwrap();
        shared::call_flow::agent_says(&self.app, &links, &id, Availability::Available).await.unwrap();
    }
}

fn call(id: &str) -> CallSid {
    CallSid::parse(id).unwrap()
}

fn agents(ids: &[&str]) -> Vec<AgentId> {
    ids.iter().map(|id| AgentId::parse(id).unwrap()).collect()
}

/// One Twilio delivery: the function it reaches and its API Gateway event.
#[derive(Debug, Clone)]
enum Delivery {
    ConnectClient(String),
    ConnectAgent(String),
    Report(String),
    /// A conference's `conference-end`, told apart because the order tests track it.
    End(String),
}

impl Delivery {
    async fn send(&self, app: &App) -> Response<Body> {
        let request = |json: &str| lambda_http::request::from_str(json).unwrap();
        match self {
            Self::ConnectClient(json) => conference_connect_client::handle(app, request(json)).await,
            Self::ConnectAgent(json) => conference_connect_agent::handle(app, request(json)).await,
            Self::Report(json) | Self::End(json) => conference_events::handle(app, request(json)).await,
        }
        .unwrap()
    }
}

fn customer_calls(customer: &str) -> Delivery {
    let params = inbound_call_params(customer);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Delivery::ConnectClient(signed_webhook_json("/conference/connect/client", &params))
}

fn agent_answers(customer: &str, agent: &str, agent_call: &str) -> Delivery {
    let to = format!("client:{agent}");
    let params = [("CallSid", agent_call), ("To", to.as_str()), ("Direction", "outbound-api")];
    Delivery::ConnectAgent(signed_webhook_json(&format!("/conference/{customer}/connect/{agent}"), &params))
}

/// The conference's own status callback (`join` or `leave` of `participant`, or `end`).
fn conference_report(customer: &str, event: &str, participant: Option<&str>) -> Delivery {
    let mut params = vec![
        ("ConferenceSid", conference_sid(customer)),
        ("FriendlyName", customer.to_owned()),
        ("StatusCallbackEvent", event.to_owned()),
    ];
    if let Some(call) = participant {
        params.push(("CallSid", call.to_owned()));
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let json = signed_webhook_json(&format!("/conference/{customer}/events"), &params);
    if event == "conference-end" { Delivery::End(json) } else { Delivery::Report(json) }
}

/// The customer is in their conference: the router runs.
fn customer_joins(customer: &str) -> Delivery {
    conference_report(customer, "participant-join", Some(customer))
}

/// How a call Warmline placed to an agent ended.
fn call_report(customer: &str, agent: &str, agent_call: &str, status: &str) -> Delivery {
    let to = format!("client:{agent}");
    let params = [("CallSid", agent_call), ("CallStatus", status), ("Direction", "outbound-api"), ("To", to.as_str())];
    Delivery::Report(signed_webhook_json(&format!("/conference/{customer}/agents/{agent}/status"), &params))
}

/// `times` deliveries on separate tasks of a multi-threaded runtime, released together.
async fn at_once(harness: &Arc<Harness>, delivery: &Delivery, times: usize) -> Vec<(u16, String)> {
    all_at_once(harness, &vec![delivery.clone(); times]).await
}

/// Every delivery on a task of its own, released together.
async fn all_at_once(harness: &Arc<Harness>, deliveries: &[Delivery]) -> Vec<(u16, String)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(deliveries.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for delivery in deliveries {
        let (harness, delivery, barrier) = (harness.clone(), delivery.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let response = delivery.send(&harness.app).await;
            (response.status().as_u16(), body_text(&response))
        });
    }
    tasks.join_all().await
}

async fn in_a_row(harness: &Harness, delivery: &Delivery, times: usize) -> Vec<(u16, String)> {
    let mut answers = Vec::new();
    for _ in 0..times {
        let response = delivery.send(&harness.app).await;
        answers.push((response.status().as_u16(), body_text(&response)));
    }
    answers
}

fn all_equal(answers: &[(u16, String)], expected: &str) {
    for (status, body) in answers {
        assert_eq!((*status, body.as_str()), (200, expected));
    }
}

fn customer_twiml(customer: &str) -> String {
    format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="{BASE}/conference/wait" waitMethod="POST" statusCallback="{BASE}/conference/{customer}/events" statusCallbackEvent="join leave end" statusCallbackMethod="POST">{customer}</Conference></Dial></Response>"#
    )
}

fn agent_twiml(customer: &str) -> String {
    format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">{customer}</Conference></Dial></Response>"#
    )
}

fn call_ended_twiml() -> String {
    format!("{XML_HEAD}<Response><Say>{CALL_ENDED}</Say><Hangup/></Response>")
}

/// Nobody rings for or talks with a caller who is gone.
async fn nobody_is_left_busy(harness: &Harness, agents: &[&str], seed: u64) {
    for agent in agents {
        let state = harness.agent(agent).await;
        assert_eq!((state.ringing_for, state.in_call), (None, None), "seed {seed}: {agent} left busy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_webhook_delivered_five_times_puts_them_in_line_once() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(1);

    let delivery = customer_calls(&customer);
    all_equal(&at_once(&harness, &delivery, 5).await, &customer_twiml(&customer));
    assert_eq!(emulator.callers().await, [format!("CONF#{customer}")]);
    let stored = harness.conference(&customer).await.unwrap();
    assert_eq!((stored.state, stored.version), (CallerState::Waiting, 1));

    // Twilio retrying after the first deliveries were answered.
    all_equal(&in_a_row(&harness, &delivery, 5).await, &customer_twiml(&customer));
    assert_eq!(harness.conference(&customer).await, Some(stored));
    assert_eq!(harness.kit.dialer.placed(), [], "nobody is rung from this webhook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_reported_five_times_offers_the_caller_once() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(2);
    harness.available("agent1").await;
    harness.available("agent2").await;
    customer_calls(&customer).send(&harness.app).await;

    let joined = customer_joins(&customer);
    all_equal(&at_once(&harness, &joined, 5).await, EMPTY_TWIML);
    all_equal(&in_a_row(&harness, &joined, 5).await, EMPTY_TWIML);
    assert_eq!(harness.kit.dialer.placed(), [agent_call(&customer, "agent1")], "one agent, rung once");
    let stored = harness.conference(&customer).await.unwrap();
    assert_eq!((stored.state, stored.ringing), (CallerState::Ringing, agents(&["agent1"])));
    assert_eq!(harness.agent("agent2").await.ringing_for, None);
}

/// Two or more routers at once (each join runs one, in its own Lambda): no agent is offered two
/// callers, no caller is offered to two agents, and nobody who could be paired is left apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routers_running_at_once_never_double_offer() {
    let emulator = Emulator::start().await;
    for round in 0..3_u32 {
        let harness = Harness::over(&emulator);
        let agent_ids = ["agent1", "agent2", "agent3"];
        for agent in agent_ids {
            harness.available(agent).await;
        }
        let customers: Vec<String> = (0..6).map(|n| sid(0x500 + round * 16 + n)).collect();
        for customer in &customers {
            customer_calls(customer).send(&harness.app).await;
        }
        // Every join, each reported twice, at once.
        let mut deliveries: Vec<Delivery> = customers.iter().map(|c| customer_joins(c)).collect();
        deliveries.extend(customers.iter().map(|c| customer_joins(c)));
        all_equal(&all_at_once(&harness, &deliveries).await, EMPTY_TWIML);

        let placed = harness.kit.dialer.placed();
        let rung: Vec<String> = placed.iter().map(rung_client).collect();
        let mut distinct_agents = rung.clone();
        distinct_agents.sort();
        distinct_agents.dedup();
        assert_eq!(distinct_agents.len(), rung.len(), "round {round}: an agent was offered two callers: {rung:?}");
        assert_eq!(rung.len(), 3, "round {round}: three agents, six callers: three offers");
        let mut offered = 0;
        for customer in &customers {
            let caller = harness.conference(customer).await.unwrap();
            assert!(caller.ringing.len() <= 1, "round {round}: {customer} offered to {:?}", caller.ringing);
            offered += caller.ringing.len();
        }
        assert_eq!(offered, 3, "round {round}");
        for agent in agent_ids {
            let state = harness.agent(agent).await;
            let customer = state.ringing_for.unwrap_or_else(|| panic!("round {round}: {agent} not rung"));
            assert_eq!(harness.conference(customer.as_str()).await.unwrap().ringing, agents(&[agent]));
        }
        // The three who wait are the last three to arrive.
        let waiting: Vec<CallSid> = harness.store.waiting(10, NOW).await.unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(waiting, customers[3..].iter().map(|c| call(c)).collect::<Vec<_>>(), "round {round}");
        for customer in &customers {
            conference_report(customer, "conference-end", None).send(&harness.app).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_answer_delivered_five_times_records_one_join() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(3);
    harness.available("agent1").await;
    customer_calls(&customer).send(&harness.app).await;
    customer_joins(&customer).send(&harness.app).await;

    let delivery = agent_answers(&customer, "agent1", &placed_sid(0));
    all_equal(&at_once(&harness, &delivery, 5).await, &agent_twiml(&customer));
    all_equal(&in_a_row(&harness, &delivery, 5).await, &agent_twiml(&customer));
    let caller = harness.conference(&customer).await.unwrap();
    assert_eq!((caller.state, caller.joined), (CallerState::Answered, agents(&["agent1"])));
    assert_eq!(harness.agent("agent1").await.in_call, Some(call(&customer)));
    assert_eq!(harness.kit.dialer.placed().len(), 1, "answering dials nobody");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_no_answer_reported_five_times_sets_the_agent_away_once_and_rings_the_next_once() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(4);
    harness.available("agent1").await;
    harness.available("agent2").await;
    customer_calls(&customer).send(&harness.app).await;
    customer_joins(&customer).send(&harness.app).await;

    let missed = call_report(&customer, "agent1", &placed_sid(0), "no-answer");
    all_equal(&at_once(&harness, &missed, 5).await, EMPTY_TWIML);
    all_equal(&in_a_row(&harness, &missed, 5).await, EMPTY_TWIML);
    assert_eq!(harness.placed_to(), ["client:agent1", "client:agent2"]);
    assert_eq!(harness.agent("agent1").await.availability, Availability::Away);
    let caller = harness.conference(&customer).await.unwrap();
    assert_eq!(caller.ringing, agents(&["agent2"]));
    assert_eq!(harness.kit.dialer.updated(), [], "the customer keeps waiting for agent2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conference_end_reported_five_times_cancels_each_ringing_call_once_and_frees_the_agents() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(5);
    harness.available("agent1").await;
    customer_calls(&customer).send(&harness.app).await;
    customer_joins(&customer).send(&harness.app).await;
    agent_answers(&customer, "agent1", &placed_sid(0)).send(&harness.app).await;
    // A colleague, as "Dial a colleague in" brings one: rung and not answered yet.
    harness.available("agent2").await;
    let cookie = harness.kit.session_cookie("agent1").await;
    let dial =
        shared::testkit::with_header(shared::testkit::json_post("/conference/agent1/call", ""), "cookie", &cookie);
    assert_eq!(shared::handlers::conference_call_agent::handle(&harness.app, dial).await.unwrap().status(), 201);

    let end = conference_report(&customer, "conference-end", None);
    all_equal(&at_once(&harness, &end, 5).await, EMPTY_TWIML);
    all_equal(&in_a_row(&harness, &end, 5).await, EMPTY_TWIML);
    let mut canceled = harness.kit.dialer.updated();
    canceled.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    assert_eq!(
        canceled,
        [(call(&placed_sid(1)), CallUpdate::Cancel)],
        "the colleague's ringing call is canceled once, by the one delivery that removed the record; \
         agent1's answered call ends with the conference"
    );
    assert_eq!(emulator.callers().await, Vec::<String>::new());
    nobody_is_left_busy(&harness, &["agent1", "agent2"], 0).await;
}

/// A tiny deterministic shuffle (xorshift), so a failing order can be replayed from its seed.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = items.to_vec();
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, usize::try_from(state % (i as u64 + 1)).unwrap());
    }
    out
}

/// What a customer's reports did, delivered in one order.
struct Outcome {
    placed: Vec<String>,
    /// How many calls had been placed when the first conference-end was answered.
    placed_before_end: usize,
    /// The agent calls still ringing when the first conference-end was delivered.
    ringing_at_end: Vec<String>,
    canceled: Vec<String>,
    agent_answers: Vec<String>,
}

/// Delivers every report (each twice, as Twilio may) one after another in the order `seed`
/// picks, for a customer who has just joined their conference with agent1 ringing (agent2
/// available too).
async fn deliver_shuffled(
    emulator: &Emulator,
    customer: &str,
    reports: &[Delivery],
    seed: u64,
) -> (Arc<Harness>, Outcome) {
    let harness = Harness::over(emulator);
    harness.available("agent1").await;
    harness.available("agent2").await;
    customer_calls(customer).send(&harness.app).await;
    customer_joins(customer).send(&harness.app).await;
    let twice: Vec<Delivery> = reports.iter().flat_map(|report| [report.clone(), report.clone()]).collect();
    let mut placed_before_end = None;
    let mut ringing_at_end = None;
    let mut agent_answers = Vec::new();
    for delivery in shuffled(&twice, seed) {
        if matches!(delivery, Delivery::End(_)) && ringing_at_end.is_none() {
            ringing_at_end = Some(harness.ringing_calls(customer).await);
        }
        let (status, body) = in_a_row(&harness, &delivery, 1).await.remove(0);
        assert_eq!(status, 200, "seed {seed}: {body}");
        match &delivery {
            Delivery::ConnectAgent(_) => agent_answers.push(body),
            Delivery::End(_) => {
                placed_before_end.get_or_insert(harness.kit.dialer.placed().len());
                assert_eq!(body, EMPTY_TWIML);
            }
            _ => assert_eq!(body, EMPTY_TWIML, "seed {seed}"),
        }
    }
    let mut canceled: Vec<String> = harness
        .kit
        .dialer
        .updated()
        .iter()
        .filter(|(_, update)| *update == CallUpdate::Cancel)
        .map(|(call, _)| call.to_string())
        .collect();
    canceled.sort();
    let outcome = Outcome {
        placed: harness.kit.dialer.placed().iter().map(rung_client).collect(),
        placed_before_end: placed_before_end.expect("the reports include the end"),
        ringing_at_end: ringing_at_end.expect("the reports include the end"),
        canceled,
        agent_answers,
    };
    (harness, outcome)
}

/// The order-independent promises: after the end nothing is dialed, exactly the agent calls
/// still ringing at the end were canceled, once each (nobody's browser rings into an ended
/// call; an answered or finished call gets no needless request), the caller's record is gone,
/// and no agent is left busy with them.
async fn assert_consistent(emulator: &Emulator, harness: &Harness, outcome: &Outcome, seed: u64) {
    assert_eq!(outcome.placed.len(), outcome.placed_before_end, "seed {seed}: dialed after the end");
    assert_eq!(outcome.canceled, outcome.ringing_at_end, "seed {seed}: the ringing calls canceled once each");
    assert_eq!(emulator.callers().await, Vec::<String>::new(), "seed {seed}: records left behind");
    nobody_is_left_busy(harness, &["agent1", "agent2"], seed).await;
}

const ORDERS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_leaving_while_agent1_rings_ends_the_same_way_in_any_order() {
    let emulator = Emulator::start().await;
    for seed in 0..ORDERS {
        let customer = sid(0x100 + u32::try_from(seed).unwrap());
        let reports = [
            conference_report(&customer, "participant-leave", Some(&customer)),
            conference_report(&customer, "conference-end", None),
            // Warmline canceled agent1's ringing call; its report may come first.
            call_report(&customer, "agent1", &placed_sid(0), "canceled"),
        ];
        let (harness, outcome) = deliver_shuffled(&emulator, &customer, &reports, seed).await;
        assert_consistent(&emulator, &harness, &outcome, seed).await;
        // A cancel reported before the end puts the caller back in line, and agent1, idle as
        // long as agent2 and first by name, is rung again; the end then cancels that too.
        assert!(outcome.placed.iter().all(|to| to == "client:agent1"), "seed {seed}: {:?}", outcome.placed);
        assert!(outcome.placed.len() <= 2, "seed {seed}: {:?}", outcome.placed);
        assert_eq!(harness.agent("agent1").await.missed_at, None, "seed {seed}: no missed call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_answer_around_the_end_rings_nobody_after_it_in_any_order() {
    let emulator = Emulator::start().await;
    let mut rang_agent2 = 0;
    for seed in 0..ORDERS {
        let customer = sid(0x200 + u32::try_from(seed).unwrap());
        let reports = [
            call_report(&customer, "agent1", &placed_sid(0), "no-answer"),
            conference_report(&customer, "participant-leave", Some(&customer)),
            conference_report(&customer, "conference-end", None),
        ];
        let (harness, outcome) = deliver_shuffled(&emulator, &customer, &reports, seed).await;
        assert_consistent(&emulator, &harness, &outcome, seed).await;
        if outcome.placed.len() == 2 {
            assert_eq!(outcome.placed, ["client:agent1", "client:agent2"], "seed {seed}");
            rang_agent2 += 1;
        }
    }
    // Both cases happened: the orders chosen put the no-answer before and after the end.
    assert!((1..ORDERS).contains(&rang_agent2), "agent2 rang in {rang_agent2} of {ORDERS} orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answering_around_the_end_is_never_left_in_a_call_in_any_order() {
    let emulator = Emulator::start().await;
    let mut told_it_ended = 0;
    for seed in 0..ORDERS {
        let customer = sid(0x300 + u32::try_from(seed).unwrap());
        // The customer hangs up as agent1 answers.
        let reports = [
            agent_answers(&customer, "agent1", &placed_sid(0)),
            conference_report(&customer, "participant-leave", Some(&customer)),
            conference_report(&customer, "conference-end", None),
            call_report(&customer, "agent1", &placed_sid(0), "completed"),
        ];
        let (harness, outcome) = deliver_shuffled(&emulator, &customer, &reports, seed).await;
        assert_consistent(&emulator, &harness, &outcome, seed).await;
        assert_eq!(outcome.placed, ["client:agent1"], "seed {seed}: an answered call rings nobody else");
        for answer in &outcome.agent_answers {
            assert!(*answer == agent_twiml(&customer) || *answer == call_ended_twiml(), "seed {seed}: {answer}");
        }
        told_it_ended += usize::from(outcome.agent_answers.iter().any(|answer| *answer == call_ended_twiml()));
    }
    assert!(told_it_ended > 0, "no order put the answer after the end");
}

/// All the reports of a customer who leaves while agent1's call fails, each five times, all
/// at once: the handlers race each other, and only the store's conditions keep them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_racing_each_other_leave_a_consistent_end() {
    let emulator = Emulator::start().await;
    for round in 0..4 {
        let customer = sid(0x400 + round);
        let reports = [
            call_report(&customer, "agent1", &placed_sid(0), "no-answer"),
            conference_report(&customer, "participant-leave", Some(&customer)),
            conference_report(&customer, "conference-end", None),
        ];
        let harness = Harness::over(&emulator);
        harness.available("agent1").await;
        harness.available("agent2").await;
        customer_calls(&customer).send(&harness.app).await;
        customer_joins(&customer).send(&harness.app).await;
        let deliveries: Vec<Delivery> =
            reports.iter().flat_map(|report| std::iter::repeat_n(report.clone(), 5)).collect();
        all_equal(&all_at_once(&harness, &deliveries).await, EMPTY_TWIML);

        let placed = harness.kit.dialer.placed().len();
        assert!(placed <= 2, "round {round}: {:?}", harness.placed_to());
        let mut canceled: Vec<String> =
            harness.kit.dialer.updated().into_iter().map(|(call, _)| call.to_string()).collect();
        canceled.sort();
        // agent1's call is canceled only when the end came before its no-answer; agent2's, rung
        // after that no-answer and before the end (nothing is dialed after it), always.
        let mut unique = canceled.clone();
        unique.dedup();
        assert_eq!(unique, canceled, "round {round}: a call canceled twice");
        let placed_sids: Vec<String> = (0..placed).map(|n| placed_sid(n as u32)).collect();
        assert!(canceled.iter().all(|call| placed_sids.contains(call)), "round {round}: {canceled:?}");
        if placed == 2 {
            assert!(canceled.contains(&placed_sid(1)), "round {round}: agent2 left ringing: {canceled:?}");
        }
        assert_eq!(emulator.callers().await, Vec::<String>::new(), "round {round}");
        nobody_is_left_busy(&harness, &["agent1", "agent2"], u64::from(round)).await;
    }
}

/// The client a call rang (`client:agent1`), without the ring's custom parameters.
fn rung_client(call: &shared::twilio::OutboundCall) -> String {
    call.to.split('?').next().unwrap_or_default().to_owned()
}
