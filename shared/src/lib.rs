//! Warmline: a serverless support call center. `functions` is the table of the Lambda functions
//! (each one's handler and warm-up); the one release binary in `lambda/` and each thin `main` in
//! `functions/` run an entry of it. All behaviour lives in this crate.
//!
//! The layers, from the request down (no module imports one above it):
//! - `handlers`: one adapter per function;
//! - `pipeline`: the request's facts worked out once, the checks of each kind of endpoint;
//! - `call_flow`: what happens to a support call, from arrival to hang-up;
//! - `routes` (every route once), `http` (what a request says), `response`, `error` (the only
//!   place errors become responses), `session`, `web` (pages and assets);
//! - `app`, `config`: what a function holds for its life;
//! - `store`, `twilio`, `twiml`: the ports and protocols; `tls` and `aws_http`: how they connect;
//! - `domain`: types checked when parsed.

pub mod app;
#[cfg(feature = "aws")]
pub mod aws_http;
pub mod call_flow;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
#[cfg(feature = "aws")]
pub mod functions;
pub mod handlers;
pub mod http;
pub mod json;
pub mod lambda;
pub mod password;
pub mod pipeline;
pub mod response;
pub mod routes;
pub mod secret;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod twilio;
pub mod twiml;
pub mod web;

pub use app::App;

/// Handler tests' kit: an `App` over memory stores, a recording dialer, a settable clock, and
/// requests as API Gateway sends them; also for the benchmarks and integration tests through
/// the `testkit` feature; never in a Lambda.
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

/// The project's test tools (the venv's Python, the DynamoDB emulator), also for other crates'
/// tests through the `testkit` feature; never in a Lambda.
#[cfg(any(test, feature = "testkit"))]
pub mod test_support;

#[cfg(test)]
mod oracle_tests;
