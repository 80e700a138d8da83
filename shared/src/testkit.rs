//! Test kit for handlers: an `App` over the memory store, a recording dialer, a settable clock,
//! and requests built as API Gateway HTTP API (payload 2.0) events, signed like Twilio signs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test kit: a setup that fails is a failed test or benchmark"
)]

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::{Body, Request, Response};

use crate::App;
use crate::app::{Clock, Ports};
use crate::config::Config;
use crate::domain::AgentId;
use crate::domain::CallSid;
use crate::domain::{Agent, AgentState, Availability, Conference};
use crate::http::Links;
use crate::secret::Secret;
pub use crate::store::AgentStore;
use crate::store::memory::{MemoryAgentStore, MemoryCallStore, MemoryLedgerStore, MemoryTicketStore};
use crate::store::{CallStore, TicketStore};
use crate::twilio::{CallUpdate, Dialer, OutboundCall, ParticipantUpdate, Recording, TwilioError, signature};

pub const AUTH_TOKEN: &str = "test-auth-token";
pub const SESSION_SECRET: &str = "test-session-secret-of-at-least-32-chars";
pub const DOMAIN: &str = "abc123.execute-api.us-east-1.amazonaws.com";
pub const BASE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
pub const NUMBER: &str = "+15550000000";
pub const NOW: i64 = 1_800_000_000;
/// The account and the two TwiML Apps `env` configures.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const CUSTOMER_APP_SID: &str = "AP00000000000000000000000000000000";
pub const AGENT_APP_SID: &str = "APaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

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
        ("TWILIO_AGENT_TWIML_APP_SID", AGENT_APP_SID.to_owned()),
        ("CALLS_TABLE", "calls".to_owned()),
        ("TICKETS_TABLE", "tickets".to_owned()),
        ("AGENTS_TABLE", "agents".to_owned()),
        ("LEDGER_TABLE", "ledger".to_owned()),
        ("SESSION_SECRET", SESSION_SECRET.to_owned()),
    ]
}

