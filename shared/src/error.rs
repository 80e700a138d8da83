//! The one error type of every handler, and the only place errors become HTTP responses:
//! TwiML for Twilio, JSON for the dashboard's API, pages (or a page's form) for browsers.

use std::collections::BTreeMap;

use lambda_http::http::header::ALLOW;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::response::{self, RETRY_AFTER_SECONDS};
use crate::routes::RouteError;
use crate::store::StoreError;
use crate::twilio::TwilioError;
use crate::twilio::access_token::TokenError;
use crate::twiml::VoiceResponse;

/// What a caller hears when Warmline cannot do its part; Twilio's own alternative is
/// "an application error has occurred".
pub const APOLOGY: &str =
    "We are sorry, we cannot connect your call right now. Please try again in a few minutes. Goodbye.";

/// What a page says, in its form or as text, for the errors a browser meets.
pub const INVALID_CREDENTIALS: &str = "Unknown agent or wrong password.";
pub const LOCKED_OUT: &str = "Too many failed attempts.";

/// What a refused sign-in says: how long to wait, as `Retry-After` does in seconds.
pub fn locked_out(retry_after: i64) -> String {
    let wait = match retry_after {
        ..=1 => "1 second".to_owned(),
        2..=59 => format!("{retry_after} seconds"),
        60 => "1 minute".to_owned(),
        _ => format!("{} minutes", (retry_after + 59) / 60),
    };
    format!("{LOCKED_OUT} Try again in {wait}.")
}
const CROSS_SITE: &str = "This request did not come from this site. Please try again.";
const UNAVAILABLE: &str = "This is unavailable right now. Please try again in a moment.";
const TOO_LARGE: &str = "That was more than this form takes.";

