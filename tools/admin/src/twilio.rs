//! The Twilio REST calls `wire-twilio` makes (Applications, IncomingPhoneNumbers), with every
//! refusal explained: what went wrong and what fixes it.

use std::time::Duration;

use serde_json::Value;
use shared::secret::Secret;

/// Why a request to Twilio failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Twilio's error document: HTTP status, Twilio's code, its message.
    Api {
        status: u16,
        code: Option<u64>,
        message: String,
    },
    Transport(String),
}

pub struct Twilio {
    http: reqwest::Client,
    base_url: String,
    pub account_sid: String,
    pub api_key: String,
    api_secret: Secret,
}

impl Twilio {
    pub fn new(base_url: &str, account_sid: &str, api_key: &str, api_secret: Secret) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|err| format!("cannot set up HTTPS: {err}"))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            api_key: api_key.to_owned(),
            api_secret,
        })
    }

    fn url(&self, resource: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}/{resource}", self.base_url, self.account_sid)
    }

    pub async fn get(&self, resource: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        let mut url = reqwest::Url::parse(&self.url(resource)).map_err(|err| Failure::Transport(err.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(self.http.get(url)).await
    }

    pub async fn post(&self, resource: &str, form: &[(&str, &str)]) -> Result<Value, Failure> {
        self.send(self.http.post(self.url(resource)).form(form)).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = request
            .basic_auth(&self.api_key, Some(self.api_secret.expose()))
            .send()
            .await
            .map_err(|err| Failure::Transport(err.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        Err(Failure::Api {
            status,
            code: body.get("code").and_then(Value::as_u64),
            message: body.get("message").and_then(Value::as_str).unwrap_or("no message").to_owned(),
        })
    }

    /// What went wrong while `doing` something, and how to fix it.
    pub fn explain(&self, failure: &Failure, doing: &str) -> String {
        match failure {
            Failure::Transport(err) => {
                format!(
                    "could not reach Twilio at {} while {doing}: {err}. Check the network and try again",
                    self.base_url
                )
            }
            Failure::Api { status: 401, code, .. } => format!(
                "Twilio refused the credentials while {doing} ({}): the API key {} and the secret stored with it do \
                 not belong to account {}. Fix: check the TwilioAccountSid parameter, then store the key's SID and \
                 secret again (make agent ARGS=\"set-twilio-secrets --api-key-secret-id <TwilioApiKeySecretArn>\")",
                code_text(*code),
                self.api_key,
                self.account_sid
            ),
            Failure::Api { status: 403, code, message } => format!(
                "the API key {} may not do this ({doing}): Twilio answered 403 ({}, {message}). It is a restricted \
                 key without that permission. Fix: use a Standard API key (Warmline's Access Tokens need one), or \
                 give this key the Phone Numbers and TwiML Apps (Applications) read and write permissions",
                self.api_key,
                code_text(*code)
            ),
            Failure::Api { status, code, message } => {
                format!("Twilio answered {status} ({}) while {doing}: {message}", code_text(*code))
            }
        }
    }
}

fn code_text(code: Option<u64>) -> String {
    code.map_or_else(|| "no error code".to_owned(), |code| format!("error {code}"))
}

/// A string field of a resource; Twilio writes an unset URL as `null` or `""`.
pub fn field<'a>(resource: &'a Value, name: &str) -> Option<&'a str> {
    resource.get(name).and_then(Value::as_str).filter(|value| !value.is_empty())
}

/// The list of a page of results (`"applications"`, `"incoming_phone_numbers"`).
pub fn items<'a>(page: &'a Value, key: &str) -> &'a [Value] {
    page.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}
