//! Reads the settings `make dev` hands the functions (`NAME=value` lines, later lines win), so
//! the simulator and Warmline share one set of credentials.

use std::collections::HashMap;
use std::path::Path;

use crate::model::SimConfig;

pub fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), unquote(value.trim()).to_owned()))
        .collect()
}

pub fn read(path: &Path) -> std::io::Result<HashMap<String, String>> {
    std::fs::read_to_string(path).map(|text| parse(&text))
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner;
        }
    }
    value
}

/// A simulator configured like Twilio is for a Warmline stack with these settings.
pub fn config_from(settings: &HashMap<String, String>, public_base_url: Option<&str>) -> Result<SimConfig, String> {
    let base = public_base_url
        .map(str::to_owned)
        .or_else(|| settings.get("PUBLIC_BASE_URL").cloned())
        .ok_or("no public base URL: pass --public-base-url or set PUBLIC_BASE_URL")?;
    let mut config = SimConfig::for_warmline(&base);
    let set = |name: &str, field: &mut String| {
        if let Some(value) = settings.get(name).filter(|v| !v.is_empty()) {
            value.clone_into(field);
        }
    };
    set("TWILIO_ACCOUNT_SID", &mut config.account_sid);
    set("TWILIO_AUTH_TOKEN", &mut config.auth_token);
    set("TWILIO_NUMBER", &mut config.phone_number);
    set("TWILIO_TWIML_APP_SID", &mut config.twiml_app_sid);
    set("TWILIO_AGENT_TWIML_APP_SID", &mut config.agent_twiml_app_sid);
    config.api_key = settings.get("TWILIO_API_KEY").filter(|v| !v.is_empty()).cloned();
    config.api_secret = settings.get("TWILIO_API_SECRET").filter(|v| !v.is_empty()).cloned();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_lines_win_and_comments_are_skipped() {
        let settings = parse(
            "# x\nTWILIO_AUTH_TOKEN=a\nTWILIO_AUTH_TOKEN=\"b\"\nPUBLIC_BASE_URL=http://127.0.0.1:9000\n\
             TWILIO_AGENT_TWIML_APP_SID=AP11111111111111111111111111111111\n",
        );
        let config = config_from(&settings, None).unwrap();
        assert_eq!(config.auth_token, "b");
        assert_eq!(config.agent_twiml_app_sid, "AP11111111111111111111111111111111");
        assert_eq!(config.voice_url, "http://127.0.0.1:9000/conference/connect/client");
        assert_eq!(config.twiml_app_voice_url, "http://127.0.0.1:9000/call/connect");
        assert_eq!(config.agent_twiml_app_voice_url, "http://127.0.0.1:9000/call/agent");
        assert_eq!(config.api_key, None);
    }

    #[test]
    fn needs_a_public_base_url() {
        assert!(config_from(&HashMap::new(), None).is_err());
    }
}
