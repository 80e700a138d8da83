//! One task per call: it rings, fetches TwiML, and runs it verb by verb. Whatever happens to
//! the call from outside (the party hangs up, the REST API redirects it, its conference starts
//! or ends) arrives in its inbox as a `Signal`.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::model::{AnswerMode, CallStatus, Signal, Source};
use crate::state::Sim;
use crate::timeline::Event;
use crate::twiml::{ConferenceOptions, Context, Dial, DialTarget, Verb};
use crate::webhook::{Fetched, resolve};

/// What Twilio says before it hangs up on a call whose TwiML it could not use.
pub const APPLICATION_ERROR: &str = "We are sorry, an application error has occurred. Goodbye.";
/// Roughly how long it takes to speak a word, and how long one play of a music file lasts:
/// enough for the timeline to show what overlaps with what.
const SECONDS_PER_WORD: f64 = 0.4;
const PLAY_SECONDS: u64 = 30;

/// What an outbound call does once answered.
pub(crate) enum AfterAnswer {
    /// Run the TwiML at the call's `Url` (or its inline `Twiml`).
    Fetch(Source),
    /// A participant added through the REST API: straight into the conference.
    JoinConference { options: ConferenceOptions, label: Option<String> },
    /// The far end of a `<Dial><Number>`/`<Client>`: talk until someone hangs up.
    Bridge { parent: String },
}

/// Why a call's TwiML stopped before its end.
enum Stop {
    Hangup(String),
    Redirect(Source),
}

enum Step {
    Next,
    Goto(Source, Vec<(String, String)>),
    Hangup,
}

struct Ctx {
    sim: Sim,
    sid: String,
    party: String,
    inbox: UnboundedReceiver<Signal>,
}

enum Rang {
    Answered,
    NotAnswered(CallStatus),
    GaveUp(String),
}

pub(crate) async fn run_inbound(
    sim: Sim,
    sid: String,
    inbox: UnboundedReceiver<Signal>,
    source: Source,
    forge_signature: bool,
) {
    let party = party_of(&sim, &sid);
    let custom = sim.state().calls.get(&sid).map(|call| call.custom_params.clone()).unwrap_or_default();
    set_status(&sim, &sid, CallStatus::Ringing);
    let mut ctx = Ctx { sim, sid, party, inbox };
    let fetched = ctx
        .sim
        .fetch_twiml(&ctx.sid, &ctx.party, "voice webhook", &source, None, custom, Context::Call, forge_signature)
        .await;
    let Ok(fetched) = fetched else {
        return application_error(&ctx);
    };
    mark_answered(&ctx, false);
    let reason = run_program(&mut ctx, fetched).await;
    finish(&ctx.sim, &ctx.sid, CallStatus::Completed, &reason);
}

pub(crate) async fn run_outbound(
    sim: Sim,
    sid: String,
    inbox: UnboundedReceiver<Signal>,
    after: AfterAnswer,
    timeout: Duration,
) {
    let party = party_of(&sim, &sid);
    let mut ctx = Ctx { sim, sid, party, inbox };
    ctx.sim.call_progress(&ctx.sid, "initiated");
    match ring(&mut ctx, timeout).await {
        Rang::Answered => {}
        Rang::NotAnswered(status) => {
            ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::NotAnswered { status: status.as_str().into() });
            return finish(&ctx.sim, &ctx.sid, status, "");
        }
        Rang::GaveUp(by) => {
            ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::HungUp { by: by.clone() });
            return finish(&ctx.sim, &ctx.sid, CallStatus::Canceled, "");
        }
    }
    mark_answered(&ctx, true);
    let reason = match after {
        AfterAnswer::Fetch(source) => {
            let fetched = ctx
                .sim
                .fetch_twiml(&ctx.sid, &ctx.party, "answer webhook", &source, None, Vec::new(), Context::Call, false)
                .await;
            let Ok(fetched) = fetched else {
                return application_error(&ctx);
            };
            run_program(&mut ctx, fetched).await
        }
        AfterAnswer::JoinConference { options, label } => match in_conference(&mut ctx, &options, label).await {
            Ok(()) => "Twilio: the participant's conference is over".to_owned(),
            Err(Stop::Hangup(by)) => by,
            Err(Stop::Redirect(source)) => {
                match ctx
                    .sim
                    .fetch_twiml(&ctx.sid, &ctx.party, "redirect", &source, None, Vec::new(), Context::Call, false)
                    .await
                {
                    Ok(fetched) => run_program(&mut ctx, fetched).await,
                    Err(_) => return application_error(&ctx),
                }
            }
        },
        AfterAnswer::Bridge { parent } => {
            ctx.sim.send(&parent, Signal::LegAnswered { sid: ctx.sid.clone(), party: ctx.party.clone() });
            let parent_party = party_of(&ctx.sim, &parent);
            ctx.sim.record(
                Some(&ctx.sid),
                Some(&ctx.party),
                Event::Bridged { with_call: parent.clone(), with_party: parent_party },
            );
            match wait(&mut ctx, None).await {
                Ok(()) => String::new(),
                Err(Stop::Hangup(by)) => by,
                Err(Stop::Redirect(_)) => "redirected".to_owned(),
            }
        }
    };
    finish(&ctx.sim, &ctx.sid, CallStatus::Completed, &reason);
}

