//! Agents' sessions: a signed cookie (HS256 JWT naming the agent and their session epoch), and
//! the checks every agent-only endpoint makes with it.
//!
//! The cookie alone is not trusted: each request reads the agent's record, so a disabled agent,
//! a new password or a sign-out ends the session at the very next request.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::Request;
use lambda_http::http::HeaderValue;
use lambda_http::http::header::COOKIE;
use serde::{Deserialize, Serialize};

use crate::domain::{Agent, AgentId};
use crate::secret::Secret;
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
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl SessionKeys {
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        // Expiry is checked against the app's clock below, so that tests can move time.
        validation.validate_exp = false;
        validation.required_spec_claims = ["sub", "exp", "aud"].into_iter().map(str::to_owned).collect();
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    pub fn issue(&self, agent: &Agent, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: agent.id.as_str().to_owned(),
            epoch: agent.session_epoch,
            iat: now,
            exp: now + SESSION_TTL_SECONDS,
            aud: AUDIENCE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The agent and epoch a well-signed, unexpired session names.
    fn verify(&self, token: &str, now: i64) -> Option<(AgentId, i64)> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?.claims;
        if claims.exp <= now {
            return None;
        }
        Some((AgentId::parse(&claims.sub).ok()?, claims.epoch))
    }
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
        let Some((id, epoch)) = self.verify(token, now) else { return Ok(Session::Ended) };
        Ok(match agents.agent(&id).await? {
            Some(agent) if agent.is_enabled() && agent.session_epoch == epoch => Session::SignedIn(agent),
            _ => Session::Ended,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::agents::agent;

    const NOW: i64 = 1_800_000_000;

    fn keys() -> SessionKeys {
        SessionKeys::new(&Secret::new("a-session-secret-of-at-least-32-chars"))
    }

    #[test]
    fn a_session_names_its_agent_and_epoch_until_it_expires() {
        let mut agent1 = agent("agent1");
        agent1.session_epoch = 3;
        let token = keys().issue(&agent1, NOW).unwrap();
        assert_eq!(keys().verify(&token, NOW), Some((agent1.id.clone(), 3)));
        assert_eq!(keys().verify(&token, NOW + SESSION_TTL_SECONDS - 1).map(|(_, e)| e), Some(3));
        assert_eq!(keys().verify(&token, NOW + SESSION_TTL_SECONDS), None);
    }

    #[test]
    fn a_session_signed_with_another_key_or_altered_is_nothing() {
        let token = keys().issue(&agent("agent1"), NOW).unwrap();
        let other = SessionKeys::new(&Secret::new("another-session-secret-of-32-chars!!"));
        assert_eq!(other.verify(&token, NOW), None);
        let mut tampered = token.clone();
        tampered.insert(token.len() - 3, 'A');
        assert_eq!(keys().verify(&tampered, NOW), None);
        // The same key signing something that is not a session (no audience) opens nothing.
        let stranger = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "agent1", "exp": NOW + 60, "epoch": 0}),
            &EncodingKey::from_secret(b"a-session-secret-of-at-least-32-chars"),
        )
        .unwrap();
        assert_eq!(keys().verify(&stranger, NOW), None);
        // Nor does an unsigned token.
        let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", token.split('.').nth(1).unwrap());
        assert_eq!(keys().verify(&unsigned, NOW), None);
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
