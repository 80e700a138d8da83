use crate::prelude::*;
use shared::call_flow::{ANNOUNCE_EVERY_SECONDS, STALLED_RING_SECONDS};
use shared::domain::{Availability, CallerState};
use shared::handlers::conference_wait::handle;
use shared::store::memory::MemoryCallStore;

const MUSIC: &str = shared::config::DEFAULT_HOLD_MUSIC_URL;

fn hold_twiml(say: &str) -> String {
    let say = if say.is_empty() { String::new() } else { format!("<Say>{say}</Say>") };
    format!(
        r#"{XML_HEAD}<Response>{say}<Play loop="1">{MUSIC}</Play><Redirect method="POST">{BASE}/conference/wait?held=1</Redirect></Response>"#
    )
}

/// Twilio fetches the waitUrl for the customer: on arrival, or at a return.
async fn music_turn(t: &TestApp, customer: &str, returning: bool) -> Response<Body> {
    let path = if returning { "/conference/wait?held=1" } else { "/conference/wait" };
    let params = inbound_call_params(customer);
    handle(&t.app, signed_webhook(path, &borrowed(&params))).await.unwrap()
}

#[tokio::test]
async fn plays_the_hold_message_then_the_music_then_comes_back() {
    let t = TestApp::new();
    t.customer_arrives(&sid(1)).await;
    let response = music_turn(&t, &sid(1), false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    assert_eq!(body_text(&response), hold_twiml(HOLD_MESSAGE));
}

#[tokio::test]
async fn tells_the_caller_their_place_in_line_at_most_once_a_minute() {
    let t = TestApp::new();
    t.occupied("agent0").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(1);
    t.customer_arrives(&sid(2)).await;
    assert_eq!(body_text(&music_turn(&t, &sid(2), true).await), hold_twiml("You are number 2 in line."));
    t.clock.advance(ANNOUNCE_EVERY_SECONDS - 1);
    assert_eq!(body_text(&music_turn(&t, &sid(2), true).await), hold_twiml(""));
    t.clock.advance(1);
    // Caller 1 was answered meanwhile: caller 2 moved up.
    t.available("agent1").await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(1)).await;
    assert_eq!(body_text(&music_turn(&t, &sid(2), true).await), hold_twiml("You are number 1 in line."));
}

#[tokio::test]
async fn each_turn_routes_so_a_lost_trigger_costs_one_turn_at_most() {
    let t = TestApp::new();
    t.occupied("agent0").await;
    t.customer_arrives(&sid(1)).await;
    // agent1 becomes available, but that request's router never ran (cut short, say).
    let mut state = shared::domain::AgentState::new(AgentId::parse("agent1").unwrap());
    state.say(Availability::Available, NOW * 1000);
    t.enroll("agent1").await;
    assert!(
        shared::store::CallStore::commit(t.store.as_ref(), &[shared::store::Write::Agent(state)], NOW).await.unwrap()
    );
    assert_eq!(t.dialer.placed().len(), 1, "agent0's call only");
    music_turn(&t, &sid(1), true).await;
    assert_eq!(t.dialer.placed().last().unwrap(), &agent_call(&sid(1), "agent1"));
}

#[tokio::test]
async fn a_ring_whose_report_was_lost_is_ended_and_the_next_agent_rings() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.clock.advance(1);
    t.available("agent2").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(STALLED_RING_SECONDS - 1);
    music_turn(&t, &sid(1), true).await;
    assert_eq!(t.dialer.placed().len(), 1, "agent1 may still be ringing");
    t.clock.advance(1);
    music_turn(&t, &sid(1), true).await;
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1"), agent_call(&sid(1), "agent2")]);
    assert_eq!(t.agent_state("agent1").await.unwrap().availability, Availability::Away);
}

#[tokio::test]
async fn a_caller_the_store_lost_is_put_back_in_line() {
    let t = TestApp::new();
    // Their arrival could not be recorded (conference_connect_client's tests).
    music_turn(&t, &sid(1), true).await;
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!(caller.state, CallerState::Waiting);
    assert_eq!(caller.caller.stored(), "+15557654321");
}

#[tokio::test]
async fn plays_the_configured_music() {
    let config = config_with(&[("HOLD_MUSIC_URL", "https://cdn.example.com/hold.mp3?a=1&b=2")]);
    let t = TestApp::build(config, Default::default(), Default::default());
    let response = handle(&t.app, signed_webhook("/conference/wait", &[("CallSid", &sid(1))])).await.unwrap();
    assert!(body_text(&response).contains(r#"<Play loop="1">https://cdn.example.com/hold.mp3?a=1&amp;b=2</Play>"#));
}

#[tokio::test]
async fn refuses_an_unsigned_request() {
    let t = TestApp::new();
    let response =
        handle(&t.app, webhook_with_signature("/conference/wait", &[("CallSid", &sid(1))], None)).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(body_text(&response), "forbidden");
    assert_eq!(t.store.conference_ids(), []);
}

#[tokio::test]
async fn a_failing_store_keeps_the_music_and_does_nothing() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = music_turn(&t, &sid(1), true).await;
    assert_eq!(body_text(&response), hold_twiml(""));
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (0, 0));
}

#[tokio::test]
async fn a_failing_twilio_keeps_the_music() {
    let t = TestApp::with_dialer(RecordingDialer::failing());
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let response = music_turn(&t, &sid(1), true).await;
    assert!(body_text(&response).contains(&format!("<Play loop=\"1\">{MUSIC}</Play>")));
    assert_eq!(t.caller(&sid(1)).await.unwrap().state, CallerState::Waiting, "tried again at every turn");
}
