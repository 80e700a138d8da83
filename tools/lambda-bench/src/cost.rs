//! What a call uses (issue 17, item 4), measured on the whole stack for four calls and an agent's
//! hour at the dashboard: every invocation with the time Lambda bills it for, its DynamoDB read
//! and write units, its Twilio REST requests and its log lines. `scripts/cost.py` prices the
//! result. Each scenario runs alone on the stack, between two quiet moments; only what its call
//! caused counts.
//!
//! Twilio's durations run at `time_scale` (a 30 s turn of hold music takes 0.6 s at 0.02), so
//! five minutes in line take six seconds. Warmline's own clock is not scaled: it tells a waiting
//! caller their place at most once a minute, so the scaled wait has fewer such turns than five
//! real minutes would. The count of each kind of hold turn is put back to what Twilio's pace
//! gives (`hold_turns_at_twilios_pace`), each costing what the measured turns of its kind cost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use shared::call_flow::VOICEMAIL_OFFER;
use twilio_sim::{AnswerMode, Behaviour, Event, InboundCall};

use crate::host::Invocation;
use crate::latency::settle;
use crate::stack::{Stack, agent_ids};
use crate::usage::{Used, attribute};

/// What the scenarios stand for, for the per-minute and per-hour prices of the alternatives.
#[derive(Debug, Clone, Serialize)]
pub struct Minutes {
    /// The customer on the line, waiting and talking.
    pub customer: f64,
    /// Of which in line.
    pub waiting: f64,
    /// Agents on the call, added up over the agents.
    pub agents: f64,
}

/// The invocations of one kind in a scenario, with their usage per invocation.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationCost {
    pub function: String,
    pub route: String,
    pub kind: String,
    pub memory_mb: u32,
    /// How many a call makes (a hold turn's count is set to Twilio's pace).
    pub count: f64,
    /// How many were measured.
    pub measured: usize,
    pub duration_ms: f64,
    /// Lambda bills each invocation's duration rounded up to the millisecond.
    pub billed_ms: f64,
    pub dynamodb_requests: f64,
    pub read_units: f64,
    pub write_units: f64,
    pub twilio_requests: f64,
    pub log_events: f64,
    pub log_bytes: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioCost {
    pub name: String,
    pub title: String,
    pub minutes: Minutes,
    pub invocations: Vec<InvocationCost>,
    /// Per call: Twilio REST requests by method and resource.
    pub twilio_rest: BTreeMap<String, f64>,
    pub notes: Vec<String>,
}

