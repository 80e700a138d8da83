//! One module per endpoint, each with `pub async fn handle(app, req)`. Handlers always return
//! `Ok`: an `Err` from a Lambda becomes a 502 from API Gateway, which Twilio reads as an
//! application error.

pub mod conference_call_agent;
pub mod conference_connect_agent;
pub mod conference_connect_client;
pub mod conference_wait;
pub mod token;

use std::future::Future;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::App;
use crate::domain::AgentId;
use crate::error::AppError;
use crate::http;
use crate::twilio::signature;
use crate::twiml::VoiceResponse;

/// Twilio waits 15 s for a webhook, but a caller waiting in silence hangs up long before that:
/// whatever is unfinished after this long is answered with fallback TwiML.
pub const WEBHOOK_DEADLINE: Duration = Duration::from_millis(2500);

/// A Twilio webhook whose signature has been checked.
#[derive(Debug)]
pub struct Webhook {
    params: Vec<(String, String)>,
    /// Where Twilio reaches us; callback URLs are built from it.
    pub base_url: String,
}

impl Webhook {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
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
    let (Some(url), Some(base_url)) = (
        http::public_url(&app.config, req),
        http::public_base_url(&app.config, req),
    ) else {
        return Err(AppError::Forbidden("cannot tell which URL was requested"));
    };
    let params = http::form_params(req);
    if !signature::is_valid(
        app.config.twilio.auth_token.expose(),
        &url,
        &params,
        signature,
    ) {
        return Err(AppError::Forbidden("invalid X-Twilio-Signature"));
    }
    Ok(Webhook { params, base_url })
}

/// Checks the signature, then runs `work` under the webhook deadline, and answers TwiML
/// whatever happens: the work's own, fallback TwiML on failure, 403 for a forged request.
pub(crate) async fn answer_webhook<'a, F, Fut>(
    app: &'a App,
    req: &'a Request,
    work: F,
) -> Response<Body>
where
    F: FnOnce(Webhook) -> Fut,
    Fut: Future<Output = Result<VoiceResponse, AppError>> + 'a,
{
    let webhook = match verify_webhook(app, req) {
        Ok(webhook) => webhook,
        Err(err) => return err.into_twiml_response(),
    };
    let span = tracing::info_span!(
        "webhook",
        call_sid = webhook.param("CallSid").unwrap_or_default()
    );
    let outcome = tokio::time::timeout(WEBHOOK_DEADLINE, work(webhook))
        .instrument(span)
        .await;
    match outcome {
        Ok(Ok(twiml)) => http::twiml(&twiml),
        Ok(Err(err)) => err.into_twiml_response(),
        Err(_) => AppError::Deadline.into_twiml_response(),
    }
}

/// Runs a JSON endpoint's work and renders its result or error.
pub(crate) async fn answer_json<Fut>(work: Fut) -> Response<Body>
where
    Fut: Future<Output = Result<Response<Body>, AppError>>,
{
    work.await.unwrap_or_else(AppError::into_json_response)
}

/// An agent id from the roster, or `None` for anything else.
pub(crate) fn rostered_agent<'a>(app: &'a App, id: &str) -> Option<&'a AgentId> {
    app.config.roster.find(id)
}

/// The URL Twilio fetches when `agent` answers a call that brings them into `conference`.
pub(crate) fn agent_join_path(conference: &crate::domain::CallSid, agent: &AgentId) -> String {
    format!("/conference/{conference}/connect/{agent}")
}

#[cfg(test)]
pub(crate) mod testing;
