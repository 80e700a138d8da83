//! One whole Warmline on loopback, as deployed but local: the functions' own binaries behind the
//! host (API Gateway and Lambda), the moto emulator with the tables of template.yaml, the Twilio
//! simulator playing Twilio, the fault proxy giving DynamoDB and Twilio's REST API their real
//! latency, taps that price every request, and agents signed in through the real sign-in.
//!
//! ```text
//! simulator ──webhooks──> host ──events──> function instances ──> taps ──> fault proxy (5 ms) ──> moto
//!     ^                                                          └──> taps ──> fault proxy (250 ms) ──┐
//!     └──────────────────────────────── Twilio REST API ─────────────────────────────────────────────┘
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{Credentials, Region};
use fault_proxy::FaultProxy;
use shared::domain::{Agent, AgentId};
use shared::store::AgentStore;
use shared::store::dynamo::DynamoAgentStore;
use twilio_sim::{Server, SimConfig};

use crate::host::{FrontDoor, Host, HostConfig, HostError};
use crate::taps::{TapError, Taps};

pub const ACCOUNT: &str = "AC1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b";
pub const AUTH_TOKEN: &str = "lambda-bench-auth-token";
pub const API_KEY: &str = "SK1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b";
pub const API_SECRET: &str = "lambda-bench-api-secret";
pub const SUPPORT_NUMBER: &str = "+15550004444";
pub const AGENT_PASSWORD: &str = "lambda-bench-agent-password";

/// DynamoDB's round trip within a region, and Twilio's REST API's (placing a call).
pub const DYNAMODB_LATENCY: Duration = Duration::from_millis(5);
pub const TWILIO_LATENCY: Duration = Duration::from_millis(250);

