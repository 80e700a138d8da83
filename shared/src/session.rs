//! Agents' sessions: a signed cookie (HS256 JWT naming the agent and their session epoch), and
//! the checks every agent-only endpoint makes with it.
//!
//! The cookie alone is not trusted: each request reads the agent's record, so a disabled agent,
//! a new password or a sign-out ends the session at the very next request.
//!
//! The key is the one the function holds now (`secret::Secrets`): a cookie whose signature does
//! not match it makes the function read the key again (rate-limited), so a key rotated a moment
//! ago is picked up by the first session it signed. Cookies signed with a key no longer held
//! open nothing: rotating the key ends every session.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::Request;
use lambda_http::http::HeaderValue;
use lambda_http::http::header::COOKIE;
use serde::{Deserialize, Serialize};

use crate::domain::{Agent, AgentId};
use crate::secret::{Secret, Secrets};
use crate::store::{AgentStore, StoreError};

pub const SESSION_TTL_SECONDS: i64 = 12 * 3600;
/// Only this endpoint's tokens are sessions, whatever else a key might ever sign.
const AUDIENCE: &str = "warmline-session";
/// The `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain.
const SECURE_COOKIE: &str = "__Host-warmline_session";
/// Browsers refuse `__Host-` without Secure, and Secure cookies over plain-HTTP local runs.
const LOCAL_COOKIE: &str = "warmline_session";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The agent's session epoch when this session began.
    epoch: i64,
    iat: i64,
    exp: i64,
    aud: String,
}

pub struct SessionKeys {
    secrets: Arc<Secrets>,
    validation: Validation,
}

/// Why a cookie opens nothing.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Signed with another key: maybe one rotated in since this function read its key.
    Signature,
    /// Expired, malformed, or not a session.
    Invalid,
}

impl SessionKeys {
    pub fn new(secrets: Arc<Secrets>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        // Expiry is checked against the app's clock below, so that tests can move time.
        validation.validate_exp = false;
        validation.required_spec_claims = ["sub", "exp", "aud"].into_iter().map(str::to_owned).collect();
        Self { secrets, validation }
    }

    /// A session for `agent`, signed with the key held now.
    pub async fn issue(&self, agent: &Agent, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let Some(key) = self.secrets.session_key().await else {
            tracing::error!("no session key: this function is not given one");
            return Err(ErrorKind::InvalidKeyFormat.into());
        };
        sign_session(&key, agent, now)
    }

    /// The agent and epoch a well-signed, unexpired session names, under the key held now (or
    /// one read again because the signature did not match it).
    async fn verify(&self, token: &str, now: i64) -> Option<(AgentId, i64)> {
        let Some(key) = self.secrets.session_key().await else {
            tracing::error!("no session key: this function is not given one");
            return None;
        };
        match self.verify_with(&key, token, now) {
            Ok(session) => Some(session),
            Err(Refusal::Signature) => {
                let key = self.secrets.session_key_after_refusal(&key).await?;
                self.verify_with(&key, token, now).ok()
            }
            Err(Refusal::Invalid) => None,
        }
    }

    fn verify_with(&self, key: &Secret, token: &str, now: i64) -> Result<(AgentId, i64), Refusal> {
        let decoding = DecodingKey::from_secret(key.expose().as_bytes());
        let claims = match jsonwebtoken::decode::<Claims>(token, &decoding, &self.validation) {
            Ok(data) => data.claims,
            Err(err) if matches!(err.kind(), ErrorKind::InvalidSignature) => return Err(Refusal::Signature),
            Err(_) => return Err(Refusal::Invalid),
        };
        if claims.exp <= now {
            return Err(Refusal::Invalid);
        }
        Ok((AgentId::parse(&claims.sub).map_err(|_| Refusal::Invalid)?, claims.epoch))
    }
}

/// A session for `agent`, beginning at `now`, signed with `key`.
pub fn sign_session(key: &Secret, agent: &Agent, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        sub: agent.id.as_str().to_owned(),
        epoch: agent.session_epoch,
        iat: now,
        exp: now + SESSION_TTL_SECONDS,
        aud: AUDIENCE.to_owned(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key.expose().as_bytes()))
}

fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { LOCAL_COOKIE }
}

fn cookie(secure: bool, value: &str, max_age: i64) -> HeaderValue {
    let secure_attribute = if secure { "; Secure" } else { "" };
    let text = format!(
        "{}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict{secure_attribute}",
        cookie_name(secure)
    );
    // A JWT is base64url and dots; nothing here can make an invalid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("warmline_session=; Max-Age=0; Path=/"))
}

