//! Call records expire: DynamoDB's TTL deletes them, but late (up to days), and the emulator
//! never does. So every read path must treat a record past its `expires_at` as gone, and every
//! item Warmline writes must carry an `expires_at` within a day. The storage contract checks
//! the store's methods with a moving clock; here expired items are written straight into the
//! emulator, as DynamoDB would still hold them, and the handlers run over the real store.
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
use shared::domain::{AgentId, CALL_RECORD_TTL_SECONDS, CallSid};
use shared::handlers::{conference_call_agent, conference_connect_agent, conference_connect_client, conference_events};
use shared::store::CallStore;
use shared::store::dynamo::DynamoCallStore;
use shared::testkit::{
    EMPTY_TWIML, NOW, TestApp, XML_HEAD, agent_call, body_text, borrowed, inbound_call_params, json_post, placed_sid,
    sid, signed_webhook, with_header,
};

type Item = HashMap<String, AttributeValue>;

const DAY: i64 = 24 * 3600;
// Issue 7: call records expire within a day. Checked when this file compiles.
const _: () = assert!(CALL_RECORD_TTL_SECONDS > 0 && CALL_RECORD_TTL_SECONDS <= DAY);

struct Emulator {
    client: aws_sdk_dynamodb::Client,
    calls_table: String,
}

impl Emulator {
    /// Fresh tables from template.yaml, made by the script `make dev` uses.
    async fn start() -> Self {
        let tables = shared::test_support::emulator_tables().await;
        Self { client: tables.client.clone(), calls_table: tables.name("CallsTable") }
    }

    async fn put(&self, attributes: &[(&str, AttributeValue)]) {
        let item: Item = attributes.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect();
        self.client.put_item().table_name(&self.calls_table).set_item(Some(item)).send().await.unwrap();
    }

    async fn items(&self) -> Vec<Item> {
        let scan = self.client.scan().table_name(&self.calls_table).consistent_read(true).send().await.unwrap();
        scan.items().to_vec()
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A conference record as the store writes it, with the given expiry.
fn conference_item(customer: &str, agent_calls: &[String], expires_at: i64) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("pk", s(&format!("CONF#{customer}"))),
        ("sk", s("CONF")),
        ("first_agent", s("agent1")),
        ("tried", AttributeValue::L(vec![s("agent1")])),
        ("agent_calls", AttributeValue::Ss(agent_calls.to_vec())),
        ("created_at", n(expires_at - CALL_RECORD_TTL_SECONDS)),
        ("expires_at", n(expires_at)),
    ]
}

/// agent1's "the conference I am in now" record.
fn agent_item(agent: &str, customer: &str, expires_at: i64) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("pk", s(&format!("AGENT#{agent}"))),
        ("sk", s("CONF")),
        ("conference_id", s(customer)),
        ("joined_at", n(expires_at - CALL_RECORD_TTL_SECONDS)),
        ("expires_at", n(expires_at)),
    ]
}

fn participant_item(agent: &str, customer: &str, call: &str, expires_at: i64) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("pk", s(&format!("CONF#{customer}"))),
        ("sk", s(&format!("AGENT#{agent}"))),
        ("call_sid", s(call)),
        ("joined_at", n(expires_at - CALL_RECORD_TTL_SECONDS)),
        ("expires_at", n(expires_at)),
    ]
}

struct Harness {
    kit: TestApp,
    app: App,
    store: Arc<DynamoCallStore>,
}

impl Harness {
    /// The handler test kit's app (recording dialer, clock at `NOW`) over the DynamoDB store.
    fn over(emulator: &Emulator) -> Self {
        let kit = TestApp::new();
        let store = Arc::new(DynamoCallStore::new(emulator.client.clone(), emulator.calls_table.clone()));
        let app = App::new(kit.app.config.clone(), Ports { calls: store.clone(), ..kit.ports() });
        Self { kit, app, store }
    }

    async fn customer_calls(&self, customer: &str) -> String {
        let params = inbound_call_params(customer);
        let request = signed_webhook("/conference/connect/client", &borrowed(&params));
        body_text(&conference_connect_client::handle(&self.app, request).await.unwrap())
    }

    async fn agent_answers(&self, customer: &str, agent: &str, call: &str) -> String {
        let request = signed_webhook(&format!("/conference/{customer}/connect/{agent}"), &[("CallSid", call)]);
        body_text(&conference_connect_agent::handle(&self.app, request).await.unwrap())
    }

    async fn report(&self, path: &str, params: &[(&str, &str)]) {
        let response = conference_events::handle(&self.app, signed_webhook(path, params)).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    }

    /// The dashboard's "Dial agent 2 in", from `agent`'s signed-in browser.
    async fn dial_colleague(&self, agent: &str) -> Response<Body> {
        let cookie = self.kit.session_cookie(agent).await;
        let request = with_header(json_post(&format!("/conference/{agent}/call"), ""), "cookie", &cookie);
        conference_call_agent::handle(&self.app, request).await.unwrap()
    }
}

