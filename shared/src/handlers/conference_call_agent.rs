//! From the dashboard, an agent acts on the support call they are in. Only the signed-in agent
//! may, and only while they are in the call; the session names them, never the request.
//!
//! - `POST /conference/{agent_id}/call`: dials a colleague into the agent's conference, the
//!   customer listening (warm transfer, `call_flow::dial_colleague`). Body (JSON or form),
//!   optional: `to`, the colleague's agent id; by default the available agent idle longest. The
//!   path must name the signed-in agent.
//! - `POST /calls/{call_id}/{action}`, `action` one of `hold`, `resume`, `consult`, `complete`,
//!   `cancel`, `transfer` (cold), on the call whose id `GET /calls/current` gives
//!   (`call_flow::act_on_call`). `consult` and `transfer` take an optional `to` as above.
//!   Answers `{"call": {"id", "on_hold", "held_since", "transfer"}}`; 403 for an agent not in the
//!   call, 409 for a call that ended or an action its state refuses, 400 for a malformed id,
//!   action or `to`, 503 (with `Retry-After`) when Twilio or the store fails, nothing changed.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::{self, Conference};
use crate::error::AppError;
use crate::handlers::presence::transfer_json;
use crate::routes::Route;
use crate::{App, call_flow, http, pipeline, response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        ctx.require_same_origin()?;
        let signed_in = ctx.agent().await?.id.clone();
        let fields = http::fields(ctx.req)?;
        let to = fields.get("to").map(String::as_str);
        match &ctx.route {
            Route::DialColleague { agent } => {
                if &signed_in != agent {
                    return Err(AppError::Forbidden("an agent may only transfer their own calls"));
                }
                let dialed = call_flow::dial_colleague(app, &ctx.links()?, agent, to).await?;
                Ok(response::json(
                    StatusCode::CREATED,
                    &json!({
                        "conference_id": dialed.conference.as_str(),
                        "agent": dialed.colleague.as_str(),
                        "call_sid": dialed.call.as_str(),
                    }),
                ))
            }
            Route::CallAction { call, action } => {
                let record = call_flow::act_on_call(app, &ctx.links()?, &signed_in, call, *action, to).await?;
                Ok(response::json(StatusCode::OK, &call_json(&record)))
            }
            _ => Err(AppError::NotFound("no such route".into())),
        }
    })
    .await)
}

/// The call after an action: whether the customer is on hold and since when, and the consult or
/// transfer under way (`handlers::presence::transfer_json`).
fn call_json(record: &Conference) -> serde_json::Value {
    json!({
        "call": {
            "id": record.id.as_str(),
            "on_hold": record.held_since.is_some(),
            "held_since": record.held_since.map(domain::rfc3339),
            "transfer": record.transfer.as_ref().map(|transfer| transfer_json(record, transfer)),
        }
    })
}
