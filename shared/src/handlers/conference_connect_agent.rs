//! `POST /conference/{conference_id}/connect/{agent_id}`: an agent answered the call that
//! Warmline placed to them (`call_flow::agent_answers`).

use lambda_http::{Body, Error, Request, Response};

use crate::error::AppError;
use crate::routes::Route;
use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::webhook(app, &req, async |webhook| {
        let Route::AgentJoin { conference, agent } = &webhook.route else {
            return Err(AppError::NotFound("no such route".into()));
        };
        // The agent's own call: when it leaves the conference, this is how Warmline knows whose it was.
        call_flow::agent_answers(app, &webhook.links, conference, agent, &webhook.call_sid()?).await
    })
    .await)
}
