//! Twilio's side of webhooks: the parameters it sends, the signature, what it accepts back
//! (with its error codes), and status callbacks.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::model::{API_VERSION, Callback, PendingCallback, Source, new_sid};
use crate::state::{RecordingRecord, Sim};
use crate::timeline::Event;
use crate::twiml::{self, Context, Document, Method, TwimlError};

pub const HTTP_RETRIEVAL_FAILURE: u32 = 11200;
pub const HTTP_CONNECTION_FAILURE: u32 = 11205;
pub const INVALID_CONTENT_TYPE: u32 = 12300;
/// "Voice Recording: Unavailable because recording is silent".
pub const RECORDING_SILENT: u32 = 16102;

/// A TwiML document and the URL it came from (relative URLs in it resolve against that).
pub(crate) struct Fetched {
    pub document: Document,
    pub url: Option<String>,
}

impl Sim {
    /// The parameters of every voice webhook about this call, as they are now.
    pub(crate) fn call_params(&self, call_sid: &str) -> Vec<(String, String)> {
        let state = self.state();
        let Some(call) = state.calls.get(call_sid) else {
            return Vec::new();
        };
        let mut params = vec![
            ("AccountSid".to_owned(), self.0.config.account_sid.clone()),
            ("ApiVersion".to_owned(), API_VERSION.to_owned()),
            ("CallSid".to_owned(), call.sid.clone()),
            ("CallStatus".to_owned(), call.status.as_str().to_owned()),
            ("Called".to_owned(), call.to.clone()),
            ("Caller".to_owned(), call.from.clone()),
            ("Direction".to_owned(), call.direction.to_owned()),
            ("From".to_owned(), call.from.clone()),
            ("To".to_owned(), call.to.clone()),
        ];
        if let Some(parent) = &call.parent_sid {
            params.push(("ParentCallSid".to_owned(), parent.clone()));
        }
        if let Some(application) = &call.application_sid {
            params.push(("ApplicationSid".to_owned(), application.clone()));
        }
        params
    }

