//! Helpers for tests that need the project's tools: the venv's Python (the `twilio` package as
//! an oracle, the table script) and the DynamoDB emulator that `make test` starts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a setup that fails is a failed test"
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's Python; `make test` creates it. A missing venv fails the test, loudly.
pub fn python() -> Command {
    let path =
        std::env::var_os("WARMLINE_PYTHON").map_or_else(|| workspace_root().join(".venv/bin/python"), PathBuf::from);
    assert!(path.exists(), "{} is missing: run `make test` (it installs the test tools)", path.display());
    let mut command = Command::new(path);
    command.current_dir(workspace_root());
    command
}

/// Runs a Python snippet with `input` on stdin and returns its stdout, failing on any error.
pub fn run_python(script: &str, input: &str) -> String {
    run_python_with_args(script, &[], input)
}

/// `run_python` with arguments for the snippet (its `sys.argv[1:]`).
pub fn run_python_with_args(script: &str, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = python()
        .args(["-c", script])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The emulator `make test` starts (moto: DynamoDB and Secrets Manager on one endpoint).
pub fn emulator_endpoint() -> String {
    std::env::var("WARMLINE_TEST_DYNAMODB_ENDPOINT")
        .expect("WARMLINE_TEST_DYNAMODB_ENDPOINT is not set: run `make test`, which starts the DynamoDB emulator")
}

/// An SDK configuration for the emulator, with test credentials and the production timeouts and
/// retries, so that stores are tested as the functions run them.
pub fn emulator_sdk_config() -> aws_config::SdkConfig {
    emulator_sdk_config_at(&emulator_endpoint())
}

/// A DynamoDB client of the emulator at `endpoint` (a dev stack's own, say).
pub fn emulator_client_at(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&emulator_sdk_config_at(endpoint))
}

/// `emulator_sdk_config` for the emulator at `endpoint`.
pub fn emulator_sdk_config_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"),
        ))
        .timeout_config(crate::app::dynamodb_timeouts())
        .retry_config(crate::app::dynamodb_retries())
        .http_client(crate::aws_http::client())
        .build()
}

pub struct EmulatorTables {
    pub client: aws_sdk_dynamodb::Client,
    names: HashMap<String, String>,
}

impl EmulatorTables {
    /// The table created for a `template.yaml` logical id.
    pub fn name(&self, logical_id: &str) -> String {
        self.names.get(logical_id).cloned().unwrap_or_else(|| panic!("template.yaml has no table {logical_id}"))
    }
}

/// Fresh tables, created from `template.yaml` by the same script `make dev` uses, in the
/// emulator named by `WARMLINE_TEST_DYNAMODB_ENDPOINT`.
pub async fn emulator_tables() -> EmulatorTables {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let endpoint = emulator_endpoint();
    let prefix = format!("t{}-{}-", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let output =
        python().args(["scripts/create_tables.py", "--endpoint", &endpoint, "--prefix", &prefix]).output().unwrap();
    assert!(output.status.success(), "create_tables.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let names = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(logical, name)| (logical.trim().to_owned(), name.trim().to_owned()))
        .collect();

    EmulatorTables { client: aws_sdk_dynamodb::Client::new(&emulator_sdk_config()), names }
}
