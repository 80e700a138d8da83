//! `POST /conference/connect/client`: the support number's Voice URL. The caller is put in line
//! and into their conference (`call_flow::caller_arrives`).

use lambda_http::{Body, Error, Request, Response};

use crate::domain::CallerIntro;
use crate::{App, call_flow, pipeline};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::webhook(app, &req, async |webhook| {
        Ok(call_flow::caller_arrives(
            app,
            &webhook.links,
            &webhook.call_sid()?,
            webhook.param("From"),
            CallerIntro::default(),
        )
        .await)
    })
    .await)
}
