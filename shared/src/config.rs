//! Every environment variable Warmline reads, read once per cold start.

use std::collections::BTreeMap;

use crate::domain::{BusinessHours, DialCountries, PhoneNumber};
use crate::secret::{MIN_SESSION_SECRET_CHARS, Secret, SecretKind};

pub const DEFAULT_TWILIO_API_BASE_URL: &str = "https://api.twilio.com";

pub const DEFAULT_QUEUE_MAX_WAIT_SECONDS: i64 = 300;
/// A customer on the page has one call at a time; a household or an office behind one address a
/// few.
pub const DEFAULT_BROWSER_CALLS_PER_IDENTITY: u32 = 1;
pub const DEFAULT_BROWSER_CALLS_PER_ADDRESS: u32 = 3;

/// Twilio's hold music, over HTTPS. Path-style: the bucket's name has dots, so its
/// virtual-hosted HTTPS name does not match S3's certificate. template.yaml's `HoldMusicUrl`
/// has the same default.
pub const DEFAULT_HOLD_MUSIC_URL: &str = "https://s3.amazonaws.com/com.twilio.music.classical/BusyStrings.mp3";

#[derive(Debug, Clone)]
pub struct Config {
    pub twilio: TwilioConfig,
    /// The origin Twilio calls, without a trailing slash; `None` derives it from each request.
    pub public_base_url: Option<String>,
    pub calls_table: String,
    pub tickets_table: String,
    pub agents_table: String,
    /// The call ledger (`LEDGER_TABLE`), and how many days it keeps a call
    /// (`LEDGER_RETENTION_DAYS`, the template's `LedgerRetentionDays`).
    pub ledger_table: String,
    pub ledger_retention_days: i64,
    /// Signs agents' session cookies.
    pub session_secret: Secret,
    /// Deployed, where each kind of secret this function is given lives (`*_SECRET_ARN`); then
    /// the secrets are read from there (`secret::Secrets`), never from the environment, and the
    /// secret fields here stay empty. Empty locally: the environment holds the secrets.
    pub secret_arns: BTreeMap<SecretKind, String>,
    /// How long a caller waits in line before they are offered to leave a message.
    pub queue_max_wait_seconds: i64,
    /// When callers are put in line; `None`: always.
    pub business_hours: Option<BusinessHours>,
    pub hold_music_url: String,
    /// The countries agents may call (`DIAL_COUNTRIES`); by default the support number's own.
    pub dial_countries: DialCountries,
    /// How many browser calls one customer identity may have at once.
    pub browser_calls_per_identity: u32,
    /// How many browser calls the customers behind one source address may have at once.
    pub browser_calls_per_address: u32,
}

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    pub api_key: String,
    pub api_secret: Secret,
    pub number: PhoneNumber,
    /// The customers' TwiML App, whose Voice URL is `/call/connect`.
    pub twiml_app_sid: String,
    /// The agents' TwiML App, whose Voice URL is `/call/agent`: which app a browser's token
    /// grants is what tells an agent's call from a customer's.
    pub agent_twiml_app_sid: String,
    pub api_base_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {}", describe(.missing, .invalid))]
pub struct ConfigError {
    pub missing: Vec<&'static str>,
    /// Variable name → what is wrong with it (never the value: it may be a secret).
    pub invalid: BTreeMap<&'static str, String>,
}

