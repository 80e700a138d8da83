//! `POST /conference/wait`: the support conference's waitUrl, what a customer hears until an
//! agent joins, and the watch kept over them meanwhile (`call_flow::hold_music`).

use lambda_http::{Body, Error, Request, Response};

use crate::domain::CallSid;
use crate::routes::Route;
use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::webhook(app, &req, async |webhook| {
        let returning = matches!(webhook.route, Route::HoldMusic { returning: true });
        let customer = webhook.param("CallSid").and_then(CallSid::parse);
        Ok(call_flow::hold_music(app, &webhook.links, customer.as_ref(), webhook.param("From"), returning).await)
    })
    .await)
}
