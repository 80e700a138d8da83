//! What a caller waits for, with DynamoDB's and Twilio's latency put back in (issue 17, item 1):
//! `calls` callers, `concurrency` at a time, each answered by an agent and hanging up after a
//! short talk, against a stack with more agents than callers at once, so that every caller can
//! be rung at once. Measured:
//!
//! - **first TwiML**: from the caller's webhook reaching the HTTP API to the function's answer
//!   (the host's clock, in microseconds), and as the simulator saw it (its clock, whole ms);
//! - **arrival → ringing**: from the simulator starting the caller's call to the agent's phone
//!   ringing (the simulator's `Ringing` for the call Warmline placed for that caller).
//!
//! Each figure comes twice: as measured, and with DynamoDB answering in its latency. The local
//! DynamoDB is moto, a Python server that takes one request at a time (scripts/emulator.py):
//! its own few milliseconds, and its queue under load, land on top of the injected latency. The
//! taps time every round trip, so what the emulator added beyond the latency to the requests on
//! the way (the caller's webhook; the router's reads and writes before it rings the agent) is
//! taken out again. The budgets are held against that figure.
//!
//! A warm-up round goes first, so the instances a steady load keeps are running; cold starts
//! that still happen during the measured calls are counted and reported.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use twilio_sim::{AnswerMode, Behaviour, Event, InboundCall};

use crate::host::Invocation;
use crate::stack::{Stack, agent_ids};
use crate::taps::{Call, TapRecord};
use crate::usage::attribute;

/// Budgets from the issue: what a caller hears first, and how soon an agent's phone rings.
pub const FIRST_TWIML_BUDGET: Duration = Duration::from_millis(50);
pub const RINGING_BUDGET: Duration = Duration::from_millis(600);

#[derive(Debug, Clone)]
pub struct LatencyOptions {
    pub calls: usize,
    pub concurrency: usize,
    pub warmup_calls: usize,
    /// How long an agent's phone rings before they answer, and how long they talk.
    pub answer_after: Duration,
    pub talk: Duration,
}

