//! What Twilio reads from a Voice SDK Access Token when a browser connects: who it is, which
//! TwiML App its calls go to, and the params the token passes to that app. Checked the way
//! Twilio checks it (HS256 with the API key's secret, issuer, account, lifetime), and written
//! out here rather than taken from Warmline, so that an end-to-end test catches a token bug there
//! instead of repeating it on both sides.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::model::SimConfig;

/// Twilio refuses tokens that live longer than a day.
const MAX_LIFETIME_SECONDS: i64 = 86_400;

/// What the token grants an outgoing call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingGrant {
    pub identity: String,
    pub application_sid: String,
    /// `grants.voice.outgoing.params`, in the token's order; Twilio sends them to the app's
    /// Voice URL with every call the token places.
    pub params: Vec<(String, String)>,
}

/// Why Twilio refuses a token, with its error code (the SDK reports it; no call is created).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TokenRefused {
    pub code: u32,
    pub message: &'static str,
}

const INVALID: TokenRefused = TokenRefused { code: 20101, message: "Invalid Access Token" };
const WRONG_ISSUER: TokenRefused = TokenRefused { code: 20103, message: "Invalid Access Token issuer/subject" };
const EXPIRED: TokenRefused = TokenRefused { code: 20104, message: "Access Token expired or expiration date invalid" };
const BAD_SIGNATURE: TokenRefused = TokenRefused { code: 20107, message: "Invalid Access Token signature" };
const TOO_LONG: TokenRefused =
    TokenRefused { code: 20157, message: "Expiration Time exceeds maximum of 86400 seconds" };
const NO_OUTGOING: TokenRefused = TokenRefused { code: 20101, message: "Invalid Access Token grants" };

/// The outgoing grant of `token` at `now` (epoch seconds), or Twilio's refusal. The signature is
/// checked when the simulator knows the API key's secret (`SimConfig::api_secret`).
pub fn outgoing_grant(token: &str, config: &SimConfig, now: i64) -> Result<OutgoingGrant, TokenRefused> {
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return Err(INVALID);
    };
    let Some((header, payload)) = signed.split_once('.').filter(|(_, payload)| !payload.contains('.')) else {
        return Err(INVALID);
    };
    let header = decode(header)?;
    if header["alg"] != "HS256" || header["cty"] != "twilio-fpa;v=1" {
        return Err(INVALID);
    }
    if let Some(secret) = &config.api_secret {
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| BAD_SIGNATURE)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| BAD_SIGNATURE)?;
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature).map_err(|_| BAD_SIGNATURE)?;
    }
    let claims = decode(payload)?;
    let issuer_ok = config.api_key.as_deref().is_none_or(|key| claims["iss"] == key);
    if !issuer_ok || claims["sub"] != config.account_sid.as_str() {
        return Err(WRONG_ISSUER);
    }
    let (Some(not_before), Some(expires)) = (claims["nbf"].as_i64().or(claims["iat"].as_i64()), claims["exp"].as_i64())
    else {
        return Err(EXPIRED);
    };
    if expires - not_before > MAX_LIFETIME_SECONDS {
        return Err(TOO_LONG);
    }
    if now < not_before || now >= expires {
        return Err(EXPIRED);
    }
    let grants = &claims["grants"];
    let (Some(identity), Some(application_sid)) =
        (grants["identity"].as_str(), grants["voice"]["outgoing"]["application_sid"].as_str())
    else {
        return Err(NO_OUTGOING);
    };
    let params = match &grants["voice"]["outgoing"]["params"] {
        Value::Object(params) => params
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
            .collect(),
        _ => Vec::new(),
    };
    Ok(OutgoingGrant { identity: identity.to_owned(), application_sid: application_sid.to_owned(), params })
}

fn decode(part: &str) -> Result<Value, TokenRefused> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| INVALID)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| INVALID)?;
    if value.is_object() { Ok(value) } else { Err(INVALID) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(header: &str, claims: &Value, secret: &str) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    const HEADER: &str = r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#;

    fn config() -> SimConfig {
        SimConfig {
            account_sid: format!("AC{}", "0".repeat(32)),
            api_key: Some(format!("SK{}", "0".repeat(32))),
            api_secret: Some("secret0123456789".into()),
            ..SimConfig::for_warmline("http://127.0.0.1:9000")
        }
    }

    fn claims() -> Value {
        serde_json::json!({
            "jti": format!("SK{}-1700000000", "0".repeat(32)),
            "grants": {"voice": {"incoming": {"allow": true}, "outgoing": {
                "application_sid": format!("AP{}", "0".repeat(32)), "params": {"ticket": "T-1", "n": 2}}},
                "identity": "agent1"},
            "iss": format!("SK{}", "0".repeat(32)),
            "exp": 1_700_003_600,
            "nbf": 1_700_000_000,
            "sub": format!("AC{}", "0".repeat(32)),
        })
    }

    #[test]
    fn reads_twilios_reference_token() {
        // TWILIO.md's reference token: its signature is Twilio's own.
        let token = sign(HEADER, &claims(), "secret0123456789");
        let grant = outgoing_grant(&token, &config(), 1_700_000_100).unwrap();
        assert_eq!(grant.identity, "agent1");
        assert_eq!(grant.application_sid, format!("AP{}", "0".repeat(32)));
        assert_eq!(grant.params, [("n".to_owned(), "2".to_owned()), ("ticket".to_owned(), "T-1".to_owned())]);
    }

    #[test]
    fn refuses_what_twilio_refuses() {
        let at = 1_700_000_100;
        let good = sign(HEADER, &claims(), "secret0123456789");
        assert_eq!(outgoing_grant(&sign(HEADER, &claims(), "another"), &config(), at), Err(BAD_SIGNATURE));
        assert_eq!(outgoing_grant(&good, &config(), 1_700_003_600), Err(EXPIRED));
        assert_eq!(outgoing_grant(&good, &config(), 1_699_999_999), Err(EXPIRED));
        let mut other_account = claims();
        other_account["sub"] = format!("AC{}", "1".repeat(32)).into();
        assert_eq!(outgoing_grant(&sign(HEADER, &other_account, "secret0123456789"), &config(), at), Err(WRONG_ISSUER));
        let mut too_long = claims();
        too_long["exp"] = (1_700_000_000 + MAX_LIFETIME_SECONDS + 1).into();
        assert_eq!(outgoing_grant(&sign(HEADER, &too_long, "secret0123456789"), &config(), at), Err(TOO_LONG));
        let none = r#"{"alg":"none","cty":"twilio-fpa;v=1","typ":"JWT"}"#;
        assert_eq!(outgoing_grant(&sign(none, &claims(), "secret0123456789"), &config(), at), Err(INVALID));
        for junk in ["", "a.b", "a.b.c.d", &good.replace('.', "")] {
            assert!(outgoing_grant(junk, &config(), at).is_err(), "{junk}");
        }
    }
}
