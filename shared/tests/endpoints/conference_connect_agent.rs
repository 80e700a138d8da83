use crate::prelude::*;
use shared::domain::AgentId;
use shared::handlers::conference_connect_agent::handle;
use shared::handlers::conference_connect_client;
use shared::store::CallStore;
use shared::store::memory::MemoryCallStore;

fn agent_twiml(conference: &str, end_on_exit: bool) -> String {
    format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="{end_on_exit}">{conference}</Conference></Dial></Response>"#
    )
}

async fn customer_calls(t: &TestApp, call_sid: &str) {
    let params = inbound_call_params(call_sid);
    let response =
        conference_connect_client::handle(&t.app, signed_webhook("/conference/connect/client", &borrowed(&params)))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
}

async fn agent_answers(t: &TestApp, conference: &str, agent: &str) -> Response<Body> {
    let path = format!("/conference/{conference}/connect/{agent}");
    let params = [
        ("CallSid", sid(0xa9e47)),
        ("From", NUMBER.into()),
        ("To", format!("client:{agent}")),
        ("Direction", "outbound-api".into()),
    ];
    handle(&t.app, signed_webhook(&path, &borrowed(&params))).await.unwrap()
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

fn call_sid(n: u32) -> CallSid {
    CallSid::parse(&sid(n)).unwrap()
}

#[tokio::test]
async fn the_first_agent_starts_the_conference_and_may_leave_it() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    let response = agent_answers(&t, &sid(1), "agent1").await;
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    assert_eq!(body_text(&response), agent_twiml(&sid(1), false));
    assert_eq!(t.store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), Some(call_sid(1)));
    assert_eq!(t.store.participants(&call_sid(1)), [agent("agent1")]);
}

#[tokio::test]
async fn a_colleague_brought_in_ends_the_conference_on_leaving() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1").await;
    let response = agent_answers(&t, &sid(1), "agent2").await;
    assert_eq!(body_text(&response), agent_twiml(&sid(1), true));
    assert_eq!(t.store.participants(&call_sid(1)), [agent("agent1"), agent("agent2")]);
    assert_eq!(t.store.conference_of_agent(&agent("agent2"), NOW).await.unwrap(), Some(call_sid(1)));
}

#[tokio::test]
async fn each_agent_is_recorded_in_the_conference_they_answered() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    customer_calls(&t, &sid(2)).await;
    agent_answers(&t, &sid(2), "agent1").await;
    assert_eq!(t.store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), Some(call_sid(2)));
    assert_eq!(t.store.participants(&call_sid(1)), []);
}

#[tokio::test]
async fn an_agent_answering_after_the_customer_left_is_told_so() {
    let t = TestApp::new();
    let response = agent_answers(&t, &sid(1), "agent1").await;
    assert_eq!(body_text(&response), format!("{XML_HEAD}<Response><Say>{CALL_ENDED}</Say><Hangup/></Response>"));
    assert_eq!(t.store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), None);

    customer_calls(&t, &sid(2)).await;
    t.clock.advance(shared::domain::CALL_RECORD_TTL_SECONDS);
    let response = agent_answers(&t, &sid(2), "agent1").await;
    assert!(body_text(&response).contains(CALL_ENDED));
}

#[tokio::test]
async fn refuses_agents_off_the_roster_and_malformed_paths() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    for (conference, agent_id) in [(sid(1), "mallory"), ("CA123".to_owned(), "agent1")] {
        let response = agent_answers(&t, &conference, agent_id).await;
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, APOLOGY_TWIML.to_owned()));
    }
    assert_eq!(t.store.participants(&call_sid(1)), []);
}

#[tokio::test]
async fn a_forged_request_records_nothing() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    let path = format!("/conference/{}/connect/agent1", sid(1));
    let response =
        handle(&t.app, webhook_with_signature(&path, &[("CallSid", &sid(5))], Some("Zm9yZ2Vk"))).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(t.store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), None);
}

#[tokio::test]
async fn apologises_when_the_store_fails() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = agent_answers(&t, &sid(1), "agent1").await;
    assert_eq!((response.status().as_u16(), body_text(&response)), (200, APOLOGY_TWIML.to_owned()));
}
