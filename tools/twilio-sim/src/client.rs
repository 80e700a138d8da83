//! A client for the control API, for `twilio-sim demo` and scripts written in Rust.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::control::Info;
use crate::model::{Behaviour, BrowserCall, CallView, ConferenceView, InboundCall, RecordingView};
use crate::timeline::Entry;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the simulator at {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("timed out after {0:?} waiting for: {1}")]
    Timeout(Duration, String),
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap_or_default();
        Self { http, base: base.trim_end_matches('/').to_owned() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder, url: &str) -> Result<T, ClientError> {
        let response = request.send().await.map_err(|source| ClientError::Transport { url: url.to_owned(), source })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|source| ClientError::Transport { url: url.to_owned(), source })?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Status { url: url.to_owned(), status, body });
        }
        let body = if body.is_empty() { "null" } else { &body };
        serde_json::from_str(body).map_err(|_| ClientError::Status {
            url: url.to_owned(),
            status,
            body: body.to_owned(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.call(self.http.get(&url), &url).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.call(self.http.request(method, &url).json(body), &url).await
    }

    pub async fn info(&self) -> Result<Info, ClientError> {
        self.get("/sim").await
    }

    /// Hangs up everything and returns where the timeline stands, for `timeline(since)`.
    pub async fn reset(&self) -> Result<u64, ClientError> {
        let answer: Value = self.send(reqwest::Method::POST, "/sim/reset", &json!({})).await?;
        Ok(answer["timeline_length"].as_u64().unwrap_or(0))
    }

    pub async fn set_behaviour(&self, address: &str, behaviour: &Behaviour) -> Result<(), ClientError> {
        let body = serde_json::to_value(behaviour).unwrap_or_default();
        self.send::<Value>(reqwest::Method::PUT, &format!("/sim/endpoints/{address}"), &body).await.map(drop)
    }

    pub async fn dial_in(&self, call: &InboundCall) -> Result<String, ClientError> {
        let body = serde_json::to_value(call).unwrap_or_default();
        let answer: Value = self.send(reqwest::Method::POST, "/sim/calls/inbound", &body).await?;
        Ok(answer["sid"].as_str().unwrap_or_default().to_owned())
    }

    pub async fn browser_call(&self, call: &BrowserCall) -> Result<String, ClientError> {
        let body = serde_json::to_value(call).unwrap_or_default();
        let answer: Value = self.send(reqwest::Method::POST, "/sim/calls/browser", &body).await?;
        Ok(answer["sid"].as_str().unwrap_or_default().to_owned())
    }

    pub async fn hang_up(&self, sid: &str) -> Result<(), ClientError> {
        self.send::<Value>(reqwest::Method::POST, &format!("/sim/calls/{sid}/hangup"), &json!({})).await.map(drop)
    }

    pub async fn answer(&self, sid: &str) -> Result<(), ClientError> {
        self.send::<Value>(reqwest::Method::POST, &format!("/sim/calls/{sid}/answer"), &json!({})).await.map(drop)
    }

    /// The party on `sid` presses these keypad keys.
    pub async fn press(&self, sid: &str, digits: &str) -> Result<(), ClientError> {
        let body = json!({ "digits": digits });
        self.send::<Value>(reqwest::Method::POST, &format!("/sim/calls/{sid}/digits"), &body).await.map(drop)
    }

    /// The party on `sid` talks for `seconds` (Twilio's seconds), then falls silent.
    pub async fn speak(&self, sid: &str, seconds: u32) -> Result<(), ClientError> {
        let body = json!({ "seconds": seconds });
        self.send::<Value>(reqwest::Method::POST, &format!("/sim/calls/{sid}/speak"), &body).await.map(drop)
    }

    pub async fn recordings(&self) -> Result<Vec<RecordingView>, ClientError> {
        self.get("/sim/recordings").await
    }

    pub async fn note(&self, text: &str) -> Result<(), ClientError> {
        self.send::<Value>(reqwest::Method::POST, "/sim/notes", &json!({ "text": text })).await.map(drop)
    }

    pub async fn calls(&self) -> Result<Vec<CallView>, ClientError> {
        self.get("/sim/calls").await
    }

    pub async fn conferences(&self) -> Result<Vec<ConferenceView>, ClientError> {
        self.get("/sim/conferences").await
    }

    pub async fn timeline(&self, since: u64) -> Result<Vec<Entry>, ClientError> {
        self.get(&format!("/sim/timeline?since={since}")).await
    }

    /// Polls the timeline from `since` until `pick` finds an entry, within `timeout`.
    pub async fn wait_for_entry(
        &self,
        since: u64,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&Entry) -> bool,
    ) -> Result<Entry, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(entry) = self.timeline(since).await?.into_iter().find(|entry| pick(entry)) {
                return Ok(entry);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(timeout, what.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the calls until `pick` finds one, within `timeout`.
    pub async fn wait_for_call(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&CallView) -> bool,
    ) -> Result<CallView, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(call) = self.calls().await?.into_iter().find(|call| pick(call)) {
                return Ok(call);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(timeout, what.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
