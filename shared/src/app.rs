//! What a function holds for its whole life: configuration, secrets and clients, built once per
//! cold start. The secrets are held by `secret::Secrets`, which reads them again as they change;
//! whatever uses one asks for it at that moment (the Twilio client, Access Tokens, sessions).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
#[cfg(feature = "aws")]
use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};

pub use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, TwilioConfig};
use crate::domain::CallSid;
#[cfg(feature = "aws")]
use crate::secret::SecretsManagerSource;
use crate::secret::{ApiKey, Secret, SecretKind, SecretValues, Secrets, SecretsError};
use crate::session::SessionKeys;
#[cfg(feature = "aws")]
use crate::store::dynamo::{DynamoAgentStore, DynamoCallStore, DynamoLedgerStore, DynamoTicketStore};
use crate::store::{AgentStore, CallStore, LedgerStore, TicketStore};
use crate::twilio::access_token::TokenSigner;
use crate::twilio::rest::Timeouts;
use crate::twilio::{CallUpdate, Dialer, OutboundCall, ParticipantUpdate, Recording, TwilioError, TwilioRestClient};

pub struct App {
    pub config: Config,
    pub calls: Arc<dyn CallStore>,
    pub tickets: Arc<dyn TicketStore>,
    pub agents: Arc<dyn AgentStore>,
    pub ledger: Arc<dyn LedgerStore>,
    pub dialer: Arc<dyn Dialer>,
    pub secrets: Arc<Secrets>,
    pub sessions: SessionKeys,
    pub clock: Arc<dyn Clock>,
    /// The real clients, kept to open their connections during init (see `warm_up`).
    upstreams: Option<Upstreams>,
}

struct Upstreams {
    #[cfg(feature = "aws")]
    dynamodb: aws_sdk_dynamodb::Client,
    twilio: Arc<TwilioDialer>,
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
    pub ledger: Arc<dyn LedgerStore>,
    pub dialer: Arc<dyn Dialer>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// Reading the secrets is part of every cold start: a slow Secrets Manager may delay it a
/// little, but a broken one must fail it rather than hang until Lambda's init timeout. The same
/// bounds hold for a refresh on the request path.
#[cfg(feature = "aws")]
pub fn secrets_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// The secrets of `config`'s function: read from Secrets Manager when it names any
/// (`config.secret_arns`, deployed), else the environment's, which never change.
#[cfg(feature = "aws")]
pub async fn load_secrets(
    aws: &aws_config::SdkConfig,
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Secrets, SecretsError> {
    if config.secret_arns.is_empty() {
        return Ok(Secrets::fixed(environment_secrets(config), clock));
    }
    let client_config = aws_sdk_secretsmanager::config::Builder::from(aws).timeout_config(secrets_timeouts()).build();
    let client = aws_sdk_secretsmanager::Client::from_conf(client_config);
    Secrets::load(Arc::new(SecretsManagerSource::new(client, config.secret_arns.clone())), clock).await
}

/// The secrets a local run (or a test) was given in its environment.
pub fn environment_secrets(config: &Config) -> BTreeMap<SecretKind, SecretValues> {
    let twilio = &config.twilio;
    [
        (SecretKind::TwilioAuthToken, SecretValues::new([("TWILIO_AUTH_TOKEN", twilio.auth_token.clone())])),
        (
            SecretKind::TwilioApiKey,
            SecretValues::new([
                ("TWILIO_API_KEY", Secret::new(twilio.api_key.clone())),
                ("TWILIO_API_SECRET", twilio.api_secret.clone()),
            ]),
        ),
        (SecretKind::SessionKey, SecretValues::new([("SESSION_SECRET", config.session_secret.clone())])),
    ]
    .into()
}

/// DynamoDB calls sit on webhook paths that must answer Twilio within seconds: fail fast and
/// let the handler answer with fallback TwiML rather than wait out the SDK's defaults.
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
pub fn dynamodb_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(50))
}

