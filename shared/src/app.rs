//! What a function holds for its whole life: configuration and clients, built once per cold start.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, ConfigError};
use crate::domain::{AgentId, CallSid, PhoneNumber, TicketId};
use crate::store::dynamo::{DynamoCallStore, DynamoTicketStore};
use crate::store::{CallStore, TicketStore};
use crate::store::{StoreError, TicketPage};
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
    pub dialer: Arc<dyn Dialer>,
    pub tokens: TokenSigner,
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
    pub dialer: Arc<dyn Dialer>,
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
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let calls = DynamoCallStore::new(dynamodb.clone(), config.calls_table.clone());
        let tickets = DynamoTicketStore::new(dynamodb.clone(), config.tickets_table.clone());
        let dialer = TwilioRestClient::from_config(&config.twilio)?;
        let ports = Ports {
            calls: Arc::new(calls),
            tickets: Arc::new(tickets),
            dialer: Arc::new(dialer.clone()),
            clock: Arc::new(SystemClock),
        };
        Ok(Self { upstreams: Some(Upstreams { dynamodb, twilio: dialer }), ..Self::new(config, ports) })
    }

    /// For functions that need neither storage nor Twilio's REST API (hold music, tokens, pages):
    /// no AWS SDK and no HTTP client are built, or even linked into their binaries.
    pub fn stateless_from_env() -> Result<Self, StartupError> {
        let unavailable = Arc::new(Unavailable);
        let ports = Ports {
            calls: unavailable.clone(),
            tickets: unavailable.clone(),
            dialer: unavailable,
            clock: Arc::new(SystemClock),
        };
        Ok(Self::new(Config::from_env()?, ports))
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
        let Ports { calls, tickets, dialer, clock } = ports;
        let twilio = &config.twilio;
        let tokens = TokenSigner {
            account_sid: twilio.account_sid.clone(),
            api_key: twilio.api_key.clone(),
            api_secret: twilio.api_secret.clone(),
            twiml_app_sid: twilio.twiml_app_sid.clone(),
        };
        Self { config, calls, tickets, dialer, tokens, clock, upstreams: None }
    }
}

/// Stands in for storage and Twilio in a function that has no business with either; a handler
/// wired to the wrong function fails cleanly instead of reaching a service it has no access to.
struct Unavailable;

#[derive(Debug, thiserror::Error)]
#[error("this function has no access to storage or to Twilio's REST API")]
struct NotWired;

#[async_trait::async_trait]
impl CallStore for Unavailable {
    async fn create_conference(&self, _: &crate::store::Conference) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn conference(&self, _: &CallSid, _: i64) -> Result<Option<crate::store::Conference>, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn delete_conference(&self, _: &CallSid) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn add_agent_call(&self, _: &CallSid, _: &CallSid, _: i64) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn try_next_agent(&self, _: &CallSid, _: usize, _: &AgentId, _: i64) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn abandon_conference(&self, _: &CallSid, _: usize, _: i64) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn record_agent_joined(&self, _: &AgentId, _: &CallSid, _: &CallSid, _: i64) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn conference_of_agent(&self, _: &AgentId, _: i64) -> Result<Option<CallSid>, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn agent_left(&self, _: &CallSid, _: &CallSid) -> Result<Option<AgentId>, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn end_conference(&self, _: &CallSid, _: i64) -> Result<Option<crate::store::Conference>, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
}

#[async_trait::async_trait]
impl TicketStore for Unavailable {
    async fn create_ticket(&self, _: &crate::domain::Ticket) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn list_tickets(&self, _: u32, _: Option<&TicketId>) -> Result<TicketPage, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
    async fn has_ticket_for(&self, _: &PhoneNumber) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable(Box::new(NotWired)))
    }
}

#[async_trait::async_trait]
impl Dialer for Unavailable {
    async fn place_call(&self, _: &crate::twilio::OutboundCall) -> Result<CallSid, TwilioError> {
        Err(TwilioError::NotConfigured)
    }
    async fn update_call(&self, _: &CallSid, _: &crate::twilio::CallUpdate) -> Result<(), TwilioError> {
        Err(TwilioError::NotConfigured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::testing::{body_text, config_with, event, signed_webhook};

    #[tokio::test]
    async fn a_stateless_app_refuses_storage_and_dialing_cleanly() {
        let app = App::new(
            config_with(&[]),
            Ports {
                calls: Arc::new(Unavailable),
                tickets: Arc::new(Unavailable),
                dialer: Arc::new(Unavailable),
                clock: Arc::new(SystemClock),
            },
        );
        let response = crate::handlers::tickets::handle(&app, event("GET", "/tickets", &[], b"")).await.unwrap();
        assert_eq!(response.status(), 503);
        let response = crate::handlers::conference_connect_client::handle(
            &app,
            signed_webhook("/conference/connect/client", &[("CallSid", "CA00000000000000000000000000000001")]),
        )
        .await
        .unwrap();
        assert!(body_text(&response).contains("We are sorry"));
        // What a stateless function serves works as usual.
        let response =
            crate::handlers::conference_wait::handle(&app, signed_webhook("/conference/wait", &[])).await.unwrap();
        assert!(body_text(&response).contains("<Play loop=\"0\">"));
    }
}
