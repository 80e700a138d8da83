//! Response builders, and the headers every browser-facing response carries. What becomes of
//! an error is decided in `error`; this module only shapes responses.

use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, RETRY_AFTER,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use lambda_http::http::{HeaderName, HeaderValue, StatusCode};
use lambda_http::{Body, Response};

use crate::twiml::VoiceResponse;

pub const TWIML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";
pub const JSON_CONTENT_TYPE: &str = "application/json";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// How long a client should wait before retrying after a 503: storage and Twilio recover from a
/// blip within seconds.
pub const RETRY_AFTER_SECONDS: i64 = 2;

/// Two years, the figure HSTS preload lists ask for.
pub const HSTS: &str = "max-age=63072000; includeSubDomains";

/// What the pages and the Voice SDK 2.x need, and nothing else: our own scripts and styles
/// (no inline code), Twilio's signalling (`wss://voice-js.<edge>.twilio.com`) and insights
/// (`https://eventgw.twilio.com`), and its sounds (`https://sdk.twilio.com`), which it fetches
/// for Web Audio and falls back to playing through `<audio>`. The browser test with the real SDK
/// fails if the SDK reaches for anything this leaves out.
pub const PAGE_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self' https://*.twilio.com wss://*.twilio.com; \
     media-src 'self' https://sdk.twilio.com; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'";

fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn twiml(document: &VoiceResponse) -> Response<Body> {
    response(StatusCode::OK, TWIML_CONTENT_TYPE, Body::from(document.to_xml()))
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    response(status, JSON_CONTENT_TYPE, Body::from(value.to_string()))
}

/// A CSV download (RFC 4180, UTF-8), saved as `filename`.
pub fn csv(body: String, filename: &str) -> Response<Body> {
    let mut response = response(StatusCode::OK, "text/csv; charset=utf-8", Body::from(body));
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        response.headers_mut().insert(lambda_http::http::header::CONTENT_DISPOSITION, disposition);
    }
    response
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(status, TEXT_CONTENT_TYPE, Body::from(body))
}

/// An HTML page, revalidated on every visit so a deploy's new asset names are picked up at once.
pub fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut response = response(status, HTML_CONTENT_TYPE, Body::from(body));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A file that never changes under its name (content-hashed): cached for a year.
pub fn immutable(content_type: &'static str, body: &'static [u8]) -> Response<Body> {
    let mut response = response(StatusCode::OK, content_type, Body::from(body));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}

/// Audio for an agent's browser: private, kept for the day (a recording never changes).
pub fn audio(content_type: &str, audio: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(audio));
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("audio/mpeg"));
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    response
}

/// `response` with a `Retry-After` of `seconds`.
pub fn retry_after(mut response: Response<Body>, seconds: i64) -> Response<Body> {
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// 303 See Other: after a form post, or to send a browser elsewhere, always with a GET.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = response(StatusCode::SEE_OTHER, TEXT_CONTENT_TYPE, Body::Empty);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// What every response a browser reads carries: HSTS when served over HTTPS, no MIME sniffing,
/// and, unless the response brings its own policy, a CSP that forbids loading anything and
/// being framed.
pub fn harden(response: &mut Response<Body>, https: bool) {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if https {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert_with(|| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
}

/// The headers of every page and asset: `harden`'s, the pages' CSP, and no framing, referrers
/// or device access beyond the microphone.
pub fn harden_page(response: &mut Response<Body>, https: bool) {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CONTENT_SECURITY_POLICY));
    // Not `no-referrer`: under it, browsers send `Origin: null` with same-site POSTs (forms and
    // fetch alike), which the CSRF check must refuse. `same-origin` still tells other sites nothing.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The customer page needs the microphone and nothing else a browser can grant.
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("microphone=(self), camera=(), geolocation=(), payment=(), usb=()"),
    );
    harden(response, https);
}
