//! `GET /login`, `POST /login`, `POST /logout`: agents sign in with their id and password and
//! get a session cookie (see `crate::session`); signing out ends every session they have.
//!
//! The sign-in form works without JavaScript: failures show it again with a message and a
//! status code (`AppError::into_page_response`), success redirects (303) to where the agent was
//! going. No answer tells whether an agent id exists: unknown ids, disabled agents and wrong
//! passwords get the same page after the same argon2 work.
//!
//! Guessing is slowed down per agent id and blocked per source address (`domain::sign_in`):
//! every attempt is counted against its address, then against its id, before its password is
//! checked, and refused with `429` and `Retry-After` while either counter must wait. An id is
//! counted whether or not such an agent exists, so an unknown id is slowed down exactly like a
//! real one. A success forgets the id's failures; the address keeps only wrong passwords.

use lambda_http::http::header::SET_COOKIE;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};

use crate::domain::{Agent, AgentId, SignInAttempt, SignInCounter, SourceAddress};
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
        let agent = check_credentials(app, ctx.req, id.trim(), password).await?;
        let token = app.sessions.issue(&agent, app.clock.now()).await?;
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
/// `LockedOut` (the address or the id must wait).
async fn check_credentials(app: &App, req: &Request, id: &str, password: &str) -> Result<Agent, AppError> {
    let now = app.clock.now();
    // API Gateway always names the address; only a request from elsewhere (a test) lacks one.
    let address = http::source_address(req).map(|ip| SignInCounter::Address(SourceAddress::of(ip)));
    if let Some(address) = &address {
        count_attempt(app, address, now).await?;
    }
    let checked = check_password(app, id, password, now).await;
    // The address is held to the passwords it got wrong: a success, or an attempt that never
    // reached a password check (the id must wait, storage failed), takes its count back.
    if let Some(address) = &address
        && !matches!(checked, Err(AppError::InvalidCredentials))
        && let Err(err) = app.agents.forgive_sign_in_attempt(address).await
    {
        tracing::warn!(error = %err, "could not take an attempt back from the address's count");
    }
    checked
}

async fn check_password(app: &App, id: &str, password: &str, now: i64) -> Result<Agent, AppError> {
    let Ok(id) = AgentId::parse(id) else {
        password::spend_a_password_check(password);
        return Err(AppError::InvalidCredentials);
    };
    let counter = SignInCounter::AgentId(id.clone());
    let failures = count_attempt(app, &counter, now).await?;
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
            if let Err(err) = app.agents.clear_sign_in_failures(&counter).await {
                tracing::warn!(error = %err, "could not reset the failed sign-ins");
            }
            Ok(agent)
        }
        // An id typed by mistake may be someone's password: only existing ids are logged.
        Some(agent) => {
            tracing::warn!(agent = %agent.id, failures, "sign-in failed");
            Err(AppError::InvalidCredentials)
        }
        None => {
            tracing::warn!(failures, "sign-in failed for an unknown id");
            Err(AppError::InvalidCredentials)
        }
    }
}

/// Counts an attempt against `counter`, or refuses it while the counter must wait.
async fn count_attempt(app: &App, counter: &SignInCounter, now: i64) -> Result<u32, AppError> {
    match app.agents.count_sign_in_attempt(counter, now).await? {
        SignInAttempt::Counted { failures } => Ok(failures),
        SignInAttempt::Refused { retry_after } => {
            // Neither the id (it may be a password typed in the wrong box) nor the address.
            let counter = match counter {
                SignInCounter::AgentId(_) => "id",
                SignInCounter::Address(_) => "address",
            };
            tracing::warn!(counter, retry_after, "sign-in refused: too many failures");
            Err(AppError::LockedOut { retry_after })
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
