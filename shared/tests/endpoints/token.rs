use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::prelude::*;
use shared::handlers::token::handle;

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_signed_in_agent_gets_a_token_that_can_receive_calls() {
    let t = TestApp::new();
    let cookie = t.session_cookie("agent1").await;
    // The body cannot choose another identity.
    for request in [form_post("/token", &[("agent", "agent2")]), json_post("/token", r#"{"identity": "agent2"}"#)] {
        let response = handle(&t.app, with_header(request, "cookie", &cookie)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(content_type(&response), "application/json");
        let body = body_json(&response);
        assert_eq!((body["identity"].as_str(), body["ttl"].as_u64()), (Some("agent1"), Some(3600)));
        let claims = claims(body["token"].as_str().unwrap());
        assert_eq!(claims["grants"]["identity"], "agent1");
        assert_eq!(claims["grants"]["voice"]["incoming"]["allow"], true);
        assert_eq!(claims["grants"]["voice"]["outgoing"]["application_sid"], format!("AP{}", "0".repeat(32)));
        assert_eq!((claims["nbf"].as_i64(), claims["exp"].as_i64()), (Some(NOW), Some(NOW + 3600)));
    }
}

#[tokio::test]
async fn without_a_live_session_nobody_gets_an_agent_token() {
    let t = TestApp::new();
    let ended = t.session_cookie("agent2").await;
    t.agents.end_sessions(&shared::domain::AgentId::parse("agent2").unwrap()).await.unwrap();
    let disabled = t.session_cookie("agent3").await;
    t.agents.set_disabled(&shared::domain::AgentId::parse("agent3").unwrap(), Some(NOW)).await.unwrap();
    let requests = [
        form_post("/token", &[("agent", "agent1")]),
        json_post("/token", r#"{"agent": "agent1", "identity": "agent1"}"#),
        with_header(json_post("/token", ""), "cookie", &ended),
        with_header(json_post("/token", ""), "cookie", &disabled),
        with_header(json_post("/token", ""), "cookie", "__Host-warmline_session=forged.token.here"),
    ];
    for request in requests {
        let body = body_json(&handle(&t.app, request).await.unwrap());
        let identity = body["identity"].as_str().unwrap();
        assert!(identity.starts_with("customer_"), "{identity}");
        assert_eq!(claims(body["token"].as_str().unwrap())["grants"]["voice"].get("incoming"), None);
    }
}

#[tokio::test]
async fn another_site_gets_no_token_at_all() {
    let t = TestApp::new();
    let cookie = t.session_cookie("agent1").await;
    for origin in [Some("https://evil.example"), None] {
        let mut request = with_header(json_post("/token", ""), "cookie", &cookie);
        request = match origin {
            Some(origin) => with_header(request, "origin", origin),
            None => without_header(request, "origin"),
        };
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!(
            (response.status().as_u16(), body_json(&response)),
            (403, serde_json::json!({"error": "forbidden"}))
        );
    }
}

#[tokio::test]
async fn anyone_else_gets_a_fresh_outgoing_only_customer_token() {
    let t = TestApp::new();
    let first = body_json(&handle(&t.app, form_post("/token", &[])).await.unwrap());
    let second = body_json(&handle(&t.app, json_post("/token", "{}")).await.unwrap());
    let identity = first["identity"].as_str().unwrap();
    assert!(identity.starts_with("customer_") && identity.len() == 25, "{identity}");
    assert_ne!(first["identity"], second["identity"]);
    let claims = claims(first["token"].as_str().unwrap());
    assert_eq!(claims["grants"]["identity"], identity);
    assert_eq!(claims["grants"]["voice"].get("incoming"), None);
}

#[tokio::test]
async fn rejects_malformed_bodies() {
    let t = TestApp::new();
    let response = handle(&t.app, json_post("/token", "[1]")).await.unwrap();
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (400, serde_json::json!({"error": "the body must be a JSON object"}))
    );
    let response = handle(&t.app, form_post("/token", &[("agent", "agent1"), ("agent", "agent2")])).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(body_json(&response)["fields"], serde_json::json!({"agent": "was given more than once"}));
}
