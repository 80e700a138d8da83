//! One module per endpoint, each with `pub async fn handle(app, req)`. Handlers always return
//! `Ok`: an `Err` from a Lambda becomes a 502 from API Gateway, which Twilio reads as an
//! application error.

pub mod call_connect;
pub mod conference_call_agent;
pub mod conference_connect_agent;
pub mod conference_connect_client;
pub mod conference_events;
pub mod conference_wait;
pub mod pages;
pub mod session;
pub mod tickets;
pub mod token;

use std::future::Future;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::App;
use crate::domain::{AgentId, CallSid};
use crate::error::AppError;
use crate::http;
use crate::twilio::{CallUpdate, OutboundCall, TwilioError, signature};
use crate::twiml::VoiceResponse;

/// Twilio waits 15 s for a webhook, but a caller waiting in silence hangs up long before that:
/// whatever is unfinished after this long is answered with fallback TwiML.
pub const WEBHOOK_DEADLINE: Duration = Duration::from_millis(2500);

/// A status callback's store writes and REST calls together (ringing an agent who cannot be
/// reached and then apologising would otherwise take two REST timeouts back to back): Twilio
/// gets every answer within 3 s. Work cut short leaves nothing stuck: the customer's hold music
/// comes back to `/conference/wait` at every turn, and that check finishes it.
pub const STATUS_CALLBACK_DEADLINE: Duration = WEBHOOK_DEADLINE;

/// How long an agent's browser rings before Twilio gives up (`no-answer`) and Warmline rings
/// the next agent; Twilio's own default, 60 s, is a long time for a customer on hold.
pub const AGENT_RING_SECONDS: u32 = 20;

/// A Twilio webhook whose signature has been checked.
#[derive(Debug)]
pub struct Webhook {
    params: Vec<(String, String)>,
    /// Where Twilio reaches us; callback URLs are built from it.
    pub base_url: String,
}

impl Webhook {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

fn verify_webhook(app: &App, req: &Request) -> Result<Webhook, AppError> {
    let signature = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|value| value.to_str().ok())
        .ok_or(AppError::Forbidden("missing X-Twilio-Signature"))?;
    let (Some(url), Some(base_url)) = (http::public_url(&app.config, req), http::public_base_url(&app.config, req))
    else {
        return Err(AppError::Forbidden("cannot tell which URL was requested"));
    };
    let params = http::form_params(req);
    if !signature::is_valid(app.config.twilio.auth_token.expose(), &url, &params, signature) {
        return Err(AppError::Forbidden("invalid X-Twilio-Signature"));
    }
    Ok(Webhook { params, base_url })
}

/// Checks the signature, then runs `work` under the webhook deadline, and answers TwiML
/// whatever happens: the work's own, fallback TwiML on failure, 403 for a forged request.
pub(crate) async fn answer_webhook<'a, F, Fut>(app: &'a App, req: &'a Request, work: F) -> Response<Body>
where
    F: FnOnce(Webhook) -> Fut,
    Fut: Future<Output = Result<VoiceResponse, AppError>> + 'a,
{
    answer_signed(app, req, WEBHOOK_DEADLINE, work, AppError::into_twiml_response).await
}

/// Like `answer_webhook`, for status callbacks: Twilio ignores what they answer, so success
/// and failure alike get an empty `<Response>` (a failure is logged), never a 5xx; a forged
/// request still gets 403.
pub(crate) async fn answer_status_callback<'a, F, Fut>(app: &'a App, req: &'a Request, work: F) -> Response<Body>
where
    F: FnOnce(Webhook) -> Fut,
    Fut: Future<Output = Result<(), AppError>> + 'a,
{
    let work = |webhook| {
        let done = work(webhook);
        async move { done.await.map(|()| VoiceResponse::new()) }
    };
    answer_signed(app, req, STATUS_CALLBACK_DEADLINE, work, AppError::into_status_callback_response).await
}

