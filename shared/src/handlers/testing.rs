//! Test kit for handlers: an `App` over the memory store, a recording dialer, a settable clock,
//! and requests built as API Gateway HTTP API (payload 2.0) events, signed like Twilio signs.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::{Body, Request, Response};

use crate::App;
use crate::app::Clock;
use crate::config::Config;
use crate::domain::CallSid;
use crate::store::CallStore;
use crate::store::memory::MemoryCallStore;
use crate::twilio::{Dialer, OutboundCall, TwilioError, signature};

pub const AUTH_TOKEN: &str = "test-auth-token";
pub const DOMAIN: &str = "abc123.execute-api.us-east-1.amazonaws.com";
pub const BASE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
pub const NUMBER: &str = "+15550000000";
pub const NOW: i64 = 1_800_000_000;

pub fn sid(n: u32) -> String {
    format!("CA{n:032x}")
}

pub fn env() -> Vec<(&'static str, String)> {
    vec![
        ("TWILIO_ACCOUNT_SID", format!("AC{}", "0".repeat(32))),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
        ("TWILIO_API_KEY", format!("SK{}", "0".repeat(32))),
        ("TWILIO_API_SECRET", "test-api-secret".to_owned()),
        ("TWILIO_NUMBER", NUMBER.to_owned()),
        ("TWILIO_TWIML_APP_SID", format!("AP{}", "0".repeat(32))),
        ("CALLS_TABLE", "calls".to_owned()),
    ]
}

pub fn config_with(overrides: &[(&'static str, &str)]) -> Config {
    let mut env = env();
    for (name, value) in overrides {
        env.retain(|(n, _)| n != name);
        env.push((name, (*value).to_owned()));
    }
    Config::from_lookup(|name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()))
        .unwrap()
}

/// Records every call it is asked to place; fails them all when built with `failing()`.
#[derive(Default)]
pub struct RecordingDialer {
    placed: Mutex<Vec<OutboundCall>>,
    counter: AtomicU32,
    failing: bool,
}

impl RecordingDialer {
    pub fn failing() -> Self {
        Self {
            failing: true,
            ..Self::default()
        }
    }

    pub fn placed(&self) -> Vec<OutboundCall> {
        self.placed.lock().unwrap().clone()
    }
}

#[async_trait]
impl Dialer for RecordingDialer {
    async fn place_call(&self, call: &OutboundCall) -> Result<CallSid, TwilioError> {
        self.placed.lock().unwrap().push(call.clone());
        if self.failing {
            return Err(TwilioError::Api {
                status: 503,
                code: Some(20003),
                message: "injected".into(),
            });
        }
        let n = 0xd1a1_0000 + self.counter.fetch_add(1, Ordering::Relaxed);
        Ok(CallSid::parse(&sid(n)).unwrap())
    }
}

pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::Relaxed);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct TestApp {
    pub app: App,
    pub store: Arc<MemoryCallStore>,
    pub dialer: Arc<RecordingDialer>,
    pub clock: Arc<TestClock>,
}

impl TestApp {
    pub fn new() -> Self {
        Self::build(
            config_with(&[]),
            MemoryCallStore::new(),
            RecordingDialer::default(),
        )
    }

    pub fn build(config: Config, store: MemoryCallStore, dialer: RecordingDialer) -> Self {
        let store = Arc::new(store);
        let dialer = Arc::new(dialer);
        let clock = Arc::new(TestClock(AtomicI64::new(NOW)));
        let app = App::new(
            config,
            store.clone() as Arc<dyn CallStore>,
            dialer.clone() as Arc<dyn Dialer>,
            clock.clone() as Arc<dyn Clock>,
        );
        Self {
            app,
            store,
            dialer,
            clock,
        }
    }

    pub fn with_store(store: MemoryCallStore) -> Self {
        Self::build(config_with(&[]), store, RecordingDialer::default())
    }

    pub fn with_dialer(dialer: RecordingDialer) -> Self {
        Self::build(config_with(&[]), MemoryCallStore::new(), dialer)
    }
}

/// An API Gateway HTTP API event, as Lambda receives it, turned into a request by lambda_http.
pub fn event(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    let mut header_map = serde_json::Map::new();
    header_map.insert("host".into(), DOMAIN.into());
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), (*value).into());
    }
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "abc123",
            "domainName": DOMAIN,
            "domainPrefix": "abc123",
            "http": { "method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "TwilioProxy/1.1" },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:11:00:00 +0000",
            "timeEpoch": 1_800_000_000_000_i64
        },
        "body": STANDARD.encode(body),
        "isBase64Encoded": true
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn form_body(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A webhook as Twilio sends it: form-encoded, signed over `BASE` + `path`.
pub fn signed_webhook(path: &str, params: &[(&str, &str)]) -> Request {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature = signature::compute(AUTH_TOKEN, &format!("{BASE}{path}"), &owned);
    webhook_with_signature(path, params, Some(&signature))
}

pub fn webhook_with_signature(
    path: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> Request {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(signature) = signature {
        headers.push(("x-twilio-signature", signature));
    }
    event("POST", path, &headers, form_body(params).as_bytes())
}

pub fn json_post(path: &str, body: &str) -> Request {
    event(
        "POST",
        path,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

pub fn form_post(path: &str, params: &[(&str, &str)]) -> Request {
    event(
        "POST",
        path,
        &[("content-type", "application/x-www-form-urlencoded")],
        form_body(params).as_bytes(),
    )
}

/// Twilio's standard parameters for a call to the support number.
pub fn inbound_call_params(call_sid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", format!("AC{}", "0".repeat(32))),
        ("ApiVersion", "2010-04-01".into()),
        ("CallSid", call_sid.into()),
        ("CallStatus", "ringing".into()),
        ("Called", NUMBER.into()),
        ("Caller", "+15557654321".into()),
        ("Direction", "inbound".into()),
        ("From", "+15557654321".into()),
        ("To", NUMBER.into()),
    ]
}

pub fn borrowed<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

pub fn body_text(response: &Response<Body>) -> String {
    String::from_utf8(response.body().as_ref().to_vec()).unwrap()
}

pub fn body_json(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

pub fn content_type(response: &Response<Body>) -> &str {
    response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
}

pub const XML_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

pub const APOLOGY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>We are sorry, we cannot connect your call right now. Please try again in a few minutes. Goodbye.</Say><Hangup/></Response>"#;
