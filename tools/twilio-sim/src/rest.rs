//! The REST API subset: Calls create/fetch/update, Conferences list/fetch/update,
//! Participants create/list/fetch/update/delete, Recordings list/fetch with their media, and the
//! account's configuration: Applications (TwiML Apps) list/create/fetch/update/delete and
//! IncomingPhoneNumbers list/fetch/update; with Basic auth, a restricted API key's missing
//! permissions, and Twilio's error documents.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc2822;

use crate::call::AfterAnswer;
use crate::model::{API_VERSION, CallStatus, Callback, ConferenceStatus, Signal, Source, VoiceConfig, new_sid};
use crate::state::{
    ApplicationRecord, ConferenceRecord, NumberRecord, Participant, RecordingRecord, Sim, State as SimState,
};
use crate::timeline::Event;
use crate::twiml::{ConferenceOptions, Method, short_sid};

/// Twilio's error document: `{"code","message","more_info","status"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl RestError {
    fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn not_found(what: &str) -> Self {
        Self::new(404, 20404, format!("The requested resource {what} was not found"))
    }

    fn body(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        })
    }
}

type Reply = Result<(StatusCode, Value), RestError>;

pub fn router() -> Router<Sim> {
    Router::new()
        .route("/2010-04-01/Accounts/{account}/Calls.json", get(list_calls).post(create_call))
        .route("/2010-04-01/Accounts/{account}/Calls/{call}", get(fetch_call).post(update_call))
        .route("/2010-04-01/Accounts/{account}/Conferences.json", get(list_conferences))
        .route("/2010-04-01/Accounts/{account}/Conferences/{conference}", get(fetch_conference).post(update_conference))
        .route(
            "/2010-04-01/Accounts/{account}/Conferences/{conference}/Participants.json",
            get(list_participants).post(create_participant),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Conferences/{conference}/Participants/{participant}",
            get(fetch_participant).post(update_participant).delete(delete_participant),
        )
        .route("/2010-04-01/Accounts/{account}/Recordings.json", get(list_recordings))
        .route("/2010-04-01/Accounts/{account}/Calls/{call}/Recordings.json", get(list_call_recordings))
        .route("/2010-04-01/Accounts/{account}/Recordings/{recording}", get(fetch_recording))
        .route("/2010-04-01/Accounts/{account}/Applications.json", get(list_applications).post(create_application))
        .route(
            "/2010-04-01/Accounts/{account}/Applications/{application}",
            get(fetch_application).post(update_application).delete(delete_application),
        )
        .route("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json", get(list_numbers))
        .route("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{number}", get(fetch_number).post(update_number))
}

/// Every REST request goes through here: auth, the work, the timeline, the response.
fn respond(
    sim: &Sim,
    method: &HttpMethod,
    path: &str,
    summary: String,
    headers: &HeaderMap,
    account: &str,
    work: impl FnOnce() -> Reply,
) -> Response {
    let outcome =
        authorize(sim, headers, account).and_then(|()| permitted(sim, headers, method, path)).and_then(|()| work());
    let (status, body, summary) = match outcome {
        Ok((status, body)) => {
            let created = body.get("sid").or_else(|| body.get("call_sid")).and_then(Value::as_str);
            let summary = match created {
                Some(sid) if status == StatusCode::CREATED && sid.starts_with("CA") => {
                    format!("{summary} (call {})", short_sid(sid)).trim().to_owned()
                }
                Some(sid) if status == StatusCode::CREATED => format!("{summary} ({sid})").trim().to_owned(),
                _ => summary,
            };
            (status, body, summary)
        }
        Err(err) => {
            let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, err.body(), format!("{summary} [{} {}]", err.code, err.message).trim().to_owned())
        }
    };
    sim.record(
        None,
        None,
        Event::Rest { method: method.to_string(), path: path.to_owned(), summary, status: status.as_u16() },
    );
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, axum::Json(body)).into_response()
}

fn authorize(sim: &Sim, headers: &HeaderMap, account: &str) -> Result<(), RestError> {
    let config = sim.config();
    let credentials = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let accepted = credentials.as_deref().and_then(|c| c.split_once(':')).is_some_and(|(user, password)| {
        let with_key = config.api_key.as_deref() == Some(user) && config.api_secret.as_deref() == Some(password);
        let with_token = user == config.account_sid && password == config.auth_token;
        with_key || with_token
    });
    if !accepted {
        return Err(RestError::new(401, 20003, "Authenticate"));
    }
    if account != config.account_sid {
        return Err(RestError::not_found(&format!("/2010-04-01/Accounts/{account}")));
    }
    Ok(())
}

/// A restricted API key may only do what it was given permission for; the Auth Token may do
/// anything. Twilio answers a missing permission with 403 and code 70051.
fn permitted(sim: &Sim, headers: &HeaderMap, method: &HttpMethod, path: &str) -> Result<(), RestError> {
    let Some(key) = sim.config().api_key.as_deref() else { return Ok(()) };
    let with_key = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .is_some_and(|credentials| credentials.split_once(':').is_some_and(|(user, _)| user == key));
    // The resource is the path's segment after the account: `.../Accounts/AC…/Calls/CA….json`.
    let resource = path.split('/').nth(4).unwrap_or_default().trim_end_matches(".json");
    let denied = sim.state().denied.iter().any(|(m, r)| m == method.as_str() && r == resource);
    if with_key && denied {
        return Err(RestError::new(403, 70051, "Authorization Failed"));
    }
    Ok(())
}

