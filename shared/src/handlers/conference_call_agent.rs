//! `POST /conference/{agent_id}/call`: from the dashboard, an agent in a call dials a colleague
//! into that same conference (warm transfer, `call_flow::dial_colleague`). Body (JSON or form),
//! optional: `to`, the colleague's agent id; by default the available agent idle longest. Only the
//! signed-in agent named in the path may, and only while they are in the conference.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::error::AppError;
use crate::routes::Route;
use crate::{App, call_flow, http, pipeline, response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        let Route::DialColleague { agent } = &ctx.route else {
            return Err(AppError::NotFound("no such route".into()));
        };
        ctx.require_same_origin()?;
        if &ctx.agent().await?.id != agent {
            return Err(AppError::Forbidden("an agent may only transfer their own calls"));
        }
        let fields = http::fields(ctx.req)?;
        let colleague = fields.get("to").map(String::as_str);
        let dialed = call_flow::dial_colleague(app, &ctx.links()?, agent, colleague).await?;
        Ok(response::json(
            StatusCode::CREATED,
            &json!({
                "conference_id": dialed.conference.as_str(),
                "agent": dialed.colleague.as_str(),
                "call_sid": dialed.call.as_str(),
            }),
        ))
    })
    .await)
}
