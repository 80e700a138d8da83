//! The simulator as scripts and tests drive it: calls placed from outside (each then runs as its
//! own task, see `call.rs`), endpoints scripted, calls steered, and calls and conferences read
//! back.

use std::time::Duration;

use time::format_description::well_known::Rfc2822;
use tokio::sync::mpsc;

use crate::access_token::{self, TokenRefused};
use crate::call::{self, AfterAnswer};
// Scripts and tests name these through `sim::`; they live in `model` and `state` so that the
// layers below can use them without importing this one.
pub use crate::model::{
    AnswerMode, Behaviour, BrowserCall, CallStatus, CallView, CallbackMode, ConferenceStatus, ConferenceView,
    InboundCall, ParticipantView, RecordingView, SimConfig,
};
use crate::model::{Callback, Signal, Source};
pub use crate::state::Sim;
use crate::state::{CallRecord, ConferenceRecord, RecordingRecord, State};
use crate::timeline::Event;
use crate::twiml::{ConferenceOptions, DTMF_KEYS, Method};

impl Sim {
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
        self.hang_up_after_talking(&sid, call.hangup_after_talking_ms);
        self.announce(&sid);
        let source = Source::Url { url: self.0.config.voice_url.clone(), method: Method::Post };
        tokio::spawn(call::run_inbound(self.clone(), sid.clone(), inbox, source, call.forge_signature));
        sid
    }

    /// A browser places a call with the Voice SDK: Twilio requests the Voice URL of the TwiML
    /// App its Access Token grants (without a token: `call.application_sid`, by default the
    /// customers' app), with `From=client:<identity>`, then the token's params and the page's.
    ///
    /// What Twilio does with a page's param named like one of its own: its documentation and
    /// engineers say `To` becomes the call's `To` (its quickstarts dial `params.To`) and `From`
    /// comes from the token; they do not say what becomes of the others. The simulator takes
    /// `To`, and sends every other param as given after Twilio's own, so a page's `From`,
    /// `CallSid`, `AccountSid` or `ApplicationSid` arrives as a second value: the case an app
    /// must not be fooled by (docs/SECURITY.md, "Browser calls").
    pub fn browser_call(&self, call: BrowserCall) -> Result<String, TokenRefused> {
        let (identity, application, mut params) = match &call.token {
            Some(token) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let grant = access_token::outgoing_grant(token, &self.0.config, now)?;
                (grant.identity, grant.application_sid, grant.params)
            }
            None => {
                let app = call.application_sid.clone().unwrap_or_else(|| self.0.config.twiml_app_sid.clone());
                (call.identity.clone(), app, Vec::new())
            }
        };
        let Some(source) = self.application_voice_url(&application) else {
            return Err(TokenRefused { code: 21218, message: "Invalid ApplicationSid" });
        };
        let from = format!("client:{identity}");
        let party = call.name.unwrap_or_else(|| identity.clone());
        let mut to = String::new();
        for (name, value) in call.params {
            match name.as_str() {
                "To" => to = value,
                _ => params.push((name, value)),
            }
        }
        let (sid, inbox) = self.new_call(
            "inbound",
            &from,
            &to,
            party,
            None,
            None,
            params,
            Some(application),
            call.hangup_after_ms.map(Duration::from_millis),
        );
        self.hang_up_after_talking(&sid, call.hangup_after_talking_ms);
        self.announce(&sid);
        tokio::spawn(call::run_inbound(self.clone(), sid.clone(), inbox, source, call.forge_signature));
        Ok(sid)
    }

    /// Where Twilio sends a call through the account's TwiML App `sid`, if it has a Voice URL.
    fn application_voice_url(&self, sid: &str) -> Option<Source> {
        let state = self.state();
        let voice = &state.applications.iter().find(|app| app.sid == sid)?.voice;
        let url = voice.voice_url.clone()?;
        Some(Source::Url { url, method: Method::parse(&voice.voice_method).unwrap_or(Method::Post) })
    }

    /// Scripts the party on `call_sid` to hang up `ms` after they first talk with someone
    /// (see `InboundCall::hangup_after_talking_ms`); the conference arms it.
    fn hang_up_after_talking(&self, call_sid: &str, ms: Option<u64>) {
        if let Some(call) = self.state().calls.get_mut(call_sid) {
            call.hangup_after_talking = ms.map(Duration::from_millis);
        }
    }

    /// The party on this call hangs up (or, while it rings, the caller gives up).
    pub fn hang_up(&self, call_sid: &str) -> bool {
        let party = self.state().calls.get(call_sid).map(|call| call.party.clone());
        match party {
            Some(party) => self.send(call_sid, Signal::Hangup { by: party }),
            None => false,
        }
    }

    /// The party presses keys on the keypad (`0`-`9`, `*`, `#`), one after the other: a
    /// `<Gather>` or `<Record>` that is listening hears them, anything else ignores them, as on a
    /// phone. False if the call is not live or `digits` holds something a keypad lacks.
    pub fn press(&self, call_sid: &str, digits: &str) -> bool {
        if digits.is_empty() || !digits.chars().all(|key| DTMF_KEYS.contains(key)) {
            return false;
        }
        let Some(party) = self.live_party(call_sid) else {
            return false;
        };
        self.record(Some(call_sid), Some(&party), Event::DigitsPressed { digits: digits.to_owned() });
        self.send(call_sid, Signal::Digits(digits.to_owned()))
    }

    /// The party talks for `seconds` (Twilio's seconds, scaled like its other durations), then
    /// falls silent: what a `<Record>` records; anything else lets it pass. False if the call is
    /// not live.
    pub fn speak(&self, call_sid: &str, seconds: u32) -> bool {
        let Some(party) = self.live_party(call_sid) else {
            return false;
        };
        self.record(Some(call_sid), Some(&party), Event::Spoke { seconds });
        self.send(call_sid, Signal::Speech { seconds })
    }

    fn live_party(&self, call_sid: &str) -> Option<String> {
        self.state().calls.get(call_sid).filter(|call| !call.status.is_final()).map(|call| call.party.clone())
    }

    /// Every recording a `<Record>` made, oldest first.
    pub fn recordings(&self) -> Vec<RecordingView> {
        self.state().recordings.iter().map(recording_view).collect()
    }

    pub fn recording(&self, recording_sid: &str) -> Option<RecordingView> {
        self.state().recordings.iter().find(|r| r.sid == recording_sid).map(recording_view)
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
        let (to, device_params) = crate::rest::split_client_address(to);
        let party = self.party_name(to);
        let (sid, inbox) =
            self.new_call("outbound-api", from, to, party, None, status_callback, Vec::new(), None, None);
        if let Some(call) = self.state().calls.get_mut(&sid) {
            call.device_params = device_params;
            if let AfterAnswer::Fetch(Source::Url { url, .. }) = &after {
                call.url = Some(url.clone());
            }
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
        custom_parameters: call.device_params.iter().cloned().collect(),
    }
}

fn recording_view(recording: &RecordingRecord) -> RecordingView {
    RecordingView {
        sid: recording.sid.clone(),
        call_sid: recording.call_sid.clone(),
        status: recording.status.to_owned(),
        duration_seconds: recording.duration_seconds,
        date_created: recording.created_at.format(&Rfc2822).unwrap_or_default(),
        start_time: recording.start_time.format(&Rfc2822).unwrap_or_default(),
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