/// Renders a page's form again with a status and a message for the person filling it in.
pub type PageForm<'a> = &'a dyn Fn(StatusCode, &str) -> Response<Body>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad request: {message}")]
    BadRequest { message: &'static str, fields: BTreeMap<String, String> },
    /// No session, or one that has ended.
    #[error("not signed in")]
    Unauthorized,
    /// A sign-in with an unknown id, a disabled agent or a wrong password: one answer for all.
    #[error("sign-in refused")]
    InvalidCredentials,
    /// Too many failed sign-ins for an id or from an address; `retry_after` seconds until it
    /// may try again.
    #[error("sign-in locked out")]
    LockedOut { retry_after: i64 },
    /// The reason is logged, never sent.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("request body too large")]
    PayloadTooLarge { limit: usize },
    #[error("Twilio request failed")]
    Upstream(#[from] TwilioError),
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// The call ledger could not record a report: unlike other failures of a status callback,
    /// Twilio is told (a 503), so that it delivers the report again.
    #[error("the call ledger failed")]
    Ledger(#[source] StoreError),
    #[error("could not sign a token")]
    Token(#[from] TokenError),
    #[error("could not sign a session")]
    Session(#[from] jsonwebtoken::errors::Error),
    #[error("could not draw randomness")]
    Random(#[from] getrandom::Error),
    #[error("the work did not finish in time")]
    Deadline,
}

impl From<RouteError> for AppError {
    fn from(err: RouteError) -> Self {
        match err {
            RouteError::NotFound => Self::NotFound("no such route".into()),
            RouteError::MethodNotAllowed { allow } => Self::MethodNotAllowed { allow },
            RouteError::BadParameter(name) => {
                Self::invalid_fields([(name.to_owned(), "is malformed".to_owned())].into())
            }
        }
    }
}

impl AppError {
    pub fn bad_request(message: &'static str) -> Self {
        Self::BadRequest { message, fields: BTreeMap::new() }
    }

    pub fn invalid_fields(fields: BTreeMap<String, String>) -> Self {
        Self::BadRequest { message: "invalid input", fields }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::LockedOut { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Upstream(_) | Self::Store(_) | Self::Ledger(_) | Self::Deadline => StatusCode::SERVICE_UNAVAILABLE,
            Self::Token(_) | Self::Session(_) | Self::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn log(&self) {
        crate::telemetry::error(crate::telemetry::variant_name(&format!("{self:?}")));
        match self.status() {
            StatusCode::FORBIDDEN => tracing::warn!(error = %self, "request forbidden"),
            status if status.is_client_error() => tracing::info!(error = %self, "request refused"),
            _ => tracing::error!(error = %self, source = ?std::error::Error::source(self), "request failed"),
        }
    }

    /// The headers an answer of this kind carries whatever its body: when to retry, what is
    /// allowed.
    fn with_headers(&self, mut response: Response<Body>) -> Response<Body> {
        response = match self {
            Self::LockedOut { retry_after } => response::retry_after(response, *retry_after),
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => {
                response::retry_after(response, RETRY_AFTER_SECONDS)
            }
            _ => response,
        };
        if let Self::MethodNotAllowed { allow } = self {
            response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        }
        *response.status_mut() = self.status();
        response
    }

    /// For endpoints that browsers call: JSON with a status code; internals stay in the log.
    pub fn into_json_response(self) -> Response<Body> {
        self.log();
        let body = match &self {
            Self::BadRequest { message, fields } if fields.is_empty() => json!({ "error": message }),
            Self::BadRequest { message, fields } => json!({ "error": message, "fields": fields }),
            Self::Unauthorized => json!({ "error": "sign in first" }),
            Self::InvalidCredentials => json!({ "error": INVALID_CREDENTIALS }),
            Self::LockedOut { retry_after } => json!({ "error": locked_out(*retry_after) }),
            Self::Forbidden(_) => json!({ "error": "forbidden" }),
            Self::NotFound(message) | Self::Conflict(message) => json!({ "error": message }),
            Self::MethodNotAllowed { .. } => json!({ "error": "method not allowed" }),
            Self::PayloadTooLarge { limit } => json!({ "error": format!("the body must be at most {limit} bytes") }),
            Self::Upstream(_) | Self::Store(_) | Self::Ledger(_) | Self::Deadline => {
                json!({ "error": "temporarily unavailable, please retry" })
            }
            Self::Token(_) | Self::Session(_) | Self::Random(_) => json!({ "error": "internal" }),
        };
        self.with_headers(response::json(self.status(), &body))
    }

    /// For pages. An error met while handling a page's form (`form` renders that form with a
    /// message) shows the form again, so a browser without JavaScript can correct and resubmit;
    /// anything else is a short text.
    pub fn into_page_response(self, form: Option<PageForm<'_>>) -> Response<Body> {
        self.log();
        let waited;
        let message = match &self {
            Self::BadRequest { message, .. } => message,
            Self::InvalidCredentials => INVALID_CREDENTIALS,
            Self::LockedOut { retry_after } => {
                waited = locked_out(*retry_after);
                waited.as_str()
            }
            Self::Forbidden(_) => CROSS_SITE,
            Self::PayloadTooLarge { .. } => TOO_LARGE,
            _ => UNAVAILABLE,
        };
        // A route that does not exist, or not for this method, has no form to show.
        let response = match form {
            Some(form) if !matches!(self, Self::NotFound(_) | Self::MethodNotAllowed { .. }) => {
                form(self.status(), message)
            }
            _ => response::text(self.status(), self.page_text()),
        };
        self.with_headers(response)
    }

    /// The short text of a page that has no form to show an error in.
    fn page_text(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad request",
            Self::Unauthorized | Self::InvalidCredentials => "sign in first",
            Self::LockedOut { .. } => LOCKED_OUT,
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not found",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed { .. } => "method not allowed",
            Self::PayloadTooLarge { .. } => "too large",
            Self::Upstream(_) | Self::Store(_) | Self::Ledger(_) | Self::Deadline => {
                "temporarily unavailable, please retry"
            }
            Self::Token(_) | Self::Session(_) | Self::Random(_) => "internal error",
        }
    }

    /// For Twilio status callbacks, whose answer Twilio ignores: a forged request gets 403 (an
    /// oversized one 413), anything else an empty `<Response>`; the error itself goes to the log.
    pub fn into_status_callback_response(self) -> Response<Body> {
        self.log();
        match self {
            Self::Forbidden(_) | Self::PayloadTooLarge { .. } => response::text(self.status(), self.page_text()),
            Self::Ledger(_) => self.with_headers(response::text(self.status(), self.page_text())),
            _ => response::twiml(&VoiceResponse::new()),
        }
    }

    /// For Twilio webhooks: a forged request gets 403 (an oversized one 413); anything else gets
    /// valid TwiML that tells the caller what happened, because a 4xx/5xx makes Twilio play its
    /// error message.
    pub fn into_twiml_response(self) -> Response<Body> {
        self.log();
        match self {
            Self::Forbidden(_) | Self::PayloadTooLarge { .. } => response::text(self.status(), self.page_text()),
            _ => response::twiml(&VoiceResponse::new().say(APOLOGY).hangup()),
        }
    }
}
