//! The simulated Twilio account: calls, conferences, endpoints and the timeline, behind one lock
//! that is never held across an `.await`. Each call runs as its own task (see `call.rs`) and is
//! steered through its inbox.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::call::{self, AfterAnswer, Signal, Source};
use crate::timeline::{Event, Timeline};
use crate::twiml::{ConferenceOptions, Method};
use crate::webhook::{Callback, PendingCallback};

pub const API_VERSION: &str = "2010-04-01";

/// What the simulator needs to play Twilio for one Warmline stack.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where Warmline is reached (the stack's `PUBLIC_BASE_URL`), for scripts that also talk
    /// to it directly, like the dashboard does.
    pub public_base_url: Option<String>,
    pub account_sid: String,
    /// Signs webhooks, like the account's primary Auth Token; also accepted for REST auth.
    pub auth_token: String,
    /// REST auth with an API key, as Warmline uses it.
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    /// The support number customers dial.
    pub phone_number: String,
    /// The number's "A call comes in" webhook.
    pub voice_url: String,
    pub twiml_app_sid: String,
    /// The TwiML App's Voice URL, requested for browser calls.
    pub twiml_app_voice_url: String,
    /// Multiplies Twilio's own durations (ring timeouts, speech, music, pauses); scripted
    /// endpoint delays are real milliseconds. Tests use a small scale so a 60 s ring timeout
    /// passes in a blink.
    pub time_scale: f64,
    /// How long a simulated endpoint rings before it answers, unless scripted otherwise.
    pub default_answer_after: Duration,
    /// Twilio gives a webhook 15 s in total.
    pub webhook_timeout: Duration,
}