impl App {
    /// Reads the configuration and the secrets (see `load_secrets`) and builds the real clients.
    #[cfg(feature = "aws")]
    pub async fn from_env() -> Result<Self, StartupError> {
        let aws = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(dynamodb_timeouts())
            .retry_config(dynamodb_retries())
            .http_client(crate::aws_http::client())
            .load()
            .await;
        let config = Config::from_env()?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let secrets = Arc::new(load_secrets(&aws, &config, clock.clone()).await?);
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let calls = DynamoCallStore::new(dynamodb.clone(), config.calls_table.clone());
        let tickets = DynamoTicketStore::new(dynamodb.clone(), config.tickets_table.clone());
        let agents = DynamoAgentStore::new(dynamodb.clone(), config.agents_table.clone());
        let ledger = DynamoLedgerStore::new(dynamodb.clone(), config.ledger_table.clone());
        let twilio = Arc::new(TwilioDialer::new(&config.twilio, secrets.clone()));
        let ports = Ports {
            calls: Arc::new(calls),
            tickets: Arc::new(tickets),
            agents: Arc::new(agents),
            ledger: Arc::new(ledger),
            dialer: twilio.clone(),
            clock,
        };
        Ok(Self { upstreams: Some(Upstreams { dynamodb, twilio }), ..Self::with_secrets(config, ports, secrets) })
    }

    /// Opens the connections to `upstreams` now, concurrently, so that the first request does
    /// not pay for DNS and TLS. Failures are only logged: the request path has its own timeouts.
    pub async fn warm_up(&self, upstreams: &[Upstream]) {
        let Some(clients) = &self.upstreams else { return };
        #[cfg(feature = "aws")]
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
        #[cfg(not(feature = "aws"))]
        let dynamodb = async {};
        tokio::join!(dynamodb, twilio);
    }

    /// An app with the secrets of `config`'s environment (local runs, tests).
    pub fn new(config: Config, ports: Ports) -> Self {
        let secrets = Arc::new(Secrets::fixed(environment_secrets(&config), ports.clock.clone()));
        Self::with_secrets(config, ports, secrets)
    }

    /// An app whose secrets come from `secrets` (Secrets Manager, or a test's fake source).
    pub fn with_secrets(config: Config, ports: Ports, secrets: Arc<Secrets>) -> Self {
        let Ports { calls, tickets, agents, ledger, dialer, clock } = ports;
        let sessions = SessionKeys::new(secrets.clone());
        Self { config, calls, tickets, agents, ledger, dialer, secrets, sessions, clock, upstreams: None }
    }

    /// What signs Access Tokens now: the account, the TwiML App and the API key held now.
    pub async fn token_signer(&self) -> Result<TokenSigner, TwilioError> {
        let Some(key) = self.secrets.twilio_api_key().await else {
            tracing::error!("no Twilio API key: this function is not given one, or it is not filled in");
            return Err(TwilioError::NotConfigured);
        };
        let twilio = &self.config.twilio;
        Ok(TokenSigner {
            account_sid: twilio.account_sid.clone(),
            api_key: key.sid,
            api_secret: key.secret,
            twiml_app_sid: twilio.twiml_app_sid.clone(),
        })
    }
}

/// Twilio's REST API with the API key the function holds now: a client per key, made anew when
/// the key changes, and a request Twilio refuses for its credentials (401, error 20003) sent
/// once more if the key read again is another one (rotated, or filled in meanwhile). Sending
/// it again is safe: Twilio did nothing with a request it did not authenticate.
pub struct TwilioDialer {
    base_url: String,
    account_sid: String,
    secrets: Arc<Secrets>,
    client: RwLock<Option<(ApiKey, TwilioRestClient)>>,
}

impl TwilioDialer {
    pub fn new(config: &TwilioConfig, secrets: Arc<Secrets>) -> Self {
        Self {
            base_url: config.api_base_url.clone(),
            account_sid: config.account_sid.clone(),
            secrets,
            client: RwLock::new(None),
        }
    }