/// Form fields in order, repeated names kept (`StatusCallbackEvent` repeats).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.given(name).filter(|v| !v.is_empty())
    }

    /// The value, even an empty one: on an update, an empty URL clears it.
    fn given(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split([' ', ',']).filter(|e| !e.is_empty()).map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, RestError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(RestError::new(400, 21200, format!("{name} must be true or false, not {other:?}"))),
        }
    }

    fn method(&self, name: &str) -> Result<Method, RestError> {
        self.method_or(name, Method::Post)
    }

    fn method_or(&self, name: &str, default: Method) -> Result<Method, RestError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => Method::parse(value)
                .ok_or_else(|| RestError::new(400, 21200, format!("{name} must be GET or POST, not {value:?}"))),
        }
    }

    fn callback(&self, prefix: &str) -> Result<Option<Callback>, RestError> {
        let Some(url) = self.get(&format!("{prefix}StatusCallback")) else {
            return Ok(None);
        };
        if !is_absolute_url(url) {
            return Err(RestError::new(400, 21609, format!("Invalid {prefix}StatusCallback URL: {url}")));
        }
        Ok(Some(Callback {
            url: url.to_owned(),
            method: self.method(&format!("{prefix}StatusCallbackMethod"))?,
            events: self.all(&format!("{prefix}StatusCallbackEvent")),
        }))
    }

    fn timeout(&self) -> Result<u32, RestError> {
        match self.get("Timeout") {
            None => Ok(60),
            Some(value) => value
                .parse::<u32>()
                .map(|seconds| seconds.clamp(1, 600))
                .map_err(|_| RestError::new(400, 21200, format!("Timeout must be a whole number, not {value:?}"))),
        }
    }
}

fn is_e164(value: &str) -> bool {
    value.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0')
    })
}

/// `client:<identity>`, perhaps with custom parameters for the device as a query string
/// (`client:alice?name=value`; see `split_client_address`).
fn is_client(value: &str) -> bool {
    let (address, _) = split_client_address(value);
    address.strip_prefix("client:").is_some_and(|identity| {
        !identity.is_empty() && identity.len() <= 121 && identity.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A `To` of `client:<identity>?name=value&…` (Twilio's Calls and Participants resources: custom
/// parameters for a Client ID "in the `to` field using query string notation"): the client's
/// address, and the parameters, decoded, that its Voice SDK sees as the incoming call's
/// `customParameters`. They are not webhook parameters. Any other address has none.
pub(crate) fn split_client_address(to: &str) -> (&str, Vec<(String, String)>) {
    match to.split_once('?') {
        Some((address, query)) if address.starts_with("client:") => {
            (address, form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        }
        _ => (to, Vec::new()),
    }
}

fn is_absolute_url(value: &str) -> bool {
    reqwest::Url::parse(value).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

fn checked_to_from(form: &Form) -> Result<(String, String), RestError> {
    let to = form.get("To").ok_or_else(|| RestError::new(400, 21201, "No 'To' number is specified"))?;
    if !is_e164(to) && !is_client(to) {
        return Err(RestError::new(400, 21211, format!("Invalid 'To' Phone Number: {to}")));
    }
    let from = form.get("From").ok_or_else(|| RestError::new(400, 21213, "A 'From' phone number is required."))?;
    if !is_e164(from) && !is_client(from) {
        return Err(RestError::new(400, 21212, format!("Invalid From Number (caller ID): {from}")));
    }
    Ok((to.to_owned(), from.to_owned()))
}

fn scaled_seconds(sim: &Sim, seconds: u32) -> Duration {
    sim.scaled(Duration::from_secs(u64::from(seconds)))
}

async fn create_call(State(sim): State<Sim>, Path(account): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    let summary = summarize(&form, &["To", "From", "Url", "Twiml", "Timeout", "StatusCallback"]);
    let mut launch = None;
    let response = respond(&sim, &HttpMethod::POST, &path, summary, &headers, &account, || {
        let (to, from) = checked_to_from(&form)?;
        let source = match (form.get("Url"), form.get("Twiml")) {
            (_, Some(twiml)) => Source::Twiml(twiml.to_owned()),
            (Some(url), None) if is_absolute_url(url) => {
                Source::Url { url: url.to_owned(), method: form.method("Method")? }
            }
            (Some(url), None) => return Err(RestError::new(400, 21205, format!("Url is not a valid URL: {url}"))),
            (None, None) if form.get("ApplicationSid").is_some() => {
                return Err(RestError::new(400, 21200, "ApplicationSid is not modelled by the simulator"));
            }
            (None, None) => return Err(RestError::new(400, 21205, "Url parameter is required.")),
        };
        let timeout = scaled_seconds(&sim, form.timeout()?);
        let callback = form.callback("")?;
        let placed = sim.place_call(&from, &to, AfterAnswer::Fetch(source), timeout, callback);
        let resource = call_resource(&sim, &placed.sid);
        launch = Some(placed);
        resource.map(|resource| (StatusCode::CREATED, resource))
    });
    if let Some(launch) = launch {
        launch.start();
    }
    response
}

async fn list_calls(State(sim): State<Sim>, Path(account): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let sids: Vec<String> = sim.calls().into_iter().rev().map(|call| call.sid).collect();
        let calls: Vec<Value> = sids.iter().filter_map(|sid| call_resource(&sim, sid).ok()).collect();
        Ok((StatusCode::OK, page("calls", &path, calls)))
    })
}

async fn fetch_call(
    State(sim): State<Sim>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{call}");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let sid = json_id(&call, &path)?;
        call_resource(&sim, sid).map(|resource| (StatusCode::OK, resource))
    })
}

async fn update_call(
    State(sim): State<Sim>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{call}");
    let summary = summarize(&form, &["Status", "Url", "Twiml"]);
    respond(&sim, &HttpMethod::POST, &path, summary, &headers, &account, || {
        let sid = json_id(&call, &path)?;
        let status = sim.call(sid).ok_or_else(|| RestError::not_found(&path))?.status;
        match form.get("Status") {
            Some("completed") => {
                if !status.is_final() {
                    sim.send(sid, Signal::Hangup { by: "the REST API (Status=completed)".into() });
                }
            }
            // Twilio: "canceled" hangs up a call that is queued or ringing, and does not
            // affect a call already in progress (or over); the answer is 200 either way.
            Some("canceled") => {
                if matches!(status, CallStatus::Queued | CallStatus::Ringing) {
                    sim.send(sid, Signal::Hangup { by: "the REST API (Status=canceled)".into() });
                }
            }
            Some(other) => return Err(RestError::new(400, 21200, format!("Status cannot be {other:?}"))),
            None => {
                let source = match (form.get("Url"), form.get("Twiml")) {
                    (_, Some(twiml)) => Source::Twiml(twiml.to_owned()),
                    (Some(url), None) if is_absolute_url(url) => {
                        Source::Url { url: url.to_owned(), method: form.method("Method")? }
                    }
                    (Some(url), None) => {
                        return Err(RestError::new(400, 21205, format!("Url is not a valid URL: {url}")));
                    }
                    (None, None) => return Err(RestError::new(400, 21200, "Give Status, Url or Twiml")),
                };
                if status != CallStatus::InProgress {
                    return Err(RestError::new(400, 21220, "Call is not in-progress. Cannot redirect."));
                }
                sim.send(sid, Signal::Redirect(source));
            }
        }
        call_resource(&sim, sid).map(|resource| (StatusCode::OK, resource))
    })
}

async fn list_conferences(
    State(sim): State<Sim>,
    Path(account): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Conferences.json");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let filter = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let (friendly_name, status) = (filter("FriendlyName"), filter("Status"));
        let state = sim.state();
        let conferences: Vec<Value> = state
            .conferences
            .iter()
            .rev()
            .filter(|c| friendly_name.as_ref().is_none_or(|name| &c.name == name))
            .filter(|c| status.as_deref().is_none_or(|status| conference_status(c.status) == status))
            .map(|c| conference_resource(&sim, c))
            .collect();
        Ok((StatusCode::OK, page("conferences", &path, conferences)))
    })
}