pub fn config_with(overrides: &[(&'static str, &str)]) -> Config {
    let mut env = env();
    for (name, value) in overrides {
        env.retain(|(n, _)| n != name);
        env.push((name, (*value).to_owned()));
    }
    Config::from_lookup(|name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())).unwrap()
}

/// Records every call it is asked to place or update. `failing()` fails all of them (Twilio
/// is down); `refusing_updates()` places calls but refuses every update, as Twilio does for a
/// call that was answered or has ended.
#[derive(Default)]
pub struct RecordingDialer {
    placed: Mutex<Vec<OutboundCall>>,
    updated: Mutex<Vec<(CallSid, CallUpdate)>>,
    participants: Mutex<Vec<(String, CallSid, ParticipantUpdate)>>,
    counter: AtomicU32,
    failing: bool,
    /// Twilio down from some moment on (`go_down`): every request fails after it.
    down: AtomicBool,
    /// Placing calls fails from some moment on (`stop_placing_calls`).
    no_calls: AtomicBool,
    refusing_updates: bool,
}

/// What the recording dialer serves as the audio of `recording_sid`.
pub fn recording_audio(recording_sid: &str) -> Vec<u8> {
    format!("ID3 audio of {recording_sid}").into_bytes()
}

/// The SID the recording dialer gives the `n`th call it places (from 0).
pub fn placed_sid(n: u32) -> String {
    sid(0xd1a1_0000 + n)
}

impl RecordingDialer {
    pub fn failing() -> Self {
        Self { failing: true, ..Self::default() }
    }

    pub fn refusing_updates() -> Self {
        Self { refusing_updates: true, ..Self::default() }
    }

    /// From now on every request fails, as when Twilio goes down in the middle of a call.
    pub fn go_down(&self) {
        self.down.store(true, Ordering::Relaxed);
    }

    /// Twilio answers again after `go_down`.
    pub fn come_back(&self) {
        self.down.store(false, Ordering::Relaxed);
    }

    /// From now on placing a call fails; every other request works.
    pub fn stop_placing_calls(&self) {
        self.no_calls.store(true, Ordering::Relaxed);
    }

    fn is_down(&self) -> bool {
        self.failing || self.down.load(Ordering::Relaxed)
    }

    pub fn placed(&self) -> Vec<OutboundCall> {
        self.placed.lock().unwrap().clone()
    }

    pub fn updated(&self) -> Vec<(CallSid, CallUpdate)> {
        self.updated.lock().unwrap().clone()
    }

    /// Every participant change asked for: the conference, the participant's call, the change.
    pub fn participant_updates(&self) -> Vec<(String, CallSid, ParticipantUpdate)> {
        self.participants.lock().unwrap().clone()
    }
}

fn injected_failure() -> TwilioError {
    TwilioError::Api { status: 503, code: Some(20003), message: "injected".into() }
}

#[async_trait]
impl Dialer for RecordingDialer {
    async fn place_call(&self, call: &OutboundCall) -> Result<CallSid, TwilioError> {
        self.placed.lock().unwrap().push(call.clone());
        if self.is_down() || self.no_calls.load(Ordering::Relaxed) {
            return Err(injected_failure());
        }
        Ok(CallSid::parse(&placed_sid(self.counter.fetch_add(1, Ordering::Relaxed))).unwrap())
    }

    async fn update_call(&self, call: &CallSid, update: &CallUpdate) -> Result<(), TwilioError> {
        self.updated.lock().unwrap().push((call.clone(), update.clone()));
        if self.is_down() {
            return Err(injected_failure());
        }
        if self.refusing_updates {
            return Err(TwilioError::Api {
                status: 400,
                code: Some(21220),
                message: "Call is not in-progress. Cannot redirect.".into(),
            });
        }
        Ok(())
    }

    async fn update_participant(
        &self,
        conference_sid: &str,
        call: &CallSid,
        update: &ParticipantUpdate,
    ) -> Result<(), TwilioError> {
        self.participants.lock().unwrap().push((conference_sid.to_owned(), call.clone(), update.clone()));
        if self.is_down() {
            return Err(injected_failure());
        }
        Ok(())
    }

    async fn recording(&self, recording_sid: &str) -> Result<Recording, TwilioError> {
        if self.failing {
            return Err(injected_failure());
        }
        Ok(Recording { content_type: "audio/mpeg".into(), audio: recording_audio(recording_sid) })
    }
}

/// The call Warmline places to ring `agent` into `conference`, for a caller who said nothing
/// about themselves.
pub fn agent_call(conference: &str, agent: &str) -> OutboundCall {
    OutboundCall {
        to: format!("client:{agent}?conference={conference}"),
        from: NUMBER.into(),
        url: format!("{BASE}/conference/{conference}/connect/{agent}"),
        timeout_seconds: Some(20),
        status_callback: Some(format!("{BASE}/conference/{conference}/agents/{agent}/status")),
    }
}

/// The call Warmline places to ring `colleague` into `conference`, handed over by `from` as
/// `kind` (`warm`, `consult` or `cold`).
pub fn colleague_call(conference: &str, colleague: &str, from: &str, kind: &str) -> OutboundCall {
    OutboundCall {
        to: format!("client:{colleague}?conference={conference}&transferFrom={from}&transferKind={kind}"),
        ..agent_call(conference, colleague)
    }
}

pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::Relaxed);
    }
}

impl Clock for TestClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::Relaxed) * 1000
    }
}

pub struct TestApp {
    pub app: App,
    pub store: Arc<MemoryCallStore>,
    pub tickets: Arc<MemoryTicketStore>,
    pub agents: Arc<MemoryAgentStore>,
    pub ledger: Arc<MemoryLedgerStore>,
    pub dialer: Arc<RecordingDialer>,
    pub clock: Arc<TestClock>,
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

impl TestApp {
    pub fn new() -> Self {
        Self::build(config_with(&[]), MemoryCallStore::new(), RecordingDialer::default())
    }

