//! The plain data of the simulated account, shared by every layer above it: statuses, scripted
//! behaviours, what a call's inbox carries, callback requests, and the views scripts read.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::twiml::Method;

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
    /// The customers' TwiML App, and its Voice URL.
    pub twiml_app_sid: String,
    pub twiml_app_voice_url: String,
    /// The agents' TwiML App, and its Voice URL. A browser call goes to the Voice URL of the
    /// app its Access Token grants.
    pub agent_twiml_app_sid: String,
    pub agent_twiml_app_voice_url: String,
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
            agent_twiml_app_sid: format!("AP{}1", "0".repeat(31)),
            agent_twiml_app_voice_url: format!("{base}/call/agent"),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConferenceStatus {
    Init,
    InProgress,
    Completed,
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
    /// The custom parameters a called client's Voice SDK receives with the call.
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
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

/// A recording a `<Record>` made, as scripts and tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingView {
    pub sid: String,
    pub call_sid: String,
    /// `completed`, or `absent` when nothing was said.
    pub status: String,
    /// Whole seconds of audio in the file (after trimming silence, if `trim` asked for it).
    pub duration_seconds: u64,
    /// RFC 2822, like the REST API's `date_created`.
    pub date_created: String,
    pub start_time: String,
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

/// Where Twilio sends a call's requests, as an application (TwiML App) or a phone number holds
/// them: the URL and method of its TwiML, the URL and method Twilio falls back to when that
/// fails, and where it reports the call's status. `None`: not set (the REST API's `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceConfig {
    pub voice_url: Option<String>,
    pub voice_method: String,
    pub voice_fallback_url: Option<String>,
    pub voice_fallback_method: String,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
}

impl Default for VoiceConfig {
    /// Twilio's defaults: nothing set, every method `POST`.
    fn default() -> Self {
        Self {
            voice_url: None,
            voice_method: "POST".into(),
            voice_fallback_url: None,
            voice_fallback_method: "POST".into(),
            status_callback: None,
            status_callback_method: "POST".into(),
        }
    }
}

/// A TwiML App of the account, as scripts and tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationView {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub voice: VoiceConfig,
}

/// A phone number of the account, as scripts and tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberView {
    pub sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub voice: VoiceConfig,
    /// When set, Twilio uses this application's URLs for the number's calls, not its own.
    pub voice_application_sid: Option<String>,
}

/// A customer dialing the support number.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundCall {
    pub from: Option<String>,
    /// By default the support number.
    pub to: Option<String>,
    pub name: Option<String>,
    /// The caller hangs up this long (real milliseconds) after the call starts, whatever is
    /// happening on it.
    pub hangup_after_ms: Option<u64>,
    /// The caller hangs up this long (real milliseconds) after they first talk with someone: the
    /// first time another participant is with them in a conference that has started. A person
    /// who waits however long it takes, talks, then says goodbye.
    pub hangup_after_talking_ms: Option<u64>,
    /// Sign the webhook with the wrong key, as a forger would.
    pub forge_signature: bool,
}

/// A browser placing a call through a TwiML App (`device.connect({params})`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserCall {
    /// The browser's Access Token, as Warmline's `/token` gives it: it names the identity, the
    /// TwiML App whose Voice URL Twilio requests, and the params the token passes. A token
    /// Twilio would refuse (another account or key, a wrong signature, expired) fails the call.
    pub token: Option<String>,
    /// Without a token: the identity, and the app (by default the customers').
    pub identity: String,
    pub application_sid: Option<String>,
    /// What the page passes to `device.connect({params})`.
    pub params: BTreeMap<String, String>,
    pub name: Option<String>,
    /// As `InboundCall::hangup_after_ms`.
    pub hangup_after_ms: Option<u64>,
    /// As `InboundCall::hangup_after_talking_ms`.
    pub hangup_after_talking_ms: Option<u64>,
    pub forge_signature: bool,
}

/// Whatever happens to a call from outside its task (another call, a conference, the REST API,
/// a script) reaches the task through its inbox as one of these.
#[derive(Debug)]
pub(crate) enum Signal {
    /// The party hangs up, or the REST API ends the call.
    Hangup {
        by: String,
    },
    /// The REST API gives the call new TwiML.
    Redirect(Source),
    /// A script answers or rejects a ringing `manual` endpoint.
    Answer,
    Reject,
    ConferenceStarted,
    /// The conference ended or the REST API removed this participant.
    RemovedFromConference,
    Hold {
        url: Option<String>,
        method: Method,
    },
    Unhold,
    LegAnswered {
        sid: String,
        party: String,
    },
    LegEnded {
        status: CallStatus,
    },
    /// The party presses keys (DTMF).
    Digits(String),
    /// The party talks for this many Twilio seconds, then is silent.
    Speech {
        seconds: u32,
    },
}

/// Where a call's next TwiML comes from: a URL to request, or the REST API's inline `Twiml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Url { url: String, method: Method },
    Twiml(String),
}

/// Where and when Twilio reports progress, as requested by `StatusCallback*` parameters or
/// `statusCallback*` attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub url: String,
    pub method: Method,
    pub events: Vec<String>,
}

/// A status callback ready to send; `reverse` mode holds these back until the call ends.
#[derive(Debug, Clone)]
pub(crate) struct PendingCallback {
    pub url: String,
    pub method: Method,
    pub params: Vec<(String, String)>,
    pub event: String,
    pub call_sid: Option<String>,
    pub party: Option<String>,
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
