//! The Voice URLs of the two TwiML Apps, requested by Twilio whenever a browser places a call
//! with the Voice SDK. Which app a call comes through is what its Access Token grants (`token`):
//! customers get the customers' app, agents the agents'. So the route says who is calling, and
//! nothing the browser sends can change it (`pipeline` checks that the `ApplicationSid` is the
//! route's app):
//! - `POST /call/connect` (customers' app): a customer enters the support conference exactly
//!   like a caller on the phone, with what they said on the page (`callerName`, `ticketId`,
//!   checked like a ticket's fields; one that fails is left out); a `phoneNumber` is ignored. A
//!   `From` naming an agent is refused.
//! - `POST /call/agent` (agents' app): an agent with a `phoneNumber` param calls a customer
//!   (`call_flow::agent_calls_customer`). A `From` naming a customer is refused.
//! - `POST /call/customer/{agent_id}`: the customer that agent called picked up
//!   (`call_flow::customer_answers`), and `.../status`: how that call ended
//!   (`call_flow::customer_call_ended`). Twilio places those calls for Warmline's REST request,
//!   so they come through no TwiML App; the route names the agent.

use lambda_http::{Body, Error, Request, Response};

use crate::domain::{CallerIntro, Identity};
use crate::routes::Route;
use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    // How a call to a customer ended is a status callback: a failure is answered so that Twilio
    // delivers it again, not with TwiML nobody hears.
    if let Ok(Route::CustomerCallStatus { .. }) = Route::of(&req) {
        return Ok(pipeline::status_callback(app, &req, async |webhook| {
            let Route::CustomerCallStatus { agent } = &webhook.route else { return Ok(()) };
            let (status, seconds) = (webhook.param("CallStatus"), webhook.param("CallDuration"));
            call_flow::customer_call_ended(app, &webhook.call_sid()?, agent, status, seconds).await
        })
        .await);
    }
    Ok(pipeline::webhook(app, &req, async |webhook| {
        let caller = webhook.param("From").and_then(|from| Identity::from_client_address(from).ok());
        match (&webhook.route, caller) {
            (Route::AgentBrowserCall, Some(Identity::Agent(agent))) => {
                let session = webhook.param(call_flow::AGENT_SESSION_PARAM);
                let call = webhook.call_sid()?;
                call_flow::agent_calls_customer(
                    app,
                    &webhook.links,
                    &call,
                    &agent,
                    webhook.param("phoneNumber"),
                    session,
                )
                .await
            }
            (Route::CustomerAnswers { agent }, _) => call_flow::customer_answers(app, &webhook.call_sid()?, agent).await,
            (Route::BrowserCall, Some(Identity::Customer(_))) => {
                // What the caller typed on the page: a parameter that fails its check is left
                // out, and the call goes on without it.
                let (intro, problems) = CallerIntro::parse(webhook.param("callerName"), webhook.param("ticketId"));
                if !problems.is_empty() {
                    tracing::warn!(parameters = ?problems.keys().collect::<Vec<_>>(), "left out a browser caller's parameters");
                }
                let call = webhook.call_sid()?;
                Ok(call_flow::caller_arrives(app, &webhook.links, &call, webhook.param("From"), intro).await)
            }
            (route, _) => {
                tracing::warn!(
                    route = route.endpoint().path,
                    "refused a browser call whose caller does not fit the app"
                );
                Ok(call_flow::refusal())
            }
        }
    })
    .await)
}