fn call(id: &str) -> CallSid {
    CallSid::parse(id).unwrap()
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

fn call_ended_twiml() -> String {
    format!("{XML_HEAD}<Response><Say>{CALL_ENDED}</Say><Hangup/></Response>")
}

/// A call that ended more than 12 hours ago, whose clean-up never ran (its conference-end was
/// lost): every record is past its expiry, and still in the table.
#[tokio::test]
async fn every_path_ignores_an_expired_call_still_in_the_table() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(1);
    let old_call = sid(0xa9e1);
    // The boundary: a record expiring now is expired (`expires_at > now` means live).
    emulator.put(&conference_item(&customer, std::slice::from_ref(&old_call), NOW)).await;
    emulator.put(&agent_item("agent1", &customer, NOW)).await;
    emulator.put(&participant_item("agent1", &customer, &old_call, NOW)).await;
    let before = emulator.items().await;

    assert_eq!(harness.store.conference(&call(&customer), NOW).await.unwrap(), None);
    assert_eq!(harness.store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), None);

    // agent1 is in no call: "Dial agent 2 in" refuses and rings nobody.
    let response = harness.dial_colleague("agent1").await;
    assert_eq!(response.status(), 409, "{}", body_text(&response));
    // An agent answering into it hears that it ended, and is not recorded as in it.
    assert_eq!(harness.agent_answers(&customer, "agent2", &placed_sid(7)).await, call_ended_twiml());
    assert_eq!(harness.store.conference_of_agent(&agent("agent2"), NOW).await.unwrap(), None);
    // A late no-answer rings nobody; a late end cancels nothing.
    let status = format!("/conference/{customer}/agents/agent1/status");
    harness.report(&status, &[("CallSid", &old_call), ("CallStatus", "no-answer")]).await;
    assert_eq!(harness.kit.dialer.placed(), []);
    assert_eq!(emulator.items().await, before, "nothing was written for an expired call");
    harness.report(&format!("/conference/{customer}/events"), &[("StatusCallbackEvent", "conference-end")]).await;
    assert_eq!(harness.kit.dialer.updated(), [], "a call over for 12 hours is not canceled");

    // The same CallSid again (Twilio never reuses one; the record is what matters): the expired
    // record does not pass for a retried webhook, so the customer gets a conference and a ring.
    emulator.put(&conference_item(&customer, &[old_call], NOW)).await;
    assert!(harness.customer_calls(&customer).await.contains("<Conference"));
    assert_eq!(harness.kit.dialer.placed(), [agent_call(&customer, "agent1")]);
    let fresh = harness.store.conference(&call(&customer), NOW).await.unwrap().unwrap();
    assert_eq!((fresh.created_at, fresh.agent_calls), (NOW, vec![call(&placed_sid(0))]));
}

/// The conference is live but the agent's pointer to it has expired (it was written 12 hours
/// before, and the call is long): the pointer counts for nothing.
#[tokio::test]
async fn an_expired_agent_record_does_not_put_the_agent_in_a_live_call() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(2);
    emulator.put(&conference_item(&customer, &[placed_sid(9)], NOW + 3600)).await;
    emulator.put(&agent_item("agent1", &customer, NOW - 1)).await;

    assert_eq!(harness.store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), None);
    assert_eq!(harness.dial_colleague("agent1").await.status(), 409);
    assert_eq!(harness.kit.dialer.placed(), []);
    // Answering again writes a fresh pointer, and then the colleague can be dialed in.
    assert!(harness.agent_answers(&customer, "agent1", &placed_sid(9)).await.contains("<Conference"));
    assert_eq!(harness.store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), Some(call(&customer)));
    assert_eq!(harness.dial_colleague("agent1").await.status(), 201);
}

/// Every item a whole call writes (conference, chain, agent calls, joins, a warm transfer, a
/// leave) carries `expires_at`, the table's TTL attribute, within a day of the write.
#[tokio::test]
async fn every_item_written_expires_within_a_day() {
    let emulator = Emulator::start().await;
    let ttl = emulator.client.describe_time_to_live().table_name(&emulator.calls_table).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"), "the TTL attribute the code writes");

    let harness = Harness::over(&emulator);
    let customer = sid(3);
    harness.customer_calls(&customer).await;
    let status = format!("/conference/{customer}/agents/agent1/status");
    harness.report(&status, &[("CallSid", &placed_sid(0)), ("CallStatus", "no-answer")]).await;
    harness.kit.clock.advance(30);
    harness.agent_answers(&customer, "agent2", &placed_sid(1)).await;
    assert_eq!(harness.dial_colleague("agent2").await.status(), 201);
    harness.kit.clock.advance(30);
    harness.agent_answers(&customer, "agent1", &placed_sid(2)).await;
    let events = format!("/conference/{customer}/events");
    harness.report(&events, &[("StatusCallbackEvent", "participant-leave"), ("CallSid", &placed_sid(1))]).await;

    let items = emulator.items().await;
    let keys: Vec<String> = items.iter().map(|item| format!("{:?} {:?}", item.get("pk"), item.get("sk"))).collect();
    // The record, two participants, agent1's pointer (agent2 left).
    assert_eq!(items.len(), 4, "{keys:?}");
    let written_by = NOW + 60;
    for item in &items {
        let expires_at: i64 = item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap();
        assert!((NOW..=written_by + DAY).contains(&expires_at), "{item:?}");
        assert!(expires_at > written_by, "expired already: {item:?}");
    }
}
