use std::time::Duration;

use crate::prelude::*;
use shared::domain::{Caller, CallerState};
use shared::handlers::conference_connect_client::handle;
use shared::store::memory::MemoryCallStore;

const PATH: &str = "/conference/connect/client";

pub fn conference_twiml(base: &str, call_sid: &str) -> String {
    format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="{base}/conference/wait" waitMethod="POST" statusCallback="{base}/conference/{call_sid}/events" statusCallbackEvent="join leave end" statusCallbackMethod="POST">{call_sid}</Conference></Dial></Response>"#
    )
}

async fn customer_calls(t: &TestApp, call_sid: &str) -> Response<Body> {
    let params = inbound_call_params(call_sid);
    handle(&t.app, signed_webhook(PATH, &borrowed(&params))).await.unwrap()
}

#[tokio::test]
async fn puts_the_caller_in_line_and_in_their_own_conference_without_calling_twilio() {
    let t = TestApp::new();
    t.available("agent1").await;
    let response = customer_calls(&t, &sid(1)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    assert_eq!(body_text(&response), conference_twiml(BASE, &sid(1)));
    // Nothing slow before the caller's first TwiML: the agent rings once the caller has
    // joined the conference (its participant-join), never from this webhook.
    assert_eq!(t.dialer.placed(), []);
    let stored = t.caller(&sid(1)).await.unwrap();
    assert_eq!(stored.state, CallerState::Waiting);
    assert_eq!(stored.caller, Caller::Phone(PhoneNumber::parse("+15557654321").unwrap()));
    assert_eq!(stored.arrived_at_ms, NOW * 1000);
    assert_eq!(stored.expires_at - stored.created_at, shared::domain::CALL_RECORD_TTL_SECONDS);
}

#[tokio::test]
async fn a_retried_webhook_changes_nothing() {
    let t = TestApp::new();
    let first = customer_calls(&t, &sid(1)).await;
    let stored = t.caller(&sid(1)).await;
    t.clock.advance(3);
    let retry = customer_calls(&t, &sid(1)).await;
    assert_eq!(body_text(&first), body_text(&retry));
    assert_eq!(t.caller(&sid(1)).await, stored, "the same record, the same place in line");
}

#[tokio::test]
async fn a_lost_reply_to_the_arrival_still_answers_the_conference() {
    // The write lands, its reply is lost, the SDK sends it again and meets the record.
    let t = TestApp::with_store(MemoryCallStore::losing_replies());
    let response = customer_calls(&t, &sid(1)).await;
    assert_eq!(body_text(&response), conference_twiml(BASE, &sid(1)));
    assert_eq!(t.store.conference_ids(), [CallSid::parse(&sid(1)).unwrap()]);
}

#[tokio::test]
async fn concurrent_deliveries_record_the_caller_once() {
    let t = TestApp::new();
    let customer = sid(1);
    let deliveries = (0..5).map(|_| customer_calls(&t, &customer));
    for response in futures::future::join_all(deliveries).await {
        assert_eq!(body_text(&response), conference_twiml(BASE, &sid(1)));
    }
    assert_eq!(t.store.conference_ids(), [CallSid::parse(&sid(1)).unwrap()]);
    assert_eq!(t.caller(&sid(1)).await.unwrap().version, 1);
}

#[tokio::test]
async fn two_callers_wait_apart_in_arrival_order() {
    let t = TestApp::new();
    assert_eq!(body_text(&customer_calls(&t, &sid(2)).await), conference_twiml(BASE, &sid(2)));
    t.clock.advance(1);
    assert_eq!(body_text(&customer_calls(&t, &sid(1)).await), conference_twiml(BASE, &sid(1)));
    use shared::store::CallStore as _;
    let waiting: Vec<CallSid> = t.store.waiting(10, NOW).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(waiting, [CallSid::parse(&sid(2)).unwrap(), CallSid::parse(&sid(1)).unwrap()]);
}

#[tokio::test]
async fn uses_the_public_base_url_for_signatures_and_callbacks() {
    let base = "https://support.example.com";
    let t = TestApp::build(config_with(&[("PUBLIC_BASE_URL", base)]), MemoryCallStore::new(), Default::default());
    let params = vec![("AccountSid".to_owned(), ACCOUNT_SID.to_owned()), ("CallSid".to_owned(), sid(1))];
    let signature = shared::twilio::signature::compute(AUTH_TOKEN, &format!("{base}{PATH}"), &params);
    let request = webhook_with_signature(PATH, &[("AccountSid", ACCOUNT_SID), ("CallSid", &sid(1))], Some(&signature));
    let response = handle(&t.app, request).await.unwrap();
    assert_eq!(body_text(&response), conference_twiml(base, &sid(1)));

    // Signed for the API Gateway domain instead: not what Twilio requested.
    let response = handle(&t.app, signed_webhook(PATH, &[("CallSid", &sid(2))])).await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn forged_requests_change_nothing() {
    let t = TestApp::new();
    let params = inbound_call_params(&sid(1));
    let params = borrowed(&params);
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let other_url_signature =
        shared::twilio::signature::compute(AUTH_TOKEN, &format!("{BASE}/conference/wait"), &owned);
    let wrong_key_signature = shared::twilio::signature::compute("another-token", &format!("{BASE}{PATH}"), &owned);
    for signature in [
        None,
        Some(""),
        Some("bm90IGEgc2lnbmF0dXJl"),
        Some(other_url_signature.as_str()),
        Some(wrong_key_signature.as_str()),
    ] {
        let response = handle(&t.app, webhook_with_signature(PATH, &params, signature)).await.unwrap();
        assert_eq!(response.status(), 403, "{signature:?}");
    }
    assert_eq!(t.dialer.placed(), []);
    assert_eq!(t.store.conference_ids(), []);
}

#[tokio::test]
async fn the_caller_still_gets_their_conference_when_the_store_fails() {
    // Their hold music's first turn puts them in line (conference_wait's tests).
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = customer_calls(&t, &sid(1)).await;
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "text/xml; charset=utf-8"));
    assert_eq!(body_text(&response), conference_twiml(BASE, &sid(1)));
    assert_eq!(t.dialer.placed(), []);
}

