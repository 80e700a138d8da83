//! `GET /`, `GET /dashboard`, `GET /static/{file}`: the customer page, the agent dashboard and
//! their assets, all embedded in the binary (a Lambda package is only `bootstrap`).
//!
//! Assets are served under content-hashed names (`styles.<hash>.css`, see `shared/build.rs`)
//! that the HTML refers to, so they can be cached for a year while a deploy still reaches every
//! browser at once: the HTML itself is `no-cache`.

use lambda_http::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use lambda_http::http::{HeaderName, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};

use crate::App;
use crate::domain::Roster;
use crate::http;

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
    let mut response = respond(app, &req);
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The customer page needs the microphone and nothing else a browser can grant.
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("microphone=(self), camera=(), geolocation=(), payment=(), usb=()"),
    );
    Ok(response)
}

fn respond(app: &App, req: &Request) -> Response<Body> {
    if req.method() != Method::GET {
        let mut response = http::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let path = http::raw_path(req);
    match path.as_str() {
        "/" => page(INDEX_HTML, &app.config.roster),
        "/dashboard" => page(DASHBOARD_HTML, &app.config.roster),
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

fn page(template: &str, roster: &Roster) -> Response<Body> {
    let mut response = Response::new(Body::from(render(template, roster)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Revalidated on every visit, so a deploy's new asset names are picked up at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Fills `{{static:NAME}}` with the asset's versioned URL and `{{roster}}` with the roster's
/// `<option>`s. An unknown placeholder is left as it is (a test checks none remain).
fn render(template: &str, roster: &Roster) -> String {
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
        if key == "roster" {
            for agent in roster.agents() {
                let id = escape_html(agent.as_str());
                html.push_str(&format!(r#"<option value="{id}">{id}</option>"#));
            }
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

/// Roster ids are letters, digits and `_` today; escaping keeps the page safe if that rule
/// ever loosens.
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
    use crate::store::memory::MemoryCallStore;

    async fn get(t: &TestApp, path: &str) -> Response<Body> {
        handle(&t.app, event("GET", path, &[], b"")).await.unwrap()
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
        assert_eq!(header(response, "referrer-policy"), "no-referrer");
        assert_eq!(header(response, "x-frame-options"), "DENY");
    }

    #[tokio::test]
    async fn serves_both_pages_as_uncached_html_with_versioned_asset_urls() {
        let t = TestApp::new();
        for (path, title, script) in [
            ("/", "<title>Support</title>", "customer.js"),
            ("/dashboard", "<title>Agent console</title>", "dashboard.js"),
        ] {
            let response = get(&t, path).await;
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
            let html = body_text(&get(&t, path).await).to_ascii_lowercase();
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
    async fn the_dashboard_lists_the_roster_in_order() {
        let t = TestApp::build(
            config_with(&[("AGENT_IDS", "zoe_2,alice,Bob")]),
            MemoryCallStore::new(),
            RecordingDialer::default(),
        );
        let html = body_text(&get(&t, "/dashboard").await);
        assert!(
            html.contains(
                r#"<select id="agent" name="agent"><option value="zoe_2">zoe_2</option><option value="alice">alice</option><option value="Bob">Bob</option></select>"#
            ),
            "{html}"
        );
        assert!(!body_text(&get(&t, "/").await).contains("<option"), "customers do not see the roster");
    }

    #[test]
    fn escapes_text_for_html() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape_html("agent_1"), "agent_1");
    }

    #[test]
    fn leaves_unknown_placeholders_and_keeps_the_rest() {
        let roster = Roster::parse("a1").unwrap();
        assert_eq!(
            render("x {{nope}} {{roster}} {{static:missing.js}} {{", &roster),
            r#"x {{nope}} <option value="a1">a1</option> {{static:missing.js}} {{"#
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
