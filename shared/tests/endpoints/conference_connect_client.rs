use std::time::Duration;

use crate::prelude::*;
use shared::handlers::conference_connect_client::handle;
use shared::store::CallStore;
use shared::store::memory::MemoryCallStore;

const PATH: &str = "/conference/connect/client";

fn conference_twiml(base: &str, call_sid: &str) -> String {
    format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="{base}/conference/wait" waitMethod="POST" statusCallback="{base}/conference/{call_sid}/events" statusCallbackEvent="leave end" statusCallbackMethod="POST">{call_sid}</Conference></Dial></Response>"#
    )
}

async fn customer_calls(t: &TestApp, call_sid: &str) -> Response<Body> {
    let params = inbound_call_params(call_sid);
    handle(&t.app, signed_webhook(PATH, &borrowed(&params))).await.unwrap()
}

#[tokio::test]
async fn puts_the_caller_in_their_own_conference_and_dials_the_first_agent() {
    let t = TestApp::new();
    let response = customer_calls(&t, &sid(1)).await;

    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    assert_eq!(body_text(&response), conference_twiml(BASE, &sid(1)));
    // A bounded ring, and a report of how the call ended: Warmline learns when agent1
    // does not answer, and rings the next agent then.
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")]);
    let stored = t.store.conference(&CallSid::parse(&sid(1)).unwrap(), NOW).await.unwrap().unwrap();
    assert_eq!(stored.first_agent.as_str(), "agent1");
    assert_eq!(stored.tried, [shared::domain::AgentId::parse("agent1").unwrap()]);
    assert_eq!(stored.agent_calls, [CallSid::parse(&placed_sid(0)).unwrap()], "so it can be canceled");
    assert_eq!(stored.expires_at - stored.created_at, shared::domain::CALL_RECORD_TTL_SECONDS);
}

#[tokio::test]
async fn does_not_record_the_agent_as_in_the_call_when_merely_dialed() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    let agent1 = shared::domain::AgentId::parse("agent1").unwrap();
    assert_eq!(t.store.conference_of_agent(&agent1, NOW).await.unwrap(), None);
    assert_eq!(t.store.participants(&CallSid::parse(&sid(1)).unwrap()), []);
}

#[tokio::test]
async fn a_retried_webhook_dials_the_agent_once() {
    let t = TestApp::new();
    let first = customer_calls(&t, &sid(1)).await;
    let retry = customer_calls(&t, &sid(1)).await;
    assert_eq!(body_text(&first), body_text(&retry));
    assert_eq!(t.dialer.placed().len(), 1);
}

#[tokio::test]
async fn a_lost_reply_to_the_conference_write_still_dials_the_first_agent() {
    // The write lands, its reply is lost, the SDK sends it again and meets the record.
    let t = TestApp::with_store(MemoryCallStore::losing_replies());
    let response = customer_calls(&t, &sid(1)).await;
    assert_eq!(body_text(&response), conference_twiml(BASE, &sid(1)));
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")]);
    // And Twilio retrying the webhook still dials nobody twice.
    customer_calls(&t, &sid(1)).await;
    let responses = futures_join(&t, &sid(1), 5).await;
    assert!(responses.iter().all(|body| *body == conference_twiml(BASE, &sid(1))));
    assert_eq!(t.dialer.placed().len(), 1);
}

#[tokio::test]
async fn concurrent_deliveries_dial_the_agent_once() {
    let t = TestApp::new();
    let responses = futures_join(&t, &sid(1), 5).await;
    assert!(responses.iter().all(|body| *body == conference_twiml(BASE, &sid(1))));
    assert_eq!(t.dialer.placed().len(), 1);
}

async fn futures_join(t: &TestApp, call_sid: &str, n: usize) -> Vec<String> {
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(customer_calls(t, call_sid));
    }
    let mut bodies = Vec::new();
    for response in futures_util_join_all(handles).await {
        bodies.push(body_text(&response));
    }
    bodies
}