/// A call leg placed from inside another call's TwiML: boxed with its `Send`-ness spelled out,
/// because the compiler cannot infer it through the recursion (a call that dials a call).
fn boxed_outbound(
    sim: Sim,
    sid: String,
    inbox: UnboundedReceiver<Signal>,
    after: AfterAnswer,
    timeout: Duration,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(run_outbound(sim, sid, inbox, after, timeout))
}

async fn ring(ctx: &mut Ctx, timeout: Duration) -> Rang {
    let to = ctx.sim.state().calls.get(&ctx.sid).map(|call| call.to.clone()).unwrap_or_default();
    let behaviour = ctx.sim.behaviour(&to);
    set_status(&ctx.sim, &ctx.sid, CallStatus::Ringing);
    ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::Ringing { to });
    ctx.sim.call_progress(&ctx.sid, "ringing");
    if let Some(ms) = behaviour.hangup_after_ms
        && let Some(call) = ctx.sim.state().calls.get_mut(&ctx.sid)
    {
        call.hangup_after = Some(Duration::from_millis(ms));
    }

    let start = tokio::time::Instant::now();
    let timeout_at = start + timeout;
    let after = behaviour.after_ms.map_or(ctx.sim.config().default_answer_after, Duration::from_millis);
    let decision_at = match behaviour.answer {
        AnswerMode::Auto | AnswerMode::Reject | AnswerMode::Busy => Some(start + after),
        AnswerMode::Fail => Some(start),
        AnswerMode::Manual | AnswerMode::Never => None,
    };
    loop {
        tokio::select! {
            biased;
            signal = ctx.inbox.recv() => match signal {
                None => return Rang::GaveUp("the simulator".into()),
                Some(Signal::Hangup { by }) => return Rang::GaveUp(by),
                Some(Signal::Answer) => return Rang::Answered,
                Some(Signal::Reject) => return Rang::NotAnswered(CallStatus::Busy),
                Some(_) => {}
            },
            () = tokio::time::sleep_until(timeout_at) => return Rang::NotAnswered(CallStatus::NoAnswer),
            () = sleep_until_or_never(decision_at) => return match behaviour.answer {
                AnswerMode::Fail => Rang::NotAnswered(CallStatus::Failed),
                AnswerMode::Reject | AnswerMode::Busy => Rang::NotAnswered(CallStatus::Busy),
                _ => Rang::Answered,
            },
        }
    }
}

/// Runs TwiML until the call ends; returns who or what ended it.
async fn run_program(ctx: &mut Ctx, fetched: Fetched) -> String {
    let mut document = fetched.document;
    let mut base = fetched.url;
    let mut next = 0;
    loop {
        let Some(verb) = document.verbs.get(next).cloned() else {
            return "Twilio: the TwiML ended".into();
        };
        next += 1;
        // A hang-up that arrived while the TwiML was being fetched wins over the next verb.
        let step = match ctx.inbox.try_recv() {
            Ok(Signal::Hangup { by }) => Err(Stop::Hangup(by)),
            Ok(Signal::Redirect(source)) => Err(Stop::Redirect(source)),
            _ => run_verb(ctx, &verb, base.as_deref()).await,
        };
        let (source, extra) = match step {
            Ok(Step::Next) => continue,
            Ok(Step::Hangup) => return "TwiML <Hangup>".into(),
            Ok(Step::Goto(source, extra)) => (source, extra),
            Err(Stop::Redirect(source)) => (source, Vec::new()),
            Err(Stop::Hangup(by)) => return by,
        };
        let purpose = if extra.is_empty() { "redirect" } else { "Dial action" };
        match ctx
            .sim
            .fetch_twiml(&ctx.sid, &ctx.party, purpose, &source, base.as_deref(), extra, Context::Call, false)
            .await
        {
            Ok(fetched) => {
                document = fetched.document;
                base = fetched.url.or(base);
                next = 0;
            }
            Err(_) => {
                say_application_error(ctx);
                return "Twilio: application error".into();
            }
        }
    }
}

