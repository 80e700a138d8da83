//! `POST /token`: an Access Token for the Voice SDK.
//! - A signed-in agent gets one for their own identity (may receive calls). It is recorded with
//!   their session epoch, and its calls out pass the record's id (`call_flow::agent_token_issued`).
//! - Anyone else gets a fresh customer identity that may only place calls. Its record keeps the
//!   address the token was fetched from, so that its calls count against that address
//!   (`call_flow::customer_token_issued`).
//!
//! Nothing in the request body can choose the identity.
//!
//! Tokens are short-lived, so that a disabled agent or an ended session keeps no working token
//! for long; the pages renew theirs before they expire (the SDK's `tokenWillExpire`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::{Identity, SourceAddress};
use crate::twilio::access_token::TokenRequest;
use crate::{App, call_flow, http, pipeline, response};

/// An agent's token: the longest a token outlives the session or account that fetched it.
pub const AGENT_TOKEN_TTL_SECONDS: u64 = 600;
/// A customer's token: enough to press "Call support" after the page fetched it.
pub const CUSTOMER_TOKEN_TTL_SECONDS: u64 = 300;
/// How long a token's record outlives the token: the webhook of a call placed at the token's
/// last second arrives a moment later.
const TOKEN_RECORD_GRACE_SECONDS: i64 = 60;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        ctx.require_same_origin()?;
        // No field is read, but an oversized or malformed body is still refused like everywhere.
        http::fields(ctx.req)?;
        let now = app.clock.now();
        let (identity, ttl_seconds, outgoing_params) = match ctx.signed_in_agent().await? {
            Some(agent) => {
                let until = now + i64::try_from(AGENT_TOKEN_TTL_SECONDS).unwrap_or(0) + TOKEN_RECORD_GRACE_SECONDS;
                // Recorded before the token exists: every call it places can be traced to its session.
                let params = call_flow::agent_token_issued(app, agent, until).await?;
                (Identity::Agent(agent.id.clone()), AGENT_TOKEN_TTL_SECONDS, Some(params))
            }
            None => {
                let identity = Identity::new_customer()?;
                let address = http::source_address(ctx.req).map(SourceAddress::of);
                let until = now + i64::try_from(CUSTOMER_TOKEN_TTL_SECONDS).unwrap_or(0) + TOKEN_RECORD_GRACE_SECONDS;
                // Stored before the token exists: no token whose calls go uncounted.
                call_flow::customer_token_issued(app, identity.as_str(), address, until).await?;
                (identity, CUSTOMER_TOKEN_TTL_SECONDS, None)
            }
        };
        let mut signer = app.token_signer().await?;
        // The app a token grants decides which Voice URL its calls reach, and so who they are
        // taken for: agents' calls go to the agents' app only (handlers::call_connect).
        if matches!(identity, Identity::Agent(_)) {
            signer.twiml_app_sid.clone_from(&app.config.twilio.agent_twiml_app_sid);
        }
        let token = signer.mint(&TokenRequest {
            identity: &identity,
            issued_at: u64::try_from(now).unwrap_or_default(),
            ttl_seconds,
            outgoing_params,
        })?;
        Ok(response::json(
            StatusCode::OK,
            &json!({ "identity": identity.as_str(), "token": token, "ttl": ttl_seconds }),
        ))
    })
    .await)
}