async fn fetch_conference(
    State(sim): State<Sim>,
    Path((account, conference)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Conferences/{conference}");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let sid = json_id(&conference, &path)?;
        let state = sim.state();
        let conference = state.conferences.iter().find(|c| c.sid == sid).ok_or_else(|| RestError::not_found(&path))?;
        Ok((StatusCode::OK, conference_resource(&sim, conference)))
    })
}

async fn update_conference(
    State(sim): State<Sim>,
    Path((account, conference)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/Conferences/{conference}");
    respond(&sim, &HttpMethod::POST, &path, summarize(&form, &["Status"]), &headers, &account, || {
        let sid = json_id(&conference, &path)?.to_owned();
        if !sim.state().conferences.iter().any(|c| c.sid == sid) {
            return Err(RestError::not_found(&path));
        }
        if form.get("Status") == Some("completed") {
            sim.end_conference(&sid, "ended through the REST API");
        }
        let state = sim.state();
        let conference = state.conferences.iter().find(|c| c.sid == sid).ok_or_else(|| RestError::not_found(&path))?;
        Ok((StatusCode::OK, conference_resource(&sim, conference)))
    })
}

/// The Participants API names a conference by SID or, when creating, by friendly name.
fn find_conference<'a>(state: &'a SimState, id: &str) -> Option<&'a ConferenceRecord> {
    state.conferences.iter().find(|c| c.sid == id)
}