async fn run_verb(ctx: &mut Ctx, verb: &Verb, base: Option<&str>) -> Result<Step, Stop> {
    match verb {
        Verb::Say { text, loop_count } => {
            ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::Say { text: text.clone(), hold: false });
            wait(ctx, looped(speech(&ctx.sim, text), *loop_count)).await.map(|()| Step::Next)
        }
        Verb::Play { url, loop_count } => {
            ctx.sim.record(
                Some(&ctx.sid),
                Some(&ctx.party),
                Event::Play { url: url.clone(), loop_count: *loop_count, hold: false },
            );
            let once = ctx.sim.scaled(Duration::from_secs(PLAY_SECONDS));
            wait(ctx, looped(once, *loop_count)).await.map(|()| Step::Next)
        }
        Verb::Pause { seconds } => {
            ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::Pause { seconds: *seconds, hold: false });
            let length = ctx.sim.scaled(Duration::from_secs(u64::from(*seconds)));
            wait(ctx, Some(length)).await.map(|()| Step::Next)
        }
        Verb::Redirect { url, method } => {
            Ok(Step::Goto(Source::Url { url: resolve(base, url), method: *method }, Vec::new()))
        }
        Verb::Hangup => Ok(Step::Hangup),
        Verb::Dial(dial) => run_dial(ctx, dial, base).await,
    }
}

async fn run_dial(ctx: &mut Ctx, dial: &Dial, base: Option<&str>) -> Result<Step, Stop> {
    let started = Instant::now();
    let (status, leg) = match &dial.target {
        DialTarget::Number(number) => dial_leg(ctx, dial, number).await?,
        DialTarget::Client(identity) => dial_leg(ctx, dial, &format!("client:{identity}")).await?,
        DialTarget::Conference(options) => {
            let options = ConferenceOptions {
                wait_url: options.wait_url.as_deref().map(|url| resolve(base, url)),
                status_callback: options.status_callback.as_deref().map(|url| resolve(base, url)),
                ..options.clone()
            };
            in_conference(ctx, &options, None).await?;
            (CallStatus::Completed, None)
        }
    };
    let Some(action) = &dial.action else {
        return Ok(Step::Next);
    };
    let mut extra = vec![
        ("DialCallStatus".to_owned(), status.as_str().to_owned()),
        ("DialCallDuration".to_owned(), started.elapsed().as_secs().to_string()),
    ];
    if let Some(leg) = leg {
        extra.push(("DialCallSid".to_owned(), leg));
    }
    Ok(Step::Goto(Source::Url { url: resolve(base, action), method: dial.method }, extra))
}

/// `<Dial><Number>` or `<Client>`: a second call leg, bridged to this one once answered.
async fn dial_leg(ctx: &mut Ctx, dial: &Dial, address: &str) -> Result<(CallStatus, Option<String>), Stop> {
    let from = dial
        .caller_id
        .clone()
        .unwrap_or_else(|| ctx.sim.state().calls.get(&ctx.sid).map(|call| call.from.clone()).unwrap_or_default());
    ctx.sim.record(
        Some(&ctx.sid),
        Some(&ctx.party),
        Event::Dial { to: address.to_owned(), caller_id: dial.caller_id.clone() },
    );
    let party = ctx.sim.party_name(address);
    let (leg, inbox) =
        ctx.sim.new_call("outbound-dial", &from, address, party, Some(ctx.sid.clone()), None, Vec::new(), None, None);
    ctx.sim.announce(&leg);
    if let Some(call) = ctx.sim.state().calls.get_mut(&ctx.sid) {
        call.child_leg = Some(leg.clone());
    }
    let timeout = ctx.sim.scaled(Duration::from_secs(u64::from(dial.timeout_seconds)));
    let after = AfterAnswer::Bridge { parent: ctx.sid.clone() };
    tokio::spawn(boxed_outbound(ctx.sim.clone(), leg.clone(), inbox, after, timeout));

    let hang_up_leg = |ctx: &Ctx| {
        ctx.sim.send(&leg, Signal::Hangup { by: format!("the other side ({}) hung up", ctx.party) });
    };
    loop {
        match ctx.inbox.recv().await {
            None => {
                hang_up_leg(ctx);
                return Err(Stop::Hangup("the simulator".into()));
            }
            Some(Signal::Hangup { by }) => {
                hang_up_leg(ctx);
                return Err(Stop::Hangup(by));
            }
            Some(Signal::Redirect(source)) => {
                hang_up_leg(ctx);
                return Err(Stop::Redirect(source));
            }
            Some(Signal::LegAnswered { sid, party }) => {
                ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::Bridged { with_call: sid, with_party: party });
            }
            Some(Signal::LegEnded { status }) => {
                ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::DialEnded { status: status.as_str().into() });
                if let Some(call) = ctx.sim.state().calls.get_mut(&ctx.sid) {
                    call.child_leg = None;
                }
                return Ok((status, Some(leg.clone())));
            }
            Some(_) => {}
        }
    }
}

