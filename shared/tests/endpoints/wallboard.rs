//! `GET /wallboard`: the line and the team now, and today's figures, counted once per call
//! however often Twilio reports it.

use crate::prelude::*;
use shared::handlers::presence::handle;
use shared::store::memory::MemoryCallStore;

const RECORDING: &str = "RE0123456789abcdef0123456789abcdef";

async fn wallboard(t: &TestApp) -> Response<Body> {
    let cookie = t.session_cookie("agent1").await;
    handle(&t.app, event("GET", "/wallboard", &[("cookie", &cookie)], b"")).await.unwrap()
}

async fn conference_ends(t: &TestApp, customer: &str) {
    let report = conference_report(customer, "conference-end", None);
    let response = shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
    assert_eq!(body_text(&response), EMPTY_TWIML);
}

async fn message_recorded(t: &TestApp, customer: &str) {
    let params = [("CallSid", customer), ("RecordingSid", RECORDING), ("RecordingStatus", "completed")];
    let request = signed_webhook(&format!("/voicemail/{customer}/recording"), &params);
    let response = shared::handlers::voicemail::handle(&t.app, request).await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn say(t: &TestApp, agent: &str, status: &str) {
    let cookie = t.session_cookie(agent).await;
    let mut request = json_post("/presence", &format!(r#"{{"status": "{status}"}}"#));
    *request.method_mut() = lambda_http::http::Method::PUT;
    let response = handle(&t.app, with_header(request, "cookie", &cookie)).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn shows_the_line_the_team_and_todays_calls_each_counted_once() {
    let t = TestApp::new();
    // agent3 was available and closed the dashboard: offline once the lease runs out.
    say(&t, "agent3", "available").await;
    t.clock.advance(100);
    say(&t, "agent1", "available").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(12);
    // agent1 answers after caller 1 waited 12 s; Twilio retries the webhook.
    for _ in 0..2 {
        assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    }
    t.customer_arrives(&sid(2)).await;
    t.customer_arrives(&sid(3)).await;
    say(&t, "agent2", "away").await;
    t.clock.advance(30);
    // Caller 3 hangs up in line, caller 4 leaves a message; each reported twice.
    for _ in 0..2 {
        conference_ends(&t, &sid(3)).await;
        message_recorded(&t, &sid(4)).await;
    }

    let response = wallboard(&t).await;
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "application/json"));
    assert_eq!(
        body_json(&response),
        serde_json::json!({
            "waiting": 1,
            "longest_wait_seconds": 30,
            "agents": {"available": 0, "busy": 1, "away": 1, "offline": 1},
            "available_agents": [],
            "today": {
                "date": "2027-01-15",
                "answered": 1,
                "abandoned": 1,
                "voicemails": 1,
                "average_wait_seconds": 12.0,
            },
            "as_of": shared::domain::rfc3339(NOW + 142),
        })
    );
}

#[tokio::test]
async fn an_empty_line_and_a_quiet_day() {
    let t = TestApp::new();
    assert_eq!(
        body_json(&wallboard(&t).await),
        serde_json::json!({
            "waiting": 0,
            "longest_wait_seconds": null,
            "agents": {"available": 0, "busy": 0, "away": 0, "offline": 0},
            "available_agents": [],
            "today": {"date": "2027-01-15", "answered": 0, "abandoned": 0, "voicemails": 0, "average_wait_seconds": null},
            "as_of": shared::domain::rfc3339(NOW),
        })
    );
}

#[tokio::test]
async fn today_is_the_support_lines_day_in_its_time_zone() {
    // 08:00 UTC is 22:00 the evening before in Honolulu.
    let config = config_with(&[("BUSINESS_HOURS", "Mon-Sun 00:00-24:00 Pacific/Honolulu")]);
    let t = TestApp::build(config, MemoryCallStore::new(), RecordingDialer::default());
    message_recorded(&t, &sid(4)).await;
    let today = &body_json(&wallboard(&t).await)["today"];
    assert_eq!((today["date"].as_str(), today["voicemails"].as_u64()), (Some("2027-01-14"), Some(1)));
    t.clock.advance(2 * 3600);
    let today = &body_json(&wallboard(&t).await)["today"];
    assert_eq!((today["date"].as_str(), today["voicemails"].as_u64()), (Some("2027-01-15"), Some(0)), "a new day");
}

#[tokio::test]
async fn names_the_agents_available_now_for_a_consult_or_a_transfer() {
    let t = TestApp::new();
    say(&t, "agent3", "available").await;
    t.clock.advance(1);
    say(&t, "agent1", "available").await;
    say(&t, "agent2", "away").await;
    say(&t, "agent4", "available").await;
    t.customer_arrives(&sid(1)).await; // rings agent3, idle longest: busy
    let board = body_json(&wallboard(&t).await);
    assert_eq!(board["available_agents"], serde_json::json!(["agent1", "agent4"]));
    assert_eq!(board["agents"]["available"], 2);
}

#[tokio::test]
async fn only_for_signed_in_agents_and_only_get() {
    let t = TestApp::new();
    let response = handle(&t.app, event("GET", "/wallboard", &[], b"")).await.unwrap();
    assert_eq!(response.status(), 401);
    let cookie = t.session_cookie("agent1").await;
    let response = handle(&t.app, event("PUT", "/wallboard", &[("cookie", &cookie)], b"")).await.unwrap();
    assert_eq!((response.status().as_u16(), response.headers()["allow"].to_str().unwrap()), (405, "GET"));
}

#[tokio::test]
async fn a_store_fault_is_a_retryable_503() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = wallboard(&t).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(body_json(&response)["error"], "temporarily unavailable, please retry");
}

#[tokio::test]
async fn a_count_that_cannot_be_written_never_fails_the_call() {
    let t = TestApp::with_store(MemoryCallStore::failing_counts());
    say(&t, "agent1", "available").await;
    t.customer_arrives(&sid(1)).await;
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    conference_ends(&t, &sid(1)).await;
    message_recorded(&t, &sid(4)).await;
    assert_eq!(t.tickets.len(), 1, "the message is a ticket");
}
