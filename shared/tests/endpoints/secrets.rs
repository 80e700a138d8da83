//! Secrets that change while a function runs (filled in after the first deploy, rotated): a
//! function started with the old value takes the new one without being recycled. Requests in,
//! answers and stored state out, over a fake secret source the test changes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use shared::handlers::{conference_connect_client, pages, token};
use shared::secret::{REFRESH_AFTER, Secret, SecretKind, SecretSource, SecretValues, Secrets, SecretsError};
use shared::twilio::signature;

use crate::prelude::*;

const PATH: &str = "/conference/connect/client";
const SESSION_KEY: &str = "a-session-key-of-at-least-32-characters";

/// Secrets Manager as the test sets it, counting reads per kind.
struct FakeSecrets {
    values: Mutex<BTreeMap<SecretKind, SecretValues>>,
    reads: Mutex<BTreeMap<SecretKind, u32>>,
    all_reads: AtomicU32,
}

impl FakeSecrets {
    fn new() -> Arc<Self> {
        let source = Arc::new(Self {
            values: Mutex::new(BTreeMap::new()),
            reads: Mutex::new(BTreeMap::new()),
            all_reads: AtomicU32::new(0),
        });
        source.set(SecretKind::TwilioAuthToken, &[("TWILIO_AUTH_TOKEN", "old-auth-token")]);
        source.set(SecretKind::TwilioApiKey, &[("TWILIO_API_KEY", "SK1"), ("TWILIO_API_SECRET", "old-api-secret")]);
        source.set(SecretKind::SessionKey, &[("SESSION_SECRET", SESSION_KEY)]);
        source
    }

    fn set(&self, kind: SecretKind, values: &[(&'static str, &str)]) {
        let values = SecretValues::new(values.iter().map(|(name, value)| (*name, Secret::new(*value))));
        self.values.lock().unwrap().insert(kind, values);
    }

    fn reads(&self, kind: SecretKind) -> u32 {
        self.reads.lock().unwrap().get(&kind).copied().unwrap_or_default()
    }
}

#[async_trait]
impl SecretSource for FakeSecrets {
    fn kinds(&self) -> Vec<SecretKind> {
        SecretKind::ALL.to_vec()
    }

    async fn read(&self, kind: SecretKind) -> Result<SecretValues, SecretsError> {
        *self.reads.lock().unwrap().entry(kind).or_default() += 1;
        self.all_reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.values.lock().unwrap().get(&kind).cloned().unwrap_or_default())
    }
}

/// A test app whose function started with the fake source's current secrets.
async fn started(source: &Arc<FakeSecrets>) -> (TestApp, shared::App) {
    let t = TestApp::new();
    let secrets = Secrets::load(source.clone(), t.clock.clone()).await.unwrap();
    let app = shared::App::with_secrets(config_with(&[]), t.ports(), Arc::new(secrets));
    (t, app)
}

/// A caller's arrival, signed with `auth_token`.
fn arrival(call: u32, auth_token: &str) -> Request {
    let params = inbound_call_params(&sid(call));
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let signature = signature::compute(auth_token, &format!("{BASE}{PATH}"), &owned);
    webhook_with_signature(PATH, &borrowed(&params), Some(&signature))
}

async fn in_line(t: &TestApp, call: u32) -> bool {
    t.caller(&sid(call)).await.is_some()
}

#[tokio::test]
async fn a_function_started_with_the_old_auth_token_accepts_webhooks_signed_with_the_new_one() {
    let source = FakeSecrets::new();
    let (t, app) = started(&source).await;
    let answer = conference_connect_client::handle(&app, arrival(1, "old-auth-token")).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(in_line(&t, 1).await);
    assert_eq!(source.reads(SecretKind::TwilioAuthToken), 1, "read at the cold start only");

    // Rotated: Twilio signs with the new token from now on.
    source.set(SecretKind::TwilioAuthToken, &[("TWILIO_AUTH_TOKEN", "new-auth-token")]);
    let answer = conference_connect_client::handle(&app, arrival(2, "new-auth-token")).await.unwrap();
    assert_eq!((answer.status().as_u16(), content_type(&answer)), (200, "text/xml; charset=utf-8"));
    assert!(body_text(&answer).contains(&sid(2)), "{}", body_text(&answer));
    assert!(in_line(&t, 2).await, "accepted at the first request, read again on the spot");
    assert_eq!(source.reads(SecretKind::TwilioAuthToken), 2);

    // The old token opens nothing any more, and forgeries do not make the function read the
    // secret again and again: once per ten seconds at most.
    for call in 3..8 {
        let answer = conference_connect_client::handle(&app, arrival(call, "old-auth-token")).await.unwrap();
        assert_eq!(answer.status(), 403);
        assert!(!in_line(&t, call).await);
    }
    assert_eq!(source.reads(SecretKind::TwilioAuthToken), 2);
    t.clock.advance(10);
    assert_eq!(conference_connect_client::handle(&app, arrival(8, "forged")).await.unwrap().status(), 403);
    assert_eq!(source.reads(SecretKind::TwilioAuthToken), 3);
    assert_eq!(source.reads(SecretKind::SessionKey), 1, "only the refused kind is read again");
}

#[tokio::test]
async fn an_auth_token_filled_in_after_the_cold_start_is_used_at_the_next_webhook() {
    let source = FakeSecrets::new();
    // As the template creates the secret: empty until `set-twilio-secrets`.
    source.set(SecretKind::TwilioAuthToken, &[("TWILIO_AUTH_TOKEN", "")]);
    let (t, app) = started(&source).await;
    assert_eq!(conference_connect_client::handle(&app, arrival(1, "")).await.unwrap().status(), 403);
    assert!(!in_line(&t, 1).await);

    source.set(SecretKind::TwilioAuthToken, &[("TWILIO_AUTH_TOKEN", "filled-in")]);
    t.clock.advance(10);
    assert_eq!(conference_connect_client::handle(&app, arrival(2, "filled-in")).await.unwrap().status(), 200);
    assert!(in_line(&t, 2).await);
}

#[tokio::test]
async fn a_rotated_api_key_signs_access_tokens_within_five_minutes() {
    let source = FakeSecrets::new();
    let (t, app) = started(&source).await;
    let issuer = |response: &Response<Body>| {
        use base64::Engine as _;
        let token = body_json(response)["token"].as_str().unwrap().to_owned();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap());
        serde_json::from_slice::<serde_json::Value>(&payload.unwrap()).unwrap()["iss"].as_str().unwrap().to_owned()
    };
    let request = || json_post("/token", "{}");
    assert_eq!(issuer(&token::handle(&app, request()).await.unwrap()), "SK1");