    pub fn build(config: Config, store: MemoryCallStore, dialer: RecordingDialer) -> Self {
        Self::build_with_tickets(config, store, MemoryTicketStore::new(), dialer)
    }

    pub fn build_with_tickets(
        config: Config,
        store: MemoryCallStore,
        tickets: MemoryTicketStore,
        dialer: RecordingDialer,
    ) -> Self {
        let store = Arc::new(store);
        let tickets = Arc::new(tickets);
        let agents = Arc::new(MemoryAgentStore::new());
        let ledger = Arc::new(MemoryLedgerStore::new());
        let dialer = Arc::new(dialer);
        let clock = Arc::new(TestClock(AtomicI64::new(NOW)));
        let ports = Ports {
            calls: store.clone() as Arc<dyn CallStore>,
            tickets: tickets.clone() as Arc<dyn TicketStore>,
            agents: agents.clone() as Arc<dyn AgentStore>,
            ledger: ledger.clone() as Arc<dyn crate::store::LedgerStore>,
            dialer: dialer.clone() as Arc<dyn Dialer>,
            clock: clock.clone() as Arc<dyn Clock>,
        };
        Self { app: App::new(config, ports), store, tickets, agents, ledger, dialer, clock }
    }

    /// Makes `id` an agent (if they are not yet), with a placeholder instead of a password hash:
    /// argon2 is slow, and most tests sign in through `session_cookie`.
    pub async fn enroll(&self, id: &str) -> Agent {
        let agent_id = AgentId::parse(id).unwrap();
        let agent = Agent::new(agent_id.clone(), format!("Agent {id}"), Secret::new("$not-a-hash"), NOW);
        self.agents.create_agent(&agent).await.unwrap();
        self.agents.agent(&agent_id).await.unwrap().unwrap()
    }

    /// Makes `id` an agent who signs in with `password` (a real argon2id hash).
    pub async fn enroll_with_password(&self, id: &str, password: &str) -> Agent {
        let agent_id = AgentId::parse(id).unwrap();
        let hash = crate::password::hash_password(password).unwrap();
        let agent = Agent::new(agent_id.clone(), format!("Agent {id}"), hash, NOW);
        assert!(self.agents.create_agent(&agent).await.unwrap(), "{id} is enrolled already");
        agent
    }

    /// The `Cookie` header of a fresh session for `id`, enrolled first if need be, as a browser
    /// on `BASE` (HTTPS) sends it.
    pub async fn session_cookie(&self, id: &str) -> String {
        let agent = self.enroll(id).await;
        let token = self.app.sessions.issue(&agent, crate::app::Clock::now(self.clock.as_ref())).await.unwrap();
        format!("{SESSION_COOKIE}={token}")
    }

    /// `id` (enrolled first) says they are available, as their dashboard does; the router runs.
    pub async fn available(&self, id: &str) {
        self.enroll(id).await;
        let agent = AgentId::parse(id).unwrap();
        crate::call_flow::agent_says(&self.app, &links(), &agent, Availability::Available).await.unwrap();
    }

    /// A customer calls the support number and joins their conference, as Twilio reports it:
    /// the router runs.
    pub async fn customer_arrives(&self, customer: &str) {
        let params = inbound_call_params(customer);
        let request = signed_webhook("/conference/connect/client", &borrowed(&params));
        let answer = crate::handlers::conference_connect_client::handle(&self.app, request).await.unwrap();
        assert_eq!(answer.status(), 200);
        let joined = conference_report(customer, "participant-join", Some(customer));
        let report = crate::handlers::conference_events::handle(&self.app, joined).await.unwrap();
        assert_eq!(body_text(&report), EMPTY_TWIML);
    }

    /// `agent` answers the call that rings them for `conference` (their call `agent_call`); the
    /// TwiML they get.
    pub async fn agent_answers(&self, conference: &str, agent: &str, agent_call: &str) -> String {
        let request = agent_join(conference, agent, agent_call);
        body_text(&crate::handlers::conference_connect_agent::handle(&self.app, request).await.unwrap())
    }