    /// Requests TwiML for a call and checks it the way Twilio does. Every outcome lands in the
    /// timeline; an `Err` means Twilio would give up on the call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fetch_twiml(
        &self,
        call_sid: &str,
        party: &str,
        purpose: &str,
        source: &Source,
        base_url: Option<&str>,
        extra: Vec<(String, String)>,
        context: Context,
        forge_signature: bool,
    ) -> Result<Fetched, TwimlError> {
        let (url, method) = match source {
            Source::Twiml(xml) => {
                let outcome = twiml::parse(xml, context);
                self.record(
                    Some(call_sid),
                    Some(party),
                    Event::Webhook {
                        purpose: purpose.into(),
                        method: "REST".into(),
                        url: "inline Twiml".into(),
                        status: None,
                        twiml: outcome.as_ref().ok().map(ToString::to_string),
                    },
                );
                return self.checked(call_sid, party, outcome).map(|document| Fetched { document, url: None });
            }
            Source::Url { url, method } => (resolve(base_url, url), *method),
        };
        let mut params = self.call_params(call_sid);
        params.extend(extra);
        let token = if forge_signature {
            format!("forged-{}", self.0.config.auth_token)
        } else {
            self.0.config.auth_token.clone()
        };
        let response = send(&self.0.http, &token, &url, method, &params).await;

        let outcome = match response {
            Err(err) => {
                self.record(
                    Some(call_sid),
                    Some(party),
                    Event::Webhook {
                        purpose: purpose.into(),
                        method: method.as_str().into(),
                        url: url.clone(),
                        status: None,
                        twiml: None,
                    },
                );
                let what = if err.is_timeout() { "the request timed out" } else { "could not connect" };
                Err(TwimlError { code: HTTP_CONNECTION_FAILURE, message: format!("HTTP connection failure: {what}") })
            }
            Ok((status, content_type, body)) => {
                let outcome = judge(status, content_type.as_deref(), &body, context);
                self.record(
                    Some(call_sid),
                    Some(party),
                    Event::Webhook {
                        purpose: purpose.into(),
                        method: method.as_str().into(),
                        url: url.clone(),
                        status: Some(status),
                        twiml: outcome.as_ref().ok().map(ToString::to_string),
                    },
                );
                outcome
            }
        };
        self.checked(call_sid, party, outcome).map(|document| Fetched { document, url: Some(url) })
    }

    /// Requests a URL for a call that is already over (a `<Record>` the caller hung up on):
    /// Twilio still tells the app, but there is no call left to run an answer on.
    pub(crate) async fn notify_ended_call(
        &self,
        call_sid: &str,
        party: &str,
        purpose: &str,
        url: &str,
        method: Method,
        extra: Vec<(String, String)>,
    ) {
        let mut params = self.call_params(call_sid);
        params.extend(extra);
        let outcome = send(&self.0.http, &self.0.config.auth_token, url, method, &params).await;
        self.record(
            Some(call_sid),
            Some(party),
            Event::Webhook {
                purpose: purpose.into(),
                method: method.as_str().into(),
                url: url.to_owned(),
                status: outcome.ok().map(|(status, _, _)| status),
                twiml: None,
            },
        );
    }

    /// `https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}`, on
    /// this simulator: fetching it gives WAV, `.mp3` MP3, `.json` the resource.
    pub(crate) fn recording_url(&self, recording_sid: &str) -> String {
        format!(
            "{}/{API_VERSION}/Accounts/{}/Recordings/{recording_sid}",
            self.api_base_url(),
            self.0.config.account_sid
        )
    }

    /// A `recordingStatusCallback` request for the recording's status (`in-progress`,
    /// `completed`, `absent`), if the `<Record>` asked for that event. It goes out on the
    /// recording's own queue, apart from the call's, so the call's TwiML carries on meanwhile as
    /// on Twilio.
    pub(crate) fn recording_event(&self, recording: &RecordingRecord, callback: &Callback) {
        let status = recording.status;
        if callback.events.iter().any(|event| event == status) {
            let pending = self.recording_callback(recording, status, callback);
            self.dispatch(&recording.sid, pending);
        }
        // The recording's last event: `reverse` mode lets what it held go, and the queue retires.
        if status != "in-progress" {
            self.flush_callbacks(&recording.sid);
        }
    }

    fn recording_callback(&self, recording: &RecordingRecord, status: &str, callback: &Callback) -> PendingCallback {
        let mut params = vec![
            ("RecordingSource".to_owned(), "RecordVerb".to_owned()),
            ("RecordingSid".to_owned(), recording.sid.clone()),
            ("RecordingUrl".to_owned(), self.recording_url(&recording.sid)),
            ("RecordingStatus".to_owned(), status.to_owned()),
            ("RecordingChannels".to_owned(), "1".to_owned()),
        ];
        match status {
            "completed" => params.push(("ErrorCode".to_owned(), "0".to_owned())),
            // Twilio's warning for a recording it found silent and did not store.
            "absent" => params.push(("ErrorCode".to_owned(), RECORDING_SILENT.to_string())),
            _ => {}
        }
        params.push(("CallSid".to_owned(), recording.call_sid.clone()));
        params.push(("RecordingStartTime".to_owned(), recording.start_time.format(&Rfc2822).unwrap_or_default()));
        params.push(("AccountSid".to_owned(), self.0.config.account_sid.clone()));
        if status != "in-progress" {
            params.push(("RecordingDuration".to_owned(), recording.duration_seconds.to_string()));
        }
        let party = self.state().calls.get(&recording.call_sid).map(|call| call.party.clone());
        PendingCallback {
            url: callback.url.clone(),
            method: callback.method,
            params,
            event: format!("recording {status}"),
            call_sid: Some(recording.call_sid.clone()),
            party,
        }
    }

    fn checked(
        &self,
        call_sid: &str,
        party: &str,
        outcome: Result<Document, TwimlError>,
    ) -> Result<Document, TwimlError> {
        match outcome {
            Ok(document) => {
                for warning in &document.warnings {
                    self.record(Some(call_sid), Some(party), Event::TwimlWarning { message: warning.clone() });
                }
                Ok(document)
            }
            Err(err) => {
                self.record(
                    Some(call_sid),
                    Some(party),
                    Event::TwimlError { code: err.code, message: err.message.clone() },
                );
                Err(err)
            }
        }
    }

    /// A call progress event (`initiated`, `ringing`, `answered`, `completed`), if the call
    /// asked for it; `completed` is sent whenever there is a callback URL, like Twilio does.
    pub(crate) fn call_progress(&self, call_sid: &str, event: &str) {
        let pending = {
            let mut state = self.state();
            let Some(call) = state.calls.get_mut(call_sid) else {
                return;
            };
            let Some(callback) = call.status_callback.clone() else {
                return;
            };
            if event != "completed" && !callback.events.iter().any(|e| e == event) {
                return;
            }
            call.callback_sequence += 1;
            let sequence = call.callback_sequence - 1;
            let duration = match (call.answered, call.ended) {
                (Some(answered), Some(ended)) => Some(ended.duration_since(answered).as_secs()),
                (None, Some(_)) => Some(0),
                _ => None,
            };
            let party = call.party.clone();
            drop(state);
            let mut params = self.call_params(call_sid);
            params.push(("CallbackSource".into(), "call-progress-events".into()));
            params.push(("SequenceNumber".into(), sequence.to_string()));
            params.push(("Timestamp".into(), now_rfc2822()));
            if let Some(seconds) = duration {
                params.push(("CallDuration".into(), seconds.to_string()));
                params.push(("Duration".into(), seconds.div_ceil(60).to_string()));
            }
            PendingCallback {
                url: callback.url,
                method: callback.method,
                params,
                event: event.to_owned(),
                call_sid: Some(call_sid.to_owned()),
                party: Some(party),
            }
        };
        self.dispatch(call_sid, pending);
    }

    /// A conference event (`start`, `end`, `join`, `leave`, `hold`, `mute`…), if the
    /// conference's first participant asked for it.
    pub(crate) fn conference_event(&self, conference_sid: &str, event: &str, extra: Vec<(String, String)>) {
        let pending = {
            let mut state = self.state();
            let Some(conference) = state.conferences.iter_mut().find(|c| c.sid == conference_sid) else {
                return;
            };
            let Some(callback) = conference.callback.clone() else {
                return;
            };
            // Subscribing to `hold` brings `participant-unhold` too, and `mute` `participant-unmute`.
            let subscribed = match event {
                "unhold" => "hold",
                "unmute" => "mute",
                other => other,
            };
            if !callback.events.iter().any(|e| e == subscribed) {
                return;
            }
            conference.callback_sequence += 1;
            let mut params = vec![
                ("AccountSid".to_owned(), self.0.config.account_sid.clone()),
                ("ConferenceSid".to_owned(), conference.sid.clone()),
                ("FriendlyName".to_owned(), conference.name.clone()),
                ("StatusCallbackEvent".to_owned(), conference_event_name(event).to_owned()),
                ("SequenceNumber".to_owned(), conference.callback_sequence.to_string()),
                ("Timestamp".to_owned(), now_rfc2822()),
            ];
            params.extend(extra);
            PendingCallback {
                url: callback.url,
                method: callback.method,
                params,
                event: conference_event_name(event).to_owned(),
                call_sid: None,
                party: None,
            }
        };
        self.dispatch(conference_sid, pending);
    }

    fn dispatch(&self, key: &str, pending: PendingCallback) {
        let mut state = self.state();
        if state.callback_mode.reverse {
            state.pending_callbacks.entry(key.to_owned()).or_default().push(pending);
            return;
        }
        drop(state);
        self.enqueue(key, pending);
    }

    /// Sends what `reverse` mode held back for a call or conference that has ended, newest
    /// first, then retires its queue.
    pub(crate) fn flush_callbacks(&self, key: &str) {
        let held = self.state().pending_callbacks.remove(key).unwrap_or_default();
        for pending in held.into_iter().rev() {
            self.enqueue(key, pending);
        }
        self.state().callback_queues.remove(key);
    }

    fn enqueue(&self, key: &str, pending: PendingCallback) {
        let mut state = self.state();
        let duplicate = state.callback_mode.duplicate;
        let queue = state.callback_queues.entry(key.to_owned()).or_insert_with(|| {
            let (queue, mut pending) = tokio::sync::mpsc::unbounded_channel::<PendingCallback>();
            let sim = self.clone();
            tokio::spawn(async move {
                while let Some(callback) = pending.recv().await {
                    sim.deliver_now(&callback).await;
                }
            });
            queue
        });
        if duplicate {
            let _ = queue.send(pending.clone());
        }
        let _ = queue.send(pending);
    }

    async fn deliver_now(&self, pending: &PendingCallback) {
        let outcome =
            send(&self.0.http, &self.0.config.auth_token, &pending.url, pending.method, &pending.params).await;
        self.record(
            pending.call_sid.as_deref(),
            pending.party.as_deref(),
            Event::StatusCallback {
                url: pending.url.clone(),
                event: pending.event.clone(),
                status: outcome.ok().map(|(status, _, _)| status),
            },
        );
    }
}

