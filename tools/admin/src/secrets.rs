//! `set-twilio-secrets` and `rotate-session-key`: the stack's three secrets, each written whole
//! with the keys the functions read (`shared::secret::SecretKind`), anything else in it kept.
//! The functions pick a new value up within five minutes, at once where a request is refused
//! for it (docs/OPERATIONS.md, "Secrets"): nothing is redeployed or recycled.

use std::io::Write;

use aws_sdk_secretsmanager::Client;
use shared::secret::{MIN_SESSION_SECRET_CHARS, SecretKind};

use crate::secret_object;
use crate::{AdminError, ask_secret};

/// Where each Twilio secret goes; `None` leaves that one alone.
pub struct TwilioSecretIds {
    /// The stack output TwilioAuthTokenSecretArn.
    pub auth_token: Option<String>,
    /// The stack output TwilioApiKeySecretArn.
    pub api_key: Option<String>,
}

/// Asks for the values of each secret named (without echoing them, or from stdin: the Auth
/// Token, then the API key's SID, then its secret, one a line) and stores them.
pub async fn set_twilio_secrets(
    client: &Client,
    ids: TwilioSecretIds,
    from_stdin: bool,
    out: &mut impl Write,
) -> Result<(), AdminError> {
    if ids.auth_token.is_none() && ids.api_key.is_none() {
        return Err(AdminError::Usage(
            "name the secret to set: --auth-token-secret-id (the stack output TwilioAuthTokenSecretArn) and/or \
             --api-key-secret-id (TwilioApiKeySecretArn)"
                .into(),
        ));
    }
    // Everything asked for first: nothing is written if any answer is refused.
    let auth_token = ids.auth_token.as_ref().map(|_| ask_secret("Twilio Auth Token: ", from_stdin)).transpose()?;
    let api_key = match &ids.api_key {
        Some(_) => {
            let sid = ask_secret("Twilio API Key SID (SK...): ", from_stdin)?;
            if !(sid.len() == 34 && sid.starts_with("SK") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(AdminError::Usage("the API Key SID must be SK followed by 32 hex digits".into()));
            }
            Some((sid, ask_secret("Twilio API Key secret: ", from_stdin)?))
        }
        None => None,
    };
    if let (Some(secret_id), Some(token)) = (&ids.auth_token, auth_token) {
        store(client, secret_id, SecretKind::TwilioAuthToken, &[("TWILIO_AUTH_TOKEN", token)]).await?;
        writeln!(out, "stored the Twilio Auth Token in {secret_id}")?;
    }
    if let (Some(secret_id), Some((sid, secret))) = (&ids.api_key, api_key) {
        store(client, secret_id, SecretKind::TwilioApiKey, &[("TWILIO_API_KEY", sid), ("TWILIO_API_SECRET", secret)])
            .await?;
        writeln!(out, "stored the Twilio API key in {secret_id}")?;
    }
    writeln!(out, "functions use the new values within 5 minutes, at once where Twilio or a webhook refuses the old")?;
    Ok(())
}

/// A new session key, generated here and never shown: every agent's session ends.
pub async fn rotate_session_key(client: &Client, secret_id: &str, out: &mut impl Write) -> Result<(), AdminError> {
    let key = random_key()?;
    store(client, secret_id, SecretKind::SessionKey, &[("SESSION_SECRET", key)]).await?;
    writeln!(
        out,
        "stored a new session key in {secret_id}; every agent signs in again (within 5 minutes the old key opens nothing)"
    )?;
    Ok(())
}

/// Writes `values` into the secret, keeping what else it holds; refuses a secret that is not
/// of `kind` (one holding keys of another kind), so that a mixed-up id changes nothing.
pub(crate) async fn store(
    client: &Client,
    secret_id: &str,
    kind: SecretKind,
    values: &[(&str, String)],
) -> Result<(), AdminError> {
    let mut object = secret_object::read(client, secret_id).await?;
    let foreign: Vec<&str> = SecretKind::ALL
        .into_iter()
        .filter(|other| *other != kind)
        .flat_map(|other| other.names().iter().copied())
        .filter(|name| object.contains_key(*name))
        .collect();
    if !foreign.is_empty() {
        return Err(AdminError::Usage(format!(
            "{secret_id} holds {} and is not the secret for {}: check the stack output",
            foreign.join(", "),
            kind.names().join(", ")
        )));
    }
    for (name, value) in values {
        object.insert((*name).to_owned(), value.clone().into());
    }
    secret_object::write(client, secret_id, object).await
}

/// 64 letters and digits (about 381 bits), as Secrets Manager generates the first one.
fn random_key() -> Result<String, AdminError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const LENGTH: usize = 64;
    let mut key = String::with_capacity(LENGTH);
    while key.len() < LENGTH {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).map_err(|err| AdminError::Usage(format!("no randomness: {err}")))?;
        // Rejection sampling keeps every character equally likely.
        if usize::from(byte[0]) < 256 - 256 % ALPHABET.len() {
            key.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    debug_assert!(key.len() >= MIN_SESSION_SECRET_CHARS);
    Ok(key)
}
