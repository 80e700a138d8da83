//! The simulated Twilio account: calls, conferences, endpoints and the timeline, behind one lock
//! that is never held across an `.await`. Everything above reaches the account through the
//! primitives here; each call's task is steered through its inbox.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::model::{
    ApplicationView, Behaviour, CallStatus, Callback, CallbackMode, ConferenceStatus, PendingCallback, PhoneNumberView,
    Signal, SimConfig, VoiceConfig, new_sid,
};
use crate::timeline::{Event, Timeline};

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
    /// What the called client's Voice SDK sees as the call's `customParameters`: the query
    /// string of a REST `To` of `client:<identity>?…`. Never sent to a webhook.
    pub device_params: Vec<(String, String)>,
    pub application_sid: Option<String>,
    /// The TwiML URL of a call the REST API placed.
    pub url: Option<String>,
    pub hangup_after: Option<Duration>,
    /// Hang up this long after first talking with someone in a conference.
    pub hangup_after_talking: Option<Duration>,
    /// Whether that hang-up is scheduled already: it is, once, on the first talk.
    pub talked: bool,
    pub order: u64,
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

/// What a `<Record>` left behind.
#[derive(Clone)]
pub(crate) struct RecordingRecord {
    pub sid: String,
    pub call_sid: String,
    /// `in-progress` while recording, then `completed`, or `absent` when it held no speech.
    pub status: &'static str,
    pub duration_seconds: u64,
    pub start_time: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

/// A TwiML App (`AP…`) of the account.
#[derive(Clone)]
pub(crate) struct ApplicationRecord {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub voice: VoiceConfig,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A phone number (`PN…`) the account owns.
#[derive(Clone)]
pub(crate) struct NumberRecord {
    pub sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub voice: VoiceConfig,
    pub voice_application_sid: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Default)]
pub(crate) struct State {
    pub calls: BTreeMap<String, CallRecord>,
    pub conferences: Vec<ConferenceRecord>,
    /// In the order they were made.
    pub recordings: Vec<RecordingRecord>,
    pub endpoints: HashMap<String, Behaviour>,
    pub callback_mode: CallbackMode,
    pub pending_callbacks: HashMap<String, Vec<PendingCallback>>,
    /// One delivery queue per call or conference, so its callbacks go out in order.
    pub callback_queues: HashMap<String, mpsc::UnboundedSender<PendingCallback>>,
    /// The account's TwiML Apps and phone numbers, oldest first.
    pub applications: Vec<ApplicationRecord>,
    pub numbers: Vec<NumberRecord>,
    /// What the API key may not do, as a restricted key without those permissions:
    /// (HTTP method, resource such as `IncomingPhoneNumbers`).
    pub denied: Vec<(String, String)>,
    next_order: u64,
}

impl State {
    /// The account as the configuration describes it: the support number, answered at
    /// `voice_url`, and the TwiML App of browser calls. An empty URL leaves it unset, as on a
    /// number nobody has configured yet.
    fn for_account(config: &SimConfig) -> Self {
        let now = OffsetDateTime::now_utc();
        let url = |value: &str| Some(value.to_owned()).filter(|v| !v.is_empty());
        let mut state = Self::default();
        if !config.phone_number.is_empty() {
            state.numbers.push(NumberRecord {
                sid: new_sid("PN"),
                phone_number: config.phone_number.clone(),
                friendly_name: config.phone_number.clone(),
                voice: VoiceConfig { voice_url: url(&config.voice_url), ..VoiceConfig::default() },
                voice_application_sid: None,
                created_at: now,
                updated_at: now,
            });
        }
        let apps = [
            (&config.twiml_app_sid, "Customers' browser calls", &config.twiml_app_voice_url),
            (&config.agent_twiml_app_sid, "Agents' browser calls", &config.agent_twiml_app_voice_url),
        ];
        for (sid, name, voice_url) in apps.into_iter().filter(|(sid, _, _)| !sid.is_empty()) {
            state.applications.push(ApplicationRecord {
                sid: sid.clone(),
                friendly_name: Some(name.into()),
                voice: VoiceConfig { voice_url: url(voice_url), ..VoiceConfig::default() },
                created_at: now,
                updated_at: now,
            });
        }
        state
    }
}

/// A handle on one simulated account; clones share it.
#[derive(Clone)]
pub struct Sim(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub config: SimConfig,
    pub state: Mutex<State>,
    pub timeline: Timeline,
    pub http: reqwest::Client,
    /// Where this simulator's REST API is reached, for the URLs it hands out (recordings).
    pub api_base_url: OnceLock<String>,
}

/// Where recordings point when the simulator was never told its own address.
const TWILIO_API_BASE_URL: &str = "https://api.twilio.com";

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        // Redirects are not followed: Twilio does not follow them for TwiML either.
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("TwilioProxy/1.1")
            .build()
            .unwrap_or_default();
        let state = State::for_account(&config);
        Self(Arc::new(Inner {
            config,
            state: Mutex::new(state),
            timeline: Timeline::default(),
            http,
            api_base_url: OnceLock::new(),
        }))
    }

    /// Tells the simulator where its REST API is served, so that the `RecordingUrl`s it hands
    /// out can be fetched from it; `Server::start` does this. Only the first call counts: a
    /// URL already handed out must stay valid. Returns whether this call set it.
    pub fn set_api_base_url(&self, url: &str) -> bool {
        self.0.api_base_url.set(url.trim_end_matches('/').to_owned()).is_ok()
    }

    /// Where this simulator's REST API is reached (Twilio's own address until told otherwise).
    pub fn api_base_url(&self) -> &str {
        self.0.api_base_url.get().map_or(TWILIO_API_BASE_URL, String::as_str)
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

    /// The inverse of `scaled`: how many of Twilio's seconds this much real time stands for.
    pub(crate) fn twilio_seconds(&self, real: Duration) -> f64 {
        let scale = self.0.config.time_scale;
        if scale > 0.0 { real.as_secs_f64() / scale } else { 0.0 }
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
                device_params: Vec::new(),
                application_sid,
                url: None,
                hangup_after,
                hangup_after_talking: None,
                talked: false,
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

    /// The party on this call hangs up after `after`, unless the call has ended by then.
    pub(crate) fn hang_up_after(&self, call_sid: &str, party: &str, after: Duration) {
        let (sim, sid, party) = (self.clone(), call_sid.to_owned(), party.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            sim.send(&sid, Signal::Hangup { by: party });
        });
    }

    pub(crate) fn send(&self, call_sid: &str, signal: Signal) -> bool {
        self.state().calls.get(call_sid).is_some_and(|call| call.inbox.send(signal).is_ok())
    }
}

