//! `POST /call/connect`: the TwiML App's Voice URL, requested by Twilio whenever a browser
//! places a call with the Voice SDK.
//! - An agent with a `phoneNumber` param calls a customer (`call_flow::agent_calls_customer`).
//! - A customer enters the support conference exactly like a caller on the phone; a customer's
//!   `phoneNumber` is ignored.

use lambda_http::{Body, Error, Request, Response};

use crate::domain::Identity;
use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::webhook(app, &req, async |webhook| {
        match webhook.param("From").and_then(|from| Identity::from_client_address(from).ok()) {
            Some(Identity::Agent(agent)) => {
                call_flow::agent_calls_customer(app, &agent, webhook.param("phoneNumber")).await
            }
            Some(Identity::Customer(_)) => {
                Ok(call_flow::caller_arrives(app, &webhook.links, &webhook.call_sid()?, webhook.param("From")).await)
            }
            None => {
                tracing::warn!("refused a browser call from an unknown identity");
                Ok(call_flow::refusal())
            }
        }
    })
    .await)
}
