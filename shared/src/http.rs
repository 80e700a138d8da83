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
        // Room for the longest path (a conference's and an agent's ids), so it is written once.
        let mut url = String::with_capacity(self.base_url.len() + 96);
        url.push_str(&self.base_url);
        route.write_path(&mut url);
        url
    }
}

/// Form parameters in the order they came, repeated names kept.
pub fn form_params(req: &Request) -> FormParams {
    FormParams::parse(req.body().as_ref())
}

/// Decoded form parameters, held as one string and the place of each name and value in it:
/// a webhook's thirty-odd parameters cost two allocations rather than sixty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormParams {
    text: String,
    pairs: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl FormParams {
    /// As `application/x-www-form-urlencoded` is parsed (`form_urlencoded::parse`, the WHATWG
    /// URL standard): `&`-separated, empty pieces skipped, split at the first `=`, `+` a space,
    /// `%XX` a byte (a `%` not followed by two hex digits kept as it is), each name and value
    /// then read as UTF-8 with invalid sequences replaced.
    pub fn parse(body: &[u8]) -> Self {
        // One pass over the body into one buffer, checked as UTF-8 once at the end; a body that
        // is not UTF-8 once decoded (never Twilio's) is parsed again, piece by piece.
        let mut text = Vec::with_capacity(body.len());
        let mut pairs = Vec::with_capacity(32);
        let (mut piece_start, mut name_start, mut name_end) = (0, 0, None);
        let mut at = 0;
        while at < body.len() {
            match body[at] {
                b'&' => {
                    if at > piece_start {
                        pairs.push(pair(name_start, name_end, text.len()));
                    }
                    (piece_start, name_start, name_end) = (at + 1, text.len(), None);
                }
                b'=' if name_end.is_none() => name_end = Some(text.len()),
                b'+' => text.push(b' '),
                b'%' => match (body.get(at + 1).copied().and_then(hex), body.get(at + 2).copied().and_then(hex)) {
                    (Some(high), Some(low)) => {
                        text.push(high << 4 | low);
                        at += 2;
                    }
                    _ => text.push(b'%'),
                },
                byte => text.push(byte),
            }
            at += 1;
        }
        if body.len() > piece_start {
            pairs.push(pair(name_start, name_end, text.len()));
        }
        match String::from_utf8(text) {
            // A character can be split between a name and its value, or two parameters.
            Ok(text)
                if pairs.iter().all(|(name, value)| {
                    text.is_char_boundary(name.start)
                        && text.is_char_boundary(value.start)
                        && text.is_char_boundary(value.end)
                }) =>
            {
                Self { text, pairs }
            }
            _ => Self::parse_lossy(body),
        }
    }

    fn parse_lossy(body: &[u8]) -> Self {
        let mut text = Vec::with_capacity(body.len());
        let mut pairs = Vec::new();
        for piece in body.split(|&byte| byte == b'&').filter(|piece| !piece.is_empty()) {
            let (name, value) = match piece.iter().position(|&byte| byte == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &[][..]),
            };
            let name = decode_into(&mut text, name);
            let value = decode_into(&mut text, value);
            pairs.push((name, value));
        }
        // Every piece was made valid UTF-8 as it was added.
        let text = String::from_utf8(text).unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
        Self { text, pairs }
    }

    /// Each name and value, in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(name, value)| (&self.text[name.clone()], &self.text[value.clone()]))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, value)| value)
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// The places of a piece's name and value in the buffer: the name up to its `=` (all of it when
/// there is none), the value after it.
fn pair(name_start: usize, name_end: Option<usize>, end: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let name_end = name_end.unwrap_or(end);
    (name_start..name_end, name_end..end)
}

/// Appends `encoded` decoded to `text`, as valid UTF-8; returns where it went.
fn decode_into(text: &mut Vec<u8>, encoded: &[u8]) -> std::ops::Range<usize> {
    let start = text.len();
    let mut rest = encoded;
    while let Some(at) = rest.iter().position(|&byte| byte == b'%' || byte == b'+') {
        text.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            text.push(b' ');
            rest = &rest[at + 1..];
            continue;
        }
        match (rest.get(at + 1).copied().and_then(hex), rest.get(at + 2).copied().and_then(hex)) {
            (Some(high), Some(low)) => {
                text.push(high << 4 | low);
                rest = &rest[at + 3..];
            }
            _ => {
                text.push(b'%');
                rest = &rest[at + 1..];
            }
        }
    }
    text.extend_from_slice(rest);
    if let Err(err) = std::str::from_utf8(&text[start..]) {
        let valid_up_to = start + err.valid_up_to();
        let replaced = String::from_utf8_lossy(&text[valid_up_to..]).into_owned();
        text.truncate(valid_up_to);
        text.extend_from_slice(replaced.as_bytes());
    }
    start..text.len()
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|digit| u8::try_from(digit).ok())
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
    for (name, value) in form_params(req).iter() {
        if fields.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(AppError::invalid_fields([(name.to_owned(), "was given more than once".to_owned())].into()));
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

    /// Whatever the body, the parameters are what `form_urlencoded` (the WHATWG parser) reads.
    #[test]
    fn form_params_are_what_the_standard_parser_reads() {
        let bodies: [&[u8]; 16] = [
            b"%C3=%A9&x=%E2%82&%AC=1",
            b"a=%C3&%A9",
            b"",
            b"&&",
            b"CallSid=CA123&From=%2B15551234567&Caller=%2B15551234567",
            b"a=1&a=2&b",
            b"=x&y=&&z==3",
            b"name=Ada+Lovelace&note=caf%C3%A9+%26+%3D+%25",
            b"bad=%&worse=%4&hex=%4a%4A%zz%a",
            b"lossy=%FF%FE&split=%C3&raw=\xff",
            b"plus=a+b%2Bc++",
            b"%3D=%26&%=%%",
            "utf8=é&ünïcode=✓".as_bytes(),
            b"\xc3\xa9=\xe2\x82",
            b"trailing=%C3%A9%",
            b"k=v&",
        ];
        for body in bodies {
            let expected: Vec<(String, String)> =
                form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            let parsed = FormParams::parse(body);
            let ours: Vec<(String, String)> = parsed.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            assert_eq!(ours, expected, "{}", String::from_utf8_lossy(body));
            assert_eq!(parsed.len(), expected.len());
        }
        let raw: Vec<u8> = (0..=255u8).flat_map(|byte| [byte, b'%', byte, b'+', b'=', b'&']).collect();
        let expected: Vec<(String, String)> =
            form_urlencoded::parse(&raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let ours: Vec<(String, String)> =
            FormParams::parse(&raw).iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        assert_eq!(ours, expected);
        let params = FormParams::parse(b"a=1&b=2&a=3");
        assert_eq!((params.get("a"), params.get("b"), params.get("c")), (Some("1"), Some("2"), None));
    }
}
