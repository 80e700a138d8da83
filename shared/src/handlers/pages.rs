//! `GET /`, `GET /dashboard`, `GET /static/{file}`: the customer page, the agent dashboard and
//! their assets (`web`). The dashboard is for signed-in agents; anyone else is sent to sign in
//! first.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use crate::error::AppError;
use crate::routes::Route;
use crate::session::Session;
use crate::{App, pipeline, response, web};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::page(app, &req, async |ctx| match &ctx.route {
        Route::Home => Ok(web::page(StatusCode::OK, web::INDEX_HTML, &[])),
        Route::Dashboard => Ok(match ctx.session().await? {
            Session::SignedIn(agent) => web::page(
                StatusCode::OK,
                web::DASHBOARD_HTML,
                &[("agent_id", agent.id.as_str()), ("agent_name", &agent.display_name)],
            ),
            Session::None | Session::Ended => response::redirect(&Route::sign_in_then(&Route::Dashboard)),
        }),
        Route::Asset { file } => web::find_versioned(file).map(web::asset).ok_or(AppError::NotFound(file.clone())),
        _ => Err(AppError::NotFound("no such page".into())),
    })
    .await)
}
