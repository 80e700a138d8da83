use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::prelude::*;
use shared::call_flow::AGENT_SESSION_PARAM;
use shared::domain::SlotHolder;
use shared::handlers::token::handle;
use shared::store::CallStore;

/// `POST /token` from this site's page, as API Gateway hands it over from a client at
/// `address`.
pub fn token_request_from(address: &str) -> Request {
    let headers = [("content-type", "application/json"), ("origin", BASE)];
    let mut event: serde_json::Value = serde_json::from_str(&event_json("POST", "/token", &headers, b"{}")).unwrap();
    event["requestContext"]["http"]["sourceIp"] = address.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

pub fn claims(token: &str) -> serde_json::Value {
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
        assert_eq!((body["identity"].as_str(), body["ttl"].as_u64()), (Some("agent1"), Some(600)));
        let claims = claims(body["token"].as_str().unwrap());
        assert_eq!(claims["grants"]["identity"], "agent1");
        assert_eq!(claims["grants"]["voice"]["incoming"]["allow"], true);
        // The agents' TwiML App: its Voice URL (/call/agent) is the only one that serves agents.
        assert_eq!(claims["grants"]["voice"]["outgoing"]["application_sid"], AGENT_APP_SID);
        assert_eq!((claims["nbf"].as_i64(), claims["exp"].as_i64()), (Some(NOW), Some(NOW + 600)));
        // Every call the token places names the session it was issued to.
        let id = claims["grants"]["voice"]["outgoing"]["params"][AGENT_SESSION_PARAM].as_str().unwrap();
        let recorded = t.store.agent_token(id, NOW).await.unwrap().expect("the token's record");
        assert_eq!((recorded.agent.as_str(), recorded.session_epoch), ("agent1", 0));
        // It outlives the token by a minute: the webhook of a call placed at its last second.
        assert_eq!(recorded.expires_at, NOW + 660);
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
        let voice = &claims(body["token"].as_str().unwrap())["grants"]["voice"];
        assert_eq!(voice.get("incoming"), None);
        assert_eq!(voice["outgoing"]["application_sid"], CUSTOMER_APP_SID, "the customers' app, never the agents'");
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
    assert_eq!(claims["grants"]["voice"]["outgoing"].get("params"), None);
    assert_eq!(first["ttl"], 300);
    assert_eq!((claims["nbf"].as_i64(), claims["exp"].as_i64()), (Some(NOW), Some(NOW + 300)));
}

#[tokio::test]
async fn a_customer_token_is_bound_to_the_address_it_was_fetched_from() {
    let t = TestApp::new();
    for (source, counted_as) in [("203.0.113.7", "203.0.113.7"), ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64")] {
        let body = body_json(&handle(&t.app, token_request_from(source)).await.unwrap());
        let identity = body["identity"].as_str().unwrap();
        let holder = SlotHolder::Customer(identity.to_owned());
        let record = t.store.call_slots(&holder, NOW).await.unwrap().expect("the customer's record");
        assert_eq!(record.address.as_ref().map(|a| a.as_str()), Some(counted_as));
        assert_eq!(record.calls, []);
        // Kept while the token may place a call, and a minute more.
        assert_eq!(record.expires_at, NOW + 300 + 60);
        assert_eq!(t.store.call_slots(&holder, NOW + 360).await.unwrap(), None);
    }
}

#[tokio::test]
async fn no_token_when_it_cannot_be_recorded() {
    let t = TestApp::with_store(shared::store::memory::MemoryCallStore::failing());
    let cookie = t.session_cookie("agent1").await;
    for request in [json_post("/token", "{}"), with_header(json_post("/token", "{}"), "cookie", &cookie)] {
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers().get("retry-after").unwrap(), "2");
        assert!(body_json(&response).get("token").is_none());
    }
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
