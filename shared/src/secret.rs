//! Secrets: values that must never reach a log line (`Secret`), and where a function gets them.
//!
//! Deployed, each kind of secret (`SecretKind`) is a Secrets Manager secret of its own, and a
//! function is given (`*_SECRET_ARN`, and the right to read it) only the kinds its code uses:
//! the Auth Token to the functions that check webhook signatures, the API key to those that
//! call Twilio or sign Access Tokens, the session key to those that read sessions. Locally,
//! the values come from the environment and never change.
//!
//! Secrets can change while a function runs: filled in after the first deploy, or rotated.
//! `Secrets` keeps what it read and reads a kind again when it is used after `REFRESH_AFTER`
//! (a failed read keeps the old value), and at once when the value was refused (a webhook
//! signature that does not validate, a session cookie signed with another key, Twilio answering
//! 401): such a re-read happens at most once per `REREAD_AFTER_REFUSAL_AT_MOST_EVERY` and kind,
//! so forged requests cannot make a function hammer Secrets Manager.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;

/// A credential that must never reach a log line or an error body: `Debug` and `Display`
/// print `***`, and the value is only reachable through an explicit `expose()`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How long a value read from Secrets Manager is used before it is read again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(5 * 60);

/// How long a request waits for a secret to be read again before going on with the one held.
pub const REREAD_TIMEOUT: Duration = Duration::from_millis(300);
/// A refused value is read again at once, but not more often than this.
pub const REREAD_AFTER_REFUSAL_AT_MOST_EVERY: Duration = Duration::from_secs(10);
/// HS256 wants a key at least as long as its hash; Secrets Manager generates 64 characters.
pub const MIN_SESSION_SECRET_CHARS: usize = 32;

/// The kinds of secret, each a Secrets Manager secret of its own when deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretKind {
    /// Validates `X-Twilio-Signature`.
    TwilioAuthToken,
    /// Authenticates REST calls and signs Access Tokens: the key's SID and its secret, which
    /// change together (a new key is a new pair).
    TwilioApiKey,
    /// Signs agents' session cookies.
    SessionKey,
}

impl SecretKind {
    pub const ALL: [Self; 3] = [Self::TwilioAuthToken, Self::TwilioApiKey, Self::SessionKey];

    /// The names of its values: the keys of the secret's JSON object when deployed, environment
    /// variables locally.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Self::TwilioAuthToken => &["TWILIO_AUTH_TOKEN"],
            Self::TwilioApiKey => &["TWILIO_API_KEY", "TWILIO_API_SECRET"],
            Self::SessionKey => &["SESSION_SECRET"],
        }
    }

    /// The environment variable naming its Secrets Manager secret (an ARN); set, deployed, on
    /// exactly the functions that use this kind.
    pub fn arn_variable(self) -> &'static str {
        match self {
            Self::TwilioAuthToken => "TWILIO_AUTH_TOKEN_SECRET_ARN",
            Self::TwilioApiKey => "TWILIO_API_KEY_SECRET_ARN",
            Self::SessionKey => "SESSION_SECRET_ARN",
        }
    }
}

/// The values of one secret by name. An empty value counts as absent: the template creates
/// the Twilio secrets with empty values, to be filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretValues(BTreeMap<&'static str, Secret>);

impl SecretValues {
    pub fn new(values: impl IntoIterator<Item = (&'static str, Secret)>) -> Self {
        Self(values.into_iter().filter(|(_, value)| !value.expose().is_empty()).collect())
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("could not read the secret {variable} names")]
    Unreadable {
        variable: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Never says more: the text could be the secret itself.
    #[error("the secret {variable} names is not a JSON object of strings")]
    Malformed { variable: &'static str },
}

/// Where a function reads its secrets; Secrets Manager deployed, fakes in tests.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The kinds this function is given.
    fn kinds(&self) -> Vec<SecretKind>;

    /// The current values of `kind`.
    async fn read(&self, kind: SecretKind) -> Result<SecretValues, SecretsError>;
}

/// The secrets named by `arns` (kind → secret id), each a JSON object of strings keyed by the
/// kind's names.
#[cfg(feature = "aws")]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    arns: BTreeMap<SecretKind, String>,
}

#[cfg(feature = "aws")]
impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, arns: BTreeMap<SecretKind, String>) -> Self {
        Self { client, arns }
    }
}