/// Twilio's verdict on a webhook answer.
pub fn judge(status: u16, content_type: Option<&str>, body: &str, context: Context) -> Result<Document, TwimlError> {
    if !(200..300).contains(&status) {
        return Err(TwimlError {
            code: HTTP_RETRIEVAL_FAILURE,
            message: format!("HTTP retrieval failure: the webhook answered {status}"),
        });
    }
    let media_type = content_type.and_then(|value| value.split(';').next()).map(|v| v.trim().to_ascii_lowercase());
    match media_type.as_deref() {
        Some("text/xml" | "application/xml" | "text/html") => twiml::parse(body, context),
        Some(other) => Err(TwimlError {
            code: INVALID_CONTENT_TYPE,
            message: format!("Invalid Content-Type: {other} is not TwiML"),
        }),
        None => Err(TwimlError { code: INVALID_CONTENT_TYPE, message: "Invalid Content-Type: none was given".into() }),
    }
}

/// One signed request as Twilio sends it: a form body for POST, the parameters in the query
/// for GET (and then the signature covers that whole URL).
async fn send(
    http: &reqwest::Client,
    auth_token: &str,
    url: &str,
    method: Method,
    params: &[(String, String)],
) -> Result<(u16, Option<String>, String), reqwest::Error> {
    let request = match method {
        Method::Post => {
            let signature = signature(auth_token, url, params);
            http.post(url).header("X-Twilio-Signature", signature).form(params)
        }
        Method::Get => {
            let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
            let separator = if url.contains('?') { '&' } else { '?' };
            let full = format!("{url}{separator}{query}");
            let signature = signature(auth_token, &full, &[]);
            http.get(full).header("X-Twilio-Signature", signature)
        }
    };
    let response = request.header("I-Twilio-Idempotency-Token", new_sid("")).send().await?;
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.text().await?;
    Ok((status, content_type, body))
}