impl SimConfig {
    /// The routes Warmline tells operators to paste into the Twilio console.
    pub fn for_warmline(public_base_url: &str) -> Self {
        let base = public_base_url.trim_end_matches('/');
        Self {
            public_base_url: Some(base.to_owned()),
            account_sid: format!("AC{}", "0".repeat(32)),
            auth_token: "local-auth-token".into(),
            api_key: None,
            api_secret: None,
            phone_number: "+15550000000".into(),
            voice_url: format!("{base}/conference/connect/client"),
            twiml_app_sid: format!("AP{}", "0".repeat(32)),
            twiml_app_voice_url: format!("{base}/call/connect"),
            time_scale: 1.0,
            default_answer_after: Duration::from_millis(500),
            webhook_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::NoAnswer => "no-answer",
            Self::Canceled => "canceled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Busy | Self::Failed | Self::NoAnswer | Self::Canceled)
    }
}

/// How a simulated phone or browser reacts when it rings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    pub answer: AnswerMode,
    /// How long it rings before it answers, rejects or is busy; `None`: the default.
    pub after_ms: Option<u64>,
    /// Once answered, hang up after this long.
    pub hangup_after_ms: Option<u64>,
    /// How the timeline names this endpoint; by default its identity or number.
    pub name: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self { answer: AnswerMode::Auto, after_ms: None, hangup_after_ms: None, name: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerMode {
    /// Answers after `after_ms`.
    Auto,
    /// Rings until a script answers or rejects it (`/sim/calls/{sid}/answer`), or the timeout.
    Manual,
    /// Declines (the Voice SDK's `call.reject()`): the call ends `busy`.
    Reject,
    Busy,
    /// Rings until the call's timeout: `no-answer`.
    Never,
    /// Unreachable: `failed`.
    Fail,
}

pub(crate) struct CallRecord {
    pub sid: String,
    pub parent_sid: Option<String>,
    pub direction: &'static str,
    pub from: String,
    pub to: String,
    pub party: String,
    pub status: CallStatus,
    pub created_at: OffsetDateTime,
    pub answered: Option<Instant>,
    pub ended: Option<Instant>,
    pub inbox: mpsc::UnboundedSender<Signal>,
    pub conference: Option<String>,
    pub child_leg: Option<String>,
    pub status_callback: Option<Callback>,
    pub callback_sequence: u32,
    /// Sent with the first webhook only, like the Voice SDK's `connect({params})`.
    pub custom_params: Vec<(String, String)>,
    pub application_sid: Option<String>,
    /// The TwiML URL of a call the REST API placed.
    pub url: Option<String>,
    pub hangup_after: Option<Duration>,
    pub order: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConferenceStatus {
    Init,
    InProgress,
    Completed,
}

pub(crate) struct ConferenceRecord {
    pub sid: String,
    pub name: String,
    pub status: ConferenceStatus,
    pub participants: Vec<Participant>,
    /// Everyone who was ever in it, for the record.
    pub history: Vec<String>,
    pub created_at: OffsetDateTime,
    pub ended_reason: Option<String>,
    /// The first participant's, as on Twilio.
    pub callback: Option<Callback>,
    pub callback_sequence: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub call_sid: String,
    pub party: String,
    pub label: Option<String>,
    pub start_conference_on_enter: bool,
    pub end_conference_on_exit: bool,
    pub muted: bool,
    pub hold: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub calls: BTreeMap<String, CallRecord>,
    pub conferences: Vec<ConferenceRecord>,
    pub endpoints: HashMap<String, Behaviour>,
    pub callback_mode: CallbackMode,
    pub pending_callbacks: HashMap<String, Vec<PendingCallback>>,
    /// One delivery queue per call or conference, so its callbacks go out in order.
    pub callback_queues: HashMap<String, mpsc::UnboundedSender<PendingCallback>>,
    next_order: u64,
}

/// How status callbacks are delivered: Twilio's may arrive twice and out of order, and
/// Warmline must cope; these make that happen on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackMode {
    /// Every callback is sent twice.
    pub duplicate: bool,
    /// A call's (or conference's) callbacks are held until it ends, then sent newest first.
    pub reverse: bool,
}

/// A call as scripts and tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub sid: String,
    pub party: String,
    pub direction: String,
    pub from: String,
    pub to: String,
    pub status: CallStatus,
    /// The friendly name of the conference the call is in now.
    pub conference: Option<String>,
    pub parent_call_sid: Option<String>,
    /// Where Twilio fetches the TwiML of a call the REST API placed.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceView {
    pub sid: String,
    pub name: String,
    pub status: ConferenceStatus,
    pub participants: Vec<ParticipantView>,
    /// Every party that was ever in it, in order of joining.
    pub history: Vec<String>,
    pub ended_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantView {
    pub call_sid: String,
    pub party: String,
    pub start_conference_on_enter: bool,
    pub end_conference_on_exit: bool,
    pub muted: bool,
    pub hold: bool,
}

/// A customer dialing the support number.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundCall {
    pub from: Option<String>,
    /// By default the support number.
    pub to: Option<String>,
    pub name: Option<String>,
    pub hangup_after_ms: Option<u64>,
    /// Sign the webhook with the wrong key, as a forger would.
    pub forge_signature: bool,
}

/// A browser placing a call through the TwiML App (`device.connect({params})`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserCall {
    pub identity: String,
    pub params: BTreeMap<String, String>,
    pub name: Option<String>,
    pub hangup_after_ms: Option<u64>,
    pub forge_signature: bool,
}

