//! `warmline-admin`: the agents who may sign in, and the Twilio secrets, administered from a
//! terminal with AWS credentials (or against the local emulator with `--endpoint-url`).
//!
//! Passwords are generated here and shown once, or read from stdin for scripts; they are never
//! command-line arguments, which other users of the machine could read from the process list.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use aws_config::BehaviorVersion;
use clap::{Parser, Subcommand};
use shared::app::{SecretsError, read_secrets};
use shared::domain::Agent;
use shared::domain::AgentId;
use shared::password::{self, MIN_PASSWORD_CHARS};
use shared::secret::Secret;
use shared::store::dynamo::DynamoAgentStore;
use shared::store::{AgentStore, StoreError};

#[derive(Parser)]
#[command(name = "warmline-admin", about = "Administer Warmline's agents and secrets.")]
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
    /// Store the Twilio Auth Token and API Key secret in the stack's secret (the stack output
    /// SecretsArn), keeping the session key. Asks for both without echoing them.
    SetTwilioSecrets {
        #[arg(long)]
        secret_id: String,
        /// Read them from stdin instead, the auth token on the first line, the API secret on the second.
        #[arg(long)]
        from_stdin: bool,
    },
}

#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("{0}")]
    Usage(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
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
    if let Command::SetTwilioSecrets { secret_id, from_stdin } = &cli.command {
        return set_twilio_secrets(&aws_sdk_secretsmanager::Client::new(&aws), secret_id, *from_stdin).await;
    }
    let table = cli.table.ok_or_else(|| AdminError::Usage("name the Agents table: --table or AGENTS_TABLE".into()))?;
    let store = DynamoAgentStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let mut out = std::io::stdout().lock();
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
        Command::SetTwilioSecrets { .. } => {}
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

fn ask_secret(prompt: &str, from_stdin: bool) -> Result<String, AdminError> {
    let value =
        if from_stdin || !std::io::stdin().is_terminal() { read_line()? } else { rpassword::prompt_password(prompt)? };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(AdminError::Usage(format!("{} must not be empty", prompt.trim_end_matches([':', ' ']))));
    }
    Ok(value)
}

async fn set_twilio_secrets(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    from_stdin: bool,
) -> Result<(), AdminError> {
    let auth_token = ask_secret("Twilio Auth Token: ", from_stdin)?;
    let api_secret = ask_secret("Twilio API Key secret: ", from_stdin)?;
    // Read first: the session key in the same secret must survive, and a wrong id fails here.
    let current = read_secrets(client, secret_id).await?;
    let mut object = serde_json::Map::new();
    for (name, value) in &current {
        object.insert((*name).to_owned(), serde_json::Value::String(value.expose().to_owned()));
    }
    object.insert("TWILIO_AUTH_TOKEN".into(), auth_token.into());
    object.insert("TWILIO_API_SECRET".into(), api_secret.into());
    let session_key = current.get("SESSION_SECRET").map(Secret::expose).unwrap_or_default();
    if session_key.is_empty() {
        return Err(AdminError::Usage("the secret has no SESSION_SECRET: is it the stack's SecretsArn?".into()));
    }
    client
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(serde_json::Value::Object(object).to_string())
        .send()
        .await
        .map_err(|err| {
            AdminError::SecretsManager(aws_sdk_secretsmanager::error::DisplayErrorContext(err).to_string())
        })?;
    println!("stored the Twilio secrets; functions read them at their next cold start");
    Ok(())
}
