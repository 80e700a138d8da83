//! The timeouts and retry settings of the production clients, shown to take effect: the DynamoDB
//! client exactly as `App::from_env` configures it, and the Twilio REST client from
//! `TwilioRestClient::from_config`, each against the fault proxy. Bounds allow slack for a busy
//! 2-core machine, but not enough to hide a setting that is missing (the SDK's defaults have no
//! attempt or operation timeout at all; reqwest's have none either).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers too: a setup that fails is a failed test"
)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use common::production_dynamodb;
use fault_proxy::{DynamoDbError, Fault, FaultProxy, StalledConnect};
use shared::testkit::config_with;
use shared::twilio::{Dialer, OutboundCall, TwilioError, TwilioRestClient};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(600);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
const MAX_ATTEMPTS: usize = 3;
const TWILIO_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const TWILIO_TOTAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The first backoff: `initial_backoff` times a random factor below 1; the second is at most
/// twice that.
const FIRST_BACKOFF_MAX: Duration = Duration::from_millis(50);
/// `make test` runs many suites at once on two cores, and the attempt that succeeds goes to the
/// emulator, which serves one request at a time: a second of slack still tells a working timeout
/// from a missing one (the next bound up is the lifted 10 s, or never).
const SLACK: Duration = Duration::from_secs(1);

#[test]
fn the_production_settings_are_the_ones_these_tests_expect() {
    let timeouts = shared::app::dynamodb_timeouts();
    assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
    assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
    assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
    assert_eq!(shared::app::dynamodb_retries().max_attempts() as usize, MAX_ATTEMPTS);
    assert_eq!(shared::app::dynamodb_retries().initial_backoff(), FIRST_BACKOFF_MAX);
    let twilio = shared::twilio::rest::Timeouts::default();
    assert_eq!((twilio.connect, twilio.total), (TWILIO_CONNECT_TIMEOUT, TWILIO_TOTAL_TIMEOUT));
}

async fn dynamodb_behind_proxy(partition: &str) -> (FaultProxy, aws_sdk_dynamodb::Client) {
    let proxy = FaultProxy::in_front_of(&common::dynamodb_endpoint()).await.unwrap();
    let client = production_dynamodb(&proxy.url(), partition).await;
    (proxy, client)
}

/// The production client with only its operation timeout lifted, to observe what happens
/// within one operation that the 1.5 s bound would otherwise cut short.
fn without_operation_timeout(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    let production = shared::app::dynamodb_timeouts();
    let lifted = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(Duration::from_secs(10))
        .build();
    assert_eq!(production.operation_attempt_timeout(), lifted.operation_attempt_timeout());
    aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().timeout_config(lifted).build())
}

#[tokio::test]
async fn dynamodb_gives_up_on_a_blackhole_at_the_operation_timeout_after_retrying_each_stalled_attempt() {
    let (proxy, client) = dynamodb_behind_proxy("limits-blackhole").await;
    proxy.set(Fault::Blackhole);
    let started = Instant::now();
    let outcome = client.list_tables().send().await;
    let elapsed = started.elapsed();
    assert!(matches!(outcome, Err(SdkError::TimeoutError(_))), "{outcome:?}");
    assert!(elapsed >= OPERATION_TIMEOUT && elapsed < OPERATION_TIMEOUT + SLACK, "{elapsed:?}");
    // Two stalled attempts and two short backoffs (at most 0.6 + 0.05 + 0.6 + 0.1 s) leave the
    // third attempt time to start before the operation timeout ends it.
    assert_eq!(proxy.requests(), MAX_ATTEMPTS);
}

#[tokio::test]
async fn dynamodb_abandons_a_stalled_attempt_at_the_attempt_timeout_and_retries() {
    let (proxy, client) = dynamodb_behind_proxy("limits-attempt").await;
    let client = without_operation_timeout(&client);
    proxy.set_next(Fault::Blackhole, 1);
    client.list_tables().send().await.unwrap();
    // Measured between arrivals at the proxy: the emulator serves one request at a time, so on a
    // busy machine the retry itself may be slow enough to be abandoned too (a third attempt).
    let arrivals = proxy.arrivals();
    assert!(arrivals.len() >= 2, "{arrivals:?}");
    let retried_after = arrivals[1] - arrivals[0];
    // The stalled attempt, then a short backoff (jittered) before the next.
    assert!(
        retried_after >= ATTEMPT_TIMEOUT && retried_after < ATTEMPT_TIMEOUT + FIRST_BACKOFF_MAX + SLACK,
        "{retried_after:?}"
    );
}