#[derive(Clone)]
pub struct Sim(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub config: SimConfig,
    pub state: Mutex<State>,
    pub timeline: Timeline,
    pub http: reqwest::Client,
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        // Redirects are not followed: Twilio does not follow them for TwiML either.
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("TwilioProxy/1.1")
            .build()
            .unwrap_or_default();
        Self(Arc::new(Inner { config, state: Mutex::new(State::default()), timeline: Timeline::default(), http }))
    }

    pub fn config(&self) -> &SimConfig {
        &self.0.config
    }

    pub fn timeline(&self) -> &Timeline {
        &self.0.timeline
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, call_sid: Option<&str>, party: Option<&str>, event: Event) {
        self.0.timeline.record(call_sid, party, event);
    }

    pub(crate) fn scaled(&self, duration: Duration) -> Duration {
        duration.mul_f64(self.0.config.time_scale.max(0.0))
    }

    pub fn note(&self, text: impl Into<String>) {
        self.record(None, None, Event::Note { text: text.into() });
    }

    pub fn set_behaviour(&self, address: &str, behaviour: Behaviour) {
        self.state().endpoints.insert(address.to_owned(), behaviour);
    }

    pub fn clear_behaviours(&self) {
        self.state().endpoints.clear();
    }

    pub fn set_callback_mode(&self, mode: CallbackMode) {
        self.state().callback_mode = mode;
    }

    pub(crate) fn behaviour(&self, address: &str) -> Behaviour {
        self.state().endpoints.get(address).cloned().unwrap_or_default()
    }

    pub(crate) fn party_name(&self, address: &str) -> String {
        if let Some(name) = self.state().endpoints.get(address).and_then(|b| b.name.clone()) {
            return name;
        }
        address.strip_prefix("client:").unwrap_or(address).to_owned()
    }

    /// Registers a call and returns its inbox's receiving end for the call's task.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_call(
        &self,
        direction: &'static str,
        from: &str,
        to: &str,
        party: String,
        parent_sid: Option<String>,
        status_callback: Option<Callback>,
        custom_params: Vec<(String, String)>,
        application_sid: Option<String>,
        hangup_after: Option<Duration>,
    ) -> (String, mpsc::UnboundedReceiver<Signal>) {
        let sid = new_sid("CA");
        let (inbox, receiver) = mpsc::unbounded_channel();
        let mut state = self.state();
        state.next_order += 1;
        let order = state.next_order;
        state.calls.insert(
            sid.clone(),
            CallRecord {
                sid: sid.clone(),
                parent_sid,
                direction,
                from: from.to_owned(),
                to: to.to_owned(),
                party: party.clone(),
                status: CallStatus::Queued,
                created_at: OffsetDateTime::now_utc(),
                answered: None,
                ended: None,
                inbox,
                conference: None,
                child_leg: None,
                status_callback,
                callback_sequence: 0,
                custom_params,
                application_sid,
                url: None,
                hangup_after,
                order,
            },
        );
        (sid, receiver)
    }

    /// Puts a new call in the timeline; separate from `new_call` so that a REST request shows
    /// up before the call it creates.
    pub(crate) fn announce(&self, call_sid: &str) {
        let started = self.state().calls.get(call_sid).map(|call| {
            (
                call.party.clone(),
                Event::CallStarted { direction: call.direction.into(), from: call.from.clone(), to: call.to.clone() },
            )
        });
        if let Some((party, event)) = started {
            self.record(Some(call_sid), Some(&party), event);
        }
    }

    pub(crate) fn send(&self, call_sid: &str, signal: Signal) -> bool {
        self.state().calls.get(call_sid).is_some_and(|call| call.inbox.send(signal).is_ok())
    }

    /// A customer dials the support number (or `to`): Twilio requests the number's Voice URL.
    pub fn dial_in(&self, call: InboundCall) -> String {
        let from = call.from.unwrap_or_else(|| "+15557654321".into());
        let to = call.to.unwrap_or_else(|| self.0.config.phone_number.clone());
        let party = call.name.unwrap_or_else(|| "caller".into());
        let (sid, inbox) = self.new_call(
            "inbound",
            &from,
            &to,
            party,
            None,
            None,
            Vec::new(),
            None,
            call.hangup_after_ms.map(Duration::from_millis),
        );
        self.announce(&sid);
        let source = Source::Url { url: self.0.config.voice_url.clone(), method: Method::Post };
        tokio::spawn(call::run_inbound(self.clone(), sid.clone(), inbox, source, call.forge_signature));
        sid
    }

    /// A browser places a call with the Voice SDK: Twilio requests the TwiML App's Voice URL
    /// with `From=client:<identity>` and the SDK's params.
    pub fn browser_call(&self, call: BrowserCall) -> String {
        let from = format!("client:{}", call.identity);
        let party = call.name.unwrap_or_else(|| call.identity.clone());
        let to = call.params.get("To").cloned().unwrap_or_default();
        let params = call.params.into_iter().collect();
        let (sid, inbox) = self.new_call(
            "inbound",
            &from,
            &to,
            party,
            None,
            None,
            params,
            Some(self.0.config.twiml_app_sid.clone()),
            call.hangup_after_ms.map(Duration::from_millis),
        );
        self.announce(&sid);
        let source = Source::Url { url: self.0.config.twiml_app_voice_url.clone(), method: Method::Post };
        tokio::spawn(call::run_inbound(self.clone(), sid.clone(), inbox, source, call.forge_signature));
        sid
    }

    /// The party on this call hangs up (or, while it rings, the caller gives up).
    pub fn hang_up(&self, call_sid: &str) -> bool {
        let party = self.state().calls.get(call_sid).map(|call| call.party.clone());
        match party {
            Some(party) => self.send(call_sid, Signal::Hangup { by: party }),
            None => false,
        }
    }

    pub fn answer(&self, call_sid: &str) -> bool {
        self.send(call_sid, Signal::Answer)
    }

    pub fn reject(&self, call_sid: &str) -> bool {
        self.send(call_sid, Signal::Reject)
    }

    /// Ends every call still going, e.g. between scenarios that share one simulator.
    pub fn hang_up_everything(&self) {
        let live: Vec<String> =
            self.state().calls.values().filter(|call| !call.status.is_final()).map(|call| call.sid.clone()).collect();
        for sid in live {
            self.send(&sid, Signal::Hangup { by: "the simulator (reset)".into() });
        }
    }

    pub fn calls(&self) -> Vec<CallView> {
        let state = self.state();
        let mut calls: Vec<&CallRecord> = state.calls.values().collect();
        calls.sort_by_key(|call| call.order);
        calls.into_iter().map(|call| call_view(&state, call)).collect()
    }

    pub fn call(&self, call_sid: &str) -> Option<CallView> {
        let state = self.state();
        state.calls.get(call_sid).map(|call| call_view(&state, call))
    }

    pub fn conferences(&self) -> Vec<ConferenceView> {
        self.state().conferences.iter().map(conference_view).collect()
    }

    /// The conference with this friendly name that is live now, or else the latest one.
    pub fn conference(&self, name: &str) -> Option<ConferenceView> {
        let state = self.state();
        let mut named = state.conferences.iter().filter(|c| c.name == name);
        named
            .clone()
            .find(|c| c.status != ConferenceStatus::Completed)
            .or_else(|| named.next_back())
            .map(conference_view)
    }

    /// Places a call as the REST API does: rings `to`, then runs `after`.
    pub(crate) fn place_call(
        &self,
        from: &str,
        to: &str,
        after: AfterAnswer,
        timeout: Duration,
        status_callback: Option<Callback>,
    ) -> Launch {
        let party = self.party_name(to);
        let (sid, inbox) =
            self.new_call("outbound-api", from, to, party, None, status_callback, Vec::new(), None, None);
        if let AfterAnswer::Fetch(Source::Url { url, .. }) = &after
            && let Some(call) = self.state().calls.get_mut(&sid)
        {
            call.url = Some(url.clone());
        }
        Launch { sim: self.clone(), sid, inbox, after, timeout }
    }

    /// Adds a participant by dialing them into a named conference (the Participants API).
    pub(crate) fn place_participant(
        &self,
        from: &str,
        to: &str,
        options: ConferenceOptions,
        label: Option<String>,
        timeout: Duration,
        status_callback: Option<Callback>,
    ) -> Launch {
        self.place_call(from, to, AfterAnswer::JoinConference { options, label }, timeout, status_callback)
    }
}

