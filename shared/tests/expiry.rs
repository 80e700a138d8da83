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
use shared::domain::DAY_COUNTS_TTL_SECONDS;
use shared::domain::{
    AgentId, AgentState, Availability, CALL_RECORD_TTL_SECONDS, CallSid, Caller, CallerState, PRESENCE_LEASE_SECONDS,
};
use shared::handlers::{conference_call_agent, conference_connect_agent, conference_connect_client, conference_events};
use shared::store::dynamo::DynamoCallStore;
use shared::store::{CallStore, Write};
use shared::testkit::{
    EMPTY_TWIML, NOW, TestApp, XML_HEAD, body_text, borrowed, inbound_call_params, json_post, placed_sid, sid,
    signed_webhook, with_header,
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

    async fn items(&self) -> Vec<Item> {
        let scan = self.client.scan().table_name(&self.calls_table).consistent_read(true).send().await.unwrap();
        scan.items().to_vec()
    }
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

    /// `agent` says they are available, through the call flow over this harness's store.
    async fn available(&self, agent: &str) {
        self.kit.enroll(agent).await;
        let links = shared::testkit::links();
        shared::call_flow::agent_says(&self.app, &links, &AgentId::parse(agent).unwrap(), Availability::Available)
            .await
            .unwrap();
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
/// lost): the caller's and the agent's records are past their expiry, and still in the table.
#[tokio::test]
async fn every_path_ignores_an_expired_call_still_in_the_table() {
    let emulator = Emulator::start().await;
    let harness = Harness::over(&emulator);
    let customer = sid(1);
    let then = NOW - CALL_RECORD_TTL_SECONDS;
    // The boundary: a record expiring now is expired (`expires_at > now` means live).
    let mut caller = shared::domain::Conference::arriving(call(&customer), Caller::Unknown, then * 1000);
    assert!(harness.store.enqueue(&caller).await.unwrap());
    caller.version = 1;
    caller.offer_to(&agent("agent1"), then);
    caller.placed(&call(&placed_sid(9)), &agent("agent1"));
    caller.answered(&agent("agent1"), then);
    let mut agent1 = AgentState::new(agent("agent1"));
    agent1.say(Availability::Available, (then - PRESENCE_LEASE_SECONDS) * 1000);
    agent1.answered(&call(&customer), then);
    assert!(harness.store.commit(&[Write::Caller(caller), Write::Agent(agent1)], then).await.unwrap());
    let before = emulator.items().await;

    assert_eq!(harness.store.conference(&call(&customer), NOW).await.unwrap(), None);
    assert_eq!(harness.store.agent_state(&agent("agent1"), NOW).await.unwrap(), None);
    assert_eq!(harness.store.waiting(10, NOW).await.unwrap(), []);
    // agent1 is in no call: "Dial a colleague in" refuses and rings nobody.
    let response = harness.dial_colleague("agent1").await;
    assert_eq!(response.status(), 409, "{}", body_text(&response));
    // An agent answering into it hears that it ended, and is not recorded as in it.
    assert_eq!(harness.agent_answers(&customer, "agent2", &placed_sid(7)).await, call_ended_twiml());
    // A late no-answer rings nobody; a late end cancels nothing.
    let status = format!("/conference/{customer}/agents/agent1/status");
    harness.report(&status, &[("CallSid", &placed_sid(9)), ("CallStatus", "no-answer")]).await;
    harness.report(&format!("/conference/{customer}/events"), &[("StatusCallbackEvent", "conference-end")]).await;
    assert_eq!(harness.kit.dialer.placed(), []);
    assert_eq!(harness.kit.dialer.updated(), [], "a call over for 12 hours is not canceled");
    assert_eq!(emulator.items().await, before, "nothing was written for an expired call");

    // The same CallSid again (Twilio never reuses one; the record is what matters): the expired
    // record does not pass for a retried webhook, so the customer is put in line.
    assert!(harness.customer_calls(&customer).await.contains("<Conference"));
    let fresh = harness.store.conference(&call(&customer), NOW).await.unwrap().unwrap();
    assert_eq!((fresh.created_at, fresh.state, fresh.agent_calls), (NOW, CallerState::Waiting, vec![]));
}

/// Every item a whole call writes (the caller, the agents' states through an offer, a missed
/// ring, an answer, a warm transfer and a leave) carries `expires_at`, the table's TTL
/// attribute, within a day of the write.
#[tokio::test]
async fn every_item_written_expires_within_a_day() {
    let emulator = Emulator::start().await;
    let ttl = emulator.client.describe_time_to_live().table_name(&emulator.calls_table).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"), "the TTL attribute the code writes");

    let harness = Harness::over(&emulator);
    let customer = sid(3);
    harness.available("agent1").await;
    harness.available("agent2").await;
    harness.customer_calls(&customer).await;
    harness
        .report(
            &format!("/conference/{customer}/events"),
            &[
                ("StatusCallbackEvent", "participant-join"),
                ("CallSid", &customer),
                ("ConferenceSid", "CF00000000000000000000000000000003"),
            ],
        )
        .await;
    let status = format!("/conference/{customer}/agents/agent1/status");
    harness.report(&status, &[("CallSid", &placed_sid(0)), ("CallStatus", "no-answer")]).await;
    harness.kit.clock.advance(30);
    harness.agent_answers(&customer, "agent2", &placed_sid(1)).await;
    harness.available("agent1").await;
    assert_eq!(harness.dial_colleague("agent2").await.status(), 201);
    harness.kit.clock.advance(30);
    harness.agent_answers(&customer, "agent1", &placed_sid(2)).await;
    let events = format!("/conference/{customer}/events");
    harness.report(&events, &[("StatusCallbackEvent", "participant-leave"), ("CallSid", &placed_sid(1))]).await;

    let items = emulator.items().await;
    let keys: Vec<String> = items.iter().map(|item| format!("{:?} {:?}", item.get("pk"), item.get("sk"))).collect();
    // The caller, the two agents' states, and the wallboard's day counters with the mark that
    // counted the answer: those last a few days (a day's figures outlive its calls), no longer.
    assert_eq!(items.len(), 5, "{keys:?}");
    let written_by = NOW + 60;
    for item in &items {
        let expires_at: i64 = item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap();
        let pk = item.get("pk").and_then(|v| v.as_s().ok()).unwrap();
        let lifetime =
            if pk.starts_with("STATS#") || pk.starts_with("COUNTED#") { DAY_COUNTS_TTL_SECONDS } else { DAY };
        assert!((NOW..=written_by + lifetime).contains(&expires_at), "{item:?}");
        assert!(expires_at > written_by, "expired already: {item:?}");
    }
}