async fn futures_util_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    let pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut pending: Vec<_> = pinned.into_iter().map(Some).collect();
    // Poll all futures together so their store writes interleave.
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for slot in pending.iter_mut() {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        set.push(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    set
}

#[tokio::test]
async fn two_callers_get_two_conferences() {
    let t = TestApp::new();
    assert_eq!(body_text(&customer_calls(&t, &sid(1)).await), conference_twiml(BASE, &sid(1)));
    assert_eq!(body_text(&customer_calls(&t, &sid(2)).await), conference_twiml(BASE, &sid(2)));
    let urls: Vec<String> = t.dialer.placed().into_iter().map(|c| c.url).collect();
    assert_eq!(
        urls,
        [
            format!("{BASE}/conference/{}/connect/agent1", sid(1)),
            format!("{BASE}/conference/{}/connect/agent1", sid(2))
        ]
    );
    assert_eq!(t.store.conference_ids().len(), 2);
}

#[tokio::test]
async fn uses_the_public_base_url_for_signatures_and_callbacks() {
    let base = "https://support.example.com";
    let t = TestApp::build(config_with(&[("PUBLIC_BASE_URL", base)]), MemoryCallStore::new(), Default::default());
    let params = vec![("CallSid".to_owned(), sid(1))];
    let signature = shared::twilio::signature::compute(AUTH_TOKEN, &format!("{base}{PATH}"), &params);
    let request = webhook_with_signature(PATH, &[("CallSid", &sid(1))], Some(&signature));
    let response = handle(&t.app, request).await.unwrap();
    assert_eq!(body_text(&response), conference_twiml(base, &sid(1)));
    assert_eq!(t.dialer.placed()[0].url, format!("{base}/conference/{}/connect/agent1", sid(1)));

    // Signed for the API Gateway domain instead: not what Twilio requested.
    let response = handle(&t.app, signed_webhook(PATH, &[("CallSid", &sid(2))])).await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn forged_requests_change_nothing() {
    let t = TestApp::new();
    let params = inbound_call_params(&sid(1));
    let params = borrowed(&params);
    let other_url_signature = shared::twilio::signature::compute(
        AUTH_TOKEN,
        &format!("{BASE}/conference/wait"),
        &params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>(),
    );
    let wrong_key_signature = shared::twilio::signature::compute(
        "another-token",
        &format!("{BASE}{PATH}"),
        &params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>(),
    );
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
async fn apologises_and_forgets_the_conference_when_twilio_fails() {
    let t = TestApp::with_dialer(RecordingDialer::failing());
    let response = customer_calls(&t, &sid(1)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_text(&response), APOLOGY_TWIML);
    assert_eq!(t.dialer.placed().len(), 1);
    // Forgotten, so Twilio's retry of this webhook dials again.
    assert_eq!(t.store.conference_ids(), []);
    customer_calls(&t, &sid(1)).await;
    assert_eq!(t.dialer.placed().len(), 2);
}

#[tokio::test]
async fn apologises_without_dialing_when_the_store_fails() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = customer_calls(&t, &sid(1)).await;
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "text/xml; charset=utf-8"));
    assert_eq!(body_text(&response), APOLOGY_TWIML);
    assert_eq!(t.dialer.placed(), []);
}

#[tokio::test]
async fn apologises_for_a_malformed_call_sid() {
    let t = TestApp::new();
    for params in [vec![], vec![("CallSid", "CA123")]] {
        let response = handle(&t.app, signed_webhook(PATH, &params)).await.unwrap();
        assert_eq!(body_text(&response), APOLOGY_TWIML);
    }
    assert_eq!(t.dialer.placed(), []);
}

struct StalledDialer;

#[async_trait::async_trait]
impl shared::twilio::Dialer for StalledDialer {
    async fn place_call(&self, _: &shared::twilio::OutboundCall) -> Result<CallSid, shared::twilio::TwilioError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Err(shared::twilio::TwilioError::MalformedSid)
    }

    async fn update_call(
        &self,
        _: &CallSid,
        _: &shared::twilio::CallUpdate,
    ) -> Result<(), shared::twilio::TwilioError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Err(shared::twilio::TwilioError::MalformedSid)
    }
}

#[tokio::test(start_paused = true)]
async fn answers_before_the_deadline_when_twilio_stalls() {
    let t = TestApp::new();
    let app = shared::App::new(
        config_with(&[]),
        shared::app::Ports { dialer: std::sync::Arc::new(StalledDialer), ..t.ports() },
    );
    let started = tokio::time::Instant::now();
    let params = inbound_call_params(&sid(1));
    let response = handle(&app, signed_webhook(PATH, &borrowed(&params))).await.unwrap();
    assert_eq!(body_text(&response), APOLOGY_TWIML);
    assert_eq!(started.elapsed(), shared::pipeline::WEBHOOK_DEADLINE);
}