/// Percentiles, nearest rank, of a sorted list.
pub fn percentile<T: Copy + Default>(sorted: &[T], fraction: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (fraction * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// A sample, sorted: as measured, and with the emulator's own time taken out of every DynamoDB
/// round trip on the way (each counted at the configured latency instead).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub measured: Vec<Duration>,
    pub at_dynamodb_latency: Vec<Duration>,
}

impl Sample {
    fn push(&mut self, measured: Duration, emulator_excess: Duration) {
        self.measured.push(measured);
        self.at_dynamodb_latency.push(measured.saturating_sub(emulator_excess));
    }

    fn sort(&mut self) {
        self.measured.sort_unstable();
        self.at_dynamodb_latency.sort_unstable();
    }
}

#[derive(Debug, Clone, Default)]
pub struct LatencyReport {
    pub calls: usize,
    /// From each caller's webhook reaching the HTTP API to its answer.
    pub first_twiml: Sample,
    /// From each caller's call starting to an agent's phone ringing for them.
    pub ringing: Sample,
    pub cold_starts: usize,
    pub failures: Vec<String>,
    pub text: String,
}

impl LatencyReport {
    /// The budgets hold with DynamoDB answering in its latency: the local emulator is a Python
    /// server that one request at a time goes through, and under load its own time would be
    /// measured as Warmline's.
    pub fn within_budget(&self) -> bool {
        percentile(&self.first_twiml.at_dynamodb_latency, 0.99) <= FIRST_TWIML_BUDGET
            && percentile(&self.ringing.at_dynamodb_latency, 0.99) <= RINGING_BUDGET
    }
}

/// What the emulator added, beyond `latency` per request, to the DynamoDB requests `invocation`
/// made (before `until`, when given): its own time and its queue.
fn emulator_excess(invocation: &Invocation, taps: &[TapRecord], until: Option<Instant>, latency: Duration) -> Duration {
    taps.iter()
        .filter(|record| record.instance == invocation.instance)
        .filter(|record| record.at >= invocation.handed && record.at <= invocation.answered)
        .filter(|record| until.is_none_or(|until| record.at < until))
        .filter(|record| matches!(record.call, Call::DynamoDb(_)))
        .map(|record| record.took.saturating_sub(latency))
        .sum()
}

fn agent_behaviour(answer_after: Duration) -> Behaviour {
    let after_ms = u64::try_from(answer_after.as_millis()).unwrap_or(u64::MAX);
    Behaviour { answer: AnswerMode::Auto, after_ms: Some(after_ms), ..Behaviour::default() }
}

/// `count` callers, `concurrency` at a time; their CallSids in the order they called. Like a
/// real line's, the calls are spread out: each of the `concurrency` lines starts a share of
/// `talk` after the one before, and each caller talks between half and one and a half `talk`,
/// so callers arrive one by one rather than in waves of `concurrency` at the same instant.
async fn place_calls(stack: &Stack, count: usize, concurrency: usize, talk: Duration, first: usize) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let placed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for line in 0..concurrency {
        let (next, placed, sim) = (next.clone(), placed.clone(), stack.sim.sim.clone());
        let offset = talk.mul_f64(line as f64 / concurrency.max(1) as f64);
        workers.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= count {
                    return;
                }
                let number = first + n;
                // 37 and 100 are coprime: the talk times cycle through the whole spread.
                let talks = talk.mul_f64(0.5 + ((number * 37) % 100) as f64 / 100.0);
                // Nobody stays on the line for good if Warmline never rings anyone.
                let give_up = talks + Duration::from_secs(60);
                let sid = sim.dial_in(InboundCall {
                    from: Some(format!("+1555800{:04}", number % 10_000)),
                    name: Some(format!("caller{number}")),
                    hangup_after_talking_ms: Some(u64::try_from(talks.as_millis()).unwrap_or(u64::MAX)),
                    hangup_after_ms: Some(u64::try_from(give_up.as_millis()).unwrap_or(u64::MAX)),
                    ..InboundCall::default()
                });
                if let Ok(mut placed) = placed.lock() {
                    placed.push(sid.clone());
                }
                let deadline = Instant::now() + give_up + Duration::from_secs(10);
                while sim.call(&sid).is_some_and(|call| !call.status.is_final()) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    placed.lock().map(|placed| placed.clone()).unwrap_or_default()
}

/// Until no call is live and the timeline has been still for a moment: the last callbacks
/// and what Warmline did about them are over.
pub async fn settle(stack: &Stack) {
    let sim = &stack.sim.sim;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = sim.timeline().len();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sim.timeline().len();
        let live = sim.calls().iter().any(|call| !call.status.is_final());
        if (now == seen && !live) || Instant::now() > deadline {
            return;
        }
        seen = now;
    }
}

pub async fn run(stack: &Stack, options: &LatencyOptions) -> LatencyReport {
    let sim = &stack.sim.sim;
    let agents = agent_ids(stack.cookies.len());
    for agent in &agents {
        sim.set_behaviour(&format!("client:{agent}"), agent_behaviour(options.answer_after));
        if let Err(err) = stack.say(agent, "available").await {
            return LatencyReport {
                failures: vec![format!("{agent} cannot say available: {err}")],
                ..LatencyReport::default()
            };
        }
    }
    // Presence is a 90 s lease that the dashboard renews every 30 s.
    let renewals = {
        let (base, cookies) = (stack.base.clone(), stack.cookies.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                for cookie in cookies.values() {
                    let _ = twilio_sim::demo::say_presence(&base, cookie, "available").await;
                }
            }
        })
    };

    place_calls(stack, options.warmup_calls, options.concurrency, options.talk, 0).await;
    settle(stack).await;

    let since = sim.timeline().len();
    let measured_from = Instant::now();
    let started = Instant::now();
    let callers = place_calls(stack, options.calls, options.concurrency, options.talk, options.warmup_calls).await;
    settle(stack).await;
    let took = started.elapsed();
    renewals.abort();
    // The whole story, beside the functions' logs, for whoever wants to follow one caller.
    let timeline = twilio_sim::timeline::render(&sim.timeline().entries_since(0));
    let _ = std::fs::write(stack.state_dir.join("timeline.txt"), timeline);
    analyse(stack, options, since, measured_from, &callers, took)
}