/// In a conference until it ends for this participant (`Ok`), or the call hangs up or is
/// redirected.
async fn in_conference(ctx: &mut Ctx, options: &ConferenceOptions, label: Option<String>) -> Result<(), Stop> {
    let joined = ctx.sim.join_conference(&ctx.sid, &ctx.party, options, label);
    let wait_source =
        options.wait_url.as_ref().map(|url| Source::Url { url: url.clone(), method: options.wait_method });
    let mut music: Option<JoinHandle<()>> = joined.waiting.then(|| spawn_hold(ctx, wait_source.clone(), "waitUrl"));
    let stop_music = |music: &mut Option<JoinHandle<()>>| {
        if let Some(task) = music.take() {
            task.abort();
        }
    };
    loop {
        match ctx.inbox.recv().await {
            None => {
                stop_music(&mut music);
                ctx.sim.leave_conference(&ctx.sid, "the call went away");
                return Err(Stop::Hangup("the simulator".into()));
            }
            Some(Signal::Hangup { by }) => {
                stop_music(&mut music);
                ctx.sim.leave_conference(&ctx.sid, &format!("hung up: {by}"));
                return Err(Stop::Hangup(by));
            }
            Some(Signal::Redirect(source)) => {
                stop_music(&mut music);
                ctx.sim.leave_conference(&ctx.sid, "the REST API redirected the call");
                return Err(Stop::Redirect(source));
            }
            Some(Signal::ConferenceStarted) => stop_music(&mut music),
            Some(Signal::RemovedFromConference) => {
                stop_music(&mut music);
                return Ok(());
            }
            Some(Signal::Hold { url, method }) => {
                stop_music(&mut music);
                music = Some(spawn_hold(ctx, url.map(|url| Source::Url { url, method }), "holdUrl"));
            }
            Some(Signal::Unhold) => stop_music(&mut music),
            Some(_) => {}
        }
    }
}

/// What a participant hears while waiting (or on hold): the wait TwiML, run in its own task so
/// the conference can cut it off the moment it starts.
fn spawn_hold(ctx: &Ctx, source: Option<Source>, purpose: &'static str) -> JoinHandle<()> {
    let (sim, sid, party) = (ctx.sim.clone(), ctx.sid.clone(), ctx.party.clone());
    tokio::spawn(async move {
        let Some(mut source) = source else {
            sim.record(
                Some(&sid),
                Some(&party),
                Event::Play { url: "Twilio's default hold music".into(), loop_count: 0, hold: true },
            );
            return std::future::pending().await;
        };
        loop {
            let Ok(fetched) =
                sim.fetch_twiml(&sid, &party, purpose, &source, None, Vec::new(), Context::Wait, false).await
            else {
                sim.record(Some(&sid), Some(&party), Event::HoldSilence);
                return;
            };
            let mut redirect = None;
            for verb in &fetched.document.verbs {
                match verb {
                    Verb::Say { text, loop_count } => {
                        sim.record(Some(&sid), Some(&party), Event::Say { text: text.clone(), hold: true });
                        sleep_or_forever(looped(speech(&sim, text), *loop_count)).await;
                    }
                    Verb::Play { url, loop_count } => {
                        sim.record(
                            Some(&sid),
                            Some(&party),
                            Event::Play { url: url.clone(), loop_count: *loop_count, hold: true },
                        );
                        sleep_or_forever(looped(sim.scaled(Duration::from_secs(PLAY_SECONDS)), *loop_count)).await;
                    }
                    Verb::Pause { seconds } => {
                        sim.record(Some(&sid), Some(&party), Event::Pause { seconds: *seconds, hold: true });
                        tokio::time::sleep(sim.scaled(Duration::from_secs(u64::from(*seconds)))).await;
                    }
                    Verb::Redirect { url, method } => {
                        redirect = Some(Source::Url { url: resolve(fetched.url.as_deref(), url), method: *method });
                        break;
                    }
                    // Wait TwiML is checked to hold only the four verbs above.
                    Verb::Hangup | Verb::Dial(_) => break,
                }
            }
            match redirect {
                Some(next) => source = next,
                None => {
                    sim.record(Some(&sid), Some(&party), Event::HoldSilence);
                    return;
                }
            }
        }
    })
}