/// The account's configuration, for scripts and tests: what Twilio's console would show.
impl Sim {
    pub fn applications(&self) -> Vec<ApplicationView> {
        self.state().applications.iter().map(ApplicationRecord::view).collect()
    }

    pub fn phone_numbers(&self) -> Vec<PhoneNumberView> {
        self.state().numbers.iter().map(NumberRecord::view).collect()
    }

    /// The account buys another number (nothing configured on it); returns its SID.
    pub fn add_phone_number(&self, phone_number: &str) -> String {
        let now = OffsetDateTime::now_utc();
        let sid = new_sid("PN");
        self.state().numbers.push(NumberRecord {
            sid: sid.clone(),
            phone_number: phone_number.to_owned(),
            friendly_name: phone_number.to_owned(),
            voice: VoiceConfig::default(),
            voice_application_sid: None,
            created_at: now,
            updated_at: now,
        });
        sid
    }

    /// The account has another TwiML App (made in the console, say); returns its SID.
    pub fn add_application(&self, friendly_name: &str, voice_url: Option<&str>) -> String {
        let now = OffsetDateTime::now_utc();
        let sid = new_sid("AP");
        self.state().applications.push(ApplicationRecord {
            sid: sid.clone(),
            friendly_name: Some(friendly_name.to_owned()),
            voice: VoiceConfig { voice_url: voice_url.map(str::to_owned), ..VoiceConfig::default() },
            created_at: now,
            updated_at: now,
        });
        sid
    }

    /// The API key loses the permission to `method` (`GET`, `POST`, `DELETE`) on `resource`
    /// (`Applications`, `IncomingPhoneNumbers`, `Calls`, ...), as a restricted key created
    /// without it: such requests get 403 with code 70051. The Auth Token keeps every permission.
    pub fn deny_api_key(&self, method: &str, resource: &str) {
        self.state().denied.push((method.to_ascii_uppercase(), resource.to_owned()));
    }

    /// The URL and method Twilio requests when `phone_number` is called: its application's,
    /// when it has one, else its own; `None` for a number the account does not own or that
    /// has no Voice URL.
    pub fn voice_url_of(&self, phone_number: &str) -> Option<(String, String)> {
        let state = self.state();
        let number = state.numbers.iter().find(|n| n.phone_number == phone_number)?;
        let voice = match &number.voice_application_sid {
            Some(app) => &state.applications.iter().find(|a| &a.sid == app)?.voice,
            None => &number.voice,
        };
        voice.voice_url.clone().map(|url| (url, voice.voice_method.clone()))
    }
}

impl ApplicationRecord {
    pub(crate) fn view(&self) -> ApplicationView {
        ApplicationView { sid: self.sid.clone(), friendly_name: self.friendly_name.clone(), voice: self.voice.clone() }
    }
}

impl NumberRecord {
    pub(crate) fn view(&self) -> PhoneNumberView {
        PhoneNumberView {
            sid: self.sid.clone(),
            phone_number: self.phone_number.clone(),
            friendly_name: self.friendly_name.clone(),
            voice: self.voice.clone(),
            voice_application_sid: self.voice_application_sid.clone(),
        }
    }
}