#[cfg(feature = "aws")]
#[async_trait]
impl SecretSource for SecretsManagerSource {
    fn kinds(&self) -> Vec<SecretKind> {
        self.arns.keys().copied().collect()
    }

    async fn read(&self, kind: SecretKind) -> Result<SecretValues, SecretsError> {
        let arn = self.arns.get(&kind).map(String::as_str).unwrap_or_default();
        read_secret(&self.client, arn, kind).await
    }
}

/// The values of `kind` in the Secrets Manager secret `secret_id`, a JSON object. Names it
/// lacks are simply absent; anything but strings is malformed.
#[cfg(feature = "aws")]
pub async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    kind: SecretKind,
) -> Result<SecretValues, SecretsError> {
    let variable = kind.arn_variable();
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|err| SecretsError::Unreadable { variable, source: Box::new(err) })?;
    let text = output.secret_string().ok_or(SecretsError::Malformed { variable })?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| SecretsError::Malformed { variable })?;
    let mut values = Vec::new();
    for name in kind.names() {
        match object.get(*name) {
            None => {}
            Some(serde_json::Value::String(value)) => values.push((*name, Secret::new(value.clone()))),
            Some(_) => return Err(SecretsError::Malformed { variable }),
        }
    }
    Ok(SecretValues::new(values))
}

/// A Twilio API key: its SID (`SK…`) and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub sid: String,
    pub secret: Secret,
}

/// What a function holds of each kind it is given, and when it read it.
struct Held {
    values: SecretValues,
    read_at_ms: i64,
    /// The latest read forced by a refusal.
    forced_at_ms: Option<i64>,
}

struct Slot {
    held: RwLock<Held>,
    /// One read of a kind at a time: requests that find it stale together wait for that read.
    reading: tokio::sync::Mutex<()>,
}

