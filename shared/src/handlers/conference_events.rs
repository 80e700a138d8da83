//! Twilio's status callbacks for support calls; Twilio ignores what they answer (an empty
//! `<Response>`), and may send one twice or out of order.
//! - `POST /conference/{conference_id}/events`: the conference's own (`call_flow::conference_event`).
//! - `POST /conference/{conference_id}/agents/{agent_id}/status`: how a call placed to an agent
//!   ended (`call_flow::agent_call_ended`).

use lambda_http::{Body, Error, Request, Response};

use crate::call_flow::ConferenceEvent;
use crate::error::AppError;
use crate::routes::Route;
use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::status_callback(app, &req, async |webhook| match &webhook.route {
        Route::ConferenceEvents { conference } => {
            let event = ConferenceEvent {
                name: webhook.param("StatusCallbackEvent"),
                participant: webhook.param("CallSid"),
                conference_sid: webhook.param("ConferenceSid"),
                sequence: webhook.param("SequenceNumber"),
                timestamp: webhook.param("Timestamp"),
            };
            call_flow::conference_event(app, &webhook.links, conference, event).await
        }
        Route::AgentCallStatus { conference, agent } => {
            let status = webhook.param("CallStatus").unwrap_or_default();
            let call = webhook.param("CallSid").unwrap_or_default();
            call_flow::agent_call_ended(app, &webhook.links, conference, agent, call, status).await
        }
        _ => Err(AppError::NotFound("no such route".into())),
    })
    .await)
}
