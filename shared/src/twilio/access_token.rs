//! Access Tokens for the Voice JavaScript SDK 2.x: an HS256 JWT signed with the API key secret.
//! Header and claims are serialised in the same order as Twilio's helper libraries, so for ASCII
//! content a token is byte-for-byte what they would mint (the tests reproduce Twilio's reference
//! signature); non-ASCII params differ only in JSON escaping, with equal claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Serialize;

use crate::domain::Identity;
use crate::secret::Secret;

pub const DEFAULT_TTL_SECONDS: u64 = 3600;
/// Twilio refuses tokens that live longer than a day.
pub const MAX_TTL_SECONDS: u64 = 86_400;

const HEADER: &str = r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#;

/// What signs tokens: the account and the API key pair.
#[derive(Debug, Clone)]
pub struct TokenSigner {
    pub account_sid: String,
    pub api_key: String,
    pub api_secret: Secret,
    pub twiml_app_sid: String,
}

/// A request for one token: who, what they may do, for how long.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub identity: &'a Identity,
    pub issued_at: u64,
    pub ttl_seconds: u64,
    /// Parameters Twilio passes to the TwiML App on every outgoing call from this device.
    pub outgoing_params: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token lifetime must be between 1 and {MAX_TTL_SECONDS} seconds")]
    InvalidTtl,
    #[error("could not sign the token")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("could not serialise the token claims")]
    Claims(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Claims<'a> {
    jti: String,
    grants: Grants<'a>,
    iss: &'a str,
    exp: u64,
    nbf: u64,
    sub: &'a str,
}

#[derive(Serialize)]
struct Grants<'a> {
    voice: VoiceGrant<'a>,
    identity: &'a str,
}

#[derive(Serialize)]
struct VoiceGrant<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    incoming: Option<Incoming>,
    outgoing: Outgoing<'a>,
}

#[derive(Serialize)]
struct Incoming {
    allow: bool,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    application_sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl TokenSigner {
    /// Agents may receive calls; customers may only place them.
    pub fn mint(&self, request: &TokenRequest<'_>) -> Result<String, TokenError> {
        if request.ttl_seconds == 0 || request.ttl_seconds > MAX_TTL_SECONDS {
            return Err(TokenError::InvalidTtl);
        }
        let incoming = matches!(request.identity, Identity::Agent(_)).then_some(Incoming { allow: true });
        let claims = Claims {
            jti: format!("{}-{}", self.api_key, request.issued_at),
            grants: Grants {
                voice: VoiceGrant {
                    incoming,
                    outgoing: Outgoing {
                        application_sid: &self.twiml_app_sid,
                        // Twilio's libraries leave out an empty params object altogether.
                        params: request.outgoing_params.as_ref().filter(|params| !params.is_empty()),
                    },
                },
                identity: request.identity.as_str(),
            },
            iss: &self.api_key,
            exp: request.issued_at + request.ttl_seconds,
            nbf: request.issued_at,
            sub: &self.account_sid,
        };
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?));
        let key = EncodingKey::from_secret(self.api_secret.expose().as_bytes());
        let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256)?;
        Ok(format!("{signing_input}.{signature}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgentId;

    fn reference_signer() -> TokenSigner {
        TokenSigner {
            account_sid: format!("AC{}", "0".repeat(32)),
            api_key: format!("SK{}", "0".repeat(32)),
            api_secret: Secret::new("secret0123456789"),
            twiml_app_sid: format!("AP{}", "0".repeat(32)),
        }
    }

    fn decode_part(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn reproduces_twilios_reference_token() {
        let identity = Identity::Agent(AgentId::parse("agent1").unwrap());
        let params = serde_json::json!({"ticket": "T-1"}).as_object().cloned();
        let token = reference_signer()
            .mint(&TokenRequest {
                identity: &identity,
                issued_at: 1_700_000_000,
                ttl_seconds: 3600,
                outgoing_params: params,
            })
            .unwrap();

        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            String::from_utf8(URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap(),
            r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#
        );
        assert_eq!(
            String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap(),
            r#"{"jti":"SK00000000000000000000000000000000-1700000000","grants":{"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000000","params":{"ticket":"T-1"}}},"identity":"agent1"},"iss":"SK00000000000000000000000000000000","exp":1700003600,"nbf":1700000000,"sub":"AC00000000000000000000000000000000"}"#
        );
        assert_eq!(parts[2], "VzJtcGEX-aHUhjKSSA_DF0oDLyQhq3BUiQTecXG1kv0");
    }

    #[test]
    fn customers_cannot_receive_calls() {
        let identity = Identity::Customer("customer_0a1b".into());
        let token = reference_signer()
            .mint(&TokenRequest {
                identity: &identity,
                issued_at: 1_700_000_000,
                ttl_seconds: 600,
                outgoing_params: None,
            })
            .unwrap();
        let claims = decode_part(token.split('.').nth(1).unwrap());
        assert_eq!(
            claims["grants"],
            serde_json::json!({"voice": {"outgoing": {"application_sid": format!("AP{}", "0".repeat(32))}}, "identity": "customer_0a1b"})
        );
        assert_eq!(claims["exp"], 1_700_000_600);
    }

    #[test]
    fn verifies_with_jsonwebtoken() {
        let identity = Identity::Agent(AgentId::parse("agent2").unwrap());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let token = reference_signer()
            .mint(&TokenRequest { identity: &identity, issued_at: now, ttl_seconds: 3600, outgoing_params: None })
            .unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        validation.set_issuer(&[format!("SK{}", "0".repeat(32))]);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"secret0123456789"),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.header.cty.as_deref(), Some("twilio-fpa;v=1"));
        assert_eq!(decoded.claims["grants"]["identity"], "agent2");

        let wrong_key = jsonwebtoken::DecodingKey::from_secret(b"another-secret");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &wrong_key, &validation).is_err());
    }

    #[test]
    fn rejects_lifetimes_twilio_refuses() {
        let identity = Identity::Customer("customer_1".into());
        for ttl in [0, MAX_TTL_SECONDS + 1] {
            let result = reference_signer().mint(&TokenRequest {
                identity: &identity,
                issued_at: 1,
                ttl_seconds: ttl,
                outgoing_params: None,
            });
            assert!(matches!(result, Err(TokenError::InvalidTtl)), "{ttl}");
        }
    }
}