/// The secrets a function holds for its life: read at the cold start, read again as the module
/// comment says. `fixed` ones (local runs, tests) never change.
pub struct Secrets {
    source: Option<Arc<dyn SecretSource>>,
    clock: Arc<dyn Clock>,
    slots: BTreeMap<SecretKind, Slot>,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Secrets {
    /// Values that never change (the environment of a local run, tests).
    pub fn fixed(values: BTreeMap<SecretKind, SecretValues>, clock: Arc<dyn Clock>) -> Self {
        let slots = values.into_iter().map(|(kind, values)| (kind, Slot::new(values, 0))).collect();
        Self { source: None, clock, slots }
    }

    /// Reads every kind `source` gives this function; a secret that cannot be read, or is not
    /// a JSON object of strings, fails the cold start. Values not filled in yet are only
    /// logged: they are read again until they are.
    pub async fn load(source: Arc<dyn SecretSource>, clock: Arc<dyn Clock>) -> Result<Self, SecretsError> {
        let kinds = source.kinds();
        let read = |kind: SecretKind| {
            let source = source.clone();
            let given = kinds.contains(&kind);
            async move { if given { Some(source.read(kind).await) } else { None } }
        };
        // Together: each is a round trip of the cold start.
        let (auth_token, api_key, session_key) = tokio::join!(
            read(SecretKind::TwilioAuthToken),
            read(SecretKind::TwilioApiKey),
            read(SecretKind::SessionKey)
        );
        let now = clock.now_millis();
        let mut slots = BTreeMap::new();
        for (kind, values) in SecretKind::ALL.into_iter().zip([auth_token, api_key, session_key]) {
            let Some(values) = values.transpose()? else { continue };
            let missing: Vec<&str> = kind.names().iter().copied().filter(|name| values.get(name).is_none()).collect();
            if !missing.is_empty() {
                tracing::warn!(?missing, "a secret is not filled in yet; it is read again until it is");
            }
            slots.insert(kind, Slot::new(values, now));
        }
        Ok(Self { source: Some(source), clock, slots })
    }

    /// The Twilio Auth Token, if this function is given one and it is filled in.
    pub async fn twilio_auth_token(&self) -> Option<Secret> {
        auth_token(&self.current(SecretKind::TwilioAuthToken).await)
    }

    /// The Twilio API key, if this function is given one and it is filled in.
    pub async fn twilio_api_key(&self) -> Option<ApiKey> {
        api_key(&self.current(SecretKind::TwilioApiKey).await)
    }

    /// The key that signs session cookies, if this function is given one that is long enough.
    pub async fn session_key(&self) -> Option<Secret> {
        session_key(&self.current(SecretKind::SessionKey).await)
    }

    /// Whether `check` accepts the Twilio Auth Token (a webhook's signature, say). A refusal
    /// reads the token again (see the module comment) and asks once more if it changed: the
    /// token may have been filled in or rotated since this function read it.
    pub async fn accept_twilio_auth_token(&self, check: impl Fn(&str) -> bool) -> bool {
        let held = self.twilio_auth_token().await;
        if held.as_ref().is_some_and(|token| check(token.expose())) {
            return true;
        }
        let fresh = self.after_refusal(SecretKind::TwilioAuthToken, held.as_ref(), auth_token).await;
        fresh.is_some_and(|token| check(token.expose()))
    }

    /// After Twilio refused `refused` (401): the API key now held, if it is another one, read
    /// again for the purpose if need be.
    pub async fn twilio_api_key_after_refusal(&self, refused: &ApiKey) -> Option<ApiKey> {
        self.after_refusal(SecretKind::TwilioApiKey, Some(refused), api_key).await
    }

    /// After a session cookie's signature did not match `refused`: the session key now held,
    /// if it is another one (rotated meanwhile), read again for the purpose if need be.
    pub async fn session_key_after_refusal(&self, refused: &Secret) -> Option<Secret> {
        self.after_refusal(SecretKind::SessionKey, Some(refused), session_key).await
    }

    /// The value `extract` takes from `kind` if it differs from `refused`, reading `kind` again
    /// first unless that was done less than `REREAD_AFTER_REFUSAL_AT_MOST_EVERY` ago.
    async fn after_refusal<T: PartialEq>(
        &self,
        kind: SecretKind,
        refused: Option<&T>,
        extract: fn(&SecretValues) -> Option<T>,
    ) -> Option<T> {
        let slot = self.slots.get(&kind)?;
        if let Some(held) = extract(&slot.snapshot()) {
            // Another request has read it again meanwhile.
            if Some(&held) != refused {
                return Some(held);
            }
        }
        if self.source.is_some() {
            let _reading = slot.reading.lock().await;
            let recently = slot
                .forced_at_ms()
                .is_some_and(|at| self.clock.now_millis() - at < millis(REREAD_AFTER_REFUSAL_AT_MOST_EVERY));
            if recently {
                tracing::debug!(?kind, "a refused secret was read again a moment ago");
            } else {
                self.read(kind, slot, true).await;
            }
        }
        extract(&slot.snapshot()).filter(|value| Some(value) != refused)
    }

    /// The values of `kind`, read again first if they are older than `REFRESH_AFTER`. A kind
    /// this function is not given has no values.
    async fn current(&self, kind: SecretKind) -> SecretValues {
        let Some(slot) = self.slots.get(&kind) else { return SecretValues::default() };
        if self.source.is_some() && self.clock.now_millis() - slot.read_at_ms() >= millis(REFRESH_AFTER) {
            let _reading = slot.reading.lock().await;
            // Whoever held the lock before may have read it meanwhile.
            if self.clock.now_millis() - slot.read_at_ms() >= millis(REFRESH_AFTER) {
                self.read(kind, slot, false).await;
            }
        }
        slot.snapshot()
    }

    /// Reads `kind` now; on failure keeps what it held (until the next refresh or refusal).
    async fn read(&self, kind: SecretKind, slot: &Slot, forced: bool) {
        let Some(source) = &self.source else { return };
        let outcome = match tokio::time::timeout(REREAD_TIMEOUT, source.read(kind)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // Secrets Manager slow: this request goes on with the value held (a webhook has
                // 2.5 s to answer), and the next one due tries again.
                tracing::warn!(?kind, "reading a secret again took too long; the one held stays");
                return;
            }
        };
        let now = self.clock.now_millis();
        let mut held = slot.held.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.read_at_ms = now;
        if forced {
            held.forced_at_ms = Some(now);
        }
        match outcome {
            Ok(values) if values != held.values => {
                tracing::info!(?kind, "a secret changed; the new value is in use");
                held.values = values;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, ?kind, "could not read a secret again; the one held stays"),
        }
    }
}

