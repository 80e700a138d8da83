//! `make latency` and `make cost`: the release functions on a local stack with DynamoDB's and
//! Twilio's latency, measured.
//!
//!     lambda-bench latency [--calls 500] [--concurrency 20]     what a caller waits for
//!     lambda-bench cost [--out target/cost.json]                what four calls use, as JSON

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lambda_bench::latency::{self, LatencyOptions};
use lambda_bench::stack::{DYNAMODB_LATENCY, Stack, StackOptions, TWILIO_LATENCY, workspace_root};

#[derive(Parser)]
#[command(about = "Warmline's release functions on a local stack with DynamoDB's and Twilio's latency")]
struct Cli {
    /// The functions' executables.
    #[arg(long, global = true, default_value = "target/release")]
    binaries: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Callers' time to first TwiML and to an agent's phone ringing, against the budgets.
    Latency {
        #[arg(long, default_value_t = 500)]
        calls: usize,
        #[arg(long, default_value_t = 20)]
        concurrency: usize,
        #[arg(long, default_value_t = 40)]
        warmup: usize,
        /// Agents answer after this long (ms).
        #[arg(long, default_value_t = 300)]
        answer_after_ms: u64,
        /// Callers talk half to one and a half times this long (ms): at 20 lines, about 1.6 calls
        /// a second, about 55 DynamoDB requests a second, which the emulator keeps up with.
        #[arg(long, default_value_t = 12_000)]
        talk_ms: u64,
    },
    /// What four calls and an agent's hour use, as JSON for scripts/cost.py.
    Cost {
        #[arg(long, default_value = "target/cost.json")]
        out: PathBuf,
        /// Twilio's durations times this (a 5 minute wait takes 6 s at 0.02).
        #[arg(long, default_value_t = 0.02)]
        time_scale: f64,
    },
}

fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() { path } else { workspace_root().join(path) }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let binaries = absolute(cli.binaries);
    match cli.command {
        Command::Latency { calls, concurrency, warmup, answer_after_ms, talk_ms } => {
            let options = StackOptions {
                binaries,
                time_scale: 1.0,
                dynamodb_latency: DYNAMODB_LATENCY,
                twilio_latency: TWILIO_LATENCY,
                agents: concurrency + 5,
                max_instances: concurrency + 5,
                prewarm: 2,
                queue_max_wait_seconds: 300,
                state_dir: workspace_root().join("target/tmp/lambda-bench/latency"),
            };
            let stack = match Stack::start(options).await {
                Ok(stack) => stack,
                Err(err) => {
                    eprintln!("lambda-bench: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let run = LatencyOptions {
                calls,
                concurrency,
                warmup_calls: warmup,
                answer_after: Duration::from_millis(answer_after_ms),
                talk: Duration::from_millis(talk_ms),
            };
            let report = latency::run(&stack, &run).await;
            print!("{}", report.text);
            println!("logs: {}", stack.state_dir.join("logs").display());
            if report.failures.is_empty() && report.within_budget() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Command::Cost { out, time_scale } => {
            let options = StackOptions {
                binaries: binaries.clone(),
                time_scale,
                dynamodb_latency: DYNAMODB_LATENCY,
                twilio_latency: TWILIO_LATENCY,
                agents: 2,
                max_instances: 4,
                prewarm: 1,
                queue_max_wait_seconds: 300,
                state_dir: workspace_root().join("target/tmp/lambda-bench/cost"),
            };
            let starting = std::time::Instant::now();
            let stack = match Stack::start(options).await {
                Ok(stack) => stack,
                Err(err) => {
                    eprintln!("lambda-bench: {err}");
                    return ExitCode::FAILURE;
                }
            };
            eprintln!("lambda-bench: the stack started in {:.1} s", starting.elapsed().as_secs_f64());
            let run = match lambda_bench::cost::run(&stack, &binaries.display().to_string(), time_scale).await {
                Ok(run) => run,
                Err(err) => {
                    eprintln!("lambda-bench: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let out = absolute(out);
            let written = serde_json::to_string_pretty(&run)
                .map_err(std::io::Error::other)
                .and_then(|json| std::fs::write(&out, json + "\n"));
            if let Err(err) = written {
                eprintln!("lambda-bench: cannot write {}: {err}", out.display());
                return ExitCode::FAILURE;
            }
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
    }
}
