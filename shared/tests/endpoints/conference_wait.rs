use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::prelude::*;
use shared::call_flow::NO_AGENT_AVAILABLE;
use shared::handlers::conference_wait::handle;
use shared::handlers::{conference_connect_agent, conference_connect_client};
use shared::store::CallStore;
use shared::twilio::{CallUpdate, Dialer, OutboundCall, TwilioError};

const MUSIC: &str = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3";

fn hold_twiml(message: bool) -> String {
    let say = if message { format!("<Say>{HOLD_MESSAGE}</Say>") } else { String::new() };
    format!(
        r#"{XML_HEAD}<Response>{say}<Play loop="1">{MUSIC}</Play><Redirect method="POST">{BASE}/conference/wait?held=1</Redirect></Response>"#
    )
}

fn apology() -> CallUpdate {
    CallUpdate::Twiml(format!("{XML_HEAD}<Response><Say>{NO_AGENT_AVAILABLE}</Say><Hangup/></Response>"))
}

fn call(n: &str) -> CallSid {
    CallSid::parse(n).unwrap()
}

/// A customer calls and is put in their conference; agent1 rings.
async fn customer_waits(app: &App, customer: &str) {
    let params = inbound_call_params(customer);
    let request = signed_webhook("/conference/connect/client", &borrowed(&params));
    let answer = body_text(&conference_connect_client::handle(app, request).await.unwrap());
    assert!(answer.contains("<Conference"), "{answer}");
}

/// Twilio fetches the waitUrl for the customer: on arrival, or at a return.
async fn music_turn(app: &App, customer: &str, returning: bool) -> Response<Body> {
    let path = if returning { "/conference/wait?held=1" } else { "/conference/wait" };
    let params = inbound_call_params(customer);
    handle(app, signed_webhook(path, &borrowed(&params))).await.unwrap()
}

fn status_report(customer: &str, agent: &str, agent_call: &str) -> Request {
    let path = format!("/conference/{customer}/agents/{agent}/status");
    signed_webhook(&path, &[("CallSid", agent_call), ("CallStatus", "no-answer")])
}

#[tokio::test]
async fn plays_the_hold_message_then_the_music_then_comes_back() {
    let t = TestApp::new();
    customer_waits(&t.app, &sid(1)).await;
    let response = music_turn(&t.app, &sid(1), false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    assert_eq!(body_text(&response), hold_twiml(true));
    // At every return, the music again, without the message.
    t.clock.advance(STALLED_CHAIN_SECONDS - 1);
    assert_eq!(body_text(&music_turn(&t.app, &sid(1), true).await), hold_twiml(false));
    // agent1 still rings (or the chain just moved): nothing to do.
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (1, 0));
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
    assert_eq!(t.dialer.updated(), []);
}

#[tokio::test]
async fn a_customer_waiting_in_a_conference_given_up_on_hears_the_apology() {
    let t = TestApp::new();
    let response = music_turn(&t.app, &sid(1), true).await;
    assert_eq!(t.dialer.updated(), [(call(&sid(1)), apology())]);
    // Twilio takes the call out of the conference; the music stays until it does.
    assert_eq!(body_text(&response), hold_twiml(false));
}

#[tokio::test]
async fn an_agent_who_answered_stops_the_checks_acting() {
    let t = TestApp::new();
    customer_waits(&t.app, &sid(1)).await;
    let path = format!("/conference/{}/connect/agent1", sid(1));
    let params = [("CallSid", placed_sid(0)), ("To", "client:agent1".to_owned())];
    conference_connect_agent::handle(&t.app, signed_webhook(&path, &borrowed(&params))).await.unwrap();
    t.clock.advance(10 * STALLED_CHAIN_SECONDS);
    music_turn(&t.app, &sid(1), true).await;
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (1, 0));
}

#[tokio::test]
async fn a_stalled_chain_moves_on_once() {
    // agent1's no-answer report never comes.
    let t = TestApp::new();
    customer_waits(&t.app, &sid(1)).await;
    t.clock.advance(STALLED_CHAIN_SECONDS);
    music_turn(&t.app, &sid(1), true).await;
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1"), agent_call(&sid(1), "agent2")]);
    // agent2 rings now; the next turn soon after does nothing, nor does the late report.
    t.clock.advance(5);
    music_turn(&t.app, &sid(1), true).await;
    shared::handlers::conference_events::handle(&t.app, status_report(&sid(1), "agent1", &placed_sid(0)))
        .await
        .unwrap();
    assert_eq!(t.dialer.placed().len(), 2);
    assert_eq!(t.dialer.updated(), []);
    // agent2's report is lost too: with nobody left, the customer is told.
    t.clock.advance(STALLED_CHAIN_SECONDS);
    music_turn(&t.app, &sid(1), true).await;
    assert_eq!(t.dialer.updated(), [(call(&sid(1)), apology())]);
    assert_eq!(t.dialer.placed().len(), 2);
}

#[tokio::test]
async fn a_failing_store_keeps_the_music_and_does_nothing() {
    let t = TestApp::with_store(shared::store::memory::MemoryCallStore::failing());
    let response = music_turn(&t.app, &sid(1), true).await;
    assert_eq!(body_text(&response), hold_twiml(false));
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (0, 0));
}

/// Places calls; refuses every update while `down` is set, as Twilio does during an outage.
#[derive(Default)]
struct FlakyTwilio {
    inner: RecordingDialer,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl Dialer for FlakyTwilio {
    async fn place_call(&self, call: &OutboundCall) -> Result<CallSid, TwilioError> {
        self.inner.place_call(call).await
    }

    async fn update_call(&self, call: &CallSid, update: &CallUpdate) -> Result<(), TwilioError> {
        let result = self.inner.update_call(call, update).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(TwilioError::Api { status: 503, code: None, message: "injected".into() });
        }
        result
    }
}

#[tokio::test]
async fn an_apology_twilio_did_not_take_is_said_at_the_next_turn() {
    let t = TestApp::new();
    let twilio = Arc::new(FlakyTwilio::default());
    let app = App::new(config_with(&[]), shared::app::Ports { dialer: twilio.clone(), ..t.ports() });
    customer_waits(&app, &sid(1)).await;
    shared::handlers::conference_events::handle(&app, status_report(&sid(1), "agent1", &placed_sid(0))).await.unwrap();
    twilio.down.store(true, Ordering::SeqCst);
    shared::handlers::conference_events::handle(&app, status_report(&sid(1), "agent2", &placed_sid(1))).await.unwrap();
    // The apology failed, and the conference is given up on: no report will come again.
    assert_eq!(twilio.inner.updated(), [(call(&sid(1)), apology())]);
    assert_eq!(t.store.conference(&call(&sid(1)), NOW).await.unwrap(), None);

    // While Twilio is down, every turn tries again, and the customer keeps the music.
    let response = music_turn(&app, &sid(1), true).await;
    assert_eq!(body_text(&response), hold_twiml(false));
    twilio.down.store(false, Ordering::SeqCst);
    music_turn(&app, &sid(1), true).await;
    assert_eq!(twilio.inner.updated(), vec![(call(&sid(1)), apology()); 3]);
    assert_eq!(twilio.inner.placed().len(), 2, "nobody is rung again");
}