    /// Opens a connection to the API; `true` when Twilio answered at all.
    pub async fn warm_up(&self) -> bool {
        match self.current().await {
            Ok((_, client)) => client.warm_up().await,
            Err(_) => false,
        }
    }

    async fn current(&self) -> Result<(ApiKey, TwilioRestClient), TwilioError> {
        let Some(key) = self.secrets.twilio_api_key().await else {
            tracing::error!("no Twilio API key: this function is not given one, or it is not filled in");
            return Err(TwilioError::NotConfigured);
        };
        self.client_for(key)
    }

    fn client_for(&self, key: ApiKey) -> Result<(ApiKey, TwilioRestClient), TwilioError> {
        let held = self.client.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((held_key, client)) = held.as_ref()
            && *held_key == key
        {
            return Ok((key, client.clone()));
        }
        drop(held);
        let client = TwilioRestClient::new(
            &self.base_url,
            &self.account_sid,
            &key.sid,
            key.secret.clone(),
            Timeouts::default(),
        )?;
        *self.client.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key.clone(), client.clone()));
        Ok((key, client))
    }

    /// After Twilio refused `key` with `refusal`: a client with the key read anew, or the
    /// refusal if the key has not changed.
    async fn anew(&self, key: &ApiKey, refusal: TwilioError) -> Result<TwilioRestClient, TwilioError> {
        let Some(fresh) = self.secrets.twilio_api_key_after_refusal(key).await else { return Err(refusal) };
        tracing::info!("Twilio refused the API key; sending again with the one read anew");
        Ok(self.client_for(fresh)?.1)
    }
}

/// Twilio's answer to credentials it does not accept: 401, error 20003 ("Authenticate").
fn refuses_the_credentials(err: &TwilioError) -> bool {
    matches!(err, TwilioError::Api { status: 401, .. } | TwilioError::Api { code: Some(20003), .. })
}

#[async_trait]
impl Dialer for TwilioDialer {
    async fn place_call(&self, call: &OutboundCall) -> Result<CallSid, TwilioError> {
        let (key, client) = self.current().await?;
        match client.place_call(call).await {
            Err(err) if refuses_the_credentials(&err) => self.anew(&key, err).await?.place_call(call).await,
            outcome => outcome,
        }
    }

    async fn update_call(&self, call: &CallSid, update: &CallUpdate) -> Result<(), TwilioError> {
        let (key, client) = self.current().await?;
        match client.update_call(call, update).await {
            Err(err) if refuses_the_credentials(&err) => self.anew(&key, err).await?.update_call(call, update).await,
            outcome => outcome,
        }
    }

    async fn update_participant(
        &self,
        conference_sid: &str,
        call: &CallSid,
        update: &ParticipantUpdate,
    ) -> Result<(), TwilioError> {
        let (key, client) = self.current().await?;
        match client.update_participant(conference_sid, call, update).await {
            Err(err) if refuses_the_credentials(&err) => {
                self.anew(&key, err).await?.update_participant(conference_sid, call, update).await
            }
            outcome => outcome,
        }
    }

    async fn recording(&self, recording_sid: &str) -> Result<Recording, TwilioError> {
        let (key, client) = self.current().await?;
        match client.recording(recording_sid).await {
            Err(err) if refuses_the_credentials(&err) => self.anew(&key, err).await?.recording(recording_sid).await,
            outcome => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::secret::REFRESH_AFTER;
    use crate::test_support::emulator_sdk_config;

    fn secrets_client() -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&emulator_sdk_config())
    }

    async fn secret(contents: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("warmline-test-{}-{n}", std::process::id());
        let created = secrets_client().create_secret().name(name).secret_string(contents).send().await.unwrap();
        created.arn().unwrap().to_owned()
    }

    async fn change(arn: &str, contents: &str) {
        secrets_client().put_secret_value().secret_id(arn).secret_string(contents).send().await.unwrap();
    }