impl Slot {
    fn new(values: SecretValues, read_at_ms: i64) -> Self {
        Self {
            held: RwLock::new(Held { values, read_at_ms, forced_at_ms: None }),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_at_ms(&self) -> i64 {
        self.held().read_at_ms
    }

    fn forced_at_ms(&self) -> Option<i64> {
        self.held().forced_at_ms
    }

    fn snapshot(&self) -> SecretValues {
        self.held().values.clone()
    }
}

fn auth_token(values: &SecretValues) -> Option<Secret> {
    values.get("TWILIO_AUTH_TOKEN").cloned()
}

fn api_key(values: &SecretValues) -> Option<ApiKey> {
    let (sid, secret) = (values.get("TWILIO_API_KEY")?, values.get("TWILIO_API_SECRET")?);
    if !sid.expose().starts_with("SK") {
        tracing::error!("TWILIO_API_KEY is not an API key SID (SK…); it is not used");
        return None;
    }
    Some(ApiKey { sid: sid.expose().to_owned(), secret: secret.clone() })
}

fn session_key(values: &SecretValues) -> Option<Secret> {
    let key = values.get("SESSION_SECRET")?;
    if key.expose().chars().count() < MIN_SESSION_SECRET_CHARS {
        tracing::error!("SESSION_SECRET is shorter than {MIN_SESSION_SECRET_CHARS} characters; it is not used");
        return None;
    }
    Some(key.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

    use super::*;

    #[test]
    fn never_prints_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
    }

    struct Clockwork(AtomicI64);

    impl Clock for Clockwork {
        fn now_millis(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// A secret source whose values the test changes, counting its reads.
    struct Changing {
        token: Mutex<Result<String, ()>>,
        reads: AtomicU32,
        /// Reads never answer, as when Secrets Manager stalls.
        stalled: std::sync::atomic::AtomicBool,
    }

    impl Changing {
        fn set(&self, token: Result<&str, ()>) {
            *self.token.lock().unwrap() = token.map(str::to_owned);
        }
    }

    #[async_trait]
    impl SecretSource for Changing {
        fn kinds(&self) -> Vec<SecretKind> {
            vec![SecretKind::TwilioAuthToken]
        }

        async fn read(&self, kind: SecretKind) -> Result<SecretValues, SecretsError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.stalled.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let token = self.token.lock().unwrap().clone();
            let token = token.map_err(|()| SecretsError::Malformed { variable: kind.arn_variable() })?;
            Ok(SecretValues::new([("TWILIO_AUTH_TOKEN", Secret::new(token))]))
        }
    }

    async fn loaded(token: &str) -> (Arc<Changing>, Arc<Clockwork>, Secrets) {
        let source = Arc::new(Changing {
            token: Mutex::new(Ok(token.to_owned())),
            reads: AtomicU32::new(0),
            stalled: std::sync::atomic::AtomicBool::new(false),
        });
        let clock = Arc::new(Clockwork(AtomicI64::new(1_800_000_000_000)));
        let secrets = Secrets::load(source.clone(), clock.clone()).await.unwrap();
        (source, clock, secrets)
    }

    fn is(expected: &'static str) -> impl Fn(&str) -> bool {
        move |token| token == expected
    }

    #[tokio::test]
    async fn a_value_is_read_again_once_it_is_five_minutes_old() {
        let (source, clock, secrets) = loaded("old").await;
        source.set(Ok("new"));
        clock.0.fetch_add(millis(REFRESH_AFTER) - 1, Ordering::Relaxed);
        assert_eq!(secrets.twilio_auth_token().await, Some(Secret::new("old")));
        assert_eq!(source.reads.load(Ordering::SeqCst), 1);
        clock.0.fetch_add(1, Ordering::Relaxed);
        assert_eq!(secrets.twilio_auth_token().await, Some(Secret::new("new")));
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        // A failed read keeps the value, and is not retried before the next refresh is due.
        source.set(Err(()));
        clock.0.fetch_add(millis(REFRESH_AFTER), Ordering::Relaxed);
        assert_eq!(secrets.twilio_auth_token().await, Some(Secret::new("new")));
        assert_eq!(secrets.twilio_auth_token().await, Some(Secret::new("new")));
        assert_eq!(source.reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_read_keeps_the_request_waiting_no_longer_than_the_reread_timeout() {
        let (source, clock, secrets) = loaded("old").await;
        source.set(Ok("new"));
        source.stalled.store(true, Ordering::SeqCst);
        clock.0.fetch_add(millis(REFRESH_AFTER), Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        assert_eq!(secrets.twilio_auth_token().await, Some(Secret::new("old")), "the value held");
        assert_eq!(started.elapsed(), REREAD_TIMEOUT);
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_value_is_read_again_at_once_but_not_more_than_every_ten_seconds() {
        let (source, clock, secrets) = loaded("old").await;
        assert!(secrets.accept_twilio_auth_token(is("old")).await);
        assert_eq!(source.reads.load(Ordering::SeqCst), 1, "an accepted value is not read again");
        source.set(Ok("new"));
        assert!(secrets.accept_twilio_auth_token(is("new")).await, "read again, and accepted");
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        // Forgeries: no read until ten seconds after the last, then one each ten seconds.
        for _ in 0..5 {
            assert!(!secrets.accept_twilio_auth_token(is("forged")).await);
        }
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        clock.0.fetch_add(millis(REREAD_AFTER_REFUSAL_AT_MOST_EVERY), Ordering::Relaxed);
        for _ in 0..5 {
            assert!(!secrets.accept_twilio_auth_token(is("forged")).await);
        }
        assert_eq!(source.reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_refusals_read_once_and_all_see_the_new_value() {
        let (source, _, secrets) = loaded("old").await;
        source.set(Ok("new"));
        let checks = futures::future::join_all((0..8).map(|_| secrets.accept_twilio_auth_token(is("new")))).await;
        assert_eq!(checks, [true; 8]);
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn fixed_values_never_change_and_unknown_kinds_have_none() {
        let clock = Arc::new(Clockwork(AtomicI64::new(0)));
        let values = SecretValues::new([("TWILIO_AUTH_TOKEN", Secret::new("local")), ("x", Secret::new(""))]);
        let secrets = Secrets::fixed([(SecretKind::TwilioAuthToken, values)].into(), clock);
        assert!(secrets.accept_twilio_auth_token(is("local")).await);
        assert!(!secrets.accept_twilio_auth_token(is("other")).await);
        assert_eq!(secrets.twilio_api_key().await, None);
        assert_eq!(secrets.session_key().await, None);
    }

    #[test]
    fn unusable_values_are_not_used() {
        let values = |pairs: [(&'static str, &str); 2]| SecretValues::new(pairs.map(|(k, v)| (k, Secret::new(v))));
        assert_eq!(api_key(&values([("TWILIO_API_KEY", "AC0"), ("TWILIO_API_SECRET", "s")])), None);
        assert_eq!(api_key(&values([("TWILIO_API_KEY", "SK0"), ("TWILIO_API_SECRET", "")])), None, "not filled in");
        assert_eq!(
            api_key(&values([("TWILIO_API_KEY", "SK0"), ("TWILIO_API_SECRET", "s")])),
            Some(ApiKey { sid: "SK0".into(), secret: Secret::new("s") })
        );
        assert_eq!(session_key(&values([("SESSION_SECRET", "short"), ("x", "")])), None);
    }
}
