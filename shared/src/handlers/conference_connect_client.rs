//! `POST /conference/connect/client`: the support number's Voice URL. The caller enters the
//! support conference (`call_flow::enter_support_conference`).

use lambda_http::{Body, Error, Request, Response};

use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::webhook(app, &req, async |webhook| {
        call_flow::enter_support_conference(app, &webhook.links, &webhook.call_sid()?).await
    })
    .await)
}
