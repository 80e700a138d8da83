use crate::prelude::*;
use shared::domain::PRESENCE_LEASE_SECONDS;
use shared::handlers::presence::handle;
use shared::store::memory::MemoryCallStore;

fn put(body: &str) -> Request {
    let mut request = json_post("/presence", body);
    *request.method_mut() = lambda_http::http::Method::PUT;
    request
}

async fn as_agent(t: &TestApp, agent: &str, request: Request) -> Response<Body> {
    let cookie = t.session_cookie(agent).await;
    handle(&t.app, with_header(request, "cookie", &cookie)).await.unwrap()
}

fn presence(agent: &str, status: &str, since: i64) -> serde_json::Value {
    serde_json::json!({"agent": agent, "status": status, "since": shared::domain::rfc3339(since), "missed_call_at": null})
}

#[tokio::test]
async fn an_agent_is_offline_until_they_say_otherwise() {
    let t = TestApp::new();
    let response = as_agent(&t, "agent1", event("GET", "/presence", &[], b"")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(body_json(&response), presence("agent1", "offline", 0));
}

#[tokio::test]
async fn says_available_or_away_and_reads_it_back() {
    let t = TestApp::new();
    let response = as_agent(&t, "agent1", put(r#"{"status": "available"}"#)).await;
    assert_eq!((response.status().as_u16(), body_json(&response)), (200, presence("agent1", "available", NOW)));
    t.clock.advance(10);
    let response = as_agent(&t, "agent1", put(r#"{"status": "away"}"#)).await;
    assert_eq!(body_json(&response), presence("agent1", "away", NOW + 10));
    let response = as_agent(&t, "agent1", event("GET", "/presence", &[], b"")).await;
    assert_eq!(body_json(&response), presence("agent1", "away", NOW + 10));
}

#[tokio::test]
async fn presence_is_a_lease_the_dashboard_renews() {
    let t = TestApp::new();
    as_agent(&t, "agent1", put(r#"{"status": "available"}"#)).await;
    t.clock.advance(PRESENCE_LEASE_SECONDS - 1);
    // The dashboard's renewal keeps "since" where it was.
    let response = as_agent(&t, "agent1", put(r#"{"status": "available"}"#)).await;
    assert_eq!(body_json(&response), presence("agent1", "available", NOW));
    t.clock.advance(PRESENCE_LEASE_SECONDS);
    let response = as_agent(&t, "agent1", event("GET", "/presence", &[], b"")).await;
    assert_eq!(body_json(&response), presence("agent1", "offline", NOW + 2 * PRESENCE_LEASE_SECONDS - 1));
}

#[tokio::test]
async fn becoming_available_offers_the_longest_waiting_caller_at_once() {
    let t = TestApp::new();
    t.occupied("agent0").await;
    t.customer_arrives(&sid(2)).await;
    t.clock.advance(1);
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(1);
    let response = as_agent(&t, "agent1", put(r#"{"status": "available"}"#)).await;
    assert_eq!(body_json(&response), presence("agent1", "busy", NOW + 2));
    assert_eq!(t.dialer.placed().last().unwrap(), &agent_call(&sid(2), "agent1"));
    assert_eq!(t.dialer.placed().len(), 2, "agent0's call, and this one");
}

#[tokio::test]
async fn a_missed_call_shows_until_the_agent_is_available_again() {
    let t = TestApp::new();
    as_agent(&t, "agent1", put(r#"{"status": "available"}"#)).await;
    t.customer_arrives(&sid(1)).await;
    let report = agent_call_report(&sid(1), "agent1", &placed_sid(0), "no-answer");
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
    let response = as_agent(&t, "agent1", event("GET", "/presence", &[], b"")).await;
    assert_eq!(
        body_json(&response),
        serde_json::json!({"agent": "agent1", "status": "away", "since": shared::domain::rfc3339(NOW), "missed_call_at": shared::domain::rfc3339(NOW)})
    );
    let response = as_agent(&t, "agent1", put(r#"{"status": "available"}"#)).await;
    assert_eq!(body_json(&response)["missed_call_at"], serde_json::Value::Null);
}

#[tokio::test]
async fn refuses_what_an_agent_may_not_say() {
    let t = TestApp::new();
    for body in [r#"{"status": "busy"}"#, r#"{"status": "offline"}"#, r#"{"status": "Available"}"#, "{}"] {
        let response = as_agent(&t, "agent1", put(body)).await;
        assert_eq!(
            (response.status().as_u16(), body_json(&response)),
            (
                400,
                serde_json::json!({"error": "invalid input", "fields": {"status": "must be \"available\" or \"away\""}})
            ),
            "{body}"
        );
    }
    let response = as_agent(&t, "agent1", put(r#"{"status": 1}"#)).await;
    assert_eq!(body_json(&response)["fields"], serde_json::json!({"status": "must be a string"}));
    let response = as_agent(&t, "agent1", put("{not json")).await;
    assert_eq!(response.status(), 400);
    let huge = format!(r#"{{"status": "available", "x": "{}"}}"#, "x".repeat(20_000));
    assert_eq!(as_agent(&t, "agent1", put(&huge)).await.status(), 413);
    assert_eq!(t.agent_state("agent1").await, None, "nothing was stored");
}

#[tokio::test]
async fn only_the_signed_in_agent_sets_their_own_presence() {
    let t = TestApp::new();
    let cookie = t.session_cookie("agent1").await;
    let cases = [
        ("no session", put(r#"{"status": "available"}"#), 401),
        (
            "another site",
            with_header(
                with_header(put(r#"{"status": "available"}"#), "cookie", &cookie),
                "origin",
                "https://evil.example",
            ),
            403,
        ),
        ("no Origin", without_header(with_header(put(r#"{"status": "available"}"#), "cookie", &cookie), "origin"), 403),
        ("no session, GET", event("GET", "/presence", &[], b""), 401),
    ];
    for (case, request, status) in cases {
        assert_eq!(handle(&t.app, request).await.unwrap().status(), status, "{case}");
    }
    // Nothing in the body names whose presence it is.
    as_agent(&t, "agent1", put(r#"{"status": "available", "agent": "agent2"}"#)).await;
    assert_eq!(t.agent_state("agent2").await, None);
    assert!(t.agent_state("agent1").await.is_some());
    let response = handle(&t.app, event("DELETE", "/presence", &[], b"")).await.unwrap();
    assert_eq!((response.status().as_u16(), response.headers()["allow"].to_str().unwrap()), (405, "GET, PUT"));
}

#[tokio::test]
async fn storage_failures_are_a_retryable_503() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = as_agent(&t, "agent1", put(r#"{"status": "available"}"#)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
}
