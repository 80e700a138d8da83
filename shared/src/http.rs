//! What a request says: its public origin, its fields, its query. Parsed once, here; responses
//! are built in `response`, errors answered in `error`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::config::Config;
use crate::error::AppError;
use crate::routes::{self, Route};

/// No form or JSON body Warmline accepts comes near this; anything bigger is refused unread.
/// Twilio's largest webhooks (a call's status callback with every geographic field, a
/// `<Record>` action) are under 2 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The most form parameters a webhook may have. Twilio's largest send about 50 (a voice
/// request's 30 with the geographic fields, plus a status callback's or a `<Gather>`'s own, plus
/// the few a browser passes); twenty times that still refuses what a 16 KiB body of one-letter
/// names would hold (8,192), unparsed and unhashed.
pub const MAX_WEBHOOK_PARAMS: usize = 1_000;

/// Refuses, before anything is parsed or hashed, a webhook body bigger than Twilio ever sends:
/// anyone can send one, and checking its signature would cost time in proportion.
pub fn webhook_within_limits(req: &Request) -> Result<(), AppError> {
    let body = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(AppError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    // Each `&` starts another parameter; empty ones count too, which only ever refuses junk.
    if body.iter().filter(|&&byte| byte == b'&').count() >= MAX_WEBHOOK_PARAMS {
        return Err(AppError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    Ok(())
}

/// The origin Twilio and browsers reach us at: `PUBLIC_BASE_URL` when configured (custom
/// domains, local runs), else `https://` and the API Gateway domain of the request. Worked out
/// once per request, at the entry (`pipeline`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin(Option<String>);

impl PublicOrigin {
    pub fn of(config: &Config, req: &Request) -> Self {
        if let Some(base) = &config.public_base_url {
            return Self(Some(base.clone()));
        }
        let domain = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
            _ => None,
        }
        .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()).map(str::to_owned));
        Self(domain.map(|domain| format!("https://{domain}")))
    }

    /// Links to our own routes, when the origin is known.
    pub fn links(&self) -> Option<Links> {
        self.0.clone().map(|base_url| Links { base_url })
    }

    pub fn is_https(&self) -> bool {
        self.0.as_deref().is_some_and(|base| base.starts_with("https://"))
    }

    /// Whether cookies must be `Secure`: always, except for a local run over plain HTTP on the
    /// loopback interface, where a browser would drop a Secure cookie.
    pub fn cookies_must_be_secure(&self) -> bool {
        let Some(authority) = self.0.as_deref().and_then(|base| base.strip_prefix("http://")) else { return true };
        let host = authority.rsplit_once(':').map_or(authority, |(host, _port)| host);
        !(host == "localhost" || host == "[::1]" || host.starts_with("127."))
    }

    /// For state-changing requests that a session authorises: browsers send `Origin` with every
    /// POST, so a missing or foreign one is a forged cross-site request (CSRF) or not a browser.
    pub fn require_same_origin(&self, req: &Request) -> Result<(), AppError> {
        let sent = req.headers().get(ORIGIN).and_then(|value| value.to_str().ok());
        match (sent, &self.0) {
            (Some(sent), Some(ours)) if sent.eq_ignore_ascii_case(ours) => Ok(()),
            (Some(_), _) => Err(AppError::Forbidden("cross-origin request")),
            (None, _) => Err(AppError::Forbidden("no Origin header")),
        }
    }

    /// For endpoints anyone may call (filing a ticket): other sites' pages may not, but a client
    /// that is not a browser, and so sends no `Origin`, may.
    pub fn reject_foreign_origin(&self, req: &Request) -> Result<(), AppError> {
        match req.headers().get(ORIGIN) {
            None => Ok(()),
            Some(_) => self.require_same_origin(req),
        }
    }

    /// The full URL of this request as Twilio signed it.
    pub fn request_url(&self, req: &Request) -> Option<String> {
        let mut url = self.0.clone()?;
        url.push_str(&routes::raw_path(req));
        if let Some(query) = req.uri().query().filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(query);
        }
        Some(url)
    }
}

/// Absolute URLs of our routes, for Twilio to call back (Twilio needs absolute URLs, and a
/// relative one would break behind a custom domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    base_url: String,
}

impl Links {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self { base_url: base_url.into() }
    }

    pub fn url(&self, route: &Route) -> String {
        format!("{}{}", self.base_url, route.path())
    }
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
        return Err(AppError::PayloadTooLarge { limit: MAX_BODY_BYTES });
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

/// The address the request came from: API Gateway's `requestContext.http.sourceIp`, the peer
/// of the connection it accepted, which no header the client writes can change. `None` when the
/// request did not come through API Gateway (or names no valid address).
pub fn source_address(req: &Request) -> Option<std::net::IpAddr> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref()?.parse().ok(),
        _ => None,
    }
}

/// Cursors are opaque to clients, so the store's position can change form without breaking them.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

pub fn decode_cursor(cursor: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_except_over_plain_http_on_loopback() {
        let origin = |base: &str| PublicOrigin(Some(base.to_owned()));
        for base in ["https://abc.execute-api.us-east-1.amazonaws.com", "https://127.0.0.1:9000", "http://example.com"]
        {
            assert!(origin(base).cookies_must_be_secure(), "{base}");
        }
        for base in ["http://127.0.0.1:9000", "http://localhost:9000", "http://localhost", "http://[::1]:9000"] {
            assert!(!origin(base).cookies_must_be_secure(), "{base}");
        }
        assert!(PublicOrigin(None).cookies_must_be_secure());
    }
}
