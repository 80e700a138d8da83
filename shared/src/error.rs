//! The one error type of every handler, and the only place errors become HTTP responses.

use std::collections::BTreeMap;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use crate::http;
use crate::store::StoreError;
use crate::twilio::TwilioError;
use crate::twilio::access_token::TokenError;
use crate::twiml::VoiceResponse;

/// What a caller hears when Warmline cannot do its part; Twilio's own alternative is
/// "an application error has occurred".
pub const APOLOGY: &str =
    "We are sorry, we cannot connect your call right now. Please try again in a few minutes. Goodbye.";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad request: {message}")]
    BadRequest { message: &'static str, fields: BTreeMap<String, String> },
    /// No session, or one that has ended.
    #[error("not signed in")]
    Unauthorized,
    /// The reason is logged, never sent.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("Twilio request failed")]
    Upstream(#[from] TwilioError),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("could not mint a token")]
    Token(#[from] TokenError),
    #[error("could not draw randomness")]
    Random(#[from] getrandom::Error),
    #[error("the work did not finish in time")]
    Deadline,
}

impl AppError {
    pub fn bad_request(message: &'static str) -> Self {
        Self::BadRequest { message, fields: BTreeMap::new() }
    }

    pub fn invalid_fields(fields: BTreeMap<String, String>) -> Self {
        Self::BadRequest { message: "invalid input", fields }
    }

    fn log(&self) {
        match self {
            Self::BadRequest { .. }
            | Self::NotFound(_)
            | Self::Conflict(_)
            | Self::MethodNotAllowed
            | Self::Unauthorized
            | Self::PayloadTooLarge => {
                tracing::info!(error = %self, "request refused");
            }
            Self::Forbidden(reason) => tracing::warn!(reason, "request forbidden"),
            _ => {
                tracing::error!(error = %self, source = ?std::error::Error::source(self), "request failed")
            }
        }
    }

    /// For endpoints that browsers call: JSON with a status code; internals stay in the log.
    pub fn into_json_response(self) -> Response<Body> {
        self.log();
        match self {
            Self::BadRequest { message, fields } => {
                let mut body = json!({ "error": message });
                if !fields.is_empty() {
                    body["fields"] = json!(fields);
                }
                http::json(StatusCode::BAD_REQUEST, &body)
            }
            Self::Unauthorized => http::json(StatusCode::UNAUTHORIZED, &json!({ "error": "sign in first" })),
            Self::Forbidden(_) => http::json(StatusCode::FORBIDDEN, &json!({ "error": "forbidden" })),
            Self::NotFound(message) => http::json(StatusCode::NOT_FOUND, &json!({ "error": message })),
            Self::Conflict(message) => http::json(StatusCode::CONFLICT, &json!({ "error": message })),
            Self::MethodNotAllowed => {
                http::json(StatusCode::METHOD_NOT_ALLOWED, &json!({ "error": "method not allowed" }))
            }
            Self::PayloadTooLarge => http::json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({ "error": format!("the body must be at most {} bytes", http::MAX_BODY_BYTES) }),
            ),
            Self::Upstream(_) | Self::Store(_) | Self::Deadline => {
                let body = json!({ "error": "temporarily unavailable, please retry" });
                http::retry_after(http::json(StatusCode::SERVICE_UNAVAILABLE, &body), http::RETRY_AFTER_SECONDS)
            }
            Self::Token(_) | Self::Random(_) => {
                http::json(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "error": "internal" }))
            }
        }
    }

    /// For Twilio status callbacks, whose answer Twilio ignores: a forged request gets 403,
    /// anything else an empty `<Response>`; the error itself goes to the log.
    pub fn into_status_callback_response(self) -> Response<Body> {
        self.log();
        match self {
            Self::Forbidden(_) => http::text(StatusCode::FORBIDDEN, "forbidden"),
            _ => http::twiml(&VoiceResponse::new()),
        }
    }

    /// For Twilio webhooks: a forged request gets 403; anything else gets valid TwiML that
    /// tells the caller what happened, because a 4xx/5xx makes Twilio play its error message.
    pub fn into_twiml_response(self) -> Response<Body> {
        self.log();
        match self {
            Self::Forbidden(_) => http::text(StatusCode::FORBIDDEN, "forbidden"),
            _ => http::twiml(&VoiceResponse::new().say(APOLOGY).hangup()),
        }
    }
}