    /// A function's environment as the template sets it: the ARNs of the secrets it is given.
    /// Secrets in the environment too must be ignored.
    fn deployed(arns: &[(SecretKind, &str)]) -> Config {
        let mut env: HashMap<&'static str, String> = crate::testkit::env().into_iter().collect();
        env.insert("TWILIO_AUTH_TOKEN", "from-the-environment".into());
        env.insert("SESSION_SECRET", "from-the-environment-but-long-enough".into());
        for (kind, arn) in arns {
            env.insert(kind.arn_variable(), (*arn).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned()).unwrap()
    }

    struct Clockwork(AtomicI64);

    impl Clock for Clockwork {
        fn now_millis(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn clock() -> Arc<Clockwork> {
        Arc::new(Clockwork(AtomicI64::new(1_800_000_000_000)))
    }

    async fn load(config: &Config, clock: Arc<Clockwork>) -> Result<Secrets, SecretsError> {
        load_secrets(&emulator_sdk_config(), config, clock).await
    }

    #[tokio::test]
    async fn deployed_each_kind_comes_from_its_own_secret_only() {
        let auth = secret(r#"{"TWILIO_AUTH_TOKEN": "auth-from-the-secret"}"#).await;
        let key = secret(r#"{"TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "api-from-the-secret"}"#).await;
        let session = secret(r#"{"SESSION_SECRET": "session-key-from-the-secret-0123456789"}"#).await;
        let config = deployed(&[
            (SecretKind::TwilioAuthToken, &auth),
            (SecretKind::TwilioApiKey, &key),
            (SecretKind::SessionKey, &session),
        ]);
        assert_eq!(config.calls_table, "calls", "the rest still comes from the environment");
        let secrets = load(&config, clock()).await.unwrap();
        assert_eq!(secrets.twilio_auth_token().await, Some(Secret::new("auth-from-the-secret")));
        assert_eq!(
            secrets.twilio_api_key().await,
            Some(ApiKey { sid: "SK1".into(), secret: Secret::new("api-from-the-secret") })
        );
        assert_eq!(secrets.session_key().await, Some(Secret::new("session-key-from-the-secret-0123456789")));
    }

    #[tokio::test]
    async fn a_function_holds_only_the_kinds_it_is_given() {
        let session = secret(r#"{"SESSION_SECRET": "session-key-from-the-secret-0123456789"}"#).await;
        let secrets = load(&deployed(&[(SecretKind::SessionKey, &session)]), clock()).await.unwrap();
        assert_eq!(secrets.twilio_auth_token().await, None, "not the environment's either");
        assert_eq!(secrets.twilio_api_key().await, None);
        assert!(secrets.session_key().await.is_some());
        assert!(!secrets.accept_twilio_auth_token(|token| token == "from-the-environment").await);
    }

    #[tokio::test]
    async fn a_secret_filled_in_after_the_cold_start_is_used_within_five_minutes() {
        // As the template creates it, before `set-twilio-secrets`.
        let key = secret(r#"{"TWILIO_API_KEY": "", "TWILIO_API_SECRET": ""}"#).await;
        let clock = clock();
        let secrets = load(&deployed(&[(SecretKind::TwilioApiKey, &key)]), clock.clone()).await.unwrap();
        assert_eq!(secrets.twilio_api_key().await, None);
        change(&key, r#"{"TWILIO_API_KEY": "SK2", "TWILIO_API_SECRET": "filled-in"}"#).await;
        clock.0.fetch_add(i64::try_from(REFRESH_AFTER.as_millis()).unwrap(), Ordering::Relaxed);
        assert_eq!(
            secrets.twilio_api_key().await,
            Some(ApiKey { sid: "SK2".into(), secret: Secret::new("filled-in") })
        );
    }

    #[tokio::test]
    async fn an_unreadable_or_malformed_secret_fails_the_cold_start_without_echoing_it() {
        let malformed = secret("TWILIO_AUTH_TOKEN=hunter2-plain-text").await;
        let wrong_type = secret(r#"{"TWILIO_AUTH_TOKEN": 42}"#).await;
        for (arn, expected) in [
            (malformed.as_str(), "the secret TWILIO_AUTH_TOKEN_SECRET_ARN names is not a JSON object of strings"),
            (wrong_type.as_str(), "the secret TWILIO_AUTH_TOKEN_SECRET_ARN names is not a JSON object of strings"),
            (
                "arn:aws:secretsmanager:us-east-1:000000000000:secret:nope",
                "could not read the secret TWILIO_AUTH_TOKEN_SECRET_ARN names",
            ),
        ] {
            let Err(err) = load(&deployed(&[(SecretKind::TwilioAuthToken, arn)]), clock()).await else {
                panic!("{arn} loaded")
            };
            assert_eq!(err.to_string(), expected);
            assert!(!format!("{err:?}").contains("hunter2"));
        }
    }

    const CALLS: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000000/Calls.json";
    // base64 of "SK1:old" and "SK2:new".
    const OLD_KEY: &str = "Basic U0sxOm9sZA==";
    const NEW_KEY: &str = "Basic U0syOm5ldw==";

    async fn twilio_accepting(authorization: &str) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(CALLS))
            .and(header("authorization", authorization))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": format!("CA{}", "1".repeat(32))})),
            )
            .mount(&server)
            .await;
        let refusal = serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401});
        Mock::given(method("POST"))
            .and(path(CALLS))
            .respond_with(ResponseTemplate::new(401).set_body_json(refusal))
            .mount(&server)
            .await;
        server
    }

    fn authorizations(requests: &[wiremock::Request]) -> Vec<String> {
        requests.iter().map(|r| r.headers.get("authorization").unwrap().to_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn a_call_twilio_refuses_for_its_key_is_sent_again_with_the_key_read_anew() {
        let key = secret(r#"{"TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "old"}"#).await;
        let server = twilio_accepting(NEW_KEY).await;
        let mut config = deployed(&[(SecretKind::TwilioApiKey, &key)]);
        config.twilio.api_base_url = server.uri();
        let clock = clock();
        let dialer = TwilioDialer::new(&config.twilio, Arc::new(load(&config, clock.clone()).await.unwrap()));
        let call = OutboundCall::new("client:agent1", "+15550000000", "https://h.example/x");

        // Rotated in Secrets Manager (and the old key deleted in Twilio) after the cold start.
        change(&key, r#"{"TWILIO_API_KEY": "SK2", "TWILIO_API_SECRET": "new"}"#).await;
        assert_eq!(dialer.place_call(&call).await.unwrap().as_str(), format!("CA{}", "1".repeat(32)));
        assert_eq!(authorizations(&server.received_requests().await.unwrap()), [OLD_KEY, NEW_KEY]);
        // From then on, the new key only.
        dialer.place_call(&call).await.unwrap();
        assert_eq!(authorizations(&server.received_requests().await.unwrap())[2..], [NEW_KEY]);

        // A key Twilio refuses that has not changed: the refusal stands, sent once.
        change(&key, r#"{"TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "old"}"#).await;
        clock.0.fetch_add(i64::try_from(REFRESH_AFTER.as_millis()).unwrap(), Ordering::Relaxed);
        let refused = dialer.place_call(&call).await.unwrap_err();
        assert!(matches!(refused, TwilioError::Api { status: 401, code: Some(20003), .. }), "{refused:?}");
        assert_eq!(authorizations(&server.received_requests().await.unwrap())[3..], [OLD_KEY]);
    }

    #[tokio::test]
    async fn without_an_api_key_nothing_is_sent_to_twilio() {
        let server = twilio_accepting(NEW_KEY).await;
        let auth = secret(r#"{"TWILIO_AUTH_TOKEN": "t"}"#).await;
        let mut config = deployed(&[(SecretKind::TwilioAuthToken, &auth)]);
        config.twilio.api_base_url = server.uri();
        let dialer = TwilioDialer::new(&config.twilio, Arc::new(load(&config, clock()).await.unwrap()));
        let call = OutboundCall::new("client:agent1", "+15550000000", "https://h.example/x");
        assert!(matches!(dialer.place_call(&call).await, Err(TwilioError::NotConfigured)));
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}
