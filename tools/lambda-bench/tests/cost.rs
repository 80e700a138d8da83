//! What each call uses, held to what `make cost` publishes (docs/PERFORMANCE.md): the four calls
//! and an agent's hour run on the whole local stack (the functions' own binaries as Lambda runs
//! them, the DynamoDB emulator, the Twilio simulator), and every request they make is counted.
//! The counts do not depend on the build, so the debug binaries of the test build serve.
//!
//! The guarantees checked: the caller's webhook makes two DynamoDB writes at once (their place in
//! line, the ledger's beginning of the call) and no Twilio REST request (nothing slow stands
//! before their first TwiML); a hold-music turn reads the caller
//! once and the free agents once; a presence renewal reads and writes once; each kind of call
//! makes the Twilio REST requests it needs and no more.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use std::time::Duration;

use lambda_bench::cost::{CostRun, InvocationCost, ScenarioCost};
use lambda_bench::stack::{Stack, StackOptions, workspace_root};

/// The functions as `scripts/dev.sh` builds them for the tests: the test build's features.
fn build_functions() -> std::path::PathBuf {
    let features = std::env::var("WARMLINE_CARGO_FEATURES").unwrap_or_else(|_| "--all-features".to_owned());
    let mut command = std::process::Command::new(env!("CARGO"));
    command.current_dir(workspace_root()).args(["build", "--quiet"]);
    command.args(features.split_whitespace());
    for entry in std::fs::read_dir(workspace_root().join("functions")).unwrap() {
        command.args(["-p", entry.unwrap().file_name().to_str().unwrap()]);
    }
    let status = command.status().unwrap();
    assert!(status.success(), "building the functions failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), Into::into);
    target.join("debug")
}

fn run() -> CostRun {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let binaries = build_functions();
    runtime.block_on(async {
        let started = std::time::Instant::now();
        let time_scale = 0.02;
        let stack = Stack::start(StackOptions {
            binaries,
            time_scale,
            dynamodb_latency: Duration::ZERO,
            twilio_latency: Duration::ZERO,
            agents: 2,
            max_instances: 4,
            prewarm: 1,
            queue_max_wait_seconds: 300,
            state_dir: std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lambda-bench-cost"),
        })
        .await
        .unwrap();
        eprintln!("lambda-bench: the stack started in {:.1} s", started.elapsed().as_secs_f64());
        lambda_bench::cost::run(&stack, "debug", time_scale).await.unwrap()
    })
}

fn scenario<'a>(run: &'a CostRun, name: &str) -> &'a ScenarioCost {
    run.scenarios.iter().find(|scenario| scenario.name == name).unwrap_or_else(|| panic!("no scenario {name}"))
}

fn row<'a>(scenario: &'a ScenarioCost, route: &str, kind: &str) -> &'a InvocationCost {
    scenario
        .invocations
        .iter()
        .find(|row| row.route == route && row.kind == kind)
        .unwrap_or_else(|| panic!("{}: no {route} ({kind}) in {:#?}", scenario.name, scenario.invocations))
}

/// Invocations per route and kind, as `route (kind) × count`.
fn invocations(scenario: &ScenarioCost) -> Vec<String> {
    let mut rows: Vec<String> =
        scenario.invocations.iter().map(|row| format!("{} ({}) x{}", row.route, row.kind, row.measured)).collect();
    rows.sort();
    rows
}

#[test]
fn each_call_makes_the_requests_it_needs_and_no_more() {
    let run = run();

    let answered = scenario(&run, "answered");
    let arrival = row(answered, "POST /conference/connect/client", "");
    assert_eq!(
        (arrival.dynamodb_requests, arrival.read_units, arrival.twilio_requests),
        (2.0, 0.0, 0.0),
        "the caller's webhook: one conditional write and the ledger's beginning of the call, sent together; \
         no read, no Twilio REST request"
    );
    assert_eq!(
        invocations(answered),
        [
            "POST /conference/connect/client () x1",
            "POST /conference/wait (hold music starts) x1",
            "POST /conference/{conference_id}/agents/{agent_id}/status (completed) x1",
            "POST /conference/{conference_id}/connect/{agent_id} () x1",
            "POST /conference/{conference_id}/events (conference-end) x1",
            "POST /conference/{conference_id}/events (participant-join) x2",
            "POST /conference/{conference_id}/events (participant-leave) x1",
        ]
    );
    assert_eq!(answered.twilio_rest.iter().collect::<Vec<_>>(), [(&"POST Calls.json".to_owned(), &1.0)]);

    let waits = scenario(&run, "waits");
    let turn = row(waits, "POST /conference/wait", "hold turn");
    assert_eq!(
        (turn.dynamodb_requests, turn.read_units, turn.write_units, turn.twilio_requests),
        (2.0, 1.5, 0.0, 0.0),
        "a hold turn with nobody free: the caller's record (strongly consistent) and the free agents (an index)"
    );
    assert!(turn.log_events <= 1.0, "a hold turn logs {} lines", turn.log_events);
    let told = row(waits, "POST /conference/wait", "hold turn, told their place");
    assert_eq!((told.dynamodb_requests, told.twilio_requests), (4.0, 0.0), "plus the count ahead and the record of it");
    let turns = turn.count + told.count;
    assert!((7.0..=11.0).contains(&turns), "{turns} hold turns in five minutes of 30 s music");
    assert_eq!(told.count, (turns / 2.0).ceil(), "every other turn: once a minute at Twilio's pace");
    assert_eq!(waits.twilio_rest.iter().collect::<Vec<_>>(), [(&"POST Calls.json".to_owned(), &1.0)]);

    let transfer = scenario(&run, "warm transfer");
    assert_eq!(transfer.twilio_rest.iter().collect::<Vec<_>>(), [(&"POST Calls.json".to_owned(), &2.0)]);
    assert_eq!(row(transfer, "POST /conference/{agent_id}/call", "").measured, 1);
    assert_eq!(row(transfer, "POST /conference/{conference_id}/connect/{agent_id}", "").measured, 2);

    let voicemail = scenario(&run, "voicemail");
    assert_eq!(
        voicemail.twilio_rest.iter().collect::<Vec<_>>(),
        [(&"POST Calls/{CallSid}.json".to_owned(), &1.0)],
        "the offer to leave a message is the only REST request; nobody is rung"
    );
    let recorded = row(voicemail, "POST /voicemail/{conference_id}/recording", "");
    assert!(recorded.write_units >= 1.0, "the ticket is written");

    let renewal = run.agent_hour.invocations.iter().find(|row| row.route == "PUT /presence").unwrap();
    assert_eq!(
        (renewal.dynamodb_requests, renewal.count),
        (3.0, 120.0),
        "a renewal: the session, the presence and its write; 120 an hour"
    );
    for scenario in run.scenarios.iter().chain([&run.agent_hour]) {
        for row in &scenario.invocations {
            assert!(row.billed_ms >= 1.0, "{}: {} billed {} ms", scenario.name, row.route, row.billed_ms);
        }
    }
}