    /// `id` is available but on a call (with a caller of their own, `sid(0xb05e)`): an agent who
    /// could answer soon, so callers wait for them rather than be offered to leave a message.
    pub async fn occupied(&self, id: &str) {
        self.available(id).await;
        let customer = sid(0xb05e);
        self.customer_arrives(&customer).await;
        let call = self.store.conference(&CallSid::parse(&customer).unwrap(), Clock::now(self.clock.as_ref())).await;
        let (agent_call, _) = call.unwrap().unwrap().agent_calls.last().cloned().unwrap();
        assert!(self.agent_answers(&customer, id, agent_call.as_str()).await.contains("<Conference"));
    }

    /// `id`'s live state, as stored.
    pub async fn agent_state(&self, id: &str) -> Option<AgentState> {
        let now = crate::app::Clock::now(self.clock.as_ref());
        self.store.agent_state(&AgentId::parse(id).unwrap(), now).await.unwrap()
    }

    /// The caller's record, as stored.
    pub async fn caller(&self, call_sid: &str) -> Option<Conference> {
        let now = crate::app::Clock::now(self.clock.as_ref());
        self.store.conference(&CallSid::parse(call_sid).unwrap(), now).await.unwrap()
    }

    /// This app's ports, to build a variant with one of them swapped (e.g. a stalling dialer).
    pub fn ports(&self) -> Ports {
        Ports {
            calls: self.store.clone(),
            tickets: self.tickets.clone(),
            agents: self.agents.clone(),
            ledger: self.ledger.clone(),
            dialer: self.dialer.clone(),
            clock: self.clock.clone(),
        }
    }

    pub fn with_store(store: MemoryCallStore) -> Self {
        Self::build(config_with(&[]), store, RecordingDialer::default())
    }

    pub fn with_dialer(dialer: RecordingDialer) -> Self {
        Self::build(config_with(&[]), MemoryCallStore::new(), dialer)
    }
}

/// Links to `BASE`, as webhooks signed over it get them.
pub fn links() -> Links {
    Links::new(BASE)
}

/// A support conference's status callback as Twilio sends it: `event` is `participant-join`,
/// `participant-leave` (of `participant`) or `conference-end`.
pub fn conference_report(conference: &str, event: &str, participant: Option<&str>) -> Request {
    conference_run_report(conference, &conference_sid(conference), event, participant)
}

/// `conference_report` for the run `conference_sid` of the conference: a customer back in line
/// is in a new conference of the same name, which Twilio gives another `ConferenceSid`.
pub fn conference_run_report(
    conference: &str,
    conference_sid: &str,
    event: &str,
    participant: Option<&str>,
) -> Request {
    let mut params = vec![
        ("AccountSid", format!("AC{}", "0".repeat(32))),
        ("ConferenceSid", conference_sid.to_owned()),
        ("FriendlyName", conference.to_owned()),
        ("StatusCallbackEvent", event.to_owned()),
        ("SequenceNumber", "3".to_owned()),
        ("Timestamp", "Sat, 21 Nov 2026 11:00:00 +0000".to_owned()),
    ];
    if let Some(call) = participant {
        params.extend([("CallSid", call.to_owned()), ("EndConferenceOnExit", "false".to_owned())]);
    }
    signed_webhook(&format!("/conference/{conference}/events"), &borrowed(&params))
}

/// The Twilio id of the first run of the conference named `conference`.
pub fn conference_sid(conference: &str) -> String {
    format!("CF{}", &conference[2..])
}

/// The status callback of a call Warmline placed to an agent, as Twilio sends it.
pub fn agent_call_report(conference: &str, agent: &str, agent_call: &str, status: &str) -> Request {
    let params = [
        ("AccountSid", format!("AC{}", "0".repeat(32))),
        ("CallSid", agent_call.to_owned()),
        ("CallStatus", status.to_owned()),
        ("CallbackSource", "call-progress-events".to_owned()),
        ("Direction", "outbound-api".to_owned()),
        ("From", NUMBER.to_owned()),
        ("To", format!("client:{agent}")),
        ("SequenceNumber", "1".to_owned()),
    ];
    signed_webhook(&format!("/conference/{conference}/agents/{agent}/status"), &borrowed(&params))
}

/// Twilio fetching the TwiML of an agent's call when they answer it.
pub fn agent_join(conference: &str, agent: &str, agent_call: &str) -> Request {
    let params = [
        ("CallSid", agent_call.to_owned()),
        ("From", NUMBER.to_owned()),
        ("To", format!("client:{agent}")),
        ("Direction", "outbound-api".to_owned()),
    ];
    signed_webhook(&format!("/conference/{conference}/connect/{agent}"), &borrowed(&params))
}

/// An API Gateway HTTP API event, as Lambda receives it, turned into a request by lambda_http.
pub fn event(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    lambda_http::request::from_str(&event_json(method, path, headers, body)).unwrap()
}

/// The JSON of an API Gateway HTTP API (payload 2.0) event, body base64-encoded as API Gateway
/// sends form posts.
pub fn event_json(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut header_map = serde_json::Map::new();
    header_map.insert("host".into(), DOMAIN.into());
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), (*value).into());
    }
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    serde_json::json!({
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
    })
    .to_string()
}

