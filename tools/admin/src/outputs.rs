//! A deployed stack's outputs, as `sam list stack-outputs --output json` prints them (a list of
//! `{"OutputKey", "OutputValue", "Description"}`), or as a plain JSON object of key and value.

use std::collections::BTreeMap;
use std::path::Path;

use crate::AdminError;

/// The outputs `wire-twilio` needs; template.yaml declares each (tests/template checks it).
pub const WIRING_OUTPUTS: [&str; 5] =
    ["StackName", "WebhookBaseUrl", "FallbackTwimlUrl", "TwilioAccountSid", "TwilioNumber"];

/// The secret holding the API Key secret: its own when the stack has one, else the stack's one
/// secret.
pub const API_KEY_SECRET_OUTPUTS: [&str; 2] = ["TwilioApiKeySecretArn", "SecretsArn"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackOutputs(BTreeMap<String, String>);

impl StackOutputs {
    pub fn load(path: &Path) -> Result<Self, AdminError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| AdminError::Usage(format!("cannot read the stack outputs {}: {err}", path.display())))?;
        Self::parse(&text).map_err(|why| AdminError::Usage(format!("{}: {why}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|err| format!("not JSON ({err}); expected `sam list stack-outputs --output json`"))?;
        let mut outputs = BTreeMap::new();
        match value {
            serde_json::Value::Array(items) => {
                for item in items {
                    let key = item.get("OutputKey").and_then(serde_json::Value::as_str);
                    let value = item.get("OutputValue").and_then(serde_json::Value::as_str);
                    match (key, value) {
                        (Some(key), Some(value)) => outputs.insert(key.to_owned(), value.to_owned()),
                        _ => return Err("every output needs an OutputKey and an OutputValue".into()),
                    };
                }
            }
            serde_json::Value::Object(object) => {
                for (key, value) in object {
                    let serde_json::Value::String(value) = value else {
                        return Err(format!("the output {key} is not a string"));
                    };
                    outputs.insert(key, value);
                }
            }
            _ => return Err("expected a list of outputs or an object".into()),
        }
        Ok(Self(outputs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// Every one of `keys`, or an error naming all that are missing.
    pub fn require<'a>(&'a self, keys: &[&str]) -> Result<Vec<&'a str>, AdminError> {
        let missing: Vec<&str> = keys.iter().copied().filter(|key| self.get(key).is_none()).collect();
        if !missing.is_empty() {
            return Err(AdminError::Usage(format!(
                "the stack outputs lack {}: deploy this version of template.yaml first (make deploy)",
                missing.join(", ")
            )));
        }
        Ok(keys.iter().filter_map(|key| self.get(key)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sams_list_and_plain_objects() {
        let sam = r#"[{"OutputKey": "StackName", "OutputValue": "warmline", "Description": "d"},
                      {"OutputKey": "TwilioNumber", "OutputValue": "+15550000000", "Description": "d"}]"#;
        let outputs = StackOutputs::parse(sam).unwrap();
        assert_eq!(outputs.get("StackName"), Some("warmline"));
        assert_eq!(
            StackOutputs::parse(r#"{"StackName": "warmline", "TwilioNumber": "+15550000000"}"#).unwrap(),
            outputs
        );
        assert!(StackOutputs::parse("[{\"OutputKey\": \"x\"}]").is_err());
        assert!(StackOutputs::parse("nope").unwrap_err().contains("sam list stack-outputs"));
    }

    #[test]
    fn names_every_missing_output() {
        let outputs = StackOutputs::parse(r#"{"StackName": "warmline", "TwilioNumber": ""}"#).unwrap();
        let err = outputs.require(&WIRING_OUTPUTS).unwrap_err().to_string();
        assert_eq!(
            err,
            "the stack outputs lack WebhookBaseUrl, FallbackTwimlUrl, TwilioAccountSid, TwilioNumber: deploy this \
             version of template.yaml first (make deploy)"
        );
    }
}