/// `X-Twilio-Signature` for a request to `url` (exactly as requested, query included) with form
/// `params`. Written out here rather than taken from Warmline so that an end-to-end test can
/// catch a signature bug there instead of repeating it on both sides.
fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut values_by_name: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        values_by_name.entry(name).or_default().insert(value);
    }
    let mut signed = url.to_owned();
    for (name, values) in &values_by_name {
        for value in values {
            signed.push_str(name);
            signed.push_str(value);
        }
    }
    // HMAC takes keys of any length, so this never fails.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(signed.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Twilio resolves relative TwiML URLs against the URL of the document that holds them.
pub fn resolve(base: Option<&str>, url: &str) -> String {
    match base.and_then(|base| reqwest::Url::parse(base).ok()) {
        Some(base) if reqwest::Url::parse(url).is_err() => base.join(url).map_or_else(|_| url.to_owned(), String::from),
        _ => url.to_owned(),
    }
}

fn conference_event_name(event: &str) -> &str {
    match event {
        "start" => "conference-start",
        "end" => "conference-end",
        "join" => "participant-join",
        "leave" => "participant-leave",
        "mute" => "participant-mute",
        "hold" => "participant-hold",
        "unhold" => "participant-unhold",
        "unmute" => "participant-unmute",
        "modify" => "participant-modify",
        other => other,
    }
}

pub(crate) fn now_rfc2822() -> String {
    OffsetDateTime::now_utc().format(&Rfc2822).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::signature;

    const AUTH_TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    fn voice_params() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn signs_twilios_documented_example() {
        assert_eq!(signature(AUTH_TOKEN, URL, &voice_params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut reversed = voice_params();
        reversed.reverse();
        assert_eq!(signature(AUTH_TOKEN, URL, &reversed), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn repeated_names_sign_their_distinct_values_sorted() {
        let repeated = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(signature(AUTH_TOKEN, URL, &repeated), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn the_host_is_signed_as_written() {
        let url = "https://MyCompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature(AUTH_TOKEN, url, &voice_params()), "g9IN/x4Cft2g517EjYvEvM/W7LU=");
    }

    #[test]
    fn the_port_is_signed_as_written() {
        let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert_eq!(signature(AUTH_TOKEN, url, &voice_params()), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
    }
}
