//! `GET /login`, `POST /login`, `POST /logout`: agents sign in with their id and password and
//! get a session cookie (see `crate::session`); signing out ends every session they have.
//!
//! The sign-in form works without JavaScript: failures show it again with a message and a
//! status code (`AppError::into_page_response`), success redirects (303) to where the agent was
//! going. No answer tells whether an agent id exists: unknown ids, disabled agents and wrong
//! passwords get the same page after the same argon2 work, and failed attempts are counted,
//! and locked out, for any id.

use lambda_http::http::header::SET_COOKIE;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};

use crate::domain::{Agent, AgentId, LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_SECONDS};
use crate::error::AppError;
use crate::pipeline::{self, Context};
use crate::routes::Route;
use crate::session::{self, Session};
use crate::{App, http, password, response, web};

pub const SESSION_ENDED: &str = "Your session has ended. Please sign in again.";
const INCOMPLETE: &str = "Enter your agent id and password.";

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::page(app, &req, async |ctx| match (&ctx.route, ctx.req.method()) {
        (Route::Login, &Method::GET) => login_page(ctx).await,
        (Route::Login, _) => Ok(sign_in(app, ctx).await),
        (Route::Logout, _) => sign_out(app, ctx).await,
        _ => Err(AppError::NotFound("no such page".into())),
    })
    .await)
}

/// Where to go once signed in: a path on this site, never `//host` or `/\host`, which browsers
/// read as another site (an open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 512
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => Route::Dashboard.path(),
    }
}

fn login_form(status: StatusCode, next: &str, message: &str) -> Response<Body> {
    web::page(status, web::LOGIN_HTML, &[("next", next), ("error", message)])
}

async fn login_page(ctx: &Context<'_>) -> Result<Response<Body>, AppError> {
    let query = http::query_params(ctx.req);
    let next = safe_next(query.get("next").map(String::as_str));
    Ok(match ctx.session().await {
        Ok(Session::SignedIn(_)) => response::redirect(&next),
        Ok(Session::Ended) => {
            let mut response = login_form(StatusCode::OK, &next, SESSION_ENDED);
            let cleared = session::cleared_cookie(ctx.origin.cookies_must_be_secure());
            response.headers_mut().insert(SET_COOKIE, cleared);
            response
        }
        Ok(Session::None) => login_form(StatusCode::OK, &next, ""),
        // The form still works; signing in says so if storage is still down then.
        Err(err) => {
            tracing::warn!(error = %err, "could not check the session");
            login_form(StatusCode::OK, &next, "")
        }
    })
}

async fn sign_in(app: &App, ctx: &Context<'_>) -> Response<Body> {
    let fields = http::fields(ctx.req);
    let next = safe_next(fields.as_ref().ok().and_then(|fields| fields.get("next")).map(String::as_str));
    let signed_in = async {
        let fields = fields.map_err(|err| match err {
            AppError::PayloadTooLarge { .. } => err,
            _ => AppError::bad_request(INCOMPLETE),
        })?;
        ctx.require_same_origin()?;
        let (Some(id), Some(password)) = (fields.get("agent_id"), fields.get("password")) else {
            return Err(AppError::bad_request(INCOMPLETE));
        };
        let agent = check_credentials(app, id.trim(), password).await?;
        let token = app.sessions.issue(&agent, app.clock.now())?;
        tracing::info!(agent = %agent.id, "signed in");
        let mut response = response::redirect(&next);
        let cookie = session::session_cookie(ctx.origin.cookies_must_be_secure(), &token);
        response.headers_mut().insert(SET_COOKIE, cookie);
        Ok(response)
    };
    signed_in
        .await
        .unwrap_or_else(|err| err.into_page_response(Some(&|status, message| login_form(status, &next, message))))
}

/// The agent whose id and password these are, or `InvalidCredentials` (whatever was wrong) or
/// `LockedOut`; every failure is counted against the id.
async fn check_credentials(app: &App, id: &str, password: &str) -> Result<Agent, AppError> {
    let Ok(id) = AgentId::parse(id) else {
        password::spend_a_password_check(password);
        return Err(AppError::InvalidCredentials);
    };
    let now = app.clock.now();
    if app.agents.login_failures(&id, now).await? >= LOGIN_FAILURE_LIMIT {
        tracing::warn!("sign-in refused: too many failures for this id");
        return Err(AppError::LockedOut { retry_after: LOGIN_LOCKOUT_SECONDS });
    }
    let agent = app.agents.agent(&id).await?;
    let matches = match &agent {
        Some(agent) if agent.is_enabled() => password::verify_password(password, &agent.password_hash),
        _ => {
            password::spend_a_password_check(password);
            false
        }
    };
    match agent {
        Some(agent) if matches => {
            if let Err(err) = app.agents.clear_login_failures(&id).await {
                tracing::warn!(error = %err, "could not reset the failed sign-ins");
            }
            Ok(agent)
        }
        agent => {
            let failures = app.agents.record_login_failure(&id, now).await?;
            // An id typed by mistake may be someone's password: only existing ids are logged.
            match agent {
                Some(agent) => tracing::warn!(agent = %agent.id, failures, "sign-in failed"),
                None => tracing::warn!(failures, "sign-in failed for an unknown id"),
            }
            Err(AppError::InvalidCredentials)
        }
    }
}

async fn sign_out(app: &App, ctx: &Context<'_>) -> Result<Response<Body>, AppError> {
    ctx.require_same_origin()?;
    if let Session::SignedIn(agent) = ctx.session().await? {
        // Ending the sessions server-side is what makes a copied cookie useless too; if that
        // fails, say so rather than pretend.
        app.agents.end_sessions(&agent.id).await?;
        tracing::info!(agent = %agent.id, "signed out");
    }
    let mut response = response::redirect(&Route::Login.path());
    response.headers_mut().insert(SET_COOKIE, session::cleared_cookie(ctx.origin.cookies_must_be_secure()));
    Ok(response)
}
