//! `GET /presence`, `PUT /presence` (JSON `{"status": "available" | "away"}`): the signed-in
//! agent's presence, `{"agent", "status", "since", "missed_call_at"}`. `status` is `available`,
//! `away`, `busy` (on a call, derived) or `offline` (the dashboard has not renewed it for 90 s);
//! the open dashboard renews it with a `PUT` of what the agent chose. Becoming available offers
//! them the longest-waiting caller at once (`call_flow::agent_says`).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::{self, AgentState, Availability};
use crate::error::AppError;
use crate::{App, call_flow, http, pipeline, response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        // The route allows GET and PUT only.
        let state = if ctx.req.method() == Method::PUT {
            ctx.require_same_origin()?;
            let agent = ctx.agent().await?.id.clone();
            let fields = http::fields(ctx.req)?;
            let availability =
                fields.get("status").and_then(|status| Availability::parse(status)).ok_or_else(|| {
                    AppError::invalid_fields([("status".into(), "must be \"available\" or \"away\"".into())].into())
                })?;
            call_flow::agent_says(app, &ctx.links()?, &agent, availability).await?
        } else {
            call_flow::presence_of(app, &ctx.agent().await?.id).await?
        };
        Ok(response::json(StatusCode::OK, &presence_json(&state, app.clock.now())))
    })
    .await)
}

fn presence_json(state: &AgentState, now: i64) -> serde_json::Value {
    let (presence, since) = state.presence(now);
    json!({
        "agent": state.agent.as_str(),
        "status": presence.as_str(),
        "since": domain::rfc3339(since),
        "missed_call_at": state.missed_at.map(domain::rfc3339),
    })
}