async fn create_participant(
    State(sim): State<Sim>,
    Path((account, conference)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/Conferences/{conference}/Participants.json");
    let summary = summarize(&form, &["To", "From", "Label", "StartConferenceOnEnter", "EndConferenceOnExit"]);
    let mut launch = None;
    let response = respond(&sim, &HttpMethod::POST, &path, summary, &headers, &account, || {
        let (to, from) = checked_to_from(&form)?;
        let name = if conference.starts_with("CF") && conference.len() == 34 {
            let state = sim.state();
            let existing = find_conference(&state, &conference).ok_or_else(|| RestError::not_found(&path))?;
            if existing.status == ConferenceStatus::Completed {
                return Err(RestError::new(400, 21200, "The conference has ended"));
            }
            existing.name.clone()
        } else {
            conference.clone()
        };
        let wait_url = form.get("WaitUrl").map(str::to_owned);
        let options = ConferenceOptions {
            start_conference_on_enter: form.bool("StartConferenceOnEnter")?.unwrap_or(true),
            end_conference_on_exit: form.bool("EndConferenceOnExit")?.unwrap_or(false),
            wait_url,
            wait_method: form.method("WaitMethod")?,
            muted: form.bool("Muted")?.unwrap_or(false),
            status_callback: form.get("ConferenceStatusCallback").map(str::to_owned),
            status_callback_method: form.method("ConferenceStatusCallbackMethod")?,
            status_callback_events: form.all("ConferenceStatusCallbackEvent"),
            ..ConferenceOptions::named(name.clone())
        };
        let timeout = scaled_seconds(&sim, form.timeout()?);
        let label = form.get("Label").map(str::to_owned);
        let placed = sim.place_participant(&from, &to, options.clone(), label.clone(), timeout, form.callback("")?);
        let sid = placed.sid.clone();
        launch = Some(placed);
        Ok((
            StatusCode::CREATED,
            json!({
                "account_sid": sim.config().account_sid,
                "call_sid": sid,
                "label": label,
                "conference_sid": sim.conference(&name).map(|c| c.sid),
                "end_conference_on_exit": options.end_conference_on_exit,
                "start_conference_on_enter": options.start_conference_on_enter,
                "muted": options.muted,
                "hold": false,
                "coaching": false,
                "call_sid_to_coach": null,
                "status": "queued",
                "date_created": now(),
                "date_updated": now(),
                "uri": format!("{}/{sid}.json", path.trim_end_matches(".json")),
            }),
        ))
    });
    if let Some(launch) = launch {
        launch.start();
    }
    response
}

async fn list_participants(
    State(sim): State<Sim>,
    Path((account, conference)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Conferences/{conference}/Participants.json");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let state = sim.state();
        let record = find_conference(&state, &conference).ok_or_else(|| RestError::not_found(&path))?;
        let participants: Vec<Value> =
            record.participants.iter().map(|p| participant_resource(&sim, record, p)).collect();
        Ok((StatusCode::OK, page("participants", &path, participants)))
    })
}

fn with_participant<T>(
    sim: &Sim,
    conference: &str,
    participant: &str,
    path: &str,
    work: impl FnOnce(&ConferenceRecord, &Participant) -> T,
) -> Result<T, RestError> {
    let id = json_id(participant, path)?;
    let state = sim.state();
    let record = find_conference(&state, conference).ok_or_else(|| RestError::not_found(path))?;
    let found = record
        .participants
        .iter()
        .find(|p| p.call_sid == id || p.label.as_deref() == Some(id))
        .ok_or_else(|| RestError::not_found(path))?;
    Ok(work(record, found))
}

async fn fetch_participant(
    State(sim): State<Sim>,
    Path((account, conference, participant)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Conferences/{conference}/Participants/{participant}");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        with_participant(&sim, &conference, &participant, &path, |c, p| {
            (StatusCode::OK, participant_resource(&sim, c, p))
        })
    })
}

async fn update_participant(
    State(sim): State<Sim>,
    Path((account, conference, participant)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/Conferences/{conference}/Participants/{participant}");
    let summary = summarize(&form, &["Hold", "HoldUrl", "Muted", "EndConferenceOnExit"]);
    respond(&sim, &HttpMethod::POST, &path, summary, &headers, &account, || {
        let call_sid = with_participant(&sim, &conference, &participant, &path, |_, p| p.call_sid.clone())?;
        let (hold, muted, end_on_exit) = (form.bool("Hold")?, form.bool("Muted")?, form.bool("EndConferenceOnExit")?);
        let hold_url = form.get("HoldUrl").map(str::to_owned);
        // Twilio's default for `HoldMethod` is GET, unlike its other methods.
        let hold_method = form.method_or("HoldMethod", Method::Get)?;
        let mut changes = Vec::new();
        let name = {
            let mut state = sim.state();
            let record = state
                .conferences
                .iter_mut()
                .find(|c| c.sid == conference)
                .ok_or_else(|| RestError::not_found(&path))?;
            let name = record.name.clone();
            let p = record
                .participants
                .iter_mut()
                .find(|p| p.call_sid == call_sid)
                .ok_or_else(|| RestError::not_found(&path))?;
            // Twilio answers 200 but ignores EndConferenceOnExit while the participant is on
            // hold (and is applied before the hold change, so "unhold + change" works at once).
            if let Some(end_on_exit) = end_on_exit {
                if p.hold && hold != Some(false) {
                    changes.push("EndConferenceOnExit ignored: on hold".to_owned());
                } else {
                    p.end_conference_on_exit = end_on_exit;
                    changes.push(format!("endConferenceOnExit={end_on_exit}"));
                }
            }
            if let Some(muted) = muted {
                p.muted = muted;
                changes.push(format!("muted={muted}"));
            }
            if let Some(hold) = hold {
                p.hold = hold;
                changes.push(format!("hold={hold}"));
            }
            name
        };
        if let Some(hold) = hold {
            let signal = if hold { Signal::Hold { url: hold_url, method: hold_method } } else { Signal::Unhold };
            sim.send(&call_sid, signal);
            let params = with_participant(&sim, &conference, &format!("{call_sid}.json"), &path, |_, p| {
                crate::conference::participant_params(p)
            })?;
            sim.conference_event(&conference, if hold { "hold" } else { "unhold" }, params);
        }
        if let Some(muted) = muted {
            let params = with_participant(&sim, &conference, &format!("{call_sid}.json"), &path, |_, p| {
                crate::conference::participant_params(p)
            })?;
            sim.conference_event(&conference, if muted { "mute" } else { "unmute" }, params);
        }
        let party = sim.call(&call_sid).map(|call| call.party).unwrap_or_default();
        sim.record(
            Some(&call_sid),
            Some(&party),
            Event::ParticipantUpdated { conference: name, change: changes.join(", ") },
        );
        with_participant(&sim, &conference, &format!("{call_sid}.json"), &path, |c, p| {
            (StatusCode::OK, participant_resource(&sim, c, p))
        })
    })
}

async fn delete_participant(
    State(sim): State<Sim>,
    Path((account, conference, participant)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Conferences/{conference}/Participants/{participant}");
    respond(&sim, &HttpMethod::DELETE, &path, String::new(), &headers, &account, || {
        let call_sid = with_participant(&sim, &conference, &participant, &path, |_, p| p.call_sid.clone())?;
        sim.remove_participant(&conference, &call_sid);
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })
}

fn json_id<'a>(segment: &'a str, path: &str) -> Result<&'a str, RestError> {
    segment.strip_suffix(".json").ok_or_else(|| RestError::not_found(path))
}