async fn answer_signed<'a, F, Fut>(
    app: &'a App,
    req: &'a Request,
    deadline: Duration,
    work: F,
    on_error: fn(AppError) -> Response<Body>,
) -> Response<Body>
where
    F: FnOnce(Webhook) -> Fut,
    Fut: Future<Output = Result<VoiceResponse, AppError>> + 'a,
{
    let webhook = match verify_webhook(app, req) {
        Ok(webhook) => webhook,
        Err(err) => return on_error(err),
    };
    let span = tracing::info_span!("webhook", call_sid = webhook.param("CallSid").unwrap_or_default());
    let outcome = tokio::time::timeout(deadline, work(webhook)).instrument(span).await;
    match outcome {
        Ok(Ok(twiml)) => http::twiml(&twiml),
        Ok(Err(err)) => on_error(err),
        Err(_) => on_error(AppError::Deadline),
    }
}

/// Runs a JSON endpoint's work and renders its result or error, with the headers every
/// browser-facing response carries.
pub(crate) async fn answer_json<Fut>(app: &App, req: &Request, work: Fut) -> Response<Body>
where
    Fut: Future<Output = Result<Response<Body>, AppError>>,
{
    let mut response = work.await.unwrap_or_else(AppError::into_json_response);
    http::harden(&app.config, req, &mut response);
    response
}

/// An agent id from the roster, or `None` for anything else.
pub(crate) fn rostered_agent<'a>(app: &'a App, id: &str) -> Option<&'a AgentId> {
    app.config.roster.find(id)
}

/// The URL Twilio fetches when `agent` answers a call that brings them into `conference`.
pub(crate) fn agent_join_path(conference: &CallSid, agent: &AgentId) -> String {
    format!("/conference/{conference}/connect/{agent}")
}

/// Where Twilio reports how a call Warmline placed to `agent` for `conference` ended.
pub(crate) fn agent_status_path(conference: &CallSid, agent: &AgentId) -> String {
    format!("/conference/{conference}/agents/{agent}/status")
}

/// Where Twilio reports a support conference's events (the customer's `<Conference>` asks).
pub(crate) fn conference_events_path(conference: &CallSid) -> String {
    format!("/conference/{conference}/events")
}

/// What became of a call placed to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rung {
    /// It rings, and the conference knows the call, so it can be canceled when it ends.
    Ringing(CallSid),
    /// The conference ended while the call was being placed; the call has been canceled.
    ConferenceGone,
}

/// Rings `agent` into `conference`: a bounded ring time, a status callback that tells Warmline
/// how the call ended, and the call's SID kept on the conference.
pub(crate) async fn ring_agent(
    app: &App,
    base_url: &str,
    conference: &CallSid,
    agent: &AgentId,
) -> Result<Rung, TwilioError> {
    let call = OutboundCall {
        timeout_seconds: Some(AGENT_RING_SECONDS),
        status_callback: Some(format!("{base_url}{}", agent_status_path(conference, agent))),
        ..OutboundCall::new(
            format!("client:{agent}"),
            app.config.twilio.number.to_string(),
            format!("{base_url}{}", agent_join_path(conference, agent)),
        )
    };
    let agent_call = app.dialer.place_call(&call).await?;
    match app.calls.add_agent_call(conference, &agent_call, app.clock.now()).await {
        Ok(true) => Ok(Rung::Ringing(agent_call)),
        Ok(false) => {
            tracing::info!(%agent, %agent_call, "the conference ended while the agent was dialed; canceling");
            cancel_call(app, &agent_call).await;
            Ok(Rung::ConferenceGone)
        }
        // Still ringing: if the conference ends before the agent answers, they are told so
        // then (conference-connect-agent finds no conference).
        Err(err) => {
            tracing::error!(error = %err, %agent, %agent_call, "could not remember the agent's call");
            Ok(Rung::Ringing(agent_call))
        }
    }
}

/// Stops a call that may still be ringing. Twilio refuses to cancel a call that was answered
/// or has ended, and that is fine, so a failure is only logged.
pub(crate) async fn cancel_call(app: &App, call: &CallSid) {
    match app.dialer.update_call(call, &CallUpdate::Cancel).await {
        Ok(()) => tracing::info!(%call, "canceled the agent's call"),
        Err(err) => tracing::info!(error = %err, %call, "could not cancel the agent's call (answered or over)"),
    }
}

/// The test kit, also compiled for the benchmarks (`--features testkit`); never in a Lambda.
#[cfg(any(test, feature = "testkit"))]
pub mod testing;
