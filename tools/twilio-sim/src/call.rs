//! One task per call: it rings, fetches TwiML, and runs it verb by verb. Whatever happens to
//! the call from outside (the party hangs up, the REST API redirects it, its conference starts
//! or ends) arrives in its inbox as a `Signal`.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::model::{AnswerMode, CallStatus, Callback, Signal, Source, new_sid};
use crate::state::{RecordingRecord, Sim};
use crate::timeline::Event;
use crate::twiml::{ConferenceOptions, Context, Dial, DialTarget, Gather, Method, Record, Verb};
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
    /// Fetch TwiML from here, with these parameters on top of the call's; the `&str` names the
    /// request in the timeline.
    Goto(Source, Vec<(String, String)>, &'static str),
    Hangup,
}

struct Ctx {
    sim: Sim,
    sid: String,
    party: String,
    inbox: UnboundedReceiver<Signal>,
    /// A request Twilio still makes once the call has ended (a `<Record>` ended by the hang-up).
    after_hangup: Option<EndedCallRequest>,
}

struct EndedCallRequest {
    url: String,
    method: Method,
    extra: Vec<(String, String)>,
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
    let mut ctx = Ctx { sim, sid, party, inbox, after_hangup: None };
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
    request_after_hangup(&mut ctx).await;
}

pub(crate) async fn run_outbound(
    sim: Sim,
    sid: String,
    inbox: UnboundedReceiver<Signal>,
    after: AfterAnswer,
    timeout: Duration,
) {
    let party = party_of(&sim, &sid);
    let mut ctx = Ctx { sim, sid, party, inbox, after_hangup: None };
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
    request_after_hangup(&mut ctx).await;
}

/// What Twilio still requests once a call is over; nothing can run on the call any more, so
/// whatever the app answers is ignored.
async fn request_after_hangup(ctx: &mut Ctx) {
    if let Some(request) = ctx.after_hangup.take() {
        ctx.sim
            .notify_ended_call(&ctx.sid, &ctx.party, "Record action", &request.url, request.method, request.extra)
            .await;
    }
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
        let (source, extra, purpose) = match step {
            Ok(Step::Next) => continue,
            Ok(Step::Hangup) => return "TwiML <Hangup>".into(),
            Ok(Step::Goto(source, extra, purpose)) => (source, extra, purpose),
            Err(Stop::Redirect(source)) => (source, Vec::new(), "redirect"),
            Err(Stop::Hangup(by)) => return by,
        };
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
        Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. } => {
            let length = start_prompt(ctx, verb);
            wait(ctx, length).await.map(|()| Step::Next)
        }
        Verb::Redirect { url, method } => {
            Ok(Step::Goto(Source::Url { url: resolve(base, url), method: *method }, Vec::new(), "redirect"))
        }
        Verb::Hangup => Ok(Step::Hangup),
        Verb::Dial(dial) => run_dial(ctx, dial, base).await,
        Verb::Gather(gather) => run_gather(ctx, gather, base).await,
        Verb::Record(record) => run_record(ctx, record, base).await,
    }
}

/// Starts saying or playing something to the party (in the timeline) and returns how long it
/// lasts; `None`: until something else happens.
fn start_prompt(ctx: &Ctx, verb: &Verb) -> Option<Duration> {
    let (event, length) = match verb {
        Verb::Say { text, loop_count } => {
            (Event::Say { text: text.clone(), hold: false }, looped(speech(&ctx.sim, text), *loop_count))
        }
        Verb::Play { url, loop_count } => (
            Event::Play { url: url.clone(), loop_count: *loop_count, hold: false },
            looped(ctx.sim.scaled(Duration::from_secs(PLAY_SECONDS)), *loop_count),
        ),
        Verb::Pause { seconds } => (
            Event::Pause { seconds: *seconds, hold: false },
            Some(ctx.sim.scaled(Duration::from_secs(u64::from(*seconds)))),
        ),
        // The parser lets only the three above be prompts.
        _ => return Some(Duration::ZERO),
    };
    ctx.sim.record(Some(&ctx.sid), Some(&ctx.party), event);
    length
}

