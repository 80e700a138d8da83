//! Everything the simulator saw and did, in order: what tests assert on and what people read.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::twiml::{file_name, loop_text, short_sid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the timeline, from 0; `?since=` takes it.
    pub seq: u64,
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    /// Who this is about: `customer`, `agent1`, a phone number…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A call begins: a caller dials in, a browser places a call, or Twilio places one.
    CallStarted {
        direction: String,
        from: String,
        to: String,
    },
    /// A request to the REST API, whatever its outcome.
    Rest {
        method: String,
        path: String,
        summary: String,
        status: u16,
    },
    Ringing {
        to: String,
    },
    Answered,
    /// The other side did not take the call: `busy`, `no-answer`, `failed` or `canceled`.
    NotAnswered {
        status: String,
    },
    /// Twilio fetched TwiML (or sent a callback) and got this.
    Webhook {
        purpose: String,
        method: String,
        url: String,
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        twiml: Option<String>,
    },
    /// Twilio's error for a webhook answer it cannot use; the caller hears Twilio's apology.
    TwimlError {
        code: u32,
        message: String,
    },
    TwimlWarning {
        message: String,
    },
    /// `hold` is true for what a waiting conference participant hears (the waitUrl).
    Say {
        text: String,
        hold: bool,
    },
    Play {
        url: String,
        loop_count: u32,
        hold: bool,
    },
    Pause {
        seconds: u32,
        hold: bool,
    },
    /// Wait TwiML ran out of verbs: the caller hears nothing until the conference starts.
    HoldSilence,
    Dial {
        to: String,
        caller_id: Option<String>,
    },
    /// Two call legs are connected to each other (`<Dial><Number>` or `<Client>`).
    Bridged {
        with_call: String,
        with_party: String,
    },
    DialEnded {
        status: String,
    },
    ConferenceJoined {
        conference: String,
        start_conference_on_enter: bool,
        end_conference_on_exit: bool,
        waiting: bool,
    },
    ConferenceStarted {
        conference: String,
        participants: Vec<String>,
    },
    ConferenceLeft {
        conference: String,
        reason: String,
    },
    ConferenceEnded {
        conference: String,
        reason: String,
    },
    ParticipantUpdated {
        conference: String,
        change: String,
    },
    /// The party hung up, or the REST API ended the call.
    HungUp {
        by: String,
    },
    CallEnded {
        status: String,
        duration_ms: u64,
    },
    StatusCallback {
        url: String,
        event: String,
        status: Option<u16>,
    },
    /// `<Gather>` listens for keypad input (its prompts, if any, follow as `Say`/`Play`/`Pause`).
    GatherStarted {
        num_digits: Option<u32>,
        finish_on_key: String,
        timeout_seconds: u32,
    },
    /// The party pressed keys on the keypad, whether or not anything was listening.
    DigitsPressed {
        digits: String,
    },
    /// `<Gather>` is over: `ended_by` is `numDigits`, `finishOnKey` or `timeout`; `action`
    /// tells whether Twilio requests the action URL or goes on with the next verb.
    GatherEnded {
        digits: String,
        ended_by: String,
        action: bool,
    },
    /// The party talks for this many (Twilio) seconds, then falls silent.
    Spoke {
        seconds: u32,
    },
    /// `<Record>` starts recording the party.
    RecordingStarted {
        beep: bool,
        max_length_seconds: u32,
        timeout_seconds: u32,
    },
    /// `<Record>` stopped: `ended_by` is `timeout`, `maxLength`, `finishOnKey`, `hangup` or
    /// `redirect`. An empty recording holds no speech: Twilio skips the action URL then.
    RecordingCompleted {
        recording_sid: String,
        duration_seconds: u64,
        ended_by: String,
        empty: bool,
    },
    /// A remark from a script, e.g. what an agent clicked on the dashboard.
    Note {
        text: String,
    },
}

/// Append-only and shared; waiters are woken on every new entry.
#[derive(Debug)]
pub struct Timeline {
    started: Instant,
    entries: Mutex<Vec<Entry>>,
    changed: Notify,
}

impl Default for Timeline {
    fn default() -> Self {
        Self { started: Instant::now(), entries: Mutex::new(Vec::new()), changed: Notify::new() }
    }
}