fn summarize(form: &Form, names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|name| form.get(name).map(|value| format!("{name}={}", shorten_url(value))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// URLs in the timeline without their origin: the path is what tells steps apart.
fn shorten_url(value: &str) -> String {
    match value.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned())) {
        Some(path) => path,
        None => value.to_owned(),
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&Rfc2822).unwrap_or_default()
}

fn page(key: &str, path: &str, items: Vec<Value>) -> Value {
    json!({
        key: items,
        "first_page_uri": format!("{path}?PageSize=50&Page=0"),
        "next_page_uri": null,
        "previous_page_uri": null,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": 0,
        "uri": format!("{path}?PageSize=50&Page=0"),
    })
}

fn call_resource(sim: &Sim, sid: &str) -> Result<Value, RestError> {
    let account = sim.config().account_sid.clone();
    let state = sim.state();
    let call = state.calls.get(sid).ok_or_else(|| RestError::not_found(&format!("Call {sid}")))?;
    let duration = match (call.answered, call.ended) {
        (Some(answered), Some(ended)) => Some(ended.duration_since(answered).as_secs().to_string()),
        (None, Some(_)) => Some("0".to_owned()),
        _ => None,
    };
    let uri = format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json");
    Ok(json!({
        "account_sid": account,
        "annotation": null,
        "answered_by": null,
        "api_version": API_VERSION,
        "caller_name": null,
        "date_created": call.created_at.format(&Rfc2822).unwrap_or_default(),
        "date_updated": now(),
        "direction": call.direction,
        "duration": duration,
        "end_time": null,
        "forwarded_from": null,
        "from": call.from,
        "from_formatted": call.from,
        "group_sid": null,
        "parent_call_sid": call.parent_sid,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": call.sid,
        "start_time": null,
        "status": call.status.as_str(),
        "subresource_uris": {
            "notifications": format!("{}/Notifications.json", uri.trim_end_matches(".json")),
            "recordings": format!("{}/Recordings.json", uri.trim_end_matches(".json")),
        },
        "to": call.to,
        "to_formatted": call.to,
        "trunk_sid": null,
        "uri": uri,
    }))
}

async fn list_recordings(
    State(sim): State<Sim>,
    Path(account): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Recordings.json");
    let call = query.iter().find(|(name, _)| name == "CallSid").map(|(_, value)| value.clone());
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        Ok((StatusCode::OK, page("recordings", &path, recordings_of(&sim, call.as_deref()))))
    })
}

async fn list_call_recordings(
    State(sim): State<Sim>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{call}/Recordings.json");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        if sim.call(&call).is_none() {
            return Err(RestError::not_found(&path));
        }
        Ok((StatusCode::OK, page("recordings", &path, recordings_of(&sim, Some(&call)))))
    })
}

/// Newest first, like Twilio's lists.
fn recordings_of(sim: &Sim, call_sid: Option<&str>) -> Vec<Value> {
    let state = sim.state();
    state
        .recordings
        .iter()
        .rev()
        .filter(|recording| call_sid.is_none_or(|sid| recording.call_sid == sid))
        .map(|recording| recording_resource(sim, recording))
        .collect()
}

/// What a recording URL's extension asks for.
enum RecordingFormat {
    Json,
    Mp3,
    Wav,
}

/// `Recordings/{Sid}.json` is the resource; `{Sid}.mp3` the audio as MP3; `{Sid}.wav` and the
/// bare `{Sid}` (Twilio's default) the audio as WAV.
async fn fetch_recording(
    State(sim): State<Sim>,
    Path((account, recording)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Recordings/{recording}");
    let (sid, format) = match recording.rsplit_once('.') {
        Some((sid, "json")) => (sid, RecordingFormat::Json),
        Some((sid, "mp3")) => (sid, RecordingFormat::Mp3),
        Some((sid, "wav")) => (sid, RecordingFormat::Wav),
        Some(_) => ("", RecordingFormat::Json),
        None => (recording.as_str(), RecordingFormat::Wav),
    };
    let find = || {
        let state = sim.state();
        let found = state.recordings.iter().find(|r| r.sid == sid).ok_or_else(|| RestError::not_found(&path))?;
        Ok::<_, RestError>((recording_resource(&sim, found), found.status))
    };
    let media_type = match format {
        RecordingFormat::Json => {
            return respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
                find().map(|(resource, _)| (StatusCode::OK, resource))
            });
        }
        RecordingFormat::Mp3 => "audio/mpeg",
        RecordingFormat::Wav => "audio/x-wav",
    };
    // Media needs the same credentials as the API: Twilio's "Enforce HTTP Auth on Media URLs",
    // which every account created since mid-2023 has on for good.
    let outcome = authorize(&sim, &headers, &account).and_then(|()| {
        let (_, status) = find()?;
        // A silent recording was never stored: there is nothing to download.
        if status != "completed" {
            return Err(RestError::not_found(&path));
        }
        Ok(match format {
            RecordingFormat::Mp3 => silent_mp3(),
            _ => silent_wav(),
        })
    });
    let (status, summary) = match &outcome {
        Ok(bytes) => (StatusCode::OK, format!("{media_type}, {} bytes", bytes.len())),
        Err(err) => (
            StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST),
            format!("[{} {}]", err.code, err.message),
        ),
    };
    sim.record(
        None,
        None,
        Event::Rest { method: HttpMethod::GET.to_string(), path: path.clone(), summary, status: status.as_u16() },
    );
    match outcome {
        Ok(bytes) => (status, [(axum::http::header::CONTENT_TYPE, media_type)], bytes).into_response(),
        Err(err) => (status, axum::Json(err.body())).into_response(),
    }
}

