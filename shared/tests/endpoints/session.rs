use crate::prelude::*;
use shared::handlers::session::handle;
use shared::handlers::token;

const PASSWORD: &str = "correct horse battery staple";

fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn login(agent_id: &str, password: &str) -> Request {
    form_post("/login", &[("agent_id", agent_id), ("password", password), ("next", "/dashboard")])
}

async fn send(t: &TestApp, request: Request) -> Response<Body> {
    handle(&t.app, request).await.unwrap()
}

/// The `Cookie` header a browser sends back after `response` set it.
fn cookie_from(response: &Response<Body>) -> String {
    header(response, "set-cookie").split(';').next().unwrap().to_owned()
}

async fn identity_with(t: &TestApp, cookie: &str) -> String {
    let response = token::handle(&t.app, with_header(json_post("/token", ""), "cookie", cookie)).await.unwrap();
    body_json(&response)["identity"].as_str().unwrap().to_owned()
}

fn agent_id(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

#[tokio::test]
async fn the_login_page_keeps_where_the_agent_was_going_if_it_is_on_this_site() {
    let t = TestApp::new();
    for (query, next) in [
        ("", "/dashboard"),
        ("?next=%2Fdashboard", "/dashboard"),
        ("?next=%2Fdashboard%3Fx%3D%22%3E", "/dashboard?x=&quot;&gt;"),
        ("?next=%2F%2Fevil.example", "/dashboard"),
        ("?next=https%3A%2F%2Fevil.example", "/dashboard"),
        ("?next=%2F%5Cevil.example", "/dashboard"),
    ] {
        let response = send(&t, event("GET", &format!("/login{query}"), &[], b"")).await;
        assert_eq!(response.status(), 200, "{query}");
        assert_eq!(content_type(&response), "text/html; charset=utf-8");
        let html = body_text(&response);
        assert!(html.contains(&format!(r#"name="next" value="{next}""#)), "{query}: {html}");
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(header(&response, "content-security-policy").contains("frame-ancestors 'none'"));
        assert_eq!(header(&response, "strict-transport-security"), shared::response::HSTS);
    }
}

#[tokio::test]
async fn signing_in_sets_a_strict_session_cookie_and_returns_to_the_page() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    let request = form_post("/login", &[("agent_id", " agent1 "), ("password", PASSWORD), ("next", "/dashboard?x=1")]);
    let response = send(&t, request).await;
    assert_eq!(response.status(), 303);
    assert_eq!(header(&response, "location"), "/dashboard?x=1");
    let set_cookie = header(&response, "set-cookie");
    assert!(set_cookie.starts_with("__Host-warmline_session=ey"), "{set_cookie}");
    assert!(set_cookie.ends_with("; Max-Age=43200; Path=/; HttpOnly; SameSite=Strict; Secure"), "{set_cookie}");
    let cookie = cookie_from(&response);
    assert_eq!(identity_with(&t, &cookie).await, "agent1");
    // Signed in already, the login page sends the agent on.
    let response = send(&t, event("GET", "/login?next=%2Fdashboard", &[("cookie", &cookie)], b"")).await;
    assert_eq!((response.status().as_u16(), header(&response, "location")), (303, "/dashboard"));
}

#[tokio::test]
async fn a_wrong_password_an_unknown_id_and_a_disabled_agent_look_the_same() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    t.enroll_with_password("agent2", PASSWORD).await;
    t.agents.set_disabled(&agent_id("agent2"), Some(NOW)).await.unwrap();
    let mut pages = Vec::new();
    for (id, password) in
        [("agent1", "wrong password!"), ("ghost", PASSWORD), ("agent2", PASSWORD), ("not an id", PASSWORD)]
    {
        let response = send(&t, login(id, password)).await;
        assert_eq!(response.status(), 401, "{id}");
        assert_eq!(header(&response, "set-cookie"), "", "{id}");
        assert!(body_text(&response).contains(INVALID_CREDENTIALS));
        pages.push(body_text(&response));
    }
    assert!(pages.windows(2).all(|pair| pair[0] == pair[1]), "the same page, whatever was wrong");
    for id in ["agent1", "ghost", "agent2"] {
        assert_eq!(t.agents.login_failures(&agent_id(id), NOW).await.unwrap(), 1, "{id}");
    }
}

#[tokio::test]
async fn five_failures_lock_an_id_out_for_15_minutes_whether_or_not_it_exists() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    let mut locked_pages = Vec::new();
    for id in ["agent1", "ghost"] {
        for attempt in 1..=LOGIN_FAILURE_LIMIT {
            assert_eq!(send(&t, login(id, "wrong password!")).await.status(), 401, "{id} attempt {attempt}");
        }
        let response = send(&t, login(id, PASSWORD)).await;
        assert_eq!(response.status(), 429, "{id}: refused even with the right password");
        assert_eq!(header(&response, "retry-after"), "900");
        assert_eq!(header(&response, "set-cookie"), "");
        assert!(body_text(&response).contains(LOCKED_OUT));
        locked_pages.push(body_text(&response));
    }
    assert_eq!(locked_pages[0], locked_pages[1], "a lockout does not tell which ids exist");
    // Others are not locked out.
    t.enroll_with_password("agent2", PASSWORD).await;
    assert_eq!(send(&t, login("agent2", PASSWORD)).await.status(), 303);

    t.clock.advance(LOGIN_LOCKOUT_SECONDS - 1);
    assert_eq!(send(&t, login("agent1", PASSWORD)).await.status(), 429);
    t.clock.advance(1);
    assert_eq!(send(&t, login("agent1", PASSWORD)).await.status(), 303, "15 minutes later");
    assert_eq!(t.agents.login_failures(&agent_id("agent1"), NOW).await.unwrap(), 0, "success starts over");
}

#[tokio::test]
async fn a_sign_in_from_another_site_is_refused_and_not_counted() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    for request in [
        with_header(login("agent1", PASSWORD), "origin", "https://evil.example"),
        without_header(login("agent1", PASSWORD), "origin"),
    ] {
        let response = send(&t, request).await;
        assert_eq!(response.status(), 403);
        assert_eq!(header(&response, "set-cookie"), "");
    }
    assert_eq!(t.agents.login_failures(&agent_id("agent1"), NOW).await.unwrap(), 0);
}