/// How a `<Gather>` stopped listening.
enum GatherEnd {
    NumDigits,
    FinishOnKey(char),
    Timeout,
}

/// `<Gather input="dtmf">`: the prompts play until the first key, then Twilio waits `timeout`
/// seconds for each next key. Digits go to `action`; no digits (a timeout, or `finishOnKey`
/// first) go on with the next verb, unless `actionOnEmptyResult` asks for the request anyway.
async fn run_gather(ctx: &mut Ctx, gather: &Gather, base: Option<&str>) -> Result<Step, Stop> {
    ctx.sim.record(
        Some(&ctx.sid),
        Some(&ctx.party),
        Event::GatherStarted {
            num_digits: gather.num_digits,
            finish_on_key: gather.finish_on_key.clone(),
            timeout_seconds: gather.timeout_seconds,
        },
    );
    let mut digits = String::new();
    let mut ended = None;
    for prompt in &gather.prompts {
        let length = start_prompt(ctx, prompt);
        if let Some(keys) = listen(ctx, length).await? {
            ended = take_keys(gather, &mut digits, &keys);
            // The first key cuts the prompts short.
            break;
        }
    }
    // The timeout only starts once the prompts are over, and starts again with each key.
    let timeout = ctx.sim.scaled(Duration::from_secs(u64::from(gather.timeout_seconds)));
    let ended = loop {
        if let Some(ended) = ended.take() {
            break ended;
        }
        ended = match listen(ctx, Some(timeout)).await? {
            Some(keys) => take_keys(gather, &mut digits, &keys),
            None => Some(GatherEnd::Timeout),
        };
    };
    let (ended_by, finished_on_key) = match ended {
        GatherEnd::NumDigits => ("numDigits", String::new()),
        GatherEnd::FinishOnKey(key) => ("finishOnKey", key.to_string()),
        GatherEnd::Timeout => ("timeout", String::new()),
    };
    let wants_action = !digits.is_empty() || gather.action_on_empty_result;
    let action = action_url(gather.action.as_deref(), base);
    ctx.sim.record(
        Some(&ctx.sid),
        Some(&ctx.party),
        Event::GatherEnded {
            digits: digits.clone(),
            ended_by: ended_by.into(),
            action: wants_action && action.is_some(),
        },
    );
    if !wants_action {
        return Ok(Step::Next);
    }
    let Some(url) = action else {
        no_action_url(ctx, "Gather");
        return Ok(Step::Next);
    };
    let extra = vec![("Digits".to_owned(), digits), ("FinishedOnKey".to_owned(), finished_on_key)];
    Ok(Step::Goto(Source::Url { url, method: gather.method }, extra, "Gather action"))
}

/// Adds the keys to what a `<Gather>` collected, and says whether that ends it; keys after the
/// one that ended it are lost, as on a phone.
fn take_keys(gather: &Gather, digits: &mut String, keys: &str) -> Option<GatherEnd> {
    for key in keys.chars() {
        if gather.finish_on_key.starts_with(key) {
            return Some(GatherEnd::FinishOnKey(key));
        }
        digits.push(key);
        if gather.num_digits.is_some_and(|wanted| digits.chars().count() >= wanted as usize) {
            return Some(GatherEnd::NumDigits);
        }
    }
    None
}

/// A verb's `action`, or by default the URL of the document it is in.
fn action_url(action: Option<&str>, base: Option<&str>) -> Option<String> {
    match action {
        Some(action) => Some(resolve(base, action)),
        None => base.map(str::to_owned),
    }
}

/// Inline `Twiml` has no URL for an action to default to.
fn no_action_url(ctx: &Ctx, verb: &str) {
    ctx.sim.record(
        Some(&ctx.sid),
        Some(&ctx.party),
        Event::TwimlWarning {
            message: format!("<{verb}> has no action and its TwiML no URL to default to: nothing to request"),
        },
    );
}

/// How a `<Record>` stopped.
enum RecordEnd {
    Silence,
    MaxLength,
    FinishOnKey(char),
    Hangup(String),
    Redirect(Source),
}

