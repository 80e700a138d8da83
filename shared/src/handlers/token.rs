//! `POST /token`: an Access Token for the Voice SDK. A signed-in agent gets one for their own
//! identity (may receive calls); anyone else a fresh customer identity that may only place
//! calls. Nothing in the request body can choose the identity.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::Identity;
use crate::twilio::access_token::{DEFAULT_TTL_SECONDS, TokenRequest};
use crate::{App, http, pipeline, response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        ctx.require_same_origin()?;
        // No field is read, but an oversized or malformed body is still refused like everywhere.
        http::fields(ctx.req)?;
        let identity = match ctx.signed_in_agent().await? {
            Some(agent) => Identity::Agent(agent.id.clone()),
            None => Identity::new_customer()?,
        };
        let issued_at = u64::try_from(app.clock.now()).unwrap_or_default();
        let token = app.tokens.mint(&TokenRequest {
            identity: &identity,
            issued_at,
            ttl_seconds: DEFAULT_TTL_SECONDS,
            outgoing_params: None,
        })?;
        Ok(response::json(
            StatusCode::OK,
            &json!({ "identity": identity.as_str(), "token": token, "ttl": DEFAULT_TTL_SECONDS }),
        ))
    })
    .await)
}