#[tokio::test]
async fn apologises_for_a_malformed_call_sid() {
    let t = TestApp::new();
    for params in [vec![], vec![("CallSid", "CA123")]] {
        let response = handle(&t.app, signed_webhook(PATH, &params)).await.unwrap();
        assert_eq!(body_text(&response), APOLOGY_TWIML);
    }
    assert_eq!(t.store.conference_ids(), []);
}

struct StalledDialer;

#[async_trait::async_trait]
impl shared::twilio::Dialer for StalledDialer {
    async fn place_call(&self, _: &shared::twilio::OutboundCall) -> Result<CallSid, shared::twilio::TwilioError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Err(shared::twilio::TwilioError::MalformedSid)
    }

    async fn update_call(&self, _: &CallSid, _: &CallUpdate) -> Result<(), shared::twilio::TwilioError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Err(shared::twilio::TwilioError::MalformedSid)
    }

    async fn update_participant(
        &self,
        _: &str,
        _: &CallSid,
        _: &shared::twilio::ParticipantUpdate,
    ) -> Result<(), shared::twilio::TwilioError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Err(shared::twilio::TwilioError::MalformedSid)
    }

    async fn recording(&self, _: &str) -> Result<shared::twilio::Recording, shared::twilio::TwilioError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Err(shared::twilio::TwilioError::MalformedSid)
    }
}

#[tokio::test(start_paused = true)]
async fn answers_at_once_whatever_twilio_does() {
    let t = TestApp::new();
    let app = shared::App::new(
        config_with(&[]),
        shared::app::Ports { dialer: std::sync::Arc::new(StalledDialer), ..t.ports() },
    );
    t.available("agent1").await;
    let started = tokio::time::Instant::now();
    let params = inbound_call_params(&sid(1));
    let response = handle(&app, signed_webhook(PATH, &borrowed(&params))).await.unwrap();
    assert_eq!(body_text(&response), conference_twiml(BASE, &sid(1)));
    assert_eq!(started.elapsed(), Duration::ZERO, "no time passes waiting on Twilio");
}