    source.set(SecretKind::TwilioApiKey, &[("TWILIO_API_KEY", "SK2"), ("TWILIO_API_SECRET", "new-api-secret")]);
    let almost = i64::try_from(REFRESH_AFTER.as_secs()).unwrap() - 1;
    t.clock.advance(almost);
    assert_eq!(issuer(&token::handle(&app, request()).await.unwrap()), "SK1", "not read again before five minutes");
    t.clock.advance(1);
    assert_eq!(issuer(&token::handle(&app, request()).await.unwrap()), "SK2");
    assert_eq!(source.reads(SecretKind::TwilioApiKey), 2);
}

#[tokio::test]
async fn a_session_signed_with_a_rotated_key_opens_the_dashboard_and_old_ones_end() {
    let source = FakeSecrets::new();
    let (t, old_function) = started(&source).await;
    t.enroll("agent1").await;
    let agent = t.agents.agent(&AgentId::parse("agent1").unwrap()).await.unwrap().unwrap();
    let old_cookie = format!("{SESSION_COOKIE}={}", old_function.sessions.issue(&agent, NOW).await.unwrap());

    // Rotated: a function started since signs with the new key.
    let new_key = "another-session-key-of-32-characters-at-least";
    source.set(SecretKind::SessionKey, &[("SESSION_SECRET", new_key)]);
    let (_, new_function) = started(&source).await;
    let new_cookie = format!("{SESSION_COOKIE}={}", new_function.sessions.issue(&agent, NOW).await.unwrap());

    let dashboard = |cookie: &str| with_header(event("GET", "/dashboard", &[], b""), "cookie", cookie);
    // The function that still holds the old key reads the new one at the first such cookie.
    let response = pages::handle(&old_function, dashboard(&new_cookie)).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    // The old key signs nothing any more: every session it signed has ended.
    let response = pages::handle(&old_function, dashboard(&old_cookie)).await.unwrap();
    assert_eq!(response.status(), 303);
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login"));
    assert_eq!(source.reads(SecretKind::SessionKey), 3, "the cold starts and one read on the spot");
    assert!(source.all_reads.load(Ordering::Relaxed) >= 3);
}