/// A stand-in for the audio: a valid WAV file (8 kHz, 16-bit mono PCM, like Twilio's) holding
/// 20 ms of silence. The simulator has no audio; players and parsers only need a real file.
fn silent_wav() -> Vec<u8> {
    const SAMPLE_RATE: u32 = 8_000;
    const DATA_BYTES: u32 = SAMPLE_RATE * 2 / 50;
    let mut wav = Vec::with_capacity(44 + DATA_BYTES as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + DATA_BYTES).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&DATA_BYTES.to_le_bytes());
    wav.resize(44 + DATA_BYTES as usize, 0);
    wav
}

/// A stand-in MP3: three silent MPEG-1 Layer III frames (32 kbit/s, 32 kHz, mono), 144 bytes
/// each: a frame header, then all-zero side information and audio, which decoders play as
/// silence.
fn silent_mp3() -> Vec<u8> {
    const FRAME: [u8; 4] = [0xFF, 0xFB, 0x18, 0xC0];
    const FRAME_BYTES: usize = 144;
    let mut mp3 = Vec::with_capacity(3 * FRAME_BYTES);
    for _ in 0..3 {
        mp3.extend_from_slice(&FRAME);
        mp3.resize(mp3.len() + FRAME_BYTES - FRAME.len(), 0);
    }
    mp3
}

fn recording_resource(sim: &Sim, recording: &RecordingRecord) -> Value {
    let account = &sim.config().account_sid;
    let uri = format!("/2010-04-01/Accounts/{account}/Recordings/{}", recording.sid);
    let absent = recording.status != "completed";
    json!({
        "account_sid": account,
        "api_version": API_VERSION,
        "call_sid": recording.call_sid,
        "conference_sid": null,
        "channels": 1,
        "date_created": recording.created_at.format(&Rfc2822).unwrap_or_default(),
        "date_updated": recording.created_at.format(&Rfc2822).unwrap_or_default(),
        "start_time": recording.start_time.format(&Rfc2822).unwrap_or_default(),
        "duration": recording.duration_seconds.to_string(),
        "sid": recording.sid,
        "price": null,
        "price_unit": "USD",
        "status": recording.status,
        "source": "RecordVerb",
        "error_code": if absent { json!(crate::webhook::RECORDING_SILENT) } else { Value::Null },
        "encryption_details": null,
        "subresource_uris": {
            "add_on_results": format!("{uri}/AddOnResults.json"),
            "transcriptions": format!("{uri}/Transcriptions.json"),
        },
        "uri": format!("{uri}.json"),
        "media_url": sim.recording_url(&recording.sid),
    })
}

fn conference_status(status: ConferenceStatus) -> &'static str {
    match status {
        ConferenceStatus::Init => "init",
        ConferenceStatus::InProgress => "in-progress",
        ConferenceStatus::Completed => "completed",
    }
}

fn conference_resource(sim: &Sim, conference: &ConferenceRecord) -> Value {
    let account = &sim.config().account_sid;
    let uri = format!("/2010-04-01/Accounts/{account}/Conferences/{}.json", conference.sid);
    json!({
        "account_sid": account,
        "api_version": API_VERSION,
        "date_created": conference.created_at.format(&Rfc2822).unwrap_or_default(),
        "date_updated": now(),
        "friendly_name": conference.name,
        "reason_conference_ended": conference.ended_reason,
        "region": "us1",
        "sid": conference.sid,
        "status": conference_status(conference.status),
        "subresource_uris": { "participants": format!("{}/Participants.json", uri.trim_end_matches(".json")) },
        "uri": uri,
    })
}

fn participant_resource(sim: &Sim, conference: &ConferenceRecord, participant: &Participant) -> Value {
    let account = &sim.config().account_sid;
    json!({
        "account_sid": account,
        "call_sid": participant.call_sid,
        "call_sid_to_coach": null,
        "coaching": false,
        "conference_sid": conference.sid,
        "date_created": conference.created_at.format(&Rfc2822).unwrap_or_default(),
        "date_updated": now(),
        "end_conference_on_exit": participant.end_conference_on_exit,
        "hold": participant.hold,
        "label": participant.label,
        "muted": participant.muted,
        "start_conference_on_enter": participant.start_conference_on_enter,
        "status": "connected",
        "uri": format!(
            "/2010-04-01/Accounts/{account}/Conferences/{}/Participants/{}.json",
            conference.sid, participant.call_sid
        ),
    })
}

