use crate::prelude::*;
use shared::domain::{CallerState, Presence};
use shared::handlers::conference_connect_agent::handle;
use shared::store::memory::MemoryCallStore;

fn agent_twiml(conference: &str) -> String {
    format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">{conference}</Conference></Dial></Response>"#
    )
}

fn call_ended() -> String {
    format!("{XML_HEAD}<Response><Say>{CALL_ENDED}</Say><Hangup/></Response>")
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

#[tokio::test]
async fn the_agent_offered_the_call_joins_it_and_is_busy() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let response = handle(&t.app, agent_join(&sid(1), "agent1", &placed_sid(0))).await.unwrap();
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    // Their leaving never ends the customer's call: a customer left alone goes back into line.
    assert_eq!(body_text(&response), agent_twiml(&sid(1)));
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!(
        (caller.state, caller.joined.clone(), caller.ringing.clone()),
        (CallerState::Answered, vec![agent("agent1")], vec![])
    );
    let state = t.agent_state("agent1").await.unwrap();
    assert_eq!((state.in_call.clone(), state.ringing_for.clone()), (CallSid::parse(&sid(1)), None));
    assert_eq!(state.presence(NOW).0, Presence::Busy);
}

#[tokio::test]
async fn a_retried_join_answers_the_same_and_changes_nothing() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let first = t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    let stored = (t.caller(&sid(1)).await, t.agent_state("agent1").await);
    let retry = t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(first, retry);
    assert_eq!((t.caller(&sid(1)).await, t.agent_state("agent1").await), stored);
}

#[tokio::test]
async fn an_agent_answering_after_the_customer_left_is_told_so() {
    let t = TestApp::new();
    t.available("agent1").await;
    assert_eq!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await, call_ended());
    assert_eq!(t.caller(&sid(1)).await, None);

    t.customer_arrives(&sid(2)).await;
    t.clock.advance(shared::domain::CALL_RECORD_TTL_SECONDS);
    assert_eq!(t.agent_answers(&sid(2), "agent1", &placed_sid(0)).await, call_ended(), "the record expired");
}

#[tokio::test]
async fn an_agent_answering_a_ring_that_had_ended_is_told_so() {
    // agent1 let it ring out; Twilio still connects an answer that crossed the report.
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let report = agent_call_report(&sid(1), "agent1", &placed_sid(0), "no-answer");
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
    assert_eq!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await, call_ended());
    assert_eq!(t.caller(&sid(1)).await.unwrap().state, CallerState::Waiting);
}

#[tokio::test]
async fn refuses_malformed_paths() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    for (conference, agent_id) in [(sid(1), "not%20an%20id"), ("CA123".to_owned(), "agent1")] {
        let response = handle(&t.app, agent_join(&conference, agent_id, &placed_sid(0))).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, APOLOGY_TWIML.to_owned()));
    }
    assert_eq!(t.caller(&sid(1)).await.unwrap().joined, []);
}

#[tokio::test]
async fn a_forged_request_records_nothing() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let path = format!("/conference/{}/connect/agent1", sid(1));
    let response =
        handle(&t.app, webhook_with_signature(&path, &[("CallSid", &sid(5))], Some("Zm9yZ2Vk"))).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(t.caller(&sid(1)).await.unwrap().joined, []);
}

#[tokio::test]
async fn apologises_when_the_store_fails() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = handle(&t.app, agent_join(&sid(1), "agent1", &placed_sid(0))).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (200, APOLOGY_TWIML.to_owned()));
}

#[tokio::test]
async fn an_agent_disabled_while_their_browser_rang_does_not_join() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")]);
    t.agents.set_disabled(&agent("agent1"), Some(NOW)).await.unwrap();

    let response = handle(&t.app, agent_join(&sid(1), "agent1", &placed_sid(0))).await.unwrap();
    assert_eq!(
        body_text(&response),
        format!("{XML_HEAD}<Response><Say>{}</Say><Hangup/></Response>", shared::call_flow::ACCOUNT_DISABLED)
    );
    // Not in the call: the customer is back in their place in line, the agent rings no more.
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!((caller.state, caller.joined.clone(), caller.ringing.clone()), (CallerState::Waiting, vec![], vec![]));
    let state = t.agent_state("agent1").await.unwrap();
    assert_eq!((state.in_call.clone(), state.ringing_for.clone(), state.missed_at), (None, None, None));
}
