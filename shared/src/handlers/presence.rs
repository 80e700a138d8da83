//! `GET /presence`, `PUT /presence` (JSON `{"status": "available" | "away"}`): the signed-in
//! agent's presence, `{"agent", "status", "since", "missed_call_at"}`. `status` is `available`,
//! `away`, `busy` (on a call, derived) or `offline` (the dashboard has not renewed it for 90 s);
//! the open dashboard renews it with a `PUT` of what the agent chose. Becoming available offers
//! them the longest-waiting caller at once (`call_flow::agent_says`).
//!
//! `GET /wallboard`: the line, the team and today's figures, for any signed-in agent
//! (`call_flow::wallboard`; `wallboard_json` names the fields). The dashboard polls it while
//! it is visible.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::{self, AgentState, Availability, Wallboard};
use crate::error::AppError;
use crate::routes::Route;
use crate::{App, call_flow, http, pipeline, response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        if ctx.route == Route::Wallboard {
            ctx.agent().await?;
            let board = call_flow::wallboard(app).await?;
            return Ok(response::json(StatusCode::OK, &wallboard_json(&board)));
        }
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

fn wallboard_json(board: &Wallboard) -> serde_json::Value {
    json!({
        "waiting": board.line.waiting,
        "longest_wait_seconds": board.longest_wait_seconds(),
        "agents": {
            "available": board.team.available,
            "busy": board.team.busy,
            "away": board.team.away,
            "offline": board.team.offline,
        },
        "today": {
            "date": board.day,
            "answered": board.today.answered,
            "abandoned": board.today.abandoned,
            "voicemails": board.today.voicemails,
            "average_wait_seconds": board.today.average_wait_seconds(),
        },
        "as_of": domain::rfc3339(board.now_ms.div_euclid(1000)),
    })
}