/// Lets time pass in a verb (`None`: forever) while the call's inbox is watched.
async fn wait(ctx: &mut Ctx, length: Option<Duration>) -> Result<(), Stop> {
    let until = length.map(|length| tokio::time::Instant::now() + length);
    loop {
        tokio::select! {
            signal = ctx.inbox.recv() => match signal {
                None => return Err(Stop::Hangup("the simulator".into())),
                Some(Signal::Hangup { by }) => return Err(Stop::Hangup(by)),
                Some(Signal::Redirect(source)) => return Err(Stop::Redirect(source)),
                Some(_) => {}
            },
            () = sleep_until_or_never(until) => return Ok(()),
        }
    }
}

async fn sleep_until_or_never(until: Option<tokio::time::Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

async fn sleep_or_forever(length: Option<Duration>) {
    match length {
        Some(length) => tokio::time::sleep(length).await,
        None => std::future::pending().await,
    }
}

fn speech(sim: &Sim, text: &str) -> Duration {
    let words = text.split_whitespace().count().max(1);
    sim.scaled(Duration::from_secs_f64(words as f64 * SECONDS_PER_WORD))
}

/// `loop="0"` means forever.
fn looped(once: Duration, loop_count: u32) -> Option<Duration> {
    (loop_count > 0).then(|| once * loop_count)
}

fn party_of(sim: &Sim, sid: &str) -> String {
    sim.state().calls.get(sid).map(|call| call.party.clone()).unwrap_or_default()
}

fn set_status(sim: &Sim, sid: &str, status: CallStatus) {
    if let Some(call) = sim.state().calls.get_mut(sid) {
        call.status = status;
    }
}

fn mark_answered(ctx: &Ctx, announce: bool) {
    let hangup_after = {
        let mut state = ctx.sim.state();
        let Some(call) = state.calls.get_mut(&ctx.sid) else {
            return;
        };
        call.status = CallStatus::InProgress;
        call.answered = Some(Instant::now());
        call.hangup_after
    };
    if announce {
        ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::Answered);
        ctx.sim.call_progress(&ctx.sid, "answered");
    }
    if let Some(after) = hangup_after {
        let (sim, sid, party) = (ctx.sim.clone(), ctx.sid.clone(), ctx.party.clone());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            sim.send(&sid, Signal::Hangup { by: party });
        });
    }
}

fn say_application_error(ctx: &Ctx) {
    ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), Event::Say { text: APPLICATION_ERROR.into(), hold: false });
}

/// Twilio's answer to TwiML it cannot use: an apology, then it hangs up.
fn application_error(ctx: &Ctx) {
    say_application_error(ctx);
    finish(&ctx.sim, &ctx.sid, CallStatus::Completed, "Twilio: application error");
}

/// Ends the call once, whoever ends it; the other leg of a `<Dial>` is told.
fn finish(sim: &Sim, sid: &str, status: CallStatus, reason: &str) {
    let (party, parent, child, duration) = {
        let mut state = sim.state();
        let Some(call) = state.calls.get_mut(sid) else {
            return;
        };
        if call.status.is_final() {
            return;
        }
        // An inbound call that never got TwiML was never answered, yet it is "completed".
        call.status = status;
        let now = Instant::now();
        call.ended = Some(now);
        let duration = now.duration_since(call.answered.unwrap_or(now));
        (call.party.clone(), call.parent_sid.clone(), call.child_leg.take(), duration)
    };
    // A party that is still in a conference when its call ends leaves it.
    sim.leave_conference(sid, "the call ended");
    if !reason.is_empty() {
        sim.record(Some(sid), Some(&party), Event::HungUp { by: reason.to_owned() });
    }
    sim.record(
        Some(sid),
        Some(&party),
        Event::CallEnded {
            status: status.as_str().into(),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        },
    );
    sim.call_progress(sid, "completed");
    sim.flush_callbacks(sid);
    if let Some(parent) = parent {
        sim.send(&parent, Signal::LegEnded { status });
    }
    if let Some(child) = child {
        sim.send(&child, Signal::Hangup { by: format!("the other side ({party}) hung up") });
    }
}
