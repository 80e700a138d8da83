//! The one way a request becomes a response. A handler hands its request to the entry of its
//! kind, which works out the request's facts once (`Context`: the route, the public origin, the
//! signed-in agent when asked for), checks what that kind of endpoint requires, runs the
//! handler's work, and answers every error through `error`:
//!
//! | entry             | for                       | checks                                | errors become             |
//! |-------------------|---------------------------|---------------------------------------|---------------------------|
//! | `webhook`         | Twilio fetching TwiML     | size, signature, `WEBHOOK_DEADLINE`   | TwiML; 413, 403 if forged |
//! | `status_callback` | Twilio reporting progress | size, signature, the same deadline    | empty TwiML; 413, 403     |
//! | `json`            | the pages' API            | route and method                      | JSON                      |
//! | `page`            | HTML pages and assets     | route and method                      | a page or its form        |
//!
//! The Twilio entries refuse an oversized body before anything is parsed or hashed, since until
//! the signature holds the sender is anyone; after it, they check that the request is about our
//! account and, for a browser call, comes through its route's TwiML App, with no parameter twice
//! (`about_our_calls`).
//!
//! Handlers always answer `Ok`: an `Err` from a Lambda becomes a 502 from API Gateway, which
//! Twilio reads as an application error.

use std::sync::OnceLock;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::App;
use crate::domain::{Agent, CallSid};
use crate::error::AppError;
use crate::http::{self, FormParams, Links, PublicOrigin};
use crate::response;
use crate::routes::Route;
use crate::session::Session;
use crate::twilio::signature;
use crate::twiml::VoiceResponse;

/// Twilio waits 15 s for a webhook, but a caller waiting in silence hangs up long before that:
/// whatever is unfinished this long after the request arrived is answered with fallback TwiML.
/// Status callbacks get the same budget for their store writes and REST calls together.
pub const WEBHOOK_DEADLINE: Duration = Duration::from_millis(2500);

/// What a browser request is, worked out once at the entry and handed to the handler's work.
pub struct Context<'a> {
    app: &'a App,
    pub req: &'a Request,
    pub route: Route,
    pub origin: PublicOrigin,
    session: OnceLock<Session>,
}

impl Context<'_> {
    /// The request's session, read from the Agents table the first time it is asked for (the
    /// pages' assets and the customer's requests never pay that read).
    pub async fn session(&self) -> Result<&Session, AppError> {
        if let Some(session) = self.session.get() {
            return Ok(session);
        }
        let secure = self.origin.cookies_must_be_secure();
        let read = self.app.sessions.read(self.app.agents.as_ref(), self.req, secure, self.app.clock.now()).await?;
        Ok(self.session.get_or_init(|| read))
    }

    /// The signed-in agent, if there is one.
    pub async fn signed_in_agent(&self) -> Result<Option<&Agent>, AppError> {
        Ok(match self.session().await? {
            Session::SignedIn(agent) => Some(agent),
            Session::None | Session::Ended => None,
        })
    }

    /// The signed-in agent, or 401.
    pub async fn agent(&self) -> Result<&Agent, AppError> {
        self.signed_in_agent().await?.ok_or(AppError::Unauthorized)
    }

    pub fn require_same_origin(&self) -> Result<(), AppError> {
        self.origin.require_same_origin(self.req)
    }

    pub fn reject_foreign_origin(&self) -> Result<(), AppError> {
        self.origin.reject_foreign_origin(self.req)
    }

    /// Links to our routes; a request whose origin cannot be told cannot be given any.
    pub fn links(&self) -> Result<Links, AppError> {
        self.origin.links().ok_or(AppError::bad_request("cannot tell the public URL"))
    }
}

/// A Twilio request whose signature has been checked.
#[derive(Debug)]
pub struct Webhook {
    pub route: Route,
    params: FormParams,
    /// Where Twilio reaches us; callback URLs are built from it.
    pub links: Links,
}

impl Webhook {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The `CallSid` parameter: the call this request is about.
    pub fn call_sid(&self) -> Result<CallSid, AppError> {
        self.param("CallSid").and_then(CallSid::parse).ok_or(AppError::bad_request("CallSid is missing or malformed"))
    }
}

async fn verify(app: &App, req: &Request, origin: &PublicOrigin) -> Result<Webhook, AppError> {
    // Before anything is parsed or hashed: until the signature holds, the sender is anyone.
    http::webhook_within_limits(req)?;
    let signature = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|value| value.to_str().ok())
        .ok_or(AppError::Forbidden("missing X-Twilio-Signature"))?;
    let (Some(url), Some(links)) = (origin.request_url(req), origin.links()) else {
        return Err(AppError::Forbidden("cannot tell which URL was requested"));
    };
    let params = http::form_params(req);
    // The token held now; a mismatch reads it again, in case it was rotated or filled in since.
    if !app
        .secrets
        .accept_twilio_auth_token(|token| signature::is_valid_pairs(token, &url, params.iter(), signature))
        .await
    {
        return Err(AppError::Forbidden("invalid X-Twilio-Signature"));
    }
    // Only a genuine request learns whether its route exists.
    let route = Route::of(req)?;
    about_our_calls(app, &route, &params)?;
    Ok(Webhook { route, params, links })
}

