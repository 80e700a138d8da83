//! `GET /`, `GET /dashboard`, `GET /static/{file}`: the customer page, the agent dashboard and
//! their assets, all embedded in the binary (a Lambda package is only `bootstrap`). The
//! dashboard is for signed-in agents; anyone else is sent to sign in first.
//!
//! Assets are served under content-hashed names (`styles.<hash>.css`, see `shared/build.rs`)
//! that the HTML refers to, so they can be cached for a year while a deploy still reaches every
//! browser at once: the HTML itself is `no-cache`.

use lambda_http::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS,
};
use lambda_http::http::{HeaderName, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};

use crate::App;
use crate::http;
use crate::session::{self, Session};

/// An embedded file: the name the templates use, the content-hashed name it is served under.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub versioned: &'static str,
    pub body: &'static [u8],
}

mod embedded {
    use super::Asset;
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

pub use embedded::ASSETS;

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const DASHBOARD_HTML: &str = include_str!("../../../web/dashboard.html");
pub(crate) const LOGIN_HTML: &str = include_str!("../../../web/login.html");
/// Where an agent who is not signed in is sent from the dashboard.
pub(crate) const DASHBOARD_LOGIN: &str = "/login?next=%2Fdashboard";

/// What the pages and the Voice SDK 2.x need, and nothing else: our own scripts and styles
/// (no inline code), Twilio's signalling (`wss://voice-js.<edge>.twilio.com`) and insights
/// (`https://eventgw.twilio.com`), and its sounds (`https://sdk.twilio.com`), which it fetches
/// for Web Audio and falls back to playing through `<audio>`. The browser test with the real SDK
/// fails if the SDK reaches for anything this leaves out.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self' https://*.twilio.com wss://*.twilio.com; \
     media-src 'self' https://sdk.twilio.com; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let mut response = respond(app, &req).await;
    with_page_headers(app, &req, &mut response);
    Ok(response)
}

/// The headers of every page and asset: `http::harden`'s, this CSP, and no framing, referrers
/// or device access beyond the microphone.
pub(crate) fn with_page_headers(app: &App, req: &Request, response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    // Not `no-referrer`: under it, browsers send `Origin: null` with same-site POSTs (forms and
    // fetch alike), which the CSRF check must refuse. `same-origin` still tells other sites nothing.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The customer page needs the microphone and nothing else a browser can grant.
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("microphone=(self), camera=(), geolocation=(), payment=(), usb=()"),
    );
    http::harden(&app.config, req, response);
}

async fn respond(app: &App, req: &Request) -> Response<Body> {
    if req.method() != Method::GET {
        let mut response = http::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let path = http::raw_path(req);
    match path.as_str() {
        "/" => page(StatusCode::OK, INDEX_HTML, &[]),
        "/dashboard" => match session::session(app, req).await {
            Ok(Session::SignedIn(agent)) => page(
                StatusCode::OK,
                DASHBOARD_HTML,
                &[("agent_id", agent.id.as_str()), ("agent_name", &agent.display_name)],
            ),
            Ok(Session::None | Session::Ended) => http::redirect(DASHBOARD_LOGIN),
            Err(err) => {
                tracing::error!(error = %err, "could not check the session");
                unavailable()
            }
        },
        _ => path.strip_prefix("/static/").and_then(find_versioned).map_or_else(not_found, asset),
    }
}

fn not_found() -> Response<Body> {
    http::text(StatusCode::NOT_FOUND, "not found")
}

/// Only the current content-hashed names exist: anything else, including `..` or an encoded
/// slash, is simply not in the table.
fn find_versioned(file: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.versioned == file)
}

fn asset(asset: &'static Asset) -> Response<Body> {
    let mut response = Response::new(Body::from(asset.body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type_of(asset.name)));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    response
}

fn content_type_of(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// For a page that cannot be served now (storage down): try again shortly.
pub(crate) fn unavailable() -> Response<Body> {
    http::retry_after(
        http::text(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable, please retry"),
        http::RETRY_AFTER_SECONDS,
    )
}

/// `template` rendered with `values` (see `render`), as an uncached HTML page.
pub(crate) fn page(status: StatusCode, template: &str, values: &[(&str, &str)]) -> Response<Body> {
    let mut response = Response::new(Body::from(render(template, values)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Revalidated on every visit, so a deploy's new asset names are picked up at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Fills `{{static:NAME}}` with the asset's versioned URL and `{{key}}` with the HTML-escaped
/// value of `key` in `values`. An unknown placeholder is left as it is (a test checks none
/// remain).
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut html = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        html.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            rest = &rest[start..];
            break;
        };
        let key = &after[..end];
        if let Some((_, value)) = values.iter().find(|(name, _)| *name == key) {
            html.push_str(&escape_html(value));
        } else if let Some(asset) = key.strip_prefix("static:").and_then(|name| ASSETS.iter().find(|a| a.name == name))
        {
            html.push_str("/static/");
            html.push_str(asset.versioned);
        } else {
            html.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    html.push_str(rest);
    html
}

/// Values are agents' names and ids, and a path from the query string: text, never markup.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::testing::*;

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
        ASSETS.iter().find(|a| a.name == name).unwrap().versioned
    }

    fn assert_security_headers(response: &Response<Body>) {
        assert_eq!(header(response, "content-security-policy"), CONTENT_SECURITY_POLICY_VALUE);
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
        for (path, title, script) in [
            ("/", "<title>Support</title>", "customer.js"),
            ("/dashboard", "<title>Agent console</title>", "dashboard.js"),
        ] {
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
        let id = crate::domain::AgentId::parse("agent1").unwrap();
        let agent = crate::store::Agent::new(id, "Zoë <b>&</b>", crate::secret::Secret::new("x"), NOW);
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
        t.agents.end_sessions(&crate::domain::AgentId::parse("agent2").unwrap()).await.unwrap();
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
        t.clock.advance(crate::session::SESSION_TTL_SECONDS);
        assert_eq!(handle(&t.app, with_live()).await.unwrap().status(), 303, "expired");

        let t = TestApp::new();
        let live = t.session_cookie("agent1").await;
        t.agents.set_disabled(&crate::domain::AgentId::parse("agent1").unwrap(), Some(NOW)).await.unwrap();
        let response = handle(&t.app, event("GET", "/dashboard", &[("cookie", &live)], b"")).await.unwrap();
        assert_eq!(response.status(), 303, "disabled");
    }

    #[tokio::test]
    async fn the_dashboard_is_unavailable_not_open_when_storage_fails() {
        let t = TestApp::new();
        let cookie = t.session_cookie("agent1").await;
        let app = crate::App::new(
            config_with(&[]),
            crate::app::Ports {
                agents: std::sync::Arc::new(crate::store::memory::MemoryAgentStore::failing()),
                ..t.ports()
            },
        );
        let response = handle(&app, event("GET", "/dashboard", &[("cookie", &cookie)], b"")).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(header(&response, "retry-after"), "2");
    }

    #[test]
    fn escapes_text_for_html() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape_html("agent_1"), "agent_1");
    }

    #[test]
    fn leaves_unknown_placeholders_and_keeps_the_rest() {
        assert_eq!(
            render("x {{nope}} {{name}} {{static:missing.js}} {{", &[("name", "<a1>")]),
            "x {{nope}} &lt;a1&gt; {{static:missing.js}} {{"
        );
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
}