fn describe(missing: &[&str], invalid: &BTreeMap<&str, String>) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(", ")));
    }
    parts.extend(invalid.iter().map(|(name, why)| format!("{name} {why}")));
    parts.join("; ")
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests need not touch the process environment. Collects every
    /// problem before failing, so one deploy shows them all.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut reader = Reader { lookup: &lookup, missing: Vec::new(), invalid: BTreeMap::new() };

        let account_sid = reader.required("TWILIO_ACCOUNT_SID");
        reader.check_prefix("TWILIO_ACCOUNT_SID", &account_sid, "AC");
        let secret_arns: BTreeMap<SecretKind, String> = SecretKind::ALL
            .into_iter()
            .filter_map(|kind| reader.optional(kind.arn_variable()).map(|arn| (kind, arn)))
            .collect();
        // Deployed, a function holds only the secrets it is given, read from Secrets Manager.
        let from_environment = secret_arns.is_empty();
        let secret = |reader: &mut Reader<'_, _>, name| {
            if from_environment { reader.required(name) } else { String::new() }
        };
        let auth_token = Secret::new(secret(&mut reader, "TWILIO_AUTH_TOKEN"));
        let api_key = secret(&mut reader, "TWILIO_API_KEY");
        reader.check_prefix("TWILIO_API_KEY", &api_key, "SK");
        let api_secret = Secret::new(secret(&mut reader, "TWILIO_API_SECRET"));
        let number = reader.required("TWILIO_NUMBER");
        let number = PhoneNumber::parse(&number);
        let twiml_app_sid = reader.required("TWILIO_TWIML_APP_SID");
        reader.check_prefix("TWILIO_TWIML_APP_SID", &twiml_app_sid, "AP");
        let agent_twiml_app_sid = reader.required("TWILIO_AGENT_TWIML_APP_SID");
        reader.check_prefix("TWILIO_AGENT_TWIML_APP_SID", &agent_twiml_app_sid, "AP");
        if !agent_twiml_app_sid.is_empty() && agent_twiml_app_sid == twiml_app_sid {
            // One app for both would let a customer's token reach the agents' Voice URL.
            reader.invalid::<()>("TWILIO_AGENT_TWIML_APP_SID", "must be another app than TWILIO_TWIML_APP_SID".into());
        }
        let api_base_url = reader.url("TWILIO_API_BASE_URL").unwrap_or_else(|| DEFAULT_TWILIO_API_BASE_URL.to_owned());
        let public_base_url = reader.url("PUBLIC_BASE_URL");
        let calls_table = reader.required("CALLS_TABLE");
        let tickets_table = reader.required("TICKETS_TABLE");
        let agents_table = reader.required("AGENTS_TABLE");
        let ledger_table = reader.required("LEDGER_TABLE");
        let ledger_retention_days = i64::from(
            reader.count("LEDGER_RETENTION_DAYS", u32::try_from(crate::domain::LEDGER_RETENTION_DAYS).unwrap_or(396)),
        );
        let session_secret = secret(&mut reader, "SESSION_SECRET");
        if !session_secret.is_empty() && session_secret.chars().count() < MIN_SESSION_SECRET_CHARS {
            reader.invalid::<()>("SESSION_SECRET", format!("must be at least {MIN_SESSION_SECRET_CHARS} characters"));
        }
        let queue_max_wait_seconds = reader.seconds("QUEUE_MAX_WAIT_SECONDS", DEFAULT_QUEUE_MAX_WAIT_SECONDS);
        let business_hours = match reader.optional("BUSINESS_HOURS").map(|hours| BusinessHours::parse(&hours)) {
            None => None,
            Some(Ok(hours)) => Some(hours),
            Some(Err(err)) => reader.invalid("BUSINESS_HOURS", err.to_string()),
        };
        let hold_music_url = reader.url("HOLD_MUSIC_URL").unwrap_or_else(|| DEFAULT_HOLD_MUSIC_URL.to_owned());
        let dial_countries = reader.optional("DIAL_COUNTRIES").map(|countries| DialCountries::parse(&countries));
        let browser_calls_per_identity = reader.count("BROWSER_CALLS_PER_IDENTITY", DEFAULT_BROWSER_CALLS_PER_IDENTITY);
        let browser_calls_per_address = reader.count("BROWSER_CALLS_PER_ADDRESS", DEFAULT_BROWSER_CALLS_PER_ADDRESS);

        let number = match number {
            Ok(number) => Some(number),
            Err(_) if reader.missing.contains(&"TWILIO_NUMBER") => None,
            Err(err) => reader.invalid("TWILIO_NUMBER", err.to_string()),
        };
        let dial_countries = match (dial_countries, &number) {
            (Some(Ok(countries)), _) => Some(countries),
            (None, Some(number)) => DialCountries::of_number(number)
                .map_or_else(|err| reader.invalid("DIAL_COUNTRIES", format!("is unset and {err}")), Some),
            (Some(Err(err)), _) => reader.invalid("DIAL_COUNTRIES", err.to_string()),
            (None, None) => None,
        };
        match number {
            Some(number) if reader.missing.is_empty() && reader.invalid.is_empty() => Ok(Self {
                twilio: TwilioConfig {
                    account_sid,
                    auth_token,
                    api_key,
                    api_secret,
                    number,
                    twiml_app_sid,
                    agent_twiml_app_sid,
                    api_base_url,
                },
                public_base_url,
                calls_table,
                tickets_table,
                agents_table,
                ledger_table,
                ledger_retention_days,
                session_secret: Secret::new(session_secret),
                secret_arns,
                queue_max_wait_seconds,
                business_hours,
                hold_music_url,
                // Always there when nothing is missing or invalid; an empty list allows nothing.
                dial_countries: dial_countries.unwrap_or_default(),
                browser_calls_per_identity,
                browser_calls_per_address,
            }),
            _ => Err(ConfigError { missing: reader.missing, invalid: reader.invalid }),
        }
    }
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    missing: Vec<&'static str>,
    invalid: BTreeMap<&'static str, String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &'static str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.missing.push(name);
            String::new()
        })
    }

    fn invalid<T>(&mut self, name: &'static str, why: String) -> Option<T> {
        self.invalid.insert(name, why);
        None
    }

    fn check_prefix(&mut self, name: &'static str, value: &str, prefix: &str) {
        if !value.is_empty() && !value.starts_with(prefix) {
            self.invalid.insert(name, format!("must start with {prefix}"));
        }
    }

    /// A whole number of seconds, at least 1; `default` when unset.
    fn seconds(&mut self, name: &'static str, default: i64) -> i64 {
        match self.optional(name).map(|value| value.parse::<i64>()) {
            None => default,
            Some(Ok(seconds)) if seconds >= 1 => seconds,
            Some(_) => {
                self.invalid(name, "must be a whole number of seconds, at least 1".to_owned()).unwrap_or(default)
            }
        }
    }

    /// A whole number, at least 1; `default` when unset.
    fn count(&mut self, name: &'static str, default: u32) -> u32 {
        match self.optional(name).map(|value| value.parse::<u32>()) {
            None => default,
            Some(Ok(count)) if count >= 1 => count,
            Some(_) => self.invalid(name, "must be a whole number, at least 1".to_owned()).unwrap_or(default),
        }
    }

    /// An absolute http(s) URL, trailing slashes removed so paths can be appended.
    fn url(&mut self, name: &'static str) -> Option<String> {
        let value = self.optional(name)?;
        if value.starts_with("https://") || value.starts_with("http://") {
            Some(value.trim_end_matches('/').to_owned())
        } else {
            self.invalid(name, "must be an absolute http(s) URL".to_owned())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn complete_env() -> BTreeMap<&'static str, String> {
        [
            ("TWILIO_ACCOUNT_SID", format!("AC{}", "0".repeat(32))),
            ("TWILIO_AUTH_TOKEN", "test-auth-token".to_owned()),
            ("TWILIO_API_KEY", format!("SK{}", "0".repeat(32))),
            ("TWILIO_API_SECRET", "test-api-secret".to_owned()),
            ("TWILIO_NUMBER", "+15550000000".to_owned()),
            ("TWILIO_TWIML_APP_SID", format!("AP{}", "0".repeat(32))),
            ("TWILIO_AGENT_TWIML_APP_SID", format!("AP{}", "a".repeat(32))),
            ("CALLS_TABLE", "calls".to_owned()),
            ("TICKETS_TABLE", "tickets".to_owned()),
            ("AGENTS_TABLE", "agents".to_owned()),
            ("LEDGER_TABLE", "ledger".to_owned()),
            ("SESSION_SECRET", "test-session-secret-of-at-least-32-chars".to_owned()),
        ]
        .into_iter()
        .collect()
    }

    fn load(env: &BTreeMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn applies_defaults() {
        let config = load(&complete_env()).unwrap();
        assert_eq!(config.twilio.api_base_url, "https://api.twilio.com");
        assert_eq!(config.hold_music_url, DEFAULT_HOLD_MUSIC_URL);
        // Fetched by Twilio over HTTPS, so nobody on the way can swap what callers hear.
        assert_eq!(DEFAULT_HOLD_MUSIC_URL, "https://s3.amazonaws.com/com.twilio.music.classical/BusyStrings.mp3");
        assert_eq!(config.public_base_url, None);
        assert_eq!(config.queue_max_wait_seconds, DEFAULT_QUEUE_MAX_WAIT_SECONDS);
    }

    #[test]
    fn reports_every_missing_variable_at_once() {
        let err = load(&BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.missing,
            [
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN",
                "TWILIO_API_KEY",
                "TWILIO_API_SECRET",
                "TWILIO_NUMBER",
                "TWILIO_TWIML_APP_SID",
                "TWILIO_AGENT_TWIML_APP_SID",
                "CALLS_TABLE",
                "TICKETS_TABLE",
                "AGENTS_TABLE",
                "LEDGER_TABLE",
                "SESSION_SECRET"
            ]
        );
        assert!(err.invalid.is_empty());
    }

    #[test]
    fn the_agents_twiml_app_must_be_another_app_than_the_customers() {
        let mut env = complete_env();
        env.insert("TWILIO_AGENT_TWIML_APP_SID", env["TWILIO_TWIML_APP_SID"].clone());
        let err = load(&env).unwrap_err();
        assert_eq!(
            err.invalid.get("TWILIO_AGENT_TWIML_APP_SID").map(String::as_str),
            Some("must be another app than TWILIO_TWIML_APP_SID")
        );
        env.insert("TWILIO_AGENT_TWIML_APP_SID", "SK00000000000000000000000000000001".into());
        assert_eq!(load(&env).unwrap_err().invalid["TWILIO_AGENT_TWIML_APP_SID"], "must start with AP");
        let config = load(&complete_env()).unwrap();
        assert_eq!(config.twilio.agent_twiml_app_sid, format!("AP{}", "a".repeat(32)));
    }

    #[test]
    fn reports_invalid_values_without_echoing_them() {
        let mut env = complete_env();
        env.insert("TWILIO_NUMBER", "555-1234".into());
        env.insert("TWILIO_API_KEY", "not-a-key-s3cr3t".into());
        env.insert("PUBLIC_BASE_URL", "example.com".into());
        env.insert("QUEUE_MAX_WAIT_SECONDS", "0".into());
        env.insert("BUSINESS_HOURS", "weekdays 9 to 5".into());
        env.insert("SESSION_SECRET", "short-s3cr3t".into());
        let err = load(&env).unwrap_err();
        assert_eq!(err.missing, Vec::<&str>::new());
        assert_eq!(
            err.invalid.keys().copied().collect::<Vec<_>>(),
            [
                "BUSINESS_HOURS",
                "PUBLIC_BASE_URL",
                "QUEUE_MAX_WAIT_SECONDS",
                "SESSION_SECRET",
                "TWILIO_API_KEY",
                "TWILIO_NUMBER"
            ]
        );
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn dial_countries_default_to_the_support_numbers_country() {
        assert_eq!(load(&complete_env()).unwrap().dial_countries.to_string(), "US");
        let mut env = complete_env();
        env.insert("TWILIO_NUMBER", "+442071838750".into());
        assert_eq!(load(&env).unwrap().dial_countries.to_string(), "GB");
        env.insert("DIAL_COUNTRIES", "us, ca".into());
        assert_eq!(load(&env).unwrap().dial_countries.to_string(), "CA,US");
        for (bad, why) in [
            ("US,XX", "XX is not a country code Warmline knows (ISO 3166-1 alpha-2, such as US)"),
            ("+1", "must list ISO 3166-1 alpha-2 country codes separated by commas, such as US,CA,GB"),
        ] {
            env.insert("DIAL_COUNTRIES", bad.into());
            assert_eq!(load(&env).unwrap_err().invalid.get("DIAL_COUNTRIES").map(String::as_str), Some(why));
        }
        // A support number of no country (premium rate) cannot give the default.
        let mut env = complete_env();
        env.insert("TWILIO_NUMBER", "+19005550123".into());
        assert!(load(&env).unwrap_err().invalid["DIAL_COUNTRIES"].starts_with("is unset and "));
    }

    #[test]
    fn browser_call_limits_have_defaults_and_must_be_positive() {
        let config = load(&complete_env()).unwrap();
        assert_eq!((config.browser_calls_per_identity, config.browser_calls_per_address), (1, 3));
        let mut env = complete_env();
        env.insert("BROWSER_CALLS_PER_IDENTITY", "2".into());
        env.insert("BROWSER_CALLS_PER_ADDRESS", "10".into());
        let config = load(&env).unwrap();
        assert_eq!((config.browser_calls_per_identity, config.browser_calls_per_address), (2, 10));
        env.insert("BROWSER_CALLS_PER_IDENTITY", "0".into());
        env.insert("BROWSER_CALLS_PER_ADDRESS", "many".into());
        let err = load(&env).unwrap_err();
        assert_eq!(
            err.invalid.keys().copied().collect::<Vec<_>>(),
            ["BROWSER_CALLS_PER_ADDRESS", "BROWSER_CALLS_PER_IDENTITY"]
        );
    }

    #[test]
    fn trims_trailing_slashes_from_urls() {
        let mut env = complete_env();
        env.insert("PUBLIC_BASE_URL", "https://support.example.com/".into());
        assert_eq!(load(&env).unwrap().public_base_url.as_deref(), Some("https://support.example.com"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let printed = format!("{:?}", load(&complete_env()).unwrap());
        assert!(!printed.contains("test-auth-token") && !printed.contains("test-api-secret"));
        assert!(!printed.contains("test-session-secret"));
    }
}
