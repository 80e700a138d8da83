//! What a function holds for its whole life: configuration and clients, built once per cold start.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, ConfigError, SECRET_NAMES};
use crate::secret::Secret;
use crate::session::SessionKeys;
use crate::store::dynamo::{DynamoAgentStore, DynamoCallStore, DynamoTicketStore};
use crate::store::{AgentStore, CallStore, TicketStore};
use crate::twilio::access_token::TokenSigner;
use crate::twilio::{Dialer, TwilioError, TwilioRestClient};

/// The time, as a port so tests can move it (record expiry, ticket order).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }
}

pub struct App {
    pub config: Config,
    pub calls: Arc<dyn CallStore>,
    pub tickets: Arc<dyn TicketStore>,
    pub agents: Arc<dyn AgentStore>,
    pub dialer: Arc<dyn Dialer>,
    pub tokens: TokenSigner,
    pub sessions: SessionKeys,
    pub clock: Arc<dyn Clock>,
    /// The real clients, kept to open their connections during init (see `warm_up`).
    upstreams: Option<Upstreams>,
}

struct Upstreams {
    dynamodb: aws_sdk_dynamodb::Client,
    twilio: TwilioRestClient,
}

/// A service whose connection a function opens during init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    DynamoDb,
    Twilio,
}

/// Init runs on a boosted CPU and before any caller waits; a TLS handshake on the first request
/// instead costs that caller hundreds of milliseconds at small memory sizes. Bounded, so a slow
/// upstream delays a cold start by at most this much.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_millis(500);

/// Everything an `App` talks to, so tests can hand in memory stores and fakes.
pub struct Ports {
    pub calls: Arc<dyn CallStore>,
    pub tickets: Arc<dyn TicketStore>,
    pub agents: Arc<dyn AgentStore>,
    pub dialer: Arc<dyn Dialer>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not build the Twilio client")]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("could not read the secret SECRETS_ARN names")]
    Unreadable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Never says more: the text could be the secret itself.
    #[error("the secret SECRETS_ARN names is not a JSON object of strings")]
    Malformed,
}

/// Reading the secrets is part of every cold start: a slow Secrets Manager may delay it a
/// little, but a broken one must fail it rather than hang until Lambda's init timeout.
pub fn secrets_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// The configuration from `env`, with the secrets from Secrets Manager when `SECRETS_ARN` is set
/// (deployed: then `env` is never asked for a secret), else from `env` too (local runs).
pub async fn load_config(
    aws: &aws_config::SdkConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, StartupError> {
    let secrets = match env("SECRETS_ARN").filter(|arn| !arn.trim().is_empty()) {
        Some(arn) => {
            let config = aws_sdk_secretsmanager::config::Builder::from(aws).timeout_config(secrets_timeouts()).build();
            Some(read_secrets(&aws_sdk_secretsmanager::Client::from_conf(config), arn.trim()).await?)
        }
        None => None,
    };
    Ok(Config::from_lookup(|name| match &secrets {
        Some(secrets) if SECRET_NAMES.contains(&name) => secrets.get(name).map(|s| s.expose().to_owned()),
        _ => env(name),
    })?)
}

/// The values of `SECRET_NAMES` from the Secrets Manager secret `secret_id`, a JSON object.
/// Names it lacks are simply absent, so that configuration reports them as missing.
pub async fn read_secrets(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<std::collections::HashMap<&'static str, Secret>, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|err| SecretsError::Unreadable(Box::new(err)))?;
    let text = output.secret_string().ok_or(SecretsError::Malformed)?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| SecretsError::Malformed)?;
    let mut secrets = std::collections::HashMap::new();
    for name in SECRET_NAMES {
        match object.get(name) {
            None => {}
            Some(serde_json::Value::String(value)) => {
                secrets.insert(name, Secret::new(value.clone()));
            }
            Some(_) => return Err(SecretsError::Malformed),
        }
    }
    Ok(secrets)
}

/// DynamoDB calls sit on webhook paths that must answer Twilio within seconds: fail fast and
/// let the handler answer with fallback TwiML rather than wait out the SDK's defaults.
pub fn dynamodb_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .operation_attempt_timeout(Duration::from_millis(600))
        .operation_timeout(Duration::from_millis(1500))
        .build()
}

/// Retries must fit inside the 1.5 s operation timeout to be worth anything: the SDK's first
/// backoff of up to 1 s would leave room for one retry at most, often none after a stalled
/// attempt. A throttled table frees up within tens of milliseconds at this scale.
pub fn dynamodb_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(50))
}

impl App {
    /// Reads the configuration (see `load_config`) and builds the real clients.
    pub async fn from_env() -> Result<Self, StartupError> {
        let aws = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(dynamodb_timeouts())
            .retry_config(dynamodb_retries())
            .load()
            .await;
        let config = load_config(&aws, |name| std::env::var(name).ok()).await?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let calls = DynamoCallStore::new(dynamodb.clone(), config.calls_table.clone());
        let tickets = DynamoTicketStore::new(dynamodb.clone(), config.tickets_table.clone());
        let agents = DynamoAgentStore::new(dynamodb.clone(), config.agents_table.clone());
        let dialer = TwilioRestClient::from_config(&config.twilio)?;
        let ports = Ports {
            calls: Arc::new(calls),
            tickets: Arc::new(tickets),
            agents: Arc::new(agents),
            dialer: Arc::new(dialer.clone()),
            clock: Arc::new(SystemClock),
        };
        Ok(Self { upstreams: Some(Upstreams { dynamodb, twilio: dialer }), ..Self::new(config, ports) })
    }