fn form_body(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// A webhook as Twilio sends it: form-encoded, signed over `BASE` + `path`.
pub fn signed_webhook(path: &str, params: &[(&str, &str)]) -> Request {
    lambda_http::request::from_str(&signed_webhook_json(path, params)).unwrap()
}

/// The event JSON of a webhook as Twilio sends it, signed over `BASE` + `path`; Twilio names the
/// account in every webhook, so `AccountSid` is added when `params` leave it out.
pub fn signed_webhook_json(path: &str, params: &[(&str, &str)]) -> String {
    let mut params = params.to_vec();
    if !params.iter().any(|(name, _)| *name == "AccountSid") {
        params.insert(0, ("AccountSid", ACCOUNT_SID));
    }
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let signature = signature::compute(AUTH_TOKEN, &format!("{BASE}{path}"), &owned);
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("x-twilio-signature", signature.as_str())];
    event_json("POST", path, &headers, form_body(&params).as_bytes())
}

pub fn webhook_with_signature(path: &str, params: &[(&str, &str)], signature: Option<&str>) -> Request {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(signature) = signature {
        headers.push(("x-twilio-signature", signature));
    }
    event("POST", path, &headers, form_body(params).as_bytes())
}

/// The session cookie's name on an HTTPS origin such as `BASE`.
pub const SESSION_COOKIE: &str = "__Host-warmline_session";

/// A JSON post from a page on this site: browsers send `Origin` with every POST.
pub fn json_post(path: &str, body: &str) -> Request {
    event("POST", path, &[("content-type", "application/json"), ("origin", BASE)], body.as_bytes())
}

/// A form post from a page on this site.
pub fn form_post(path: &str, params: &[(&str, &str)]) -> Request {
    event(
        "POST",
        path,
        &[("content-type", "application/x-www-form-urlencoded"), ("origin", BASE)],
        form_body(params).as_bytes(),
    )
}

/// `request` with a header added (a cookie, another origin...).
pub fn with_header(mut request: Request, name: &'static str, value: &str) -> Request {
    request.headers_mut().insert(name, lambda_http::http::HeaderValue::from_str(value).unwrap());
    request
}

/// `request` without a header (e.g. `origin`, as a client that is not a browser sends it).
pub fn without_header(mut request: Request, name: &'static str) -> Request {
    request.headers_mut().remove(name);
    request
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
    response.headers().get("content-type").unwrap().to_str().unwrap()
}

pub const XML_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// What a status callback answers: Twilio ignores it.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

pub const APOLOGY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>We are sorry, we cannot connect your call right now. Please try again in a few minutes. Goodbye.</Say><Hangup/></Response>"#;