/// What a request Twilio signed must also say before anything reads it. A browser's custom
/// parameters (`device.connect({params})`) reach the Voice URL signed like Twilio's own, so a
/// parameter that comes twice could be one a browser smuggled in under Twilio's name: no name may
/// come twice. It must be about our account, and a browser call must come through the TwiML App
/// its route serves (docs/SECURITY.md, "Browser calls"). Each refusal is a 403, as for a forged
/// signature; Twilio shows it in the console's debugger (error 11200).
fn about_our_calls(app: &App, route: &Route, params: &FormParams) -> Result<(), AppError> {
    let mut names: Vec<&str> = params.iter().map(|(name, _)| name).collect();
    names.sort_unstable();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(AppError::Forbidden("a parameter came twice"));
    }
    let param = |name: &str| params.get(name);
    let twilio = &app.config.twilio;
    if param("AccountSid") != Some(twilio.account_sid.as_str()) {
        return Err(AppError::Forbidden("AccountSid is not ours"));
    }
    let application = match route {
        Route::BrowserCall => Some(&twilio.twiml_app_sid),
        Route::AgentBrowserCall => Some(&twilio.agent_twiml_app_sid),
        _ => None,
    };
    if application.is_some_and(|expected| param("ApplicationSid") != Some(expected.as_str())) {
        return Err(AppError::Forbidden("ApplicationSid is not the app of this route"));
    }
    Ok(())
}

/// A webhook whose answer the caller hears: the work's TwiML, fallback TwiML on failure or
/// at the deadline, 403 for a forged request.
pub async fn webhook(
    app: &App,
    req: &Request,
    work: impl AsyncFnOnce(Webhook) -> Result<VoiceResponse, AppError>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let (route, outcome) = signed(app, req, work).await;
    answered(req, route, started, &outcome);
    match outcome {
        Ok(twiml) => response::twiml(&twiml),
        Err(err) => err.into_twiml_response(),
    }
}

/// Twilio's requests only count in the webhook latency: a forged, oversized or misrouted one
/// is refused in microseconds, and a flood of them would pull the figure the alarm watches down.
fn answered(
    req: &Request,
    route: Option<&str>,
    started: std::time::Instant,
    outcome: &Result<VoiceResponse, AppError>,
) {
    if !matches!(outcome, Err(AppError::Forbidden(_) | AppError::PayloadTooLarge { .. } | AppError::NotFound(_))) {
        // Without one, the deadline came before the signature was checked: the route still counts.
        let route = route.or_else(|| Route::of(req).ok().map(|route| route.endpoint().path));
        crate::telemetry::webhook_answered(req.method().as_str(), route, started);
    }
}

/// A status callback: Twilio ignores what it answers, so success and failure alike get an
/// empty `<Response>` (a failure is logged), never a 5xx; a forged request still gets 403.
pub async fn status_callback(
    app: &App,
    req: &Request,
    work: impl AsyncFnOnce(Webhook) -> Result<(), AppError>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let (route, outcome) = signed(app, req, async |webhook| work(webhook).await.map(|()| VoiceResponse::new())).await;
    answered(req, route, started, &outcome);
    match outcome {
        Ok(twiml) => response::twiml(&twiml),
        Err(err) => err.into_status_callback_response(),
    }
}

/// The work's outcome, and the route's template once the request proved to be Twilio's.
async fn signed(
    app: &App,
    req: &Request,
    work: impl AsyncFnOnce(Webhook) -> Result<VoiceResponse, AppError>,
) -> (Option<&'static str>, Result<VoiceResponse, AppError>) {
    let mut route = None;
    let answer = async {
        let webhook = verify(app, req, &PublicOrigin::of(&app.config, req)).await?;
        route = Some(webhook.route.endpoint().path);
        let span = tracing::info_span!("webhook", call_sid = webhook.param("CallSid").unwrap_or_default());
        work(webhook).instrument(span).await
    };
    let outcome = tokio::time::timeout(WEBHOOK_DEADLINE, answer).await.unwrap_or(Err(AppError::Deadline));
    (route, outcome)
}

fn context<'a>(app: &'a App, req: &'a Request) -> Result<Context<'a>, (PublicOrigin, AppError)> {
    let origin = PublicOrigin::of(&app.config, req);
    match Route::of(req) {
        Ok(route) => Ok(Context { app, req, route, origin, session: OnceLock::new() }),
        Err(err) => Err((origin, err.into())),
    }
}

/// An endpoint of the pages' JSON API, with the headers every browser-facing answer carries.
pub async fn json(
    app: &App,
    req: &Request,
    work: impl AsyncFnOnce(&Context<'_>) -> Result<Response<Body>, AppError>,
) -> Response<Body> {
    let (mut response, https) = match context(app, req) {
        Ok(ctx) => (work(&ctx).await.unwrap_or_else(AppError::into_json_response), ctx.origin.is_https()),
        Err((origin, err)) => (err.into_json_response(), origin.is_https()),
    };
    response::harden(&mut response, https);
    response
}

/// A page or an asset, with the pages' headers. Work that shows a form answers its own errors
/// through `AppError::into_page_response` with that form; any other error is a short text.
pub async fn page(
    app: &App,
    req: &Request,
    work: impl AsyncFnOnce(&Context<'_>) -> Result<Response<Body>, AppError>,
) -> Response<Body> {
    let (mut response, https) = match context(app, req) {
        Ok(ctx) => (work(&ctx).await.unwrap_or_else(|err| err.into_page_response(None)), ctx.origin.is_https()),
        Err((origin, err)) => (err.into_page_response(None), origin.is_https()),
    };
    response::harden_page(&mut response, https);
    response
}
