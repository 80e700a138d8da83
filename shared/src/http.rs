//! Request parsing and response building shared by every handler.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, LOCATION, RETRY_AFTER, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS,
};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::config::Config;
use crate::error::AppError;
use crate::twiml::VoiceResponse;

pub const TWIML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// No form or JSON body Warmline accepts comes near this; anything bigger is refused unread.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

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

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", Body::from(body))
}

/// How long a client should wait before retrying after a 503: storage and Twilio recover from a
/// blip within seconds.
pub const RETRY_AFTER_SECONDS: i64 = 2;

/// `response` with a `Retry-After` of `seconds`.
pub fn retry_after(mut response: Response<Body>, seconds: i64) -> Response<Body> {
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// 303 See Other: after a form post, or to send a browser elsewhere, always with a GET.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", Body::Empty);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// Two years, the figure HSTS preload lists ask for.
pub const HSTS: &str = "max-age=63072000; includeSubDomains";

/// What every response a browser reads carries: HSTS when served over HTTPS, no MIME sniffing,
/// and, unless the response brings its own policy (the pages do), a CSP that forbids loading
/// anything and being framed.
pub fn harden(config: &Config, req: &Request, response: &mut Response<Body>) {
    let https = public_base_url(config, req).is_some_and(|base| base.starts_with("https://"));
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if https {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert_with(|| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
}

/// The raw path as the client sent it: API Gateway's `rawPath` when there is one.
pub fn raw_path(req: &Request) -> String {
    match req.raw_http_path() {
        "" => req.uri().path().to_owned(),
        raw => raw.to_owned(),
    }
}

/// The origin Twilio and browsers reach us at: `PUBLIC_BASE_URL` when configured (custom
/// domains, local runs), else `https://` and the API Gateway domain of this request.
pub fn public_base_url(config: &Config, req: &Request) -> Option<String> {
    if let Some(base) = &config.public_base_url {
        return Some(base.clone());
    }
    let domain = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    }
    .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))?;
    Some(format!("https://{domain}"))
}

/// The full URL of this request as Twilio signed it.
pub fn public_url(config: &Config, req: &Request) -> Option<String> {
    let mut url = public_base_url(config, req)?;
    url.push_str(&raw_path(req));
    if let Some(query) = req.uri().query().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(query);
    }
    Some(url)
}

/// Form parameters in the order they came, repeated names kept.
pub fn form_params(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.body().as_ref()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

/// The fields of a JSON object body or a form body, whichever the request sent. Every value
/// must be a string; a name given twice is an error rather than a silent pick.
pub fn fields(req: &Request) -> Result<BTreeMap<String, String>, AppError> {
    let body = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    if is_json(req) {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(BTreeMap::new());
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| AppError::bad_request("the body is not valid JSON"))?;
        let serde_json::Value::Object(object) = value else {
            return Err(AppError::bad_request("the body must be a JSON object"));
        };
        let mut fields = BTreeMap::new();
        let mut wrong_type = BTreeMap::new();
        for (name, value) in object {
            match value {
                serde_json::Value::String(s) => {
                    fields.insert(name, s);
                }
                serde_json::Value::Null => {}
                _ => {
                    wrong_type.insert(name, "must be a string".to_owned());
                }
            }
        }
        if !wrong_type.is_empty() {
            return Err(AppError::invalid_fields(wrong_type));
        }
        return Ok(fields);
    }
    let mut fields = BTreeMap::new();
    for (name, value) in form_params(req) {
        if fields.insert(name.clone(), value).is_some() {
            return Err(AppError::invalid_fields([(name, "was given more than once".to_owned())].into()));
        }
    }
    Ok(fields)
}

/// Query parameters; the first value wins when a name repeats.
pub fn query_params(req: &Request) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
        params.entry(name.into_owned()).or_insert_with(|| value.into_owned());
    }
    params
}

/// Cursors are opaque to clients, so the store's position can change form without breaking them.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

pub fn decode_cursor(cursor: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()
}

/// Path segments of the raw path, percent-decoding not applied (ids never need it).
pub fn path_segments(req: &Request) -> Vec<String> {
    raw_path(req).split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}