fn analyse(
    stack: &Stack,
    options: &LatencyOptions,
    since: u64,
    measured_from: Instant,
    callers: &[String],
    took: Duration,
) -> LatencyReport {
    let sim = &stack.sim.sim;
    let entries = sim.timeline().entries_since(since);
    let mut failures = Vec::new();

    // The calls Warmline placed, by the caller they ring for.
    let mut ring_for: HashMap<String, String> = HashMap::new();
    for call in sim.calls().into_iter().filter(|call| call.direction == "outbound-api") {
        if let Some(customer) =
            call.url.as_deref().and_then(|url| url.split("/conference/").nth(1)).and_then(|rest| rest.split('/').next())
        {
            ring_for.insert(call.sid.clone(), customer.to_owned());
        }
    }
    let mut started: HashMap<&str, u64> = HashMap::new();
    let mut answered_webhook: HashMap<&str, u64> = HashMap::new();
    let mut first_ring: HashMap<String, u64> = HashMap::new();
    let mut joined_agents: HashMap<String, usize> = HashMap::new();
    let mut troubles = 0;
    for entry in &entries {
        let Some(sid) = entry.call_sid.as_deref() else { continue };
        match &entry.event {
            Event::CallStarted { direction, .. } if direction == "inbound" => {
                started.insert(sid, entry.at_ms);
            }
            Event::Webhook { purpose, status: Some(200), .. } if purpose == "voice webhook" => {
                answered_webhook.entry(sid).or_insert(entry.at_ms);
            }
            Event::Ringing { .. } => {
                if let Some(customer) = ring_for.get(sid) {
                    first_ring.entry(customer.clone()).or_insert(entry.at_ms);
                }
            }
            Event::ConferenceJoined { waiting: false, .. } => {
                if let Some(customer) = ring_for.get(sid) {
                    *joined_agents.entry(customer.clone()).or_default() += 1;
                }
            }
            Event::TwimlError { .. } | Event::HoldSilence => troubles += 1,
            _ => {}
        }
    }
    let invocations: Vec<_> = stack.host.invocations().into_iter().filter(|i| i.received >= measured_from).collect();
    let taps: Vec<_> = stack.taps.records().into_iter().filter(|record| record.at >= measured_from).collect();
    let latency = stack.dynamodb_proxy.latency();
    // Each caller's webhook, and the event whose router rang an agent for them (and when).
    let mut arrivals: HashMap<&str, &Invocation> = HashMap::new();
    let mut rang_by: HashMap<&str, (&Invocation, Instant)> = HashMap::new();
    for invocation in &invocations {
        if invocation.route == "POST /conference/connect/client"
            && let Some(call) = invocation.call.as_deref()
        {
            arrivals.insert(call, invocation);
        }
    }
    for record in &taps {
        let Call::Twilio { resource, conference: Some(conference), .. } = &record.call else { continue };
        if resource != "Calls.json" {
            continue;
        }
        let rang = invocations.iter().find(|invocation| {
            invocation.instance == record.instance && invocation.handed <= record.at && record.at <= invocation.answered
        });
        if let Some(invocation) = rang {
            rang_by.entry(conference.as_str()).or_insert((invocation, record.at));
        }
    }
    let mut first_twiml = Sample::default();
    let mut ringing = Sample::default();
    // The slowest rings, with what rang them: (adjusted ms, caller, what rang them).
    let mut slowest: Vec<(Duration, String, String)> = Vec::new();
    let mut seen_ms = Vec::new();
    for sid in callers {
        let arrival = arrivals.get(sid.as_str()).copied();
        let arrival_excess =
            arrival.map_or(Duration::ZERO, |invocation| emulator_excess(invocation, &taps, None, latency));
        if let Some(invocation) = arrival {
            first_twiml.push(invocation.latency(), arrival_excess);
        }
        let Some(&start) = started.get(sid.as_str()) else {
            failures.push(format!("{sid} never started"));
            continue;
        };
        match answered_webhook.get(sid.as_str()) {
            Some(&at) => seen_ms.push(at - start),
            None => failures.push(format!("{sid}: its voice webhook was never answered with TwiML")),
        }
        match first_ring.get(sid) {
            Some(&at) => {
                let ring_excess = rang_by.get(sid.as_str()).map_or(Duration::ZERO, |(invocation, rest)| {
                    emulator_excess(invocation, &taps, Some(*rest), latency)
                });
                let measured = Duration::from_millis(at.saturating_sub(start));
                ringing.push(measured, arrival_excess + ring_excess);
                let how = rang_by.get(sid.as_str()).map_or(
                    "(no measured invocation rang them)".to_owned(),
                    |(invocation, rest)| {
                        format!(
                            "rung from {} ({}), {:.0} ms into that invocation, which waited {:.0} ms for an instance",
                            invocation.route,
                            invocation.event.as_deref().unwrap_or_default(),
                            rest.saturating_duration_since(invocation.handed).as_secs_f64() * 1000.0,
                            invocation.handed.saturating_duration_since(invocation.received).as_secs_f64() * 1000.0,
                        )
                    },
                );
                slowest.push((measured.saturating_sub(arrival_excess + ring_excess), sid.clone(), how));
            }
            None => failures.push(format!("{sid}: no agent was rung")),
        }
        if joined_agents.get(sid).copied().unwrap_or(0) == 0 {
            failures.push(format!("{sid}: no agent joined"));
        }
    }
    if troubles > 0 {
        failures.push(format!("{troubles} TwiML errors or silences on hold"));
    }
    seen_ms.sort_unstable();
    first_twiml.sort();
    ringing.sort();
    slowest.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    slowest.truncate(3);

    let cold_starts = invocations.iter().filter(|invocation| invocation.cold).count();
    let errors = invocations.iter().filter(|invocation| invocation.status >= 500).count();
    if errors > 0 {
        failures.push(format!("{errors} invocations answered 5xx"));
    }
    let (used, _) = attribute(&invocations, &taps, &[]);
    let per_call = |value: f64| value / callers.len().max(1) as f64;
    let reads: f64 = used.iter().fold(0.0, |total, u| total + u.usage.read_units());
    let writes: f64 = used.iter().fold(0.0, |total, u| total + u.usage.write_units());
    let rest: usize = used.iter().map(|u| u.usage.twilio.len()).sum();
    let mut by_function: HashMap<&str, usize> = HashMap::new();
    for invocation in &invocations {
        *by_function.entry(invocation.function.as_str()).or_default() += 1;
    }
    let mut by_function: Vec<_> = by_function.into_iter().collect();
    by_function.sort();
    let handler = |route: &str| -> Vec<Duration> {
        let mut durations: Vec<Duration> =
            invocations.iter().filter(|i| i.route == route).map(|i| i.duration()).collect();
        durations.sort_unstable();
        durations
    };
    let connect = handler("POST /conference/connect/client");

    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} calls, {} at a time, after {} warm-up calls; {} agents answering after {} ms, talking {} ms; DynamoDB +{} ms, Twilio REST +{} ms per request; {:.1} s",
        callers.len(),
        options.concurrency,
        options.warmup_calls,
        stack.cookies.len(),
        options.answer_after.as_millis(),
        options.talk.as_millis(),
        stack.dynamodb_proxy.latency().as_millis(),
        stack.twilio_proxy.latency().as_millis(),
        took.as_secs_f64()
    );
    let verdict = |ok: bool| if ok { "within budget" } else { "OVER BUDGET" };
    let line = |sample: &[Duration]| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(sample, 0.5)),
            ms(percentile(sample, 0.99)),
            ms(sample.last().copied().unwrap_or_default())
        )
    };
    let at_latency = format!("with DynamoDB answering in {} ms", latency.as_millis());
    let p99_twiml = percentile(&first_twiml.at_dynamodb_latency, 0.99);
    let _ = writeln!(
        text,
        "first TwiML (the caller's webhook in at the HTTP API -> its answer out), n = {}:",
        first_twiml.measured.len()
    );
    let _ = writeln!(
        text,
        "  {at_latency}: {}; budget p99 <= {} ms: {}",
        line(&first_twiml.at_dynamodb_latency),
        FIRST_TWIML_BUDGET.as_millis(),
        verdict(p99_twiml <= FIRST_TWIML_BUDGET)
    );
    let _ = writeln!(text, "  as measured, the emulator's own time included: {}", line(&first_twiml.measured));
    let _ = writeln!(
        text,
        "  as the simulator saw it (call start -> TwiML, whole ms): p50 {} ms, p99 {} ms; the function's own time: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&seen_ms, 0.5),
        percentile(&seen_ms, 0.99),
        ms(percentile(&connect, 0.5)),
        ms(percentile(&connect, 0.99)),
    );
    let p99_ring = percentile(&ringing.at_dynamodb_latency, 0.99);
    let _ = writeln!(text, "arrival -> the agent's phone ringing, n = {}:", ringing.measured.len());
    let _ = writeln!(
        text,
        "  {at_latency}: {}; budget p99 <= {} ms: {}",
        line(&ringing.at_dynamodb_latency),
        RINGING_BUDGET.as_millis(),
        verdict(p99_ring <= RINGING_BUDGET)
    );
    let _ = writeln!(text, "  as measured, the emulator's own time included: {}", line(&ringing.measured));
    for (took, sid, how) in &slowest {
        let sid = twilio_sim::timeline::shorten_sids(sid);
        let _ = writeln!(text, "  slowest: {sid} {:.0} ms, {how} (timeline.txt)", ms(*took));
    }
    let _ = writeln!(
        text,
        "the tutorial's order (write, Twilio REST call, write, then answer) cannot answer in under {} ms with these latencies",
        (stack.twilio_proxy.latency() + 2 * stack.dynamodb_proxy.latency()).as_millis()
    );
    let round_trips = |dynamodb: bool| -> Vec<Duration> {
        let mut took: Vec<Duration> = taps
            .iter()
            .filter(|record| matches!(record.call, Call::DynamoDb(_)) == dynamodb)
            .map(|record| record.took)
            .collect();
        took.sort_unstable();
        took
    };
    let (dynamodb, twilio) = (round_trips(true), round_trips(false));
    let mut by_operation: std::collections::BTreeMap<&str, Vec<Duration>> = std::collections::BTreeMap::new();
    for record in &taps {
        if let Call::DynamoDb(call) = &record.call {
            by_operation.entry(call.operation.as_str()).or_default().push(record.took);
        }
    }
    let operations: Vec<String> = by_operation
        .iter_mut()
        .map(|(operation, took)| {
            took.sort_unstable();
            format!(
                "{operation} {:.1}/{:.1} ms (n = {})",
                ms(percentile(took, 0.5)),
                ms(percentile(took, 0.99)),
                took.len()
            )
        })
        .collect();
    let _ = writeln!(
        text,
        "upstreams as the functions saw them: DynamoDB p50 {:.1} ms, p99 {:.1} ms (n = {}); Twilio REST p50 {:.0} ms, p99 {:.0} ms (n = {})",
        ms(percentile(&dynamodb, 0.5)),
        ms(percentile(&dynamodb, 0.99)),
        dynamodb.len(),
        ms(percentile(&twilio, 0.5)),
        ms(percentile(&twilio, 0.99)),
        twilio.len()
    );
    let _ = writeln!(text, "  DynamoDB p50/p99 by operation: {}", operations.join(", "));
    let _ = writeln!(
        text,
        "cold starts during the measured calls: {cold_starts}; instances started in all: {}",
        stack.host.instances().len()
    );
    let _ = writeln!(
        text,
        "per call: {:.1} invocations, {:.2} read units, {:.2} write units, {:.2} Twilio REST requests",
        per_call(invocations.len() as f64),
        per_call(reads),
        per_call(writes),
        per_call(rest as f64)
    );
    let listed: Vec<String> = by_function.iter().map(|(function, n)| format!("{function} {n}")).collect();
    let _ = writeln!(text, "invocations: {}", listed.join(", "));
    if !failures.is_empty() {
        let _ = writeln!(text, "FAILED: {} problems, first: {}", failures.len(), failures[0]);
    }
    LatencyReport { calls: callers.len(), first_twiml, ringing, cold_starts, failures, text }
}