#[tokio::test]
async fn signing_out_ends_every_session_of_the_agent() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    let laptop = cookie_from(&send(&t, login("agent1", PASSWORD)).await);
    let phone = cookie_from(&send(&t, login("agent1", PASSWORD)).await);

    // Another site cannot sign the agent out.
    let forged =
        with_header(with_header(form_post("/logout", &[]), "cookie", &laptop), "origin", "https://evil.example");
    assert_eq!(send(&t, forged).await.status(), 403);
    assert_eq!(identity_with(&t, &laptop).await, "agent1");

    let response = send(&t, with_header(form_post("/logout", &[]), "cookie", &laptop)).await;
    assert_eq!((response.status().as_u16(), header(&response, "location")), (303, "/login"));
    assert_eq!(
        header(&response, "set-cookie"),
        "__Host-warmline_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict; Secure"
    );
    for cookie in [&laptop, &phone] {
        assert!(identity_with(&t, cookie).await.starts_with("customer_"), "a copy of the cookie is worthless too");
    }
    // Back at the login page with the dead cookie: told why, and the cookie is dropped.
    let response = send(&t, event("GET", "/login", &[("cookie", &phone)], b"")).await;
    assert_eq!(response.status(), 200);
    assert!(body_text(&response).contains(shared::handlers::session::SESSION_ENDED));
    assert!(header(&response, "set-cookie").contains("Max-Age=0"));
}

#[tokio::test]
async fn storage_failures_are_a_retryable_503() {
    let t = TestApp::new();
    let app = shared::App::new(
        config_with(&[]),
        shared::app::Ports {
            agents: std::sync::Arc::new(shared::store::memory::MemoryAgentStore::failing()),
            ..t.ports()
        },
    );
    let response = handle(&app, login("agent1", PASSWORD)).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "retry-after"), "2");
    assert_eq!(header(&response, "set-cookie"), "");
}

#[tokio::test]
async fn over_plain_http_on_loopback_the_cookie_is_not_secure() {
    let t = TestApp::build(
        config_with(&[("PUBLIC_BASE_URL", "http://127.0.0.1:9000")]),
        shared::store::memory::MemoryCallStore::new(),
        RecordingDialer::default(),
    );
    t.enroll_with_password("agent1", PASSWORD).await;
    let request = with_header(login("agent1", PASSWORD), "origin", "http://127.0.0.1:9000");
    let response = send(&t, request).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        header(&response, "set-cookie").split_once(';').unwrap().1,
        " Max-Age=43200; Path=/; HttpOnly; SameSite=Strict"
    );
    assert!(header(&response, "set-cookie").starts_with("warmline_session="));
    assert_eq!(header(&response, "strict-transport-security"), "", "no HSTS over HTTP");
}

#[tokio::test]
async fn bad_requests_are_refused_politely() {
    let t = TestApp::new();
    let response = send(&t, form_post("/login", &[("agent_id", "agent1")])).await;
    assert_eq!(response.status(), 400);
    let huge = "x".repeat(shared::http::MAX_BODY_BYTES + 1);
    let response = send(&t, form_post("/login", &[("agent_id", "agent1"), ("password", &huge)])).await;
    assert_eq!(response.status(), 413);
    let response = send(&t, event("GET", "/logout", &[], b"")).await;
    assert_eq!((response.status().as_u16(), header(&response, "allow")), (405, "POST"));
    let response = send(&t, event("DELETE", "/login", &[], b"")).await;
    assert_eq!((response.status().as_u16(), header(&response, "allow")), (405, "GET, POST"));
    assert_eq!(send(&t, event("GET", "/nope", &[], b"")).await.status(), 404);
}
