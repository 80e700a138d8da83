//! The control API under `/sim/`, for scripts, `make demo` and tests written in any language:
//! start calls, script endpoints, hang up a party, press keys or talk on a call, read the
//! timeline and the recordings.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::model::{Behaviour, BrowserCall, CallbackMode, InboundCall};
use crate::state::Sim;
use crate::timeline::render;
use crate::twiml::DTMF_KEYS;

/// What a client needs to know about the simulator it talks to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub public_base_url: Option<String>,
    pub account_sid: String,
    pub phone_number: String,
    pub voice_url: String,
    pub twiml_app_voice_url: String,
    pub time_scale: f64,
}

#[derive(Debug, Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

#[derive(Debug, Deserialize)]
struct Note {
    text: String,
}

/// `POST /sim/calls/{sid}/digits`: keys the party presses, e.g. `{"digits": "1234#"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keys {
    pub digits: String,
}

/// `POST /sim/calls/{sid}/speak`: the party talks for this many (Twilio) seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Speech {
    pub seconds: u32,
}

pub fn router() -> Router<Sim> {
    Router::new()
        .route("/sim", get(info))
        .route("/sim/calls", get(calls))
        .route("/sim/calls/inbound", post(dial_in))
        .route("/sim/calls/browser", post(browser_call))
        .route("/sim/calls/{sid}", get(call))
        .route("/sim/calls/{sid}/hangup", post(hang_up))
        .route("/sim/calls/{sid}/answer", post(answer))
        .route("/sim/calls/{sid}/reject", post(reject))
        .route("/sim/calls/{sid}/digits", post(press))
        .route("/sim/calls/{sid}/speak", post(speak))
        .route("/sim/recordings", get(recordings))
        .route("/sim/conferences", get(conferences))
        .route("/sim/endpoints/{address}", put(set_behaviour).delete(clear_behaviour))
        .route("/sim/callbacks", put(set_callback_mode))
        .route("/sim/timeline", get(timeline))
        .route("/sim/timeline.txt", get(timeline_text))
        .route("/sim/notes", post(note))
        .route("/sim/reset", post(reset))
}

pub fn info_of(sim: &Sim) -> Info {
    let config = sim.config();
    Info {
        public_base_url: config.public_base_url.clone(),
        account_sid: config.account_sid.clone(),
        phone_number: config.phone_number.clone(),
        voice_url: config.voice_url.clone(),
        twiml_app_voice_url: config.twiml_app_voice_url.clone(),
        time_scale: config.time_scale,
    }
}

async fn info(State(sim): State<Sim>) -> Json<Info> {
    Json(info_of(&sim))
}

async fn calls(State(sim): State<Sim>) -> Response {
    Json(sim.calls()).into_response()
}

async fn call(State(sim): State<Sim>, Path(sid): Path<String>) -> Response {
    match sim.call(&sid) {
        Some(call) => Json(call).into_response(),
        None => not_found(&sid),
    }
}

async fn dial_in(State(sim): State<Sim>, Json(call): Json<InboundCall>) -> Response {
    (StatusCode::CREATED, Json(json!({ "sid": sim.dial_in(call) }))).into_response()
}

async fn browser_call(State(sim): State<Sim>, Json(call): Json<BrowserCall>) -> Response {
    if call.identity.is_empty() && call.token.is_none() {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "token or identity is required" }))).into_response();
    }
    match sim.browser_call(call) {
        Ok(sid) => (StatusCode::CREATED, Json(json!({ "sid": sid }))).into_response(),
        // What the SDK's `error` event carries when Twilio refuses to connect.
        Err(refused) => (StatusCode::UNAUTHORIZED, Json(json!({ "code": refused.code, "message": refused.message })))
            .into_response(),
    }
}

async fn hang_up(State(sim): State<Sim>, Path(sid): Path<String>) -> Response {
    accepted(sim.hang_up(&sid), &sid)
}

async fn answer(State(sim): State<Sim>, Path(sid): Path<String>) -> Response {
    accepted(sim.answer(&sid), &sid)
}

async fn reject(State(sim): State<Sim>, Path(sid): Path<String>) -> Response {
    accepted(sim.reject(&sid), &sid)
}

async fn press(State(sim): State<Sim>, Path(sid): Path<String>, Json(keys): Json<Keys>) -> Response {
    if keys.digits.is_empty() || !keys.digits.chars().all(|key| DTMF_KEYS.contains(key)) {
        let error = format!("digits must be keypad keys (0-9, * and #), not {:?}", keys.digits);
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    }
    accepted(sim.press(&sid, &keys.digits), &sid)
}

async fn speak(State(sim): State<Sim>, Path(sid): Path<String>, Json(speech): Json<Speech>) -> Response {
    accepted(sim.speak(&sid, speech.seconds), &sid)
}

async fn recordings(State(sim): State<Sim>) -> Response {
    Json(sim.recordings()).into_response()
}

async fn conferences(State(sim): State<Sim>) -> Response {
    Json(sim.conferences()).into_response()
}

async fn set_behaviour(
    State(sim): State<Sim>,
    Path(address): Path<String>,
    Json(behaviour): Json<Behaviour>,
) -> Response {
    sim.set_behaviour(&address, behaviour);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_behaviour(State(sim): State<Sim>, Path(address): Path<String>) -> Response {
    sim.state().endpoints.remove(&address);
    StatusCode::NO_CONTENT.into_response()
}

async fn set_callback_mode(State(sim): State<Sim>, Json(mode): Json<CallbackMode>) -> Response {
    sim.set_callback_mode(mode);
    StatusCode::NO_CONTENT.into_response()
}

async fn timeline(State(sim): State<Sim>, Query(since): Query<Since>) -> Response {
    Json(sim.timeline().entries_since(since.since)).into_response()
}

async fn timeline_text(State(sim): State<Sim>, Query(since): Query<Since>) -> Response {
    render(&sim.timeline().entries_since(since.since)).into_response()
}

async fn note(State(sim): State<Sim>, Json(note): Json<Note>) -> Response {
    sim.note(note.text);
    StatusCode::NO_CONTENT.into_response()
}

/// Hangs up every call and forgets scripted behaviours; the timeline stays (use `since`).
async fn reset(State(sim): State<Sim>) -> Response {
    sim.hang_up_everything();
    sim.clear_behaviours();
    sim.set_callback_mode(CallbackMode::default());
    Json(json!({ "timeline_length": sim.timeline().len() })).into_response()
}

fn accepted(found: bool, sid: &str) -> Response {
    if found { StatusCode::NO_CONTENT.into_response() } else { not_found(sid) }
}

fn not_found(sid: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no live call {sid}") }))).into_response()
}
