//! The stack's secret as the JSON object it is: read whole and written back whole, so that a
//! command changing some keys keeps every other (the session key, the TwiML App SIDs).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde_json::{Map, Value};

use crate::AdminError;

pub type SecretObject = Map<String, Value>;

pub async fn read(client: &Client, secret_id: &str) -> Result<SecretObject, AdminError> {
    let output =
        client.get_secret_value().secret_id(secret_id).send().await.map_err(|err| {
            AdminError::SecretsManager(format!("cannot read {secret_id}: {}", DisplayErrorContext(err)))
        })?;
    // Never echo the text: it is the secret.
    let malformed = || AdminError::Usage(format!("{secret_id} is not a JSON object: is it the stack's SecretsArn?"));
    match serde_json::from_str(output.secret_string().ok_or_else(malformed)?) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(malformed()),
    }
}

pub async fn write(client: &Client, secret_id: &str, object: SecretObject) -> Result<(), AdminError> {
    client
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(Value::Object(object).to_string())
        .send()
        .await
        .map_err(|err| AdminError::SecretsManager(format!("cannot write {secret_id}: {}", DisplayErrorContext(err))))?;
    Ok(())
}

/// A string value, `None` when absent or empty.
pub fn value<'a>(object: &'a SecretObject, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str).filter(|value| !value.is_empty())
}
