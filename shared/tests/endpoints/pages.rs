use crate::prelude::*;
use shared::handlers::pages::handle;

async fn get(t: &TestApp, path: &str) -> Response<Body> {
    handle(&t.app, event("GET", path, &[], b"")).await.unwrap()
}

/// As `agent1`'s browser, signed in.
async fn get_signed_in(t: &TestApp, path: &str) -> Response<Body> {
    let cookie = t.session_cookie("agent1").await;
    handle(&t.app, event("GET", path, &[("cookie", &cookie)], b"")).await.unwrap()
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn versioned(name: &str) -> &'static str {
    shared::web::ASSETS.iter().find(|a| a.name == name).unwrap().versioned
}

fn assert_security_headers(response: &Response<Body>) {
    assert_eq!(header(response, "content-security-policy"), shared::response::PAGE_CONTENT_SECURITY_POLICY);
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "same-origin");
    assert_eq!(header(response, "x-frame-options"), "DENY");
    assert_eq!(header(response, "strict-transport-security"), "max-age=63072000; includeSubDomains");
    assert!(header(response, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(response.headers().get("access-control-allow-origin"), None, "CORS is off");
}

#[tokio::test]
async fn serves_both_pages_as_uncached_html_with_versioned_asset_urls() {
    let t = TestApp::new();
    for (path, title, script) in
        [("/", "<title>Support</title>", "customer.js"), ("/dashboard", "<title>Agent console</title>", "dashboard.js")]
    {
        let response = get_signed_in(&t, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(content_type(&response), "text/html; charset=utf-8");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert_security_headers(&response);
        let html = body_text(&response);
        assert!(html.starts_with("<!doctype html>") && html.contains(title), "{path}");
        assert!(!html.contains("{{"), "{path}: every placeholder is filled");
        for name in ["styles.css", "common.js", "twilio.min.js", script] {
            let tag = if name.ends_with(".css") { "href" } else { "src" };
            let url = format!(r#"{tag}="/static/{}""#, versioned(name));
            assert!(html.contains(&url), "{path} refers to {url}");
        }
    }
}

#[tokio::test]
async fn the_pages_carry_no_inline_code_the_csp_would_block() {
    let t = TestApp::new();
    for path in ["/", "/dashboard"] {
        let html = body_text(&get_signed_in(&t, path).await).to_ascii_lowercase();
        assert_eq!(html.matches("<script").count(), html.matches("<script src=").count(), "{path}");
        assert!(!html.contains("<style") && !html.contains(" style="), "{path}");
        let handler = html.match_indices(" on").map(|(i, _)| &html[i + 3..]).find(|after| {
            let name_len = after.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && after[name_len..].starts_with('=')
        });
        assert_eq!(handler, None, "{path} has an inline event handler");
    }
}

#[tokio::test]
async fn the_dashboard_shows_who_is_signed_in_as_text() {
    let t = TestApp::new();
    let id = shared::domain::AgentId::parse("agent1").unwrap();
    let agent = shared::domain::Agent::new(id, "Zoë <b>&</b>", shared::secret::Secret::new("x"), NOW);
    t.agents.create_agent(&agent).await.unwrap();
    let response = get_signed_in(&t, "/dashboard").await;
    assert_eq!(response.status(), 200);
    let html = body_text(&response);
    assert!(html.contains("Zoë &lt;b&gt;&amp;&lt;/b&gt;"), "{html}");
    assert!(html.contains("agent1"));
    assert!(!html.contains("<option"), "no roster picker: the agent is who signed in");
    assert!(!body_text(&get(&t, "/").await).contains("agent1"), "customers see no agent");
}

#[tokio::test]
async fn anyone_not_signed_in_is_sent_to_sign_in_first() {
    let t = TestApp::new();
    let live = t.session_cookie("agent1").await;
    let ended = t.session_cookie("agent2").await;
    t.agents.end_sessions(&shared::domain::AgentId::parse("agent2").unwrap()).await.unwrap();
    let forged = format!("{SESSION_COOKIE}=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudDEifQ.c2lnbmF0dXJl");
    let http_cookie = live.replace(SESSION_COOKIE, "warmline_session");
    for cookie in [None, Some(ended.as_str()), Some(forged.as_str()), Some(http_cookie.as_str())] {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        let response = handle(&t.app, event("GET", "/dashboard", &headers, b"")).await.unwrap();
        assert_eq!(response.status(), 303, "{cookie:?}");
        assert_eq!(header(&response, "location"), "/login?next=%2Fdashboard");
        assert!(!body_text(&response).contains("Agent console"));
        assert_security_headers(&response);
    }
    // The live session works until it expires, or the agent is disabled.
    let with_live = || event("GET", "/dashboard", &[("cookie", &live)], b"");
    assert_eq!(handle(&t.app, with_live()).await.unwrap().status(), 200);
    t.clock.advance(shared::session::SESSION_TTL_SECONDS);
    assert_eq!(handle(&t.app, with_live()).await.unwrap().status(), 303, "expired");

    let t = TestApp::new();
    let live = t.session_cookie("agent1").await;
    t.agents.set_disabled(&shared::domain::AgentId::parse("agent1").unwrap(), Some(NOW)).await.unwrap();
    let response = handle(&t.app, event("GET", "/dashboard", &[("cookie", &live)], b"")).await.unwrap();
    assert_eq!(response.status(), 303, "disabled");
}

#[tokio::test]
async fn the_dashboard_is_unavailable_not_open_when_storage_fails() {
    let t = TestApp::new();
    let cookie = t.session_cookie("agent1").await;
    let app = shared::App::new(
        config_with(&[]),
        shared::app::Ports {
            agents: std::sync::Arc::new(shared::store::memory::MemoryAgentStore::failing()),
            ..t.ports()
        },
    );
    let response = handle(&app, event("GET", "/dashboard", &[("cookie", &cookie)], b"")).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "retry-after"), "2");
}

#[tokio::test]
async fn serves_assets_under_their_versioned_names_for_a_year() {
    let t = TestApp::new();
    for (name, expected_type) in [
        ("styles.css", "text/css; charset=utf-8"),
        ("common.js", "text/javascript; charset=utf-8"),
        ("customer.js", "text/javascript; charset=utf-8"),
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("twilio.min.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let file = versioned(name);
        let (stem, extension) = name.rsplit_once('.').unwrap();
        let hash = file.strip_prefix(&format!("{stem}.")).and_then(|f| f.strip_suffix(&format!(".{extension}")));
        assert!(hash.is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())), "{file}");

        let response = get(&t, &format!("/static/{file}")).await;
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(content_type(&response), expected_type);
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable");
        assert_security_headers(&response);
        assert!(!response.body().is_empty());
    }
    let customer = get(&t, &format!("/static/{}", versioned("customer.js"))).await;
    assert_eq!(customer.body().as_ref(), include_bytes!("../../../web/customer.js"));
}

#[tokio::test]
async fn unknown_files_and_traversal_attempts_are_404() {
    let t = TestApp::new();
    for path in [
        "/static/customer.js", // unversioned: only the current hashed names exist
        "/static/customer.0000000000000000.js",
        "/static/",
        "/static",
        "/static/../Cargo.toml",
        "/static/..%2F..%2FCargo.toml",
        "/static/%2e%2e/web/index.html",
        "/static/index.html",
        "/static/package.json",
        "/dashboard/",
        "/index.html",
        "/nope",
    ] {
        let response = get(&t, path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(content_type(&response), "text/plain; charset=utf-8");
        assert_eq!(body_text(&response), "not found");
        assert_security_headers(&response);
    }
}

#[tokio::test]
async fn only_get_is_allowed() {
    let t = TestApp::new();
    let file = format!("/static/{}", versioned("styles.css"));
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/", "/dashboard", file.as_str()] {
            let response = handle(&t.app, event(method, path, &[], b"x")).await.unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(header(&response, "allow"), "GET");
            assert_security_headers(&response);
        }
    }
}