// --- The account's configuration: Applications and IncomingPhoneNumbers --------------------

/// Applies the voice parameters of a create or update to `voice`: a URL given empty is cleared,
/// one not given is kept; methods are `GET` or `POST`.
fn apply_voice(form: &Form, voice: &mut VoiceConfig) -> Result<(), RestError> {
    for (name, code, field) in [
        ("VoiceUrl", 21502, &mut voice.voice_url),
        ("VoiceFallbackUrl", 21502, &mut voice.voice_fallback_url),
        ("StatusCallback", 21609, &mut voice.status_callback),
    ] {
        match form.given(name) {
            None => {}
            Some("") => *field = None,
            Some(url) if is_absolute_url(url) => *field = Some(url.to_owned()),
            Some(url) => return Err(RestError::new(400, code, format!("Invalid {name}: {url}"))),
        }
    }
    for (name, field) in [
        ("VoiceMethod", &mut voice.voice_method),
        ("VoiceFallbackMethod", &mut voice.voice_fallback_method),
        ("StatusCallbackMethod", &mut voice.status_callback_method),
    ] {
        if form.given(name).is_some() {
            *field = form.method(name)?.as_str().to_owned();
        }
    }
    Ok(())
}

fn friendly_name(form: &Form) -> Result<Option<String>, RestError> {
    match form.given("FriendlyName") {
        Some(name) if name.chars().count() > 64 => {
            Err(RestError::new(400, 21200, "FriendlyName must be at most 64 characters"))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn rfc2822(time: time::OffsetDateTime) -> String {
    time.format(&Rfc2822).unwrap_or_default()
}

fn application_resource(sim: &Sim, app: &ApplicationRecord) -> Value {
    let account = &sim.config().account_sid;
    json!({
        "account_sid": account,
        "api_version": API_VERSION,
        "date_created": rfc2822(app.created_at),
        "date_updated": rfc2822(app.updated_at),
        "friendly_name": app.friendly_name,
        "message_status_callback": null,
        "public_application_connect_enabled": true,
        "sid": app.sid,
        "sms_fallback_method": "POST",
        "sms_fallback_url": null,
        "sms_method": "POST",
        "sms_status_callback": null,
        "sms_url": null,
        "status_callback": app.voice.status_callback,
        "status_callback_method": app.voice.status_callback_method,
        "uri": format!("/2010-04-01/Accounts/{account}/Applications/{}.json", app.sid),
        "voice_caller_id_lookup": false,
        "voice_fallback_method": app.voice.voice_fallback_method,
        "voice_fallback_url": app.voice.voice_fallback_url,
        "voice_method": app.voice.voice_method,
        "voice_url": app.voice.voice_url,
    })
}

fn number_resource(sim: &Sim, number: &NumberRecord) -> Value {
    let account = &sim.config().account_sid;
    json!({
        "account_sid": account,
        "address_requirements": "none",
        "address_sid": null,
        "api_version": API_VERSION,
        "beta": false,
        "bundle_sid": null,
        "capabilities": { "fax": false, "mms": true, "sms": true, "voice": true },
        "date_created": rfc2822(number.created_at),
        "date_updated": rfc2822(number.updated_at),
        "emergency_address_sid": null,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": number.friendly_name,
        "identity_sid": null,
        "origin": "twilio",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": "",
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": "POST",
        "sms_url": "",
        "status": "in-use",
        "status_callback": number.voice.status_callback.clone().unwrap_or_default(),
        "status_callback_method": number.voice.status_callback_method,
        "subresource_uris": {
            "assigned_add_ons": format!(
                "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{}/AssignedAddOns.json",
                number.sid
            ),
        },
        "trunk_sid": null,
        "uri": format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{}.json", number.sid),
        "voice_application_sid": number.voice_application_sid.clone().unwrap_or_default(),
        "voice_caller_id_lookup": false,
        "voice_fallback_method": number.voice.voice_fallback_method,
        "voice_fallback_url": number.voice.voice_fallback_url,
        "voice_method": number.voice.voice_method,
        "voice_receive_mode": "voice",
        "voice_url": number.voice.voice_url,
    })
}

/// `FriendlyName=` filters on the whole name, as Twilio does.
async fn list_applications(
    State(sim): State<Sim>,
    Path(account): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Applications.json");
    let name = query_value(&query, "FriendlyName").map(str::to_owned);
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let state = sim.state();
        let apps: Vec<Value> = state
            .applications
            .iter()
            .rev()
            .filter(|app| name.as_ref().is_none_or(|name| app.friendly_name.as_ref() == Some(name)))
            .map(|app| application_resource(&sim, app))
            .collect();
        Ok((StatusCode::OK, page("applications", &path, apps)))
    })
}

async fn create_application(
    State(sim): State<Sim>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/Applications.json");
    let summary = summarize(&form, &["FriendlyName", "VoiceUrl", "VoiceFallbackUrl"]);
    respond(&sim, &HttpMethod::POST, &path, summary, &headers, &account, || {
        let mut voice = VoiceConfig::default();
        apply_voice(&form, &mut voice)?;
        let now = time::OffsetDateTime::now_utc();
        let app = ApplicationRecord {
            sid: new_sid("AP"),
            friendly_name: friendly_name(&form)?,
            voice,
            created_at: now,
            updated_at: now,
        };
        let resource = application_resource(&sim, &app);
        let mut state = sim.state();
        // Twilio's limit per account.
        if state.applications.len() >= 1000 {
            return Err(RestError::new(400, 21200, "The account has 1000 applications already"));
        }
        state.applications.push(app);
        Ok((StatusCode::CREATED, resource))
    })
}

async fn fetch_application(
    State(sim): State<Sim>,
    Path((account, application)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Applications/{application}");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let sid = json_id(&application, &path)?;
        let state = sim.state();
        let app = state.applications.iter().find(|a| a.sid == sid).ok_or_else(|| RestError::not_found(&path))?;
        Ok((StatusCode::OK, application_resource(&sim, app)))
    })
}

