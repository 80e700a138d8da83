//! `POST /conference/wait`: what a customer hears until an agent joins (the conference waitUrl),
//! and the watch kept over them meanwhile.
//!
//! The music plays a bounded number of times, then a `<Redirect>` brings Twilio back here (wait
//! TwiML that runs out of verbs would leave the caller in silence). Each return is a check that
//! someone is still coming for this customer, so nothing that went wrong elsewhere leaves them
//! on hold for ever:
//! - their conference record is gone (every agent was tried and the apology did not reach
//!   Twilio, or a status callback was cut short after giving up): they hear the apology now;
//! - the first-responder chain has not moved for far longer than an agent rings, with nobody
//!   joined (the report that would have moved it was lost, or its handling was cut short): the
//!   next agent rings, or the customer hears the apology when nobody is left.
//!
//! Whatever the check meets, the customer keeps their music; a check that fails or runs out of
//! time is done again at the next turn.

use std::time::Duration;

use lambda_http::{Body, Error, Request, Response};

use crate::App;
use crate::domain::CallSid;
use crate::error::AppError;
use crate::twiml::{Method, Verb, VoiceResponse};

use super::conference_events;

pub const HOLD_MESSAGE: &str =
    "Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.";

/// How many times the music plays before Twilio comes back: the longest a customer waits for a
/// check is this many plays of the hold music.
pub const PLAYS_PER_CHECK: u32 = 1;

/// An agent rings for `AGENT_RING_SECONDS` (Twilio adds a few), and its status callback moves the
/// chain on at once. A chain still for this long, with nobody joined, has lost that callback.
pub const STALLED_CHAIN_SECONDS: i64 = 60;

/// The check's share of the webhook deadline, so the customer always gets their music in time.
const CHECK_BUDGET: Duration = Duration::from_secs(2);

/// Marks the URL of the check's returns: the hold message is said once, on arrival.
const RETURN_QUERY: &str = "held=1";

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let returning = req.uri().query().is_some_and(|query| query.split('&').any(|pair| pair == RETURN_QUERY));
    Ok(super::answer_webhook(app, &req, |webhook| async move {
        // On arrival the record was written a moment ago and nothing can have stalled yet: the
        // customer hears the welcome at once, without waiting for a read. The waiting participant
        // is the customer: agents start the conference as they enter.
        if let Some(customer) = webhook.param("CallSid").and_then(CallSid::parse).filter(|_| returning) {
            match tokio::time::timeout(CHECK_BUDGET, check_on(app, &webhook.base_url, &customer)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, %customer, "could not check on the customer; next turn"),
                Err(_) => tracing::warn!(%customer, "checking on the customer ran out of time; next turn"),
            }
        }
        Ok(hold(app, &webhook.base_url, returning))
    })
    .await)
}

fn hold(app: &App, base_url: &str, returning: bool) -> VoiceResponse {
    let welcome = if returning { VoiceResponse::new() } else { VoiceResponse::new().say(HOLD_MESSAGE) };
    welcome
        .play(&app.config.hold_music_url, Some(PLAYS_PER_CHECK))
        .verb(Verb::Redirect { url: format!("{base_url}/conference/wait?{RETURN_QUERY}"), method: Some(Method::Post) })
}

/// Makes sure someone is coming for `customer`, or that they are told nobody is.
async fn check_on(app: &App, base_url: &str, customer: &CallSid) -> Result<(), AppError> {
    let now = app.clock.now();
    match app.calls.conference(customer, now).await? {
        None => {
            // Nobody can join a conference without its record; waiting longer helps nobody.
            tracing::warn!(%customer, "the customer waits in a conference given up on; apologising");
            conference_events::say_goodbye(app, customer).await
        }
        Some(record) if record.joined.is_empty() && now - record.chain_moved_at >= STALLED_CHAIN_SECONDS => {
            tracing::warn!(%customer, tried = record.tried.len(), "the agent chain stalled; moving it on");
            conference_events::ring_next_agent(app, base_url, &record, now).await
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::handlers::conference_events::NO_AGENT_AVAILABLE;
    use crate::handlers::testing::*;
    use crate::handlers::{conference_connect_agent, conference_connect_client};
    use crate::store::CallStore;
    use crate::twilio::{CallUpdate, Dialer, OutboundCall, TwilioError};

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
        conference_events::handle(&t.app, status_report(&sid(1), "agent1", &placed_sid(0))).await.unwrap();
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
        let t = TestApp::with_store(crate::store::memory::MemoryCallStore::failing());
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
        let app = App::new(config_with(&[]), crate::app::Ports { dialer: twilio.clone(), ..t.ports() });
        customer_waits(&app, &sid(1)).await;
        conference_events::handle(&app, status_report(&sid(1), "agent1", &placed_sid(0))).await.unwrap();
        twilio.down.store(true, Ordering::SeqCst);
        conference_events::handle(&app, status_report(&sid(1), "agent2", &placed_sid(1))).await.unwrap();
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
}