    /// Opens the connections to `upstreams` now, concurrently, so that the first request does
    /// not pay for DNS and TLS. Failures are only logged: the request path has its own timeouts.
    pub async fn warm_up(&self, upstreams: &[Upstream]) {
        let Some(clients) = &self.upstreams else { return };
        let dynamodb = async {
            if upstreams.contains(&Upstream::DynamoDb) {
                // Any answer, even a refusal, leaves an open connection in the client's pool.
                let request = clients.dynamodb.describe_table().table_name(&self.config.calls_table).send();
                let outcome = tokio::time::timeout(WARM_UP_TIMEOUT, request).await;
                tracing::debug!(ok = matches!(outcome, Ok(Ok(_))), "warmed the DynamoDB connection");
            }
        };
        let twilio = async {
            if upstreams.contains(&Upstream::Twilio) {
                let outcome = tokio::time::timeout(WARM_UP_TIMEOUT, clients.twilio.warm_up()).await;
                tracing::debug!(ok = matches!(outcome, Ok(true)), "warmed the Twilio connection");
            }
        };
        tokio::join!(dynamodb, twilio);
    }

    pub fn new(config: Config, ports: Ports) -> Self {
        let Ports { calls, tickets, agents, dialer, clock } = ports;
        let twilio = &config.twilio;
        let tokens = TokenSigner {
            account_sid: twilio.account_sid.clone(),
            api_key: twilio.api_key.clone(),
            api_secret: twilio.api_secret.clone(),
            twiml_app_sid: twilio.twiml_app_sid.clone(),
        };
        let sessions = SessionKeys::new(&config.session_secret);
        Self { config, calls, tickets, agents, dialer, tokens, sessions, clock, upstreams: None }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::test_support::emulator_sdk_config;

    async fn secret(contents: &str) -> String {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let client = aws_sdk_secretsmanager::Client::new(&emulator_sdk_config());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("warmline-test-{}-{n}", std::process::id());
        let created = client.create_secret().name(name).secret_string(contents).send().await.unwrap();
        created.arn().unwrap().to_owned()
    }

    fn env_with(arn: &str) -> HashMap<&'static str, String> {
        let mut env: HashMap<&'static str, String> = crate::testkit::env().into_iter().collect();
        // Deployed, these must come from the secret even if someone also set them here.
        env.insert("TWILIO_AUTH_TOKEN", "from-the-environment".into());
        env.insert("SESSION_SECRET", "from-the-environment-but-long-enough".into());
        env.insert("SECRETS_ARN", arn.into());
        env
    }

    #[tokio::test]
    async fn deployed_the_secrets_come_from_secrets_manager_only() {
        let arn = secret(
            r#"{"TWILIO_AUTH_TOKEN": "auth-from-the-secret", "TWILIO_API_SECRET": "api-from-the-secret", "SESSION_SECRET": "session-key-from-the-secret-0123456789"}"#,
        )
        .await;
        let env = env_with(&arn);
        let config = load_config(&emulator_sdk_config(), |name| env.get(name).cloned()).await.unwrap();
        assert_eq!(config.twilio.auth_token.expose(), "auth-from-the-secret");
        assert_eq!(config.twilio.api_secret.expose(), "api-from-the-secret");
        assert_eq!(config.session_secret.expose(), "session-key-from-the-secret-0123456789");
        assert_eq!(config.calls_table, "calls", "the rest still comes from the environment");
    }

    #[tokio::test]
    async fn a_secret_not_filled_in_yet_names_what_is_missing_and_nothing_else() {
        // As the template creates it, before `set-twilio-secrets`.
        let arn = secret(r#"{"TWILIO_AUTH_TOKEN": "", "TWILIO_API_SECRET": "", "SESSION_SECRET": "generated-0123456789-0123456789-x"}"#).await;
        let env = env_with(&arn);
        let err = load_config(&emulator_sdk_config(), |name| env.get(name).cloned()).await.unwrap_err();
        assert_eq!(err.to_string(), "configuration: missing TWILIO_AUTH_TOKEN, TWILIO_API_SECRET");
    }

    #[tokio::test]
    async fn an_unreadable_or_malformed_secret_fails_the_cold_start_without_echoing_it() {
        let malformed = secret("TWILIO_AUTH_TOKEN=hunter2-plain-text").await;
        let wrong_type = secret(r#"{"TWILIO_AUTH_TOKEN": 42}"#).await;
        for (arn, expected) in [
            (malformed.as_str(), "the secret SECRETS_ARN names is not a JSON object of strings"),
            (wrong_type.as_str(), "the secret SECRETS_ARN names is not a JSON object of strings"),
            (
                "arn:aws:secretsmanager:us-east-1:000000000000:secret:nope",
                "could not read the secret SECRETS_ARN names",
            ),
        ] {
            let env = env_with(arn);
            let err = load_config(&emulator_sdk_config(), |name| env.get(name).cloned()).await.unwrap_err();
            assert_eq!(err.to_string(), expected);
            assert!(!format!("{err:?}").contains("hunter2"));
        }
    }
}
