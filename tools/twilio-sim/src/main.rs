//! `twilio-sim serve`: Twilio on loopback for a Warmline stack; `twilio-sim demo`: a scripted
//! warm transfer against it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use twilio_sim::{Server, client, demo, env_file};

#[derive(Parser)]
#[command(version, about = "A stand-in for the part of Twilio that Warmline uses")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API and the control API (/sim/…) until interrupted.
    Serve {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The settings the functions get (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_KEY,
        /// TWILIO_API_SECRET, TWILIO_NUMBER, TWILIO_TWIML_APP_SID, TWILIO_AGENT_TWIML_APP_SID,
        /// PUBLIC_BASE_URL).
        #[arg(long)]
        env_file: Option<PathBuf>,
        /// Where Warmline is reached; the number's Voice URL and the TwiML App's are built from it.
        #[arg(long)]
        public_base_url: Option<String>,
        /// Multiplies Twilio's own durations (ring timeouts, speech, music).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Once listening, write the simulator's URL to this file.
        #[arg(long)]
        url_file: Option<PathBuf>,
    },
    /// Run a scripted warm transfer against a running stack and print the timeline.
    Demo {
        /// The simulator's URL; by default read from $WARMLINE_STATE_DIR/simulator.url (.dev/).
        #[arg(long)]
        sim: Option<String>,
        /// Warmline's base URL; by default the simulator's PUBLIC_BASE_URL.
        #[arg(long)]
        stack: Option<String>,
        /// agent1's and agent2's password (as WARMLINE_DEV_AGENT_PASSWORD gives every agent one);
        /// by default each agent's own, read from $WARMLINE_STATE_DIR/agents.txt (.dev/).
        #[arg(long, env = "WARMLINE_DEMO_PASSWORD")]
        password: Option<String>,
    },
    /// Print the simulator's timeline.
    Timeline {
        #[arg(long)]
        sim: Option<String>,
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { listen, env_file, public_base_url, time_scale, url_file } => {
            serve(listen, env_file, public_base_url, time_scale, url_file).await
        }
        Command::Demo { sim, stack, password } => {
            let Some(sim) = sim_url(sim) else {
                return fail(
                    "no simulator: start `make dev` without Twilio credentials first (it writes .dev/simulator.url)",
                );
            };
            let passwords = demo::AGENTS
                .iter()
                .filter_map(|agent| {
                    let password = password.clone().or_else(|| dev_password(agent))?;
                    Some(((*agent).to_owned(), password))
                })
                .collect();
            let outcome = demo::run(&client::Client::new(&sim), stack.as_deref(), &passwords).await;
            println!("Warm transfer through the Twilio simulator at {sim}:\n");
            print!("{}", outcome.text());
            match outcome.error {
                None => {
                    println!(
                        "\nDone: the customer was handed from agent1 to agent2 without being dropped, and hung up themselves."
                    );
                    ExitCode::SUCCESS
                }
                Some(err) => fail(&format!("the demo stopped: {err}")),
            }
        }
        Command::Timeline { sim, since } => {
            let Some(sim) = sim_url(sim) else {
                return fail("no simulator URL");
            };
            match client::Client::new(&sim).timeline(since).await {
                Ok(entries) => {
                    print!("{}", twilio_sim::timeline::render(&entries));
                    ExitCode::SUCCESS
                }
                Err(err) => fail(&err.to_string()),
            }
        }
    }
}

async fn serve(
    listen: SocketAddr,
    env_file: Option<PathBuf>,
    public_base_url: Option<String>,
    time_scale: f64,
    url_file: Option<PathBuf>,
) -> ExitCode {
    let settings = match env_file.as_deref().map(env_file::read).transpose() {
        Ok(settings) => settings.unwrap_or_default(),
        Err(err) => return fail(&format!("cannot read the settings: {err}")),
    };
    let mut config = match env_file::config_from(&settings, public_base_url.as_deref()) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    config.time_scale = time_scale;
    let server = match Server::start(config, listen).await {
        Ok(server) => server,
        Err(err) => return fail(&format!("cannot listen on {listen}: {err}")),
    };
    let config = server.sim.config();
    eprintln!("twilio-sim: Twilio REST API and control API on {}", server.url());
    eprintln!("twilio-sim: the support number {} rings {}", config.phone_number, config.voice_url);
    eprintln!("twilio-sim: customers' browser calls go to {}", config.twiml_app_voice_url);
    eprintln!("twilio-sim: agents' browser calls go to {}", config.agent_twiml_app_voice_url);
    if let Some(path) = url_file
        && let Err(err) = std::fs::write(&path, format!("{}\n", server.url()))
    {
        return fail(&format!("cannot write {}: {err}", path.display()));
    }
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling: serve until killed.
        std::future::pending::<()>().await;
    }
    drop(server);
    tokio::time::sleep(Duration::from_millis(10)).await;
    ExitCode::SUCCESS
}

/// A file `make dev` writes into its state directory.
fn dev_state_file(name: &str) -> Option<String> {
    let state = std::env::var("WARMLINE_STATE_DIR").unwrap_or_else(|_| ".dev".into());
    std::fs::read_to_string(PathBuf::from(state).join(name)).ok()
}

fn sim_url(given: Option<String>) -> Option<String> {
    given.or_else(|| dev_state_file("simulator.url").map(|url| url.trim().to_owned()))
}

/// The password `make dev` gave `agent` (its agents.txt has lines `id password`).
fn dev_password(agent: &str) -> Option<String> {
    dev_state_file("agents.txt")?
        .lines()
        .find_map(|line| line.split_once(' ').filter(|(id, _)| *id == agent).map(|(_, password)| password.to_owned()))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("twilio-sim: {message}");
    ExitCode::FAILURE
}