pub fn session_cookie(secure: bool, token: &str) -> HeaderValue {
    cookie(secure, token, SESSION_TTL_SECONDS)
}

pub fn cleared_cookie(secure: bool) -> HeaderValue {
    cookie(secure, "", 0)
}

/// The session cookie's value, if the request carries one.
fn session_token(req: &Request, secure: bool) -> Option<&str> {
    let name = cookie_name(secure);
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// What the request's session cookie says.
#[derive(Debug)]
pub enum Session {
    /// No cookie.
    None,
    /// A cookie that no longer opens anything: expired, forged, ended, or the agent disabled.
    Ended,
    SignedIn(Agent),
}

impl SessionKeys {
    /// What the request's session cookie says, checked against the agent's current record.
    pub async fn read(
        &self,
        agents: &dyn AgentStore,
        req: &Request,
        secure: bool,
        now: i64,
    ) -> Result<Session, StoreError> {
        let Some(token) = session_token(req, secure) else { return Ok(Session::None) };
        let Some((id, epoch)) = self.verify(token, now).await else { return Ok(Session::Ended) };
        Ok(match agents.agent(&id).await? {
            Some(agent) if agent.is_enabled() && agent.session_epoch == epoch => Session::SignedIn(agent),
            _ => Session::Ended,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::secret::{SecretKind, SecretValues};
    use crate::store::contract::agents::agent;

    const NOW: i64 = 1_800_000_000;

    fn keys_with(key: &str) -> SessionKeys {
        let values = SecretValues::new([("SESSION_SECRET", Secret::new(key))]);
        let clock = Arc::new(crate::app::SystemClock);
        SessionKeys::new(Arc::new(Secrets::fixed([(SecretKind::SessionKey, values)].into(), clock)))
    }

    fn keys() -> SessionKeys {
        keys_with("a-session-secret-of-at-least-32-chars")
    }

    #[tokio::test]
    async fn a_session_names_its_agent_and_epoch_until_it_expires() {
        let mut agent1 = agent("agent1");
        agent1.session_epoch = 3;
        let token = keys().issue(&agent1, NOW).await.unwrap();
        assert_eq!(keys().verify(&token, NOW).await, Some((agent1.id.clone(), 3)));
        assert_eq!(keys().verify(&token, NOW + SESSION_TTL_SECONDS - 1).await.map(|(_, e)| e), Some(3));
        assert_eq!(keys().verify(&token, NOW + SESSION_TTL_SECONDS).await, None);
    }

    #[tokio::test]
    async fn a_session_signed_with_another_key_or_altered_is_nothing() {
        let token = keys().issue(&agent("agent1"), NOW).await.unwrap();
        let other = keys_with("another-session-secret-of-32-chars!!");
        assert_eq!(other.verify(&token, NOW).await, None);
        let mut tampered = token.clone();
        tampered.insert(token.len() - 3, 'A');
        assert_eq!(keys().verify(&tampered, NOW).await, None);
        // The same key signing something that is not a session (no audience) opens nothing.
        let stranger = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "agent1", "exp": NOW + 60, "epoch": 0}),
            &EncodingKey::from_secret(b"a-session-secret-of-at-least-32-chars"),
        )
        .unwrap();
        assert_eq!(keys().verify(&stranger, NOW).await, None);
        // Nor does an unsigned token.
        let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", token.split('.').nth(1).unwrap());
        assert_eq!(keys().verify(&unsigned, NOW).await, None);
    }

    #[tokio::test]
    async fn without_a_key_no_session_is_issued_or_opened() {
        let token = keys().issue(&agent("agent1"), NOW).await.unwrap();
        let none = SessionKeys::new(Arc::new(Secrets::fixed(BTreeMap::new(), Arc::new(crate::app::SystemClock))));
        assert!(none.issue(&agent("agent1"), NOW).await.is_err());
        assert_eq!(none.verify(&token, NOW).await, None);
        // Nor with a key too short to be one.
        assert!(keys_with("short").issue(&agent("agent1"), NOW).await.is_err());
    }

    #[test]
    fn cookies_are_strict_and_secure_unless_told_otherwise() {
        assert_eq!(
            session_cookie(true, "t.o.k").to_str().unwrap(),
            "__Host-warmline_session=t.o.k; Max-Age=43200; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            cleared_cookie(false).to_str().unwrap(),
            "warmline_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"
        );
    }
}
