//! The metrics a call's requests write (CloudWatch Embedded Metric Format, `telemetry`): each
//! counted once however often Twilio repeats itself, the waits measured on the call flow's
//! clock, Twilio's requests timed by route, errors by kind.

use crate::prelude::*;
use shared::telemetry::CapturedMetrics;

fn call_sids(captured: &CapturedMetrics, metric: &str) -> Vec<String> {
    captured.with(metric).iter().map(|document| document["CallSid"].as_str().unwrap().to_owned()).collect()
}

async fn hang_up(t: &TestApp, customer: &str) {
    let ended = conference_report(customer, "conference-end", None);
    let answer = shared::handlers::conference_events::handle(&t.app, ended).await.unwrap();
    assert_eq!(body_text(&answer), EMPTY_TWIML);
}

#[tokio::test]
async fn a_caller_in_line_is_offered_once_and_twilios_request_is_timed_by_route() {
    let t = TestApp::new();
    let captured = CapturedMetrics::start();
    let params = inbound_call_params(&sid(1));
    for _ in 0..2 {
        let request = signed_webhook("/conference/connect/client", &borrowed(&params));
        let answer = shared::handlers::conference_connect_client::handle(&t.app, request).await.unwrap();
        assert_eq!(answer.status(), 200);
    }

    assert_eq!(call_sids(&captured, "CallsOffered"), [sid(1)], "the retried webhook counts nothing");
    let timed = captured.with("WebhookLatency");
    assert_eq!(timed.len(), 2, "each answer is timed");
    for document in &timed {
        assert_eq!(document["Route"], "POST /conference/connect/client");
        assert!(document["WebhookLatency"].as_f64().unwrap() >= 0.0);
        assert_eq!(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Route"], []]));
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            serde_json::json!([{"Name": "WebhookLatency", "Unit": "Milliseconds"}])
        );
    }
}

#[tokio::test]
async fn an_answered_call_counts_its_wait_and_its_talk_time() {
    let t = TestApp::new();
    t.available("agent1").await;
    let captured = CapturedMetrics::start();
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(42);
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"), "a retry");
    t.clock.advance(300);
    hang_up(&t, &sid(1)).await;
    hang_up(&t, &sid(1)).await;

    assert_eq!(call_sids(&captured, "CallsAnswered"), [sid(1)]);
    assert_eq!(captured.values("QueueWait"), [42.0]);
    assert_eq!(captured.values("TalkTime"), [300.0]);
    assert_eq!(captured.values("CallsAbandoned"), Vec::<f64>::new(), "an answered call is not abandoned");
}

#[tokio::test]
async fn a_caller_who_hangs_up_in_line_is_abandoned_after_their_wait() {
    let t = TestApp::new();
    // Busy but available: the caller waits for them instead of being offered to leave a message.
    t.occupied("agent0").await;
    let captured = CapturedMetrics::start();
    t.customer_arrives(&sid(2)).await;
    t.clock.advance(95);
    hang_up(&t, &sid(2)).await;
    hang_up(&t, &sid(2)).await;

    assert_eq!(call_sids(&captured, "CallsAbandoned"), [sid(2)]);
    assert_eq!(captured.values("AbandonedWait"), [95.0]);
    assert_eq!(captured.values("CallsAnswered"), Vec::<f64>::new());
}

#[tokio::test]
async fn a_colleague_dialed_in_is_a_transfer_not_another_answer() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    t.available("agent2").await;
    let captured = CapturedMetrics::start();
    let cookie = t.session_cookie("agent1").await;
    let request = with_header(json_post("/conference/agent1/call", ""), "cookie", &cookie);
    let response = shared::handlers::conference_call_agent::handle(&t.app, request).await.unwrap();
    assert_eq!(response.status(), 201);
    assert!(t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await.contains("<Conference"));

    assert_eq!(call_sids(&captured, "Transfers"), [sid(1)]);
    assert_eq!(captured.values("CallsAnswered"), Vec::<f64>::new());
}

#[tokio::test]
async fn a_message_left_is_a_voicemail() {
    let t = TestApp::new();
    t.customer_arrives(&sid(3)).await;
    let captured = CapturedMetrics::start();
    let params = [
        ("CallSid", sid(3)),
        ("RecordingSid", "RE0123456789abcdef0123456789abcdef".to_owned()),
        ("RecordingStatus", "completed".to_owned()),
        ("RecordingDuration", "12".to_owned()),
    ];
    let request = signed_webhook(&format!("/voicemail/{}/recording", sid(3)), &borrowed(&params));
    let answer = shared::handlers::voicemail::handle(&t.app, request).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(call_sids(&captured, "Voicemails"), [sid(3)]);
}

#[tokio::test]
async fn errors_are_counted_by_kind_and_never_fail_the_answer() {
    let t = TestApp::new();
    let captured = CapturedMetrics::start();
    let params = inbound_call_params(&sid(1));
    let forged = webhook_with_signature("/conference/connect/client", &borrowed(&params), Some("forged"));
    let answer = shared::handlers::conference_connect_client::handle(&t.app, forged).await.unwrap();
    assert_eq!(answer.status(), 403);
    let request = event("GET", "/presence", &[], b"");
    let answer = shared::handlers::presence::handle(&t.app, request).await.unwrap();
    assert_eq!(answer.status(), 401);

    let kinds: Vec<String> =
        captured.with("Errors").iter().map(|document| document["Kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["Forbidden", "Unauthorized"]);
    assert_eq!(captured.values("CallsOffered"), Vec::<f64>::new(), "a forged call is never in line");
    // Refused in microseconds: a flood of forgeries must not pull the latency alarm's p99 down.
    assert_eq!(captured.with("WebhookLatency").len(), 0, "a forged request is no webhook answered");
}