/// Changes only what the request names; the rest stays as it was.
async fn update_application(
    State(sim): State<Sim>,
    Path((account, application)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/Applications/{application}");
    let summary = summarize(&form, &["FriendlyName", "VoiceUrl", "VoiceFallbackUrl"]);
    respond(&sim, &HttpMethod::POST, &path, summary, &headers, &account, || {
        let sid = json_id(&application, &path)?;
        let mut state = sim.state();
        let app = state.applications.iter_mut().find(|a| a.sid == sid).ok_or_else(|| RestError::not_found(&path))?;
        let mut voice = app.voice.clone();
        apply_voice(&form, &mut voice)?;
        let name = friendly_name(&form)?;
        app.voice = voice;
        if name.is_some() {
            app.friendly_name = name;
        }
        app.updated_at = time::OffsetDateTime::now_utc();
        Ok((StatusCode::OK, application_resource(&sim, app)))
    })
}

async fn delete_application(
    State(sim): State<Sim>,
    Path((account, application)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Applications/{application}");
    respond(&sim, &HttpMethod::DELETE, &path, String::new(), &headers, &account, || {
        let sid = json_id(&application, &path)?;
        let mut state = sim.state();
        let before = state.applications.len();
        state.applications.retain(|a| a.sid != sid);
        if state.applications.len() == before {
            return Err(RestError::not_found(&path));
        }
        // A number handled by the deleted application falls back to its own URLs.
        for number in &mut state.numbers {
            if number.voice_application_sid.as_deref() == Some(sid) {
                number.voice_application_sid = None;
            }
        }
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })
}

/// Twilio's `PhoneNumber` filter: a whole or partial number, `*` standing for any digit.
fn number_matches(number: &str, pattern: &str) -> bool {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let pattern: Vec<char> = pattern.chars().filter(|c| c.is_ascii_digit() || *c == '*').collect();
    if pattern.is_empty() {
        return true;
    }
    digits.windows(pattern.len()).any(|window| window.iter().zip(&pattern).all(|(d, p)| *p == '*' || d == p))
}

async fn list_numbers(
    State(sim): State<Sim>,
    Path(account): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json");
    let (number, name) =
        (query_value(&query, "PhoneNumber").map(str::to_owned), query_value(&query, "FriendlyName").map(str::to_owned));
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let state = sim.state();
        let numbers: Vec<Value> = state
            .numbers
            .iter()
            .filter(|n| number.as_ref().is_none_or(|pattern| number_matches(&n.phone_number, pattern)))
            .filter(|n| name.as_ref().is_none_or(|name| &n.friendly_name == name))
            .map(|n| number_resource(&sim, n))
            .collect();
        Ok((StatusCode::OK, page("incoming_phone_numbers", &path, numbers)))
    })
}

async fn fetch_number(
    State(sim): State<Sim>,
    Path((account, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{number}");
    respond(&sim, &HttpMethod::GET, &path, String::new(), &headers, &account, || {
        let sid = json_id(&number, &path)?;
        let state = sim.state();
        let number = state.numbers.iter().find(|n| n.sid == sid).ok_or_else(|| RestError::not_found(&path))?;
        Ok((StatusCode::OK, number_resource(&sim, number)))
    })
}

/// Changes only what the request names. `VoiceApplicationSid` must name one of the account's
/// applications, or be empty to use the number's own URLs again.
async fn update_number(
    State(sim): State<Sim>,
    Path((account, number)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{number}");
    let summary = summarize(&form, &["VoiceUrl", "VoiceFallbackUrl", "StatusCallback", "VoiceApplicationSid"]);
    respond(&sim, &HttpMethod::POST, &path, summary, &headers, &account, || {
        let sid = json_id(&number, &path)?;
        let mut state = sim.state();
        let application = match form.given("VoiceApplicationSid") {
            None => None,
            Some("") => Some(None),
            Some(app) if state.applications.iter().any(|a| a.sid == app) => Some(Some(app.to_owned())),
            Some(app) => {
                return Err(RestError::new(
                    400,
                    21200,
                    format!("VoiceApplicationSid {app} is not an application of this account"),
                ));
            }
        };
        let name = friendly_name(&form)?;
        let record = state.numbers.iter_mut().find(|n| n.sid == sid).ok_or_else(|| RestError::not_found(&path))?;
        let mut voice = record.voice.clone();
        apply_voice(&form, &mut voice)?;
        record.voice = voice;
        if let Some(application) = application {
            record.voice_application_sid = application;
        }
        if let Some(name) = name {
            record.friendly_name = name;
        }
        record.updated_at = time::OffsetDateTime::now_utc();
        Ok((StatusCode::OK, number_resource(&sim, record)))
    })
}