#[tokio::test]
async fn dynamodb_gives_up_on_a_connection_that_never_opens_at_the_connect_timeout() {
    let stalled = StalledConnect::start().await.unwrap();
    let client = production_dynamodb(&stalled.url(), "limits-connect").await;
    // One attempt, so the connect timeout is what ends it rather than the attempt timeout.
    let config = client.config().to_builder().retry_config(shared::app::dynamodb_retries().with_max_attempts(1));
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let started = Instant::now();
    let outcome = client.list_tables().send().await;
    let elapsed = started.elapsed();
    match &outcome {
        Err(SdkError::DispatchFailure(failure)) => assert!(failure.is_timeout(), "{failure:?}"),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert!(elapsed >= CONNECT_TIMEOUT && elapsed < ATTEMPT_TIMEOUT, "{elapsed:?}");
}

#[tokio::test]
async fn dynamodb_makes_at_most_three_attempts_all_within_the_operation_timeout() {
    let (proxy, client) = dynamodb_behind_proxy("limits-attempts").await;
    proxy.set(Fault::Status(500));
    let started = Instant::now();
    let outcome = client.list_tables().send().await;
    let elapsed = started.elapsed();
    // The last attempt's own answer, not the operation timeout: every retry fitted.
    assert!(matches!(&outcome, Err(SdkError::ServiceError(_))), "{outcome:?}");
    assert_eq!(proxy.requests(), MAX_ATTEMPTS);
    assert!(elapsed < OPERATION_TIMEOUT, "{elapsed:?}");
}

#[tokio::test]
async fn dynamodb_retries_a_throttling_error_and_succeeds() {
    for error in [DynamoDbError::ProvisionedThroughputExceeded, DynamoDbError::Throttling] {
        let (proxy, client) = dynamodb_behind_proxy(&format!("limits-throttled-once-{}", error.code())).await;
        proxy.set_next(Fault::DynamoDb(error), 1);
        client.list_tables().send().await.unwrap();
        // At least: a retry the busy emulator answers late is abandoned and retried in turn.
        assert!(proxy.requests() >= 2, "{error:?}");
    }
}

#[tokio::test]
async fn dynamodb_reads_the_throttling_error_and_stays_within_the_operation_timeout() {
    for error in [DynamoDbError::ProvisionedThroughputExceeded, DynamoDbError::Throttling] {
        let (proxy, client) = dynamodb_behind_proxy(&format!("limits-throttled-{}", error.code())).await;
        proxy.set(Fault::DynamoDb(error));
        let started = Instant::now();
        let outcome = client.list_tables().send().await;
        let elapsed = started.elapsed();
        assert!(elapsed < OPERATION_TIMEOUT, "{elapsed:?}");
        // Every attempt fits in the operation timeout, backoffs included.
        assert_eq!(proxy.requests(), MAX_ATTEMPTS, "{error:?}");
        match outcome {
            // The last attempt's answer, read from the document's `__type`.
            Err(SdkError::ServiceError(failure)) => assert_eq!(failure.err().code(), Some(error.code())),
            other => panic!("{error:?}: {other:?}"),
        }
    }
}

fn twilio_client(base_url: &str) -> TwilioRestClient {
    TwilioRestClient::from_config(&config_with(&[("TWILIO_API_BASE_URL", base_url)]).twilio).unwrap()
}

fn agent_call() -> OutboundCall {
    OutboundCall::new("client:agent1", "+15550000000", "https://h.example/conference/x/connect/agent1")
}

#[tokio::test]
async fn twilio_gives_up_on_a_blackhole_at_the_total_timeout_without_retrying() {
    let fake = common::FakeTwilio::start().await;
    let proxy = FaultProxy::start(*fake.server.address()).await.unwrap();
    proxy.set(Fault::Blackhole);
    let started = Instant::now();
    let outcome = twilio_client(&proxy.url()).place_call(&agent_call()).await;
    let elapsed = started.elapsed();
    match &outcome {
        Err(TwilioError::Transport(source)) => assert!(source.is_timeout(), "{source:?}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(elapsed >= TWILIO_TOTAL_TIMEOUT && elapsed < TWILIO_TOTAL_TIMEOUT + SLACK, "{elapsed:?}");
    assert_eq!(proxy.requests(), 1);
}

#[tokio::test]
async fn twilio_gives_up_on_a_connection_that_never_opens_at_the_connect_timeout() {
    let stalled = StalledConnect::start().await.unwrap();
    let started = Instant::now();
    let outcome = twilio_client(&stalled.url()).place_call(&agent_call()).await;
    let elapsed = started.elapsed();
    match &outcome {
        Err(TwilioError::Transport(source)) => assert!(source.is_connect() && source.is_timeout(), "{source:?}"),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert!(elapsed >= TWILIO_CONNECT_TIMEOUT && elapsed < TWILIO_CONNECT_TIMEOUT + SLACK, "{elapsed:?}");
}

/// Placing a call is not idempotent: a client that retried it could ring an agent twice.
#[tokio::test]
async fn twilio_makes_one_attempt_whatever_the_failure() {
    for fault in [Fault::Status(500), Fault::Status(503), Fault::Status(429), Fault::Reset] {
        let fake = common::FakeTwilio::start().await;
        let proxy = FaultProxy::start(*fake.server.address()).await.unwrap();
        proxy.set(fault);
        let outcome = twilio_client(&proxy.url()).place_call(&agent_call()).await;
        assert!(outcome.is_err(), "{fault}");
        assert_eq!(proxy.requests(), 1, "{fault}");
    }
}