impl Timeline {
    pub fn record(&self, call_sid: Option<&str>, party: Option<&str>, event: Event) {
        let at_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Ok(mut entries) = self.entries.lock() {
            let seq = entries.len() as u64;
            entries.push(Entry {
                seq,
                at_ms,
                call_sid: call_sid.map(str::to_owned),
                party: party.map(str::to_owned),
                event,
            });
        }
        self.changed.notify_waiters();
    }

    pub fn entries_since(&self, since: u64) -> Vec<Entry> {
        self.entries
            .lock()
            .map(|entries| entries.iter().skip(usize::try_from(since).unwrap_or(usize::MAX)).cloned().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> u64 {
        self.entries.lock().map(|entries| entries.len() as u64).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until some entry from `since` on satisfies `predicate`, and returns it.
    pub async fn wait_for(
        &self,
        since: u64,
        timeout: Duration,
        predicate: impl Fn(&Entry) -> bool,
    ) -> Result<Entry, Vec<Entry>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so an entry recorded in between still wakes us.
            notified.as_mut().enable();
            if let Some(entry) = self.entries_since(since).into_iter().find(|entry| predicate(entry)) {
                return Ok(entry);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.entries_since(since));
            }
        }
    }
}

/// The timeline for people: one line per entry, seconds relative to the first one.
pub fn render(entries: &[Entry]) -> String {
    let start = entries.first().map_or(0, |entry| entry.at_ms);
    let mut text = String::new();
    for entry in entries {
        let at = entry.at_ms.saturating_sub(start);
        let who = who(entry);
        let _ = writeln!(text, "{:>4}.{:03}s  {who:<14} {}", at / 1000, at % 1000, describe(entry));
    }
    text
}

fn who(entry: &Entry) -> String {
    match &entry.event {
        Event::Rest { .. } => "Warmline→REST".into(),
        Event::Webhook { purpose, .. } if purpose == "status callback" => "Twilio→app".into(),
        Event::ConferenceStarted { .. } | Event::ConferenceEnded { .. } => "conference".into(),
        Event::Note { .. } => "script".into(),
        _ => match (&entry.party, &entry.call_sid) {
            (Some(party), Some(sid)) => format!("{party} {}", short_sid(sid).get(..4).unwrap_or_default()),
            (Some(party), None) => party.clone(),
            (None, Some(sid)) => short_sid(sid),
            (None, None) => "Twilio".into(),
        },
    }
}