impl ScenarioCost {
    pub fn total(&self, pick: impl Fn(&InvocationCost) -> f64) -> f64 {
        self.invocations.iter().fold(0.0, |total, invocation| total + invocation.count * pick(invocation))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub function: String,
    pub instances: usize,
    pub init_ms_median: f64,
    pub log_bytes: f64,
    pub dynamodb_requests: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostRun {
    pub binaries: String,
    pub time_scale: f64,
    pub dynamodb_latency_ms: u64,
    pub twilio_latency_ms: u64,
    pub scenarios: Vec<ScenarioCost>,
    /// One agent signed in for an hour: the dashboard's presence renewals and token.
    pub agent_hour: ScenarioCost,
    pub cold_starts: Vec<ColdStart>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{scenario}: {what}")]
    Failed { scenario: &'static str, what: String },
}

fn failed(scenario: &'static str, what: impl Into<String>) -> ScenarioError {
    ScenarioError::Failed { scenario, what: what.into() }
}

/// What kind of request an invocation served, for the table's rows.
pub fn kind_of(invocation: &Invocation) -> String {
    match invocation.function.as_str() {
        "conference-wait" if invocation.twiml.as_deref().is_some_and(|twiml| twiml.contains("You are number")) => {
            "hold turn, told their place".to_owned()
        }
        "conference-wait" if invocation.uri.contains("held=1") => "hold turn".to_owned(),
        "conference-wait" => "hold music starts".to_owned(),
        "conference-events" => invocation.event.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

fn memory_mb(function: &str) -> u32 {
    if function == "session" { 1024 } else { 128 }
}

/// Groups the measured invocations by route and kind, with their usage per invocation.
pub fn summarise(used: &[Used]) -> Vec<InvocationCost> {
    let mut groups: BTreeMap<(String, String), Vec<&Used>> = BTreeMap::new();
    for entry in used {
        let mut kind = kind_of(&entry.invocation);
        // The turn whose router found the agent free: the match, which any trigger may make.
        if kind.starts_with("hold turn") && !entry.usage.twilio.is_empty() {
            kind = "hold turn, rang an agent".to_owned();
        }
        groups.entry((entry.invocation.route.clone(), kind)).or_default().push(entry);
    }
    groups
        .into_iter()
        .map(|((route, kind), entries)| {
            let n = entries.len() as f64;
            let mean = |pick: &dyn Fn(&Used) -> f64| entries.iter().fold(0.0, |total, entry| total + pick(entry)) / n;
            let function = entries[0].invocation.function.clone();
            InvocationCost {
                memory_mb: memory_mb(&function),
                function,
                route,
                kind,
                count: n,
                measured: entries.len(),
                duration_ms: mean(&|entry| entry.invocation.duration().as_secs_f64() * 1000.0),
                billed_ms: mean(&|entry| (entry.invocation.duration().as_secs_f64() * 1000.0).ceil().max(1.0)),
                dynamodb_requests: mean(&|entry| entry.usage.dynamodb.len() as f64),
                read_units: mean(&|entry| entry.usage.read_units()),
                write_units: mean(&|entry| entry.usage.write_units()),
                twilio_requests: mean(&|entry| entry.usage.twilio.len() as f64),
                log_events: mean(&|entry| entry.usage.log_events as f64),
                log_bytes: mean(&|entry| entry.usage.log_bytes as f64),
            }
        })
        .collect()
}

fn twilio_rest(used: &[Used]) -> BTreeMap<String, f64> {
    let mut rest = BTreeMap::new();
    for entry in used {
        for (method, resource, _) in &entry.usage.twilio {
            *rest.entry(format!("{method} {resource}")).or_default() += 1.0;
        }
    }
    rest
}

/// Which of a caller's hold turns, at Twilio's pace, tell them their place: the first, then
/// the first at least a minute after the last told. `turns` are the scaled times (ms from the
/// first) of the returning turns; their real times are these over the scale.
pub fn announcing_turns_at_twilios_pace(turns_ms: &[u64], time_scale: f64, every_seconds: f64) -> usize {
    let mut told = 0;
    let mut last: Option<f64> = None;
    for at in turns_ms {
        let real = *at as f64 / time_scale / 1000.0;
        if last.is_none_or(|last| real - last >= every_seconds) {
            told += 1;
            last = Some(real);
        }
    }
    told
}

struct Window {
    from: Instant,
}

impl Window {
    fn open() -> Self {
        Self { from: Instant::now() }
    }

    /// Everything the stack did since the window opened, invocation by invocation, leaving out
    /// what `skip` says belongs to another call.
    fn used(&self, stack: &Stack, skip: impl Fn(&Invocation) -> bool) -> Vec<Used> {
        let invocations: Vec<Invocation> = stack
            .host
            .invocations()
            .into_iter()
            .filter(|invocation| invocation.received >= self.from && !skip(invocation))
            .collect();
        let (used, _) = attribute(&invocations, &stack.taps.records(), &stack.host.log_lines());
        used
    }
}

fn behaviour(after_ms: u64) -> Behaviour {
    Behaviour { answer: AnswerMode::Auto, after_ms: Some(after_ms), ..Behaviour::default() }
}

/// Ends what an earlier scenario left going; everyone away but `available`, in this order.
async fn prepare(stack: &Stack, available: &[&str]) -> Result<(), ScenarioError> {
    let sim = &stack.sim.sim;
    sim.hang_up_everything();
    sim.clear_behaviours();
    settle(stack).await;
    for agent in agent_ids(stack.cookies.len()) {
        sim.set_behaviour(&format!("client:{agent}"), behaviour(100));
        stack.say(&agent, "away").await.map_err(|err| failed("prepare", err.to_string()))?;
    }
    for agent in available {
        stack.say(agent, "available").await.map_err(|err| failed("prepare", err.to_string()))?;
    }
    Ok(())
}

async fn expect(
    stack: &Stack,
    scenario: &'static str,
    since: u64,
    what: &str,
    predicate: impl Fn(&twilio_sim::Entry) -> bool,
) -> Result<twilio_sim::Entry, ScenarioError> {
    stack
        .sim
        .sim
        .timeline()
        .wait_for(since, Duration::from_secs(30), predicate)
        .await
        .map_err(|entries| failed(scenario, format!("never happened: {what}\n{}", tail(&entries))))
}

fn tail(entries: &[twilio_sim::Entry]) -> String {
    let text = twilio_sim::timeline::render(entries);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

async fn ended(stack: &Stack, scenario: &'static str, since: u64, sid: &str) -> Result<(), ScenarioError> {
    expect(stack, scenario, since, "the customer's call ends", |entry| {
        entry.call_sid.as_deref() == Some(sid) && matches!(entry.event, Event::CallEnded { .. })
    })
    .await
    .map(|_| ())
}

fn of(entry: &twilio_sim::Entry, sid: &str) -> bool {
    entry.call_sid.as_deref() == Some(sid)
}

/// The call Warmline placed to `agent` for `customer`, once it is in the conference.
async fn agent_joined(
    stack: &Stack,
    scenario: &'static str,
    since: u64,
    agent: &str,
    customer: &str,
) -> Result<String, ScenarioError> {
    let sim = stack.sim.sim.clone();
    let (agent, customer) = (format!("client:{agent}"), customer.to_owned());
    let joined = expect(stack, scenario, since, &format!("{agent} joins"), move |entry| {
        matches!(entry.event, Event::ConferenceJoined { waiting: false, .. })
            && entry.call_sid.as_deref().and_then(|sid| sim.call(sid)).is_some_and(|call| {
                call.to == agent
                    && call.url.as_deref().is_some_and(|url| url.contains(&format!("/conference/{customer}/")))
            })
    })
    .await?;
    Ok(joined.call_sid.unwrap_or_default())
}

fn customer(name: &str, from: &str, talk_ms: Option<u64>) -> InboundCall {
    InboundCall {
        from: Some(from.into()),
        name: Some(name.into()),
        hangup_after_talking_ms: talk_ms,
        ..InboundCall::default()
    }
}

/// A caller whom the agent idle longest answers at once.
async fn answered_at_once(stack: &Stack) -> Result<ScenarioCost, ScenarioError> {
    const NAME: &str = "answered";
    prepare(stack, &["agent1"]).await?;
    let sim = &stack.sim.sim;
    let since = sim.timeline().len();
    let window = Window::open();
    let sid = sim.dial_in(customer("customer", "+15557000001", Some(300)));
    agent_joined(stack, NAME, since, "agent1", &sid).await?;
    ended(stack, NAME, since, &sid).await?;
    settle(stack).await;
    let used = window.used(stack, |_| false);
    Ok(ScenarioCost {
        name: NAME.into(),
        title: "answered at once (5 min talk)".into(),
        minutes: Minutes { customer: 5.0, waiting: 0.0, agents: 5.0 },
        twilio_rest: twilio_rest(&used),
        invocations: summarise(&used),
        notes: Vec::new(),
    })
}

/// A caller who waits five minutes in line behind an earlier caller, until that call ends and
/// the agent is free: the call `answered` is, and the hold-music turns of the five minutes.
///
/// Only the turns are taken from this run. The rest of a waiting call is an answered call's: the
/// router rings the agent for it from whichever event frees the agent first (here, the earlier
/// call's end), and the same ring made in the call's own join costs the same there.
async fn waits_five_minutes(
    stack: &Stack,
    time_scale: f64,
    answered: &ScenarioCost,
) -> Result<ScenarioCost, ScenarioError> {
    const NAME: &str = "waits";
    const WAIT: Duration = Duration::from_secs(300);
    prepare(stack, &["agent1"]).await?;
    let sim = &stack.sim.sim;
    let since = sim.timeline().len();
    let wait_ms = (WAIT.as_secs_f64() * time_scale * 1000.0).round() as u64;
    let earlier = sim.dial_in(customer("earlier caller", "+15557000002", Some(wait_ms)));
    agent_joined(stack, NAME, since, "agent1", &earlier).await?;
    let window = Window::open();
    let from = sim.timeline().len();
    let sid = sim.dial_in(customer("customer", "+15557000003", Some(300)));
    agent_joined(stack, NAME, from, "agent1", &sid).await?;
    ended(stack, NAME, from, &sid).await?;
    settle(stack).await;
    // The earlier call's own end (and the agent's leaving it) is that call's cost.
    let used = window.used(stack, |invocation| {
        invocation.call.as_deref() == Some(earlier.as_str())
            || invocation.conference.as_deref() == Some(earlier.as_str())
    });

    let turns: Vec<&Used> = used
        .iter()
        .filter(|entry| entry.invocation.function == "conference-wait" && entry.invocation.uri.contains("held=1"))
        .collect();
    let first = turns.first().map(|entry| entry.invocation.received).unwrap_or(window.from);
    let turns_ms: Vec<u64> = turns
        .iter()
        .map(|entry| u64::try_from(entry.invocation.received.duration_since(first).as_millis()).unwrap_or(0))
        .collect();
    if turns.len() < 5 {
        return Err(failed(NAME, format!("only {} hold turns in five scaled minutes", turns.len())));
    }
    let told =
        announcing_turns_at_twilios_pace(&turns_ms, time_scale, shared::call_flow::ANNOUNCE_EVERY_SECONDS as f64);
    let mut invocations = summarise(&used);
    let measured_told =
        invocations.iter().find(|row| row.kind == "hold turn, told their place").map_or(0, |row| row.measured);
    let measured_plain = invocations.iter().find(|row| row.kind == "hold turn").map_or(0, |row| row.measured);
    if measured_told == 0 || measured_plain == 0 {
        return Err(failed(NAME, format!("hold turns: {measured_told} told their place, {measured_plain} not")));
    }
    for row in &mut invocations {
        match row.kind.as_str() {
            "hold turn, told their place" => row.count = told as f64,
            "hold turn" => row.count = (turns.len() - told) as f64,
            _ => {}
        }
    }
    invocations.extend(answered.invocations.iter().cloned());
    Ok(ScenarioCost {
        name: NAME.into(),
        title: "waits 5 min in line, then 5 min talk".into(),
        minutes: Minutes { customer: 10.0, waiting: 5.0, agents: 5.0 },
        twilio_rest: answered.twilio_rest.clone(),
        invocations,
        notes: vec![format!(
            "the answered call and its {} hold turns; at Twilio's pace {told} of them tell the caller their place (measured: {measured_told})",
            turns.len()
        )],
    })
}

/// agent1 answers, dials agent2 in from the dashboard, and leaves; the customer talks on with
/// agent2 and hangs up.
async fn warm_transfer(stack: &Stack) -> Result<ScenarioCost, ScenarioError> {
    const NAME: &str = "warm transfer";
    prepare(stack, &["agent1", "agent2"]).await?;
    let sim = &stack.sim.sim;
    let since = sim.timeline().len();
    let window = Window::open();
    let sid = sim.dial_in(customer("customer", "+15557000004", None));
    let agent1 = agent_joined(stack, NAME, since, "agent1", &sid).await?;
    let cookie = stack.cookies.get("agent1").cloned().unwrap_or_default();
    let dialed = twilio_sim::demo::dial_colleague_in(&stack.base, &cookie, "agent1")
        .await
        .map_err(|err| failed(NAME, err.to_string()))?;
    if dialed.status().as_u16() != 201 {
        return Err(failed(NAME, format!("dialing a colleague in answered {}", dialed.status())));
    }
    agent_joined(stack, NAME, since, "agent2", &sid).await?;
    sim.hang_up(&agent1);
    expect(stack, NAME, since, "agent1 leaves", |entry| {
        of(entry, &agent1) && matches!(entry.event, Event::ConferenceLeft { .. })
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.hang_up(&sid);
    ended(stack, NAME, since, &sid).await?;
    settle(stack).await;
    let used = window.used(stack, |_| false);
    Ok(ScenarioCost {
        name: NAME.into(),
        title: "warm transfer (5 min with agent1, 1 min three-way, 4 min with agent2)".into(),
        minutes: Minutes { customer: 10.0, waiting: 0.0, agents: 11.0 },
        twilio_rest: twilio_rest(&used),
        invocations: summarise(&used),
        notes: Vec::new(),
    })
}

/// Nobody is available: the caller presses 1, leaves a 30 s message, and it becomes a ticket.
async fn voicemail(stack: &Stack) -> Result<ScenarioCost, ScenarioError> {
    const NAME: &str = "voicemail";
    prepare(stack, &[]).await?;
    let sim = &stack.sim.sim;
    let since = sim.timeline().len();
    let window = Window::open();
    let number = "+15557000005";
    let sid = sim.dial_in(customer("customer", number, None));
    expect(stack, NAME, since, "the offer to leave a message", |entry| {
        of(entry, &sid) && matches!(&entry.event, Event::Say { text, hold: false } if text == VOICEMAIL_OFFER)
    })
    .await?;
    sim.press(&sid, "1");
    expect(stack, NAME, since, "the recording starts", |entry| {
        of(entry, &sid) && matches!(entry.event, Event::RecordingStarted { .. })
    })
    .await?;
    sim.speak(&sid, 30);
    ended(stack, NAME, since, &sid).await?;
    settle(stack).await;
    let used = window.used(stack, |_| false);
    let ticket = used.iter().any(|entry| {
        entry.invocation.route == "POST /voicemail/{conference_id}/recording"
            && entry.usage.dynamodb.iter().any(|call| call.table == "TicketsTable" && call.write_units > 0.0)
    });
    if !ticket {
        return Err(failed(NAME, "the recording never became a ticket"));
    }
    Ok(ScenarioCost {
        name: NAME.into(),
        title: "voicemail (nobody available; a 30 s message)".into(),
        minutes: Minutes { customer: 1.0, waiting: 0.0, agents: 0.0 },
        twilio_rest: twilio_rest(&used),
        invocations: summarise(&used),
        notes: Vec::new(),
    })
}

/// An agent's dashboard for an hour: a presence renewal every 30 s and a fresh token. Ten
/// renewals are measured and counted as the hour's 120.
async fn agent_hour(stack: &Stack) -> Result<ScenarioCost, ScenarioError> {
    const NAME: &str = "agent hour";
    const RENEWALS: usize = 10;
    prepare(stack, &["agent1"]).await?;
    let window = Window::open();
    for _ in 0..RENEWALS {
        stack.say("agent1", "available").await.map_err(|err| failed(NAME, err.to_string()))?;
    }
    let cookie = stack.cookies.get("agent1").cloned().unwrap_or_default();
    let token = reqwest::Client::new()
        .post(format!("{}/token", stack.base))
        .header("origin", &stack.base)
        .header("cookie", cookie)
        .send()
        .await
        .map_err(|err| failed(NAME, err.to_string()))?;
    if !token.status().is_success() {
        return Err(failed(NAME, format!("POST /token answered {}", token.status())));
    }
    let used = window.used(stack, |_| false);
    let mut invocations = summarise(&used);
    for row in &mut invocations {
        if row.route == "PUT /presence" {
            row.count = 120.0;
        }
    }
    Ok(ScenarioCost {
        name: NAME.into(),
        title: "an agent's dashboard open for an hour (120 presence renewals, 1 token)".into(),
        minutes: Minutes { customer: 0.0, waiting: 0.0, agents: 60.0 },
        twilio_rest: BTreeMap::new(),
        invocations,
        notes: Vec::new(),
    })
}

fn cold_starts(stack: &Stack) -> Vec<ColdStart> {
    let (_, init) = attribute(&stack.host.invocations(), &stack.taps.records(), &stack.host.log_lines());
    let mut by_function: BTreeMap<String, Vec<(f64, u64, usize)>> = BTreeMap::new();
    for instance in stack.host.instances() {
        let Some(init_time) = instance.init() else { continue };
        let usage = init.get(&instance.id).cloned().unwrap_or_default();
        by_function.entry(instance.function.clone()).or_default().push((
            init_time.as_secs_f64() * 1000.0,
            usage.log_bytes,
            usage.dynamodb.len(),
        ));
    }
    by_function
        .into_iter()
        .map(|(function, mut inits)| {
            inits.sort_by(|a, b| a.0.total_cmp(&b.0));
            let n = inits.len() as f64;
            ColdStart {
                function,
                instances: inits.len(),
                init_ms_median: inits[inits.len() / 2].0,
                log_bytes: inits.iter().fold(0.0, |total, i| total + i.1 as f64) / n,
                dynamodb_requests: inits.iter().fold(0.0, |total, i| total + i.2 as f64) / n,
            }
        })
        .collect()
}

/// Every scenario, one after the other, on `stack`.
pub async fn run(stack: &Stack, binaries: &str, time_scale: f64) -> Result<CostRun, ScenarioError> {
    let started = Instant::now();
    let took = |what: &str| eprintln!("lambda-bench: {what} measured at {:.1} s", started.elapsed().as_secs_f64());
    let answered = answered_at_once(stack).await?;
    took("the answered call");
    let waits = waits_five_minutes(stack, time_scale, &answered).await?;
    took("the call that waits");
    let transfer = warm_transfer(stack).await?;
    took("the warm transfer");
    let voicemail = voicemail(stack).await?;
    took("the voicemail");
    let scenarios = vec![answered, waits, transfer, voicemail];
    let agent_hour = agent_hour(stack).await?;
    took("the agent's hour");
    Ok(CostRun {
        binaries: binaries.to_owned(),
        time_scale,
        dynamodb_latency_ms: u64::try_from(stack.dynamodb_proxy.latency().as_millis()).unwrap_or(0),
        twilio_latency_ms: u64::try_from(stack.twilio_proxy.latency().as_millis()).unwrap_or(0),
        scenarios,
        agent_hour,
        cold_starts: cold_starts(stack),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_twilios_pace_every_other_thirty_second_turn_tells_the_caller_their_place() {
        // Ten turns, 30 s apart at Twilio's pace, measured at a fiftieth.
        let turns: Vec<u64> = (0..10).map(|n| n * 600).collect();
        assert_eq!(announcing_turns_at_twilios_pace(&turns, 0.02, 60.0), 5);
        assert_eq!(announcing_turns_at_twilios_pace(&turns, 1.0, 60.0), 1, "unscaled: 5.4 s in all");
        assert_eq!(announcing_turns_at_twilios_pace(&[], 0.02, 60.0), 0);
    }
}
