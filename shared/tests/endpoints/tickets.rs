use serde_json::Value;

use crate::prelude::*;
use shared::handlers::tickets::handle;
use shared::store::memory::{MemoryCallStore, MemoryTicketStore};

const VALID: &str = r#"{"name": "Ada Lovelace", "phone_number": "+15551234567", "description": "My mallet broke."}"#;

async fn post_json(t: &TestApp, body: &str) -> Response<Body> {
    handle(&t.app, json_post("/tickets", body)).await.unwrap()
}

/// As a signed-in agent.
async fn get(t: &TestApp, query: &str) -> Response<Body> {
    let cookie = t.session_cookie("agent1").await;
    handle(&t.app, event("GET", &format!("/tickets{query}"), &[("cookie", &cookie)], b"")).await.unwrap()
}

#[tokio::test]
async fn only_signed_in_agents_see_tickets() {
    let t = TestApp::new();
    assert_eq!(post_json(&t, VALID).await.status(), 201);
    let ended = t.session_cookie("agent2").await;
    t.agents.end_sessions(&shared::domain::AgentId::parse("agent2").unwrap()).await.unwrap();
    for headers in [vec![], vec![("cookie", ended.as_str())], vec![("cookie", "__Host-warmline_session=a.b.c")]] {
        let response = handle(&t.app, event("GET", "/tickets", &headers, b"")).await.unwrap();
        assert_eq!(
            (response.status().as_u16(), body_json(&response)),
            (401, serde_json::json!({"error": "sign in first"})),
            "{headers:?}"
        );
        assert!(!body_text(&response).contains("+1555"), "no phone number leaks");
    }
    assert_eq!(body_json(&get(&t, "").await)["tickets"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn anyone_may_file_a_ticket_but_not_from_another_site() {
    let t = TestApp::new();
    let api_client = without_header(json_post("/tickets", VALID), "origin");
    assert_eq!(handle(&t.app, api_client).await.unwrap().status(), 201, "no Origin: not a browser");
    let other_site = with_header(json_post("/tickets", VALID), "origin", "https://evil.example");
    let response = handle(&t.app, other_site).await.unwrap();
    assert_eq!((response.status().as_u16(), body_json(&response)), (403, serde_json::json!({"error": "forbidden"})));
    assert_eq!(t.tickets.len(), 1, "the cross-site ticket was not stored");
    assert_eq!(response.headers().get("access-control-allow-origin"), None, "CORS is off");
    assert_eq!(response.headers().get("strict-transport-security").unwrap(), shared::response::HSTS);
    assert_eq!(response.headers().get("x-content-type-options").unwrap(), "nosniff");
}

#[tokio::test]
async fn files_a_ticket_and_answers_with_what_was_stored() {
    let t = TestApp::new();
    let response = post_json(&t, VALID).await;
    assert_eq!(response.status(), 201);
    assert_eq!(content_type(&response), "application/json");
    let body = body_json(&response);
    let id = body["id"].as_str().unwrap();
    assert!(TicketId::parse(id).is_some(), "{id}");
    assert_eq!(
        body,
        serde_json::json!({
            "id": id,
            "name": "Ada Lovelace",
            "phone_number": "+15551234567",
            "description": "My mallet broke.",
            "created_at": "2027-01-15T08:00:00Z",
            "status": "open",
        })
    );
    let listed = body_json(&get(&t, "").await);
    assert_eq!(listed["tickets"], serde_json::json!([body]));
}

#[tokio::test]
async fn accepts_the_html_form_encoding_too() {
    let t = TestApp::new();
    let form = [("name", "Grace"), ("phone_number", "+442071838750"), ("description", "Line 1\r\nLine 2")];
    let response = handle(&t.app, form_post("/tickets", &form)).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(body_json(&response)["description"], "Line 1\r\nLine 2");
    assert_eq!(t.tickets.len(), 1);
}

#[tokio::test]
async fn refuses_invalid_input_with_field_errors_and_stores_nothing() {
    let t = TestApp::new();
    let long_name = "n".repeat(101);
    let cases: Vec<(String, Value)> = vec![
        (
            "{}".into(),
            serde_json::json!({"name": "is required", "phone_number": "is required", "description": "is required"}),
        ),
        (
            r#"{"name": "Ada", "phone_number": "555-1234", "description": "d"}"#.into(),
            serde_json::json!({"phone_number": "must be an E.164 phone number such as +15551234567"}),
        ),
        (
            format!(r#"{{"name": "{long_name}", "phone_number": "+15551234567", "description": "d"}}"#),
            serde_json::json!({"name": "must be at most 100 characters"}),
        ),
        (
            r#"{"name": "Ada\u0000", "phone_number": "+15551234567", "description": "d\u001b[31m"}"#.into(),
            serde_json::json!({"name": "must not contain control characters", "description": "must not contain control characters"}),
        ),
        (
            r#"{"name": ["Ada"], "phone_number": 15551234567, "description": "d"}"#.into(),
            serde_json::json!({"name": "must be a string", "phone_number": "must be a string"}),
        ),
    ];
    for (body, fields) in cases {
        let response = post_json(&t, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(body_json(&response), serde_json::json!({"error": "invalid input", "fields": fields}), "{body}");
    }
    let response = post_json(&t, "name=Ada").await;
    assert_eq!(body_json(&response), serde_json::json!({"error": "the body is not valid JSON"}));
    assert!(t.tickets.is_empty());
}

#[tokio::test]
async fn refuses_an_oversized_body_unread() {
    let t = TestApp::new();
    let body = format!(r#"{{"name": "Ada", "phone_number": "+15551234567", "description": "{}"}}"#, "x".repeat(20_000));
    let response = post_json(&t, &body).await;
    assert_eq!(response.status(), 413);
    assert!(t.tickets.is_empty());
}

#[tokio::test]
async fn never_acknowledges_a_ticket_it_could_not_store() {
    let t = TestApp::build_with_tickets(
        config_with(&[]),
        MemoryCallStore::new(),
        MemoryTicketStore::failing(),
        RecordingDialer::default(),
    );
    let response = post_json(&t, VALID).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").unwrap(), "2");
    assert_eq!(body_json(&response), serde_json::json!({"error": "temporarily unavailable, please retry"}));
    assert_eq!(get(&t, "").await.status(), 503);
}

#[tokio::test]
async fn lists_newest_first_one_page_at_a_time() {
    let t = TestApp::new();
    // From three numbers: a number's second ticket while its first is open adds to that one.
    for (name, number) in [("first", "+15551234561"), ("second", "+15551234562"), ("third", "+15551234563")] {
        let body = format!(r#"{{"name": "{name}", "phone_number": "{number}", "description": "d"}}"#);
        assert_eq!(post_json(&t, &body).await.status(), 201);
        t.clock.advance(1);
    }
    let names = |page: &Value| -> Vec<String> {
        page["tickets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    let first = body_json(&get(&t, "?limit=2").await);
    assert_eq!(names(&first), ["third", "second"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = body_json(&get(&t, &format!("?limit=2&cursor={cursor}")).await);
    assert_eq!(names(&second), ["first"]);
    assert_eq!(second["next_cursor"], Value::Null);
    assert_eq!(names(&body_json(&get(&t, "").await)), ["third", "second", "first"]);
}

#[tokio::test]
async fn refuses_bad_paging_parameters() {
    let t = TestApp::new();
    for query in ["?limit=0", "?limit=101", "?limit=ten", "?limit=-1"] {
        let response = get(&t, query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(
            body_json(&response)["fields"],
            serde_json::json!({"limit": "must be a whole number from 1 to 100"})
        );
    }
    for query in ["?cursor=%%%", "?cursor=bm90LWEtdWxpZA"] {
        let response = get(&t, query).await;
        assert_eq!(
            body_json(&response)["fields"],
            serde_json::json!({"cursor": "is not a cursor from a previous page"})
        );
    }
}

#[tokio::test]
async fn other_methods_are_not_allowed() {
    let t = TestApp::new();
    let response = handle(&t.app, event("DELETE", "/tickets", &[], b"")).await.unwrap();
    assert_eq!(response.status(), 405);
}

// --- DIAL_COUNTRIES -----------------------------------------------------------------------------

#[tokio::test]
async fn a_number_outside_the_dial_countries_is_filed_but_flagged() {
    let t = TestApp::new(); // the support number is +1 555: the US by default
    for (number, outside) in [
        ("+18765550123", true), // Jamaica: +1, but not the US
        ("+442071838750", true),
        ("+19005550123", true), // premium rate: nobody's
        ("+12125550123", false),
    ] {
        let body = format!(r#"{{"name": "Ada", "phone_number": "{number}", "description": "Call me back, urgent"}}"#);
        let response = post_json(&t, &body).await;
        assert_eq!(response.status(), 201, "filed, not refused: {number}");
        let filed = body_json(&response);
        assert_eq!(filed.get("outside_dial_countries"), outside.then_some(&Value::Bool(true)), "{number}");
        let id = TicketId::parse(filed["id"].as_str().unwrap()).unwrap();
        let stored = shared::store::TicketStore::ticket(t.tickets.as_ref(), &id).await.unwrap().unwrap();
        assert_eq!(stored.outside_dial_countries, outside, "{number}");
        t.clock.advance(1);
    }
    let listed = body_json(&get(&t, "").await);
    let flags: Vec<Option<&Value>> =
        listed["tickets"].as_array().unwrap().iter().map(|ticket| ticket.get("outside_dial_countries")).collect();
    assert_eq!(flags, [None, Some(&Value::Bool(true)), Some(&Value::Bool(true)), Some(&Value::Bool(true))]);
}

#[tokio::test]
async fn the_dial_countries_setting_decides_what_is_outside() {
    let config = config_with(&[("DIAL_COUNTRIES", "US,JM")]);
    let t = TestApp::build(config, MemoryCallStore::new(), RecordingDialer::default());
    let jamaica = post_json(&t, r#"{"name": "Ada", "phone_number": "+18765550123", "description": "d"}"#).await;
    assert_eq!(body_json(&jamaica).get("outside_dial_countries"), None);
    let dominican = post_json(&t, r#"{"name": "Ada", "phone_number": "+18095550123", "description": "d"}"#).await;
    assert_eq!(body_json(&dominican)["outside_dial_countries"], true);
}
