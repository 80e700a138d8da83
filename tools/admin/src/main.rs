//! `warmline-admin`: the agents who may sign in, the Twilio secrets, Twilio's wiring to a
//! deployed stack (`wire-twilio`) and the one-command deploy (`deploy`, behind `make deploy`),
//! administered from a terminal with AWS credentials (or against the local emulator with
//! `--endpoint-url`).
//!
//! Passwords are generated here and shown once, or read from stdin for scripts; they are never
//! command-line arguments, which other users of the machine could read from the process list.

mod deploy;
mod outputs;
mod secret_object;
mod secrets;
mod twilio;
mod wire;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use aws_config::BehaviorVersion;
use clap::{Parser, Subcommand};
use shared::domain::Agent;
use shared::domain::AgentId;
use shared::password::{self, MIN_PASSWORD_CHARS};
use shared::store::dynamo::DynamoAgentStore;
use shared::store::{AgentStore, StoreError};

#[derive(Parser)]
#[command(
    name = "warmline-admin",
    about = "Administer Warmline's agents and secrets; deploy it and wire Twilio to it."
)]
struct Cli {
    /// The Agents table (the stack output AgentsTableName).
    #[arg(long, env = "AGENTS_TABLE", global = true)]
    table: Option<String>,
    /// Talk to this endpoint instead of AWS (the local emulator, e.g. http://127.0.0.1:8000).
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add an agent; prints a generated password once, unless --password-stdin.
    Add {
        id: String,
        /// The name the dashboard shows.
        #[arg(long)]
        name: String,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the agents.
    List,
    /// Disable an agent: their sessions end at their next request and they cannot sign in.
    Disable { id: String },
    /// Enable a disabled agent again.
    Enable { id: String },
    /// Set a new password (generated, or from stdin) and end the agent's sessions.
    ResetPassword {
        id: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Store the Twilio Auth Token (in the stack output TwilioAuthTokenSecretArn) and/or the API
    /// key's SID and secret (TwilioApiKeySecretArn). Asks for each without echoing it; functions
    /// use the new values within 5 minutes, nothing is redeployed.
    SetTwilioSecrets {
        #[arg(long)]
        auth_token_secret_id: Option<String>,
        #[arg(long)]
        api_key_secret_id: Option<String>,
        /// Read them from stdin instead, one a line: the Auth Token, the API key SID, its secret.
        #[arg(long)]
        from_stdin: bool,
    },
    /// Replace the key that signs session cookies (the stack output SessionSecretArn) with a new
    /// random one: every agent signs in again.
    RotateSessionKey {
        #[arg(long)]
        secret_id: String,
    },
    /// Point the support number and the two TwiML Apps at a deployed stack through Twilio's REST
    /// API, with the stack's fallback, and store the apps' SIDs in the stack's secret.
    /// Idempotent: a second run changes nothing.
    WireTwilio {
        /// The stack's outputs: `sam list stack-outputs --stack-name <stack> --output json`.
        #[arg(long)]
        stack_outputs: PathBuf,
        /// Print what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The secret to read the API Key secret from and store the SIDs in (default: the SecretsArn output).
        #[arg(long)]
        secret_id: Option<String>,
        /// Twilio's REST API (the simulator in tests).
        #[arg(long, env = "TWILIO_API_BASE_URL", default_value = shared::config::DEFAULT_TWILIO_API_BASE_URL)]
        twilio_api_base_url: String,
    },
    /// Build, deploy, store the Twilio secrets and wire Twilio (make deploy). The Twilio ids come
    /// from TWILIO_ACCOUNT_SID, TWILIO_API_KEY and TWILIO_NUMBER, the secrets from
    /// TWILIO_AUTH_TOKEN and TWILIO_API_SECRET; whatever is not set is asked for.
    Deploy {
        #[arg(long, default_value = "warmline")]
        stack_name: String,
        /// The SAM CLI to run.
        #[arg(long, env = "WARMLINE_SAM", default_value = "sam")]
        sam: String,
        /// Another stack parameter, Name=Value (PublicBaseUrl, AlarmEmail, BusinessHours, ...); repeatable.
        #[arg(long = "parameter")]
        parameters: Vec<String>,
        /// Where the stack's outputs are written for wire-twilio.
        #[arg(long, default_value = ".aws-sam/stack-outputs.json")]
        outputs_file: PathBuf,
        /// Deploy without confirming the change set.
        #[arg(long)]
        no_confirm_changeset: bool,
        /// Ask for the Twilio secrets even if the stack's secret holds them already.
        #[arg(long)]
        set_secrets: bool,
        /// Print the commands and steps, run none.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "TWILIO_API_BASE_URL", default_value = shared::config::DEFAULT_TWILIO_API_BASE_URL)]
        twilio_api_base_url: String,
    },
}

#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("{0}")]
    Usage(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Wiring Twilio stopped: what went wrong, the fix, and what had changed.
    #[error("{0}")]
    Wiring(String),
    #[error("Secrets Manager: {0}")]
    SecretsManager(String),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("could not read stdin: {0}")]
    Io(#[from] std::io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("warmline-admin: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

async fn run(cli: Cli) -> Result<(), AdminError> {
    let aws = sdk_config(cli.endpoint_url.as_deref()).await;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::SetTwilioSecrets { auth_token_secret_id, api_key_secret_id, from_stdin } => {
            let ids = secrets::TwilioSecretIds { auth_token: auth_token_secret_id, api_key: api_key_secret_id };
            let client = aws_sdk_secretsmanager::Client::new(&aws);
            return secrets::set_twilio_secrets(&client, ids, from_stdin, &mut out).await;
        }
        Command::RotateSessionKey { secret_id } => {
            let client = aws_sdk_secretsmanager::Client::new(&aws);
            return secrets::rotate_session_key(&client, &secret_id, &mut out).await;
        }
        Command::WireTwilio { stack_outputs, dry_run, secret_id, twilio_api_base_url } => {
            let options = wire::Options {
                outputs: outputs::StackOutputs::load(&stack_outputs)?,
                api_base_url: twilio_api_base_url,
                secret_id,
                dry_run,
            };
            return wire::wire_twilio(&aws_sdk_secretsmanager::Client::new(&aws), options, &mut out).await.map(|_| ());
        }
        Command::Deploy {
            stack_name,
            sam,
            parameters,
            outputs_file,
            no_confirm_changeset,
            set_secrets,
            dry_run,
            twilio_api_base_url,
        } => {
            let options = deploy::Options {
                stack_name,
                sam,
                parameters,
                outputs_file,
                api_base_url: twilio_api_base_url,
                no_confirm_changeset,
                set_secrets,
                dry_run,
            };
            return deploy::deploy(options, &aws, &mut out).await;
        }
        _ => {}
    }
    let table = cli.table.ok_or_else(|| AdminError::Usage("name the Agents table: --table or AGENTS_TABLE".into()))?;
    let store = DynamoAgentStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    match cli.command {
        Command::Add { id, name, password_stdin } => {
            let id = agent_id(&id)?;
            let name = name.trim();
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(AdminError::Usage("--name must be a non-empty name without control characters".into()));
            }
            let (password, generated) = new_password(password_stdin)?;
            let agent = Agent::new(id.clone(), name, password::hash_password(&password)?, now());
            if !store.create_agent(&agent).await? {
                return Err(AdminError::Usage(format!("{id} exists already (reset-password changes a password)")));
            }
            writeln!(out, "added {id} ({name})")?;
            if generated {
                writeln!(out, "password for {id} (shown once): {password}")?;
            }
        }
        Command::List => {
            writeln!(out, "{:<24} {:<8} {:<20} name", "id", "state", "created")?;
            for agent in store.list_agents().await? {
                let state = if agent.is_enabled() { "enabled" } else { "disabled" };
                writeln!(
                    out,
                    "{:<24} {state:<8} {:<20} {}",
                    agent.id.as_str(),
                    date(agent.created_at),
                    agent.display_name
                )?;
            }
        }
        Command::Disable { id } => {
            let id = agent_id(&id)?;
            require_known(&id, store.set_disabled(&id, Some(now())).await?)?;
            writeln!(out, "disabled {id}; their sessions have ended")?;
        }
        Command::Enable { id } => {
            let id = agent_id(&id)?;
            require_known(&id, store.set_disabled(&id, None).await?)?;
            writeln!(out, "enabled {id}")?;
        }
        Command::ResetPassword { id, password_stdin } => {
            let id = agent_id(&id)?;
            let (password, generated) = new_password(password_stdin)?;
            require_known(&id, store.set_password(&id, &password::hash_password(&password)?).await?)?;
            writeln!(out, "new password set for {id}; their sessions have ended")?;
            if generated {
                writeln!(out, "password for {id} (shown once): {password}")?;
            }
        }
        Command::SetTwilioSecrets { .. }
        | Command::RotateSessionKey { .. }
        | Command::WireTwilio { .. }
        | Command::Deploy { .. } => {}
    }
    Ok(())
}

fn agent_id(id: &str) -> Result<AgentId, AdminError> {
    AgentId::parse(id)
        .map_err(|_| AdminError::Usage(format!("{id:?} is not an agent id (letters, digits, _; 1 to 121)")))
}

fn require_known(id: &AgentId, known: bool) -> Result<(), AdminError> {
    if known { Ok(()) } else { Err(AdminError::Usage(format!("there is no agent {id}"))) }
}

fn now() -> i64 {
    shared::app::Clock::now(&shared::app::SystemClock)
}

fn date(epoch_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds).map_or_else(|_| "?".to_owned(), |t| t.date().to_string())
}

/// A password from stdin, or a generated one (and whether it was generated, so it is shown).
fn new_password(from_stdin: bool) -> Result<(String, bool), AdminError> {
    if from_stdin {
        let password = read_line()?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AdminError::Usage(format!("a password must be at least {MIN_PASSWORD_CHARS} characters")));
        }
        return Ok((password, false));
    }
    Ok((generate_password()?, true))
}

/// 20 characters from an alphabet without look-alikes (no 0/O, 1/l/I): about 114 bits.
fn generate_password() -> Result<String, AdminError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut password = String::with_capacity(20);
    while password.len() < 20 {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).map_err(|err| AdminError::Usage(format!("no randomness: {err}")))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(byte[0]) < limit {
            password.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

fn read_line() -> Result<String, AdminError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub(crate) fn ask_secret(prompt: &str, from_stdin: bool) -> Result<String, AdminError> {
    let value =
        if from_stdin || !std::io::stdin().is_terminal() { read_line()? } else { rpassword::prompt_password(prompt)? };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(AdminError::Usage(format!("{} must not be empty", prompt.trim_end_matches([':', ' ']))));
    }
    Ok(value)
}