fn describe(entry: &Entry) -> String {
    let sid = entry.call_sid.as_deref().map(short_sid).unwrap_or_default();
    match &entry.event {
        Event::CallStarted { direction, from, to } => match direction.as_str() {
            "inbound" if from.starts_with("client:") => format!("{sid} browser call from {from} (To={to:?})"),
            "inbound" => format!("{sid} dials {to} from {from}"),
            "outbound-api" => format!("{sid} Twilio places a call {from} → {to}"),
            _ => format!("{sid} Twilio dials {to} (leg of a <Dial>)"),
        },
        Event::Rest { method, path, summary, status } => {
            format!("{method} {} {} → {status}", shorten_sids(&rest_resource(path)), shorten_sids(summary))
        }
        Event::Ringing { to } => format!("rings ({to})"),
        Event::Answered => "answers".into(),
        Event::NotAnswered { status } => format!("does not answer: {status}"),
        Event::Webhook { purpose, method, url, status, twiml } => {
            let status = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            match twiml {
                Some(twiml) => format!("{purpose}: {method} {} → {status}: {twiml}", url_path(url)),
                None => format!("{purpose}: {method} {} → {status}", url_path(url)),
            }
        }
        Event::TwimlError { code, message } => format!("Twilio error {code}: {message}"),
        Event::TwimlWarning { message } => format!("Twilio warning 12200: {message}"),
        Event::Say { text, hold } => format!("{}Say {:?}", hold_prefix(*hold), text),
        Event::Play { url, loop_count, hold } => {
            format!("{}Play {}{}", hold_prefix(*hold), file_name(url), loop_text(*loop_count))
        }
        Event::Pause { seconds, hold } => format!("{}Pause {seconds}s", hold_prefix(*hold)),
        Event::HoldSilence => "hold: the wait TwiML ran out: SILENCE until the conference starts".into(),
        Event::Dial { to, caller_id } => match caller_id {
            Some(caller_id) => format!("Dial {to} (callerId {caller_id})"),
            None => format!("Dial {to}"),
        },
        Event::Bridged { with_call, with_party } => format!("connected with {with_party} {}", short_sid(with_call)),
        Event::DialEnded { status } => format!("the dialed leg ended ({status}); TwiML continues after <Dial>"),
        Event::ConferenceJoined { conference, start_conference_on_enter, end_conference_on_exit, waiting } => {
            let mut flags = Vec::new();
            flags.push(if *start_conference_on_enter { "startConferenceOnEnter" } else { "waits for a moderator" });
            if *end_conference_on_exit {
                flags.push("endConferenceOnExit");
            }
            let state = if *waiting { "waits, hears the hold music" } else { "talking" };
            format!("joins conference {} ({}): {state}", short_sid(conference), flags.join(", "))
        }
        Event::ConferenceStarted { conference, participants } => {
            format!("{} starts: {} talk", short_sid(conference), participants.join(", "))
        }
        Event::ConferenceLeft { conference, reason } => {
            format!("leaves conference {} ({reason})", short_sid(conference))
        }
        Event::ConferenceEnded { conference, reason } => format!("{} ends ({reason})", short_sid(conference)),
        Event::ParticipantUpdated { conference, change } => format!("in {}: {change}", short_sid(conference)),
        Event::HungUp { by } if entry.party.as_deref() == Some(by.as_str()) => "hangs up".into(),
        Event::HungUp { by } => format!("disconnected by {by}"),
        Event::CallEnded { status, duration_ms } => {
            format!("{sid} call ends: {status} after {}.{:01}s", duration_ms / 1000, duration_ms % 1000 / 100)
        }
        Event::StatusCallback { url, event, status } => {
            let status = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            format!("status callback {event} → {} → {status}", url_path(url))
        }
        Event::GatherStarted { num_digits, finish_on_key, timeout_seconds } => {
            let mut limits = Vec::new();
            if let Some(digits) = num_digits {
                limits.push(format!("numDigits={digits}"));
            }
            if !finish_on_key.is_empty() {
                limits.push(format!("finishOnKey={finish_on_key}"));
            }
            limits.push(format!("timeout={timeout_seconds}s"));
            format!("Gather: listens for keys ({})", limits.join(", "))
        }
        Event::DigitsPressed { digits } => format!("presses {digits}"),
        Event::GatherEnded { digits, ended_by, action } => {
            let entered = if digits.is_empty() { "no input".to_owned() } else { format!("Digits={digits}") };
            let next = if *action { "Twilio requests the action URL" } else { "TwiML continues after <Gather>" };
            format!("Gather ends ({ended_by}): {entered}; {next}")
        }
        Event::Spoke { seconds } => format!("speaks for {seconds}s"),
        Event::RecordingStarted { beep, max_length_seconds, timeout_seconds } => {
            let beep = if *beep { "beep, " } else { "" };
            format!("Record: {beep}records (maxLength={max_length_seconds}s, silence timeout={timeout_seconds}s)")
        }
        Event::RecordingCompleted { recording_sid, duration_seconds, ended_by, empty } => {
            if *empty {
                format!("recording {} ends ({ended_by}): empty, no action request", short_sid(recording_sid))
            } else {
                format!("recording {} ends ({ended_by}): {duration_seconds}s", short_sid(recording_sid))
            }
        }
        Event::Note { text } => text.clone(),
    }
}

fn hold_prefix(hold: bool) -> &'static str {
    if hold { "hold: " } else { "" }
}

fn rest_resource(path: &str) -> String {
    path.split_once("/Accounts/")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map_or_else(|| path.to_owned(), |(_, resource)| resource.to_owned())
}

/// A URL without its origin, SIDs in it shortened: the path is what tells the steps apart.
fn url_path(url: &str) -> String {
    let path = url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])).unwrap_or(url);
    shorten_sids(path)
}

pub fn shorten_sids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_uppercase()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let candidate = rest.get(..34).filter(|c| {
            c.as_bytes()[..2].iter().all(u8::is_ascii_uppercase) && c[2..].chars().all(|ch| ch.is_ascii_hexdigit())
        });
        match candidate {
            Some(sid) => {
                out.push_str(&short_sid(sid));
                rest = &rest[34..];
            }
            None => {
                let len = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..len]);
                rest = &rest[len..];
            }
        }
    }
    out.push_str(rest);
    out
}