impl RecordEnd {
    /// How the timeline names it, and the `Digits` Twilio reports for it.
    fn describe(&self) -> (&'static str, Option<String>) {
        match self {
            Self::Silence => ("timeout", None),
            Self::MaxLength => ("maxLength", None),
            Self::FinishOnKey(key) => ("finishOnKey", Some(key.to_string())),
            Self::Hangup(_) => ("hangup", Some("hangup".to_owned())),
            Self::Redirect(_) => ("redirect", None),
        }
    }
}

/// What a `<Record>` captured, in Twilio seconds from its start.
struct Recorded {
    end: RecordEnd,
    /// When each stretch of speech began and ended.
    speech: Vec<(f64, f64)>,
    /// Real time from the start to the end, for the ends that are not timed (keys, hang-ups).
    elapsed: f64,
}

/// `<Record>`: listens until `timeout` seconds of silence, `maxLength`, a `finishOnKey` key or
/// the hang-up. Twilio then stores a Recording and requests `action` with `RecordingUrl`,
/// `RecordingSid`, `RecordingDuration` and `Digits` (the key, or `hangup`), even after a
/// hang-up; an empty recording skips the request and the TwiML goes on with the next verb.
/// `recordingStatusCallback` is told separately.
async fn run_record(ctx: &mut Ctx, record: &Record, base: Option<&str>) -> Result<Step, Stop> {
    ctx.sim.record(
        Some(&ctx.sid),
        Some(&ctx.party),
        Event::RecordingStarted {
            beep: record.play_beep,
            max_length_seconds: record.max_length_seconds,
            timeout_seconds: record.timeout_seconds,
        },
    );
    let started_at = OffsetDateTime::now_utc();
    let mut recording = RecordingRecord {
        sid: new_sid("RE"),
        call_sid: ctx.sid.clone(),
        status: "in-progress",
        duration_seconds: 0,
        start_time: started_at,
        created_at: started_at,
    };
    let status_callback = record.recording_status_callback.as_deref().map(|url| Callback {
        url: resolve(base, url),
        method: record.recording_status_callback_method,
        events: record.recording_status_callback_events.clone(),
    });
    if let Some(callback) = &status_callback {
        ctx.sim.recording_event(&recording, callback);
    }

    let captured = capture(ctx, record).await;
    let max_length = f64::from(record.max_length_seconds);
    // Where the recording ended; the timed ends are exact rather than measured, so that a
    // script's "speak 3 s" gives the same durations every run.
    let length = match &captured.end {
        RecordEnd::MaxLength => max_length,
        RecordEnd::Silence => {
            captured.speech.iter().map(|(_, to)| *to).fold(0.0, f64::max) + f64::from(record.timeout_seconds)
        }
        _ => captured.elapsed,
    }
    .min(max_length);
    let heard: Vec<(f64, f64)> =
        captured.speech.iter().filter(|(from, _)| *from < length).map(|(from, to)| (*from, to.min(length))).collect();
    let empty = heard.is_empty();
    let first_word = heard.iter().map(|(from, _)| *from).fold(f64::INFINITY, f64::min);
    let last_word = heard.iter().map(|(_, to)| *to).fold(0.0, f64::max);
    // Twilio trims leading and trailing silence from the file (`trim="trim-silence"`); the
    // action's RecordingDuration is the untrimmed length, which is why Twilio points to the
    // status callback for the final one.
    recording.duration_seconds = match (empty, record.trim_silence) {
        (true, _) => 0,
        (false, true) => whole_seconds(last_word - first_word),
        (false, false) => whole_seconds(length),
    };
    recording.status = if empty { "absent" } else { "completed" };
    recording.created_at = OffsetDateTime::now_utc();
    let (ended_by, digits) = captured.end.describe();
    ctx.sim.record(
        Some(&ctx.sid),
        Some(&ctx.party),
        Event::RecordingCompleted {
            recording_sid: recording.sid.clone(),
            duration_seconds: recording.duration_seconds,
            ended_by: ended_by.into(),
            empty,
        },
    );
    // Stored first: an app that fetches the media on the callback must find it.
    ctx.sim.state().recordings.push(recording.clone());
    if let Some(callback) = &status_callback {
        ctx.sim.recording_event(&recording, callback);
    }

    let action = action_url(record.action.as_deref(), base);
    let mut extra = vec![
        ("RecordingUrl".to_owned(), ctx.sim.recording_url(&recording.sid)),
        ("RecordingDuration".to_owned(), whole_seconds(length).to_string()),
        ("RecordingSid".to_owned(), recording.sid),
    ];
    if let Some(digits) = digits {
        extra.push(("Digits".to_owned(), digits));
    }
    match captured.end {
        RecordEnd::Redirect(source) => Err(Stop::Redirect(source)),
        RecordEnd::Hangup(by) => {
            if !empty && let Some(url) = action {
                ctx.after_hangup = Some(EndedCallRequest { url, method: record.method, extra });
            }
            Err(Stop::Hangup(by))
        }
        _ if empty => Ok(Step::Next),
        _ => match action {
            Some(url) => Ok(Step::Goto(Source::Url { url, method: record.method }, extra, "Record action")),
            None => {
                no_action_url(ctx, "Record");
                Ok(Step::Next)
            }
        },
    }
}