pub struct StackOptions {
    /// The functions' executables (`target/release`).
    pub binaries: PathBuf,
    /// Twilio's own durations (hold music, ring timeouts, speech) times this.
    pub time_scale: f64,
    pub dynamodb_latency: Duration,
    pub twilio_latency: Duration,
    /// `agent1`…`agentN`, signed in (away until a scenario says otherwise).
    pub agents: usize,
    /// Instances per function at most, and started before anything is measured.
    pub max_instances: usize,
    pub prewarm: usize,
    pub queue_max_wait_seconds: u64,
    /// Logs and the emulator's output go here.
    pub state_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("the emulator: {0}")]
    Emulator(String),
    #[error("the tables: {0}")]
    Tables(String),
    #[error("signing {agent} in: {reason}")]
    Agent { agent: String, reason: String },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Taps(#[from] TapError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct Stack {
    pub sim: Server,
    pub host: Host,
    pub taps: Taps,
    pub base: String,
    /// Each agent's session cookie.
    pub cookies: BTreeMap<String, String>,
    /// Logical id in template.yaml → table name.
    pub tables: BTreeMap<String, String>,
    pub dynamodb_proxy: FaultProxy,
    pub twilio_proxy: FaultProxy,
    pub state_dir: PathBuf,
    _emulator: tokio::process::Child,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("WARMLINE_PYTHON").map_or_else(|| workspace_root().join(".venv/bin/python"), PathBuf::from)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn agent_ids(count: usize) -> Vec<String> {
    (1..=count).map(|n| format!("agent{n}")).collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    let _ = getrandom::fill(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

async fn start_emulator(state_dir: &Path) -> Result<(tokio::process::Child, String), StackError> {
    let port = free_port()?;
    let log = std::fs::File::create(state_dir.join("dynamodb.log"))?;
    let child = tokio::process::Command::new(python())
        .arg(workspace_root().join("scripts/emulator.py"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| StackError::Emulator(format!("{}: {err}", python().display())))?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{url}/moto-api/")).send().await.is_err() {
        if Instant::now() > deadline {
            return Err(StackError::Emulator(format!(
                "no answer on {url}; see {}",
                state_dir.join("dynamodb.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((child, url))
}

fn create_tables(emulator: &str) -> Result<BTreeMap<String, String>, StackError> {
    let output = std::process::Command::new(python())
        .current_dir(workspace_root())
        .args(["scripts/create_tables.py", "--endpoint", emulator, "--prefix", "bench-"])
        .output()?;
    if !output.status.success() {
        return Err(StackError::Tables(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(logical, name)| (logical.trim().to_owned(), name.trim().to_owned()))
        .collect())
}

/// `CallsTable` → `CALLS_TABLE`.
fn table_variable(logical: &str) -> String {
    format!("{}_TABLE", logical.trim_end_matches("Table").to_ascii_uppercase())
}

impl Stack {
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        std::fs::create_dir_all(&options.state_dir)?;
        let (emulator, emulator_url) = start_emulator(&options.state_dir).await?;
        let tables = create_tables(&emulator_url)?;
        let dynamodb_proxy = FaultProxy::in_front_of(&emulator_url).await?;
        dynamodb_proxy.set_latency(options.dynamodb_latency);

        let front = FrontDoor::bind().await?;
        let base = front.url().to_owned();
        let config = SimConfig {
            account_sid: ACCOUNT.into(),
            auth_token: AUTH_TOKEN.into(),
            api_key: Some(API_KEY.into()),
            api_secret: Some(API_SECRET.into()),
            phone_number: SUPPORT_NUMBER.into(),
            time_scale: options.time_scale,
            default_answer_after: Duration::from_millis(200),
            ..SimConfig::for_warmline(&base)
        };
        let sim = Server::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let twilio_proxy = FaultProxy::in_front_of(&sim.url()).await?;
        twilio_proxy.set_latency(options.twilio_latency);

        let named: Vec<(String, String)> =
            tables.iter().map(|(logical, name)| (name.clone(), logical.clone())).collect();
        let taps = Taps::start(&dynamodb_proxy.url(), &emulator_url, &twilio_proxy.url(), &named).await?;

        let mut env: Vec<(String, String)> = [
            ("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
            ("TWILIO_API_KEY", API_KEY.to_owned()),
            ("TWILIO_API_SECRET", API_SECRET.to_owned()),
            ("TWILIO_NUMBER", SUPPORT_NUMBER.to_owned()),
            ("TWILIO_TWIML_APP_SID", sim.sim.config().twiml_app_sid.clone()),
            ("TWILIO_AGENT_TWIML_APP_SID", sim.sim.config().agent_twiml_app_sid.clone()),
            ("PUBLIC_BASE_URL", base.clone()),
            ("SESSION_SECRET", random_hex(32)),
            ("QUEUE_MAX_WAIT_SECONDS", options.queue_max_wait_seconds.to_string()),
            ("AGENT_IDS", agent_ids(options.agents).join(",")),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        env.extend(tables.iter().map(|(logical, name)| (table_variable(logical), name.clone())));

        let host = Host::start(
            front,
            HostConfig {
                binaries: options.binaries.clone(),
                env,
                max_instances: options.max_instances,
                log_dir: options.state_dir.join("logs"),
                taps: Some(taps.clone()),
            },
        )
        .await?;
        host.prewarm(options.prewarm).await?;

        let agents_table = tables.get("AgentsTable").cloned().unwrap_or_default();
        let cookies = sign_in_agents(&emulator_url, &agents_table, &base, options.agents).await?;
        Ok(Self {
            sim,
            host,
            taps,
            base,
            cookies,
            tables,
            dynamodb_proxy,
            twilio_proxy,
            state_dir: options.state_dir,
            _emulator: emulator,
        })
    }

    /// `agent`'s dashboard says `status` (`available`, `away`): `PUT /presence`.
    pub async fn say(&self, agent: &str, status: &str) -> Result<serde_json::Value, twilio_sim::demo::DemoError> {
        let cookie = self.cookies.get(agent).map(String::as_str).unwrap_or_default();
        twilio_sim::demo::say_presence(&self.base, cookie, status).await
    }
}

/// Accounts in the Agents table as `make agent add` writes them, then a session for each
/// through `POST /login`, as the sign-in form gets one.
async fn sign_in_agents(
    emulator: &str,
    table: &str,
    base: &str,
    count: usize,
) -> Result<BTreeMap<String, String>, StackError> {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(emulator)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(Credentials::new(
            "local",
            "local",
            None,
            None,
            "lambda-bench",
        )))
        .build();
    let store = DynamoAgentStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let hash = shared::password::hash_password(AGENT_PASSWORD)
        .map_err(|err| StackError::Agent { agent: "(any)".into(), reason: err.to_string() })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut cookies = BTreeMap::new();
    for agent in agent_ids(count) {
        let failed = |reason: String| StackError::Agent { agent: agent.clone(), reason };
        let id = AgentId::parse(&agent).map_err(|err| failed(err.to_string()))?;
        let account =
            Agent::new(id, format!("Agent {}", &agent[5..]), hash.clone(), i64::try_from(now).unwrap_or_default());
        store.create_agent(&account).await.map_err(|err| failed(err.to_string()))?;
        let cookie =
            twilio_sim::demo::sign_in(base, &agent, AGENT_PASSWORD).await.map_err(|err| failed(err.to_string()))?;
        cookies.insert(agent, cookie);
    }
    Ok(cookies)
}
