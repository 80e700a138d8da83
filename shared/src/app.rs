//! What a function holds for its whole life: configuration and clients, built once per cold start.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, ConfigError};
use crate::store::CallStore;
use crate::store::dynamo::DynamoCallStore;
use crate::twilio::access_token::TokenSigner;
use crate::twilio::rest::Timeouts;
use crate::twilio::{Dialer, TwilioError, TwilioRestClient};

/// Seconds since the Unix epoch. A port so tests can move time (record expiry).
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            })
    }
}

pub struct App {
    pub config: Config,
    pub calls: Arc<dyn CallStore>,
    pub dialer: Arc<dyn Dialer>,
    pub tokens: TokenSigner,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not build the Twilio client")]
    Twilio(#[from] TwilioError),
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

pub fn dynamodb_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

impl App {
    pub async fn from_env() -> Result<Self, StartupError> {
        let config = Config::from_env()?;
        let aws = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(dynamodb_timeouts())
            .retry_config(dynamodb_retries())
            .load()
            .await;
        let calls = DynamoCallStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            config.calls_table.clone(),
        );
        let twilio = &config.twilio;
        let dialer = TwilioRestClient::new(
            &twilio.api_base_url,
            &twilio.account_sid,
            &twilio.api_key,
            twilio.api_secret.clone(),
            Timeouts::default(),
        )?;
        Ok(Self::new(
            config,
            Arc::new(calls),
            Arc::new(dialer),
            Arc::new(SystemClock),
        ))
    }

    pub fn new(
        config: Config,
        calls: Arc<dyn CallStore>,
        dialer: Arc<dyn Dialer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let twilio = &config.twilio;
        let tokens = TokenSigner {
            account_sid: twilio.account_sid.clone(),
            api_key: twilio.api_key.clone(),
            api_secret: twilio.api_secret.clone(),
            twiml_app_sid: twilio.twiml_app_sid.clone(),
        };
        Self {
            config,
            calls,
            dialer,
            tokens,
            clock,
        }
    }
}