/// Listens to the party until something ends the recording.
async fn capture(ctx: &mut Ctx, record: &Record) -> Recorded {
    let started = tokio::time::Instant::now();
    let mut speech = Vec::new();
    let mut quiet_since = started;
    let max_length_at = started + ctx.sim.scaled(Duration::from_secs(u64::from(record.max_length_seconds)));
    let silence =
        (record.timeout_seconds > 0).then(|| ctx.sim.scaled(Duration::from_secs(u64::from(record.timeout_seconds))));
    let end = loop {
        let silence_ends_it_at = silence.map(|silence| quiet_since + silence);
        tokio::select! {
            signal = ctx.inbox.recv() => match signal {
                None => break RecordEnd::Hangup("the simulator".into()),
                Some(Signal::Hangup { by }) => break RecordEnd::Hangup(by),
                Some(Signal::Redirect(source)) => break RecordEnd::Redirect(source),
                Some(Signal::Digits(keys)) => {
                    if let Some(key) = keys.chars().find(|key| record.finish_on_key.contains(*key)) {
                        break RecordEnd::FinishOnKey(key);
                    }
                }
                Some(Signal::Speech { seconds }) => {
                    let now = tokio::time::Instant::now();
                    let from = ctx.sim.twilio_seconds(now - started);
                    speech.push((from, from + f64::from(seconds)));
                    quiet_since = quiet_since.max(now + ctx.sim.scaled(Duration::from_secs(u64::from(seconds))));
                }
                Some(_) => {}
            },
            () = tokio::time::sleep_until(max_length_at) => break RecordEnd::MaxLength,
            () = sleep_until_or_never(silence_ends_it_at) => break RecordEnd::Silence,
        }
    };
    Recorded { end, speech, elapsed: ctx.sim.twilio_seconds(started.elapsed()) }
}

/// Twilio reports recording lengths in whole seconds.
fn whole_seconds(seconds: f64) -> u64 {
    seconds.max(0.0).round() as u64
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
    Ok(Step::Goto(Source::Url { url: resolve(base, action), method: dial.method }, extra, "Dial action"))
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
                    Verb::Hangup | Verb::Dial(_) | Verb::Gather(_) | Verb::Record(_) => break,
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

/// Like `wait`, but keys the party presses end it early: `Ok(Some(keys))`.
async fn listen(ctx: &mut Ctx, length: Option<Duration>) -> Result<Option<String>, Stop> {
    let until = length.map(|length| tokio::time::Instant::now() + length);
    loop {
        tokio::select! {
            signal = ctx.inbox.recv() => match signal {
                None => return Err(Stop::Hangup("the simulator".into())),
                Some(Signal::Hangup { by }) => return Err(Stop::Hangup(by)),
                Some(Signal::Redirect(source)) => return Err(Stop::Redirect(source)),
                Some(Signal::Digits(keys)) => return Ok(Some(keys)),
                Some(_) => {}
            },
            () = sleep_until_or_never(until) => return Ok(None),
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
        ctx.sim.hang_up_after(&ctx.sid, &ctx.party, after);
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