/// A call the REST API created, not yet ringing: it starts once the request is in the timeline.
pub(crate) struct Launch {
    sim: Sim,
    pub sid: String,
    inbox: mpsc::UnboundedReceiver<Signal>,
    after: AfterAnswer,
    timeout: Duration,
}

impl Launch {
    pub fn start(self) {
        self.sim.announce(&self.sid);
        tokio::spawn(call::run_outbound(self.sim, self.sid, self.inbox, self.after, self.timeout));
    }
}

fn call_view(state: &State, call: &CallRecord) -> CallView {
    let conference = call
        .conference
        .as_ref()
        .and_then(|sid| state.conferences.iter().find(|c| &c.sid == sid))
        .map(|c| c.name.clone());
    CallView {
        sid: call.sid.clone(),
        party: call.party.clone(),
        direction: call.direction.to_owned(),
        from: call.from.clone(),
        to: call.to.clone(),
        status: call.status,
        conference,
        parent_call_sid: call.parent_sid.clone(),
        url: call.url.clone(),
    }
}

fn conference_view(conference: &ConferenceRecord) -> ConferenceView {
    ConferenceView {
        sid: conference.sid.clone(),
        name: conference.name.clone(),
        status: conference.status,
        participants: conference
            .participants
            .iter()
            .map(|p| ParticipantView {
                call_sid: p.call_sid.clone(),
                party: p.party.clone(),
                start_conference_on_enter: p.start_conference_on_enter,
                end_conference_on_exit: p.end_conference_on_exit,
                muted: p.muted,
                hold: p.hold,
            })
            .collect(),
        history: conference.history.clone(),
        ended_reason: conference.ended_reason.clone(),
    }
}

/// A Twilio-shaped SID: two letters and 32 lower-case hex digits.
pub fn new_sid(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Never on Linux; a clock-based value still keeps SIDs apart.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes = nanos.to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}
