//! Helpers for the simulator's integration tests: a scriptable fake of Warmline's webhooks and
//! a simulator on a free loopback port.

#![allow(dead_code)]

pub mod counting_proxy;
pub mod dev_stack;
pub mod python;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use twilio_sim::{Entry, Event, Server, SimConfig};

pub const ACCOUNT: &str = "AC11111111111111111111111111111111";
pub const TOKEN: &str = "sim-test-auth-token";
pub const KEY: &str = "SK22222222222222222222222222222222";
pub const SECRET: &str = "sim-test-key-secret";
pub const NUMBER: &str = "+15550001111";

/// A request the fake app received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// Path and query, as requested.
    pub uri: String,
    pub headers: HeaderMap,
    pub form: Vec<(String, String)>,
}

impl Captured {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
}

type Responder = dyn Fn(&Captured) -> (u16, &'static str, String) + Send + Sync;

#[derive(Clone)]
struct AppState {
    requests: Arc<Mutex<Vec<Captured>>>,
    responder: Arc<Responder>,
}

/// Stands in for Warmline: answers every request with what the test's closure says.
pub struct FakeApp {
    pub url: String,
    requests: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApp {
    pub async fn start(responder: impl Fn(&Captured) -> (u16, &'static str, String) + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = AppState { requests: requests.clone(), responder: Arc::new(responder) };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, requests, task }
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Captured> {
        self.requests().into_iter().filter(|r| r.path() == path).collect()
    }
}

impl Drop for FakeApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let form = form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let captured = Captured { method: method.to_string(), uri: uri.to_string(), headers, form };
    state.requests.lock().unwrap().push(captured.clone());
    let (status, content_type, body) = (state.responder)(&captured);
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    (status, [("content-type", content_type)], body).into_response()
}

pub const XML: &str = "text/xml; charset=utf-8";

pub fn twiml(body: &str) -> (u16, &'static str, String) {
    (200, XML, format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>"#))
}

/// A simulator for `app`: its number rings `{app}/voice`, its TwiML Apps are `{app}/browser`
/// (customers') and `{app}/agent-browser` (agents').
/// Twilio's own durations run a hundred times faster (a 60 s ring timeout takes 0.6 s).
pub async fn simulator(app: &FakeApp) -> Server {
    let config = SimConfig {
        public_base_url: Some(app.url.clone()),
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        api_key: Some(KEY.into()),
        api_secret: Some(SECRET.into()),
        phone_number: NUMBER.into(),
        voice_url: format!("{}/voice", app.url),
        twiml_app_sid: format!("AP{}", "3".repeat(32)),
        twiml_app_voice_url: format!("{}/browser", app.url),
        agent_twiml_app_sid: format!("AP{}", "4".repeat(32)),
        agent_twiml_app_voice_url: format!("{}/agent-browser", app.url),
        time_scale: 0.01,
        default_answer_after: Duration::from_millis(20),
        webhook_timeout: Duration::from_secs(5),
    };
    Server::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

/// The REST API as Warmline calls it: Basic auth with the API key.
pub async fn rest(server: &Server, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/2010-04-01/Accounts/{ACCOUNT}/{path}", server.url()))
        .basic_auth(KEY, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

pub const WAIT: Duration = Duration::from_secs(10);

/// The first entry from `since` on that matches, or a failure that prints the timeline.
pub async fn expect(server: &Server, since: u64, what: &str, predicate: impl Fn(&Entry) -> bool) -> Entry {
    match server.sim.timeline().wait_for(since, WAIT, predicate).await {
        Ok(entry) => entry,
        Err(entries) => panic!("never happened: {what}\n{}", twilio_sim::timeline::render(&entries)),
    }
}

pub fn is_call_end(entry: &Entry, sid: &str) -> bool {
    entry.call_sid.as_deref() == Some(sid) && matches!(entry.event, Event::CallEnded { .. })
}

/// Seq numbers of the events, in the order given, for "this happened before that" checks.
pub fn position(entries: &[Entry], predicate: impl Fn(&Entry) -> bool) -> Option<usize> {
    entries.iter().position(predicate)
}
