//! Warmline: a serverless support call center. Every Lambda in `functions/` is a thin `main`
//! that wires one handler from here; all behaviour lives in this crate.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod http;
pub mod password;
pub mod secret;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod twilio;
pub mod twiml;

pub use app::App;

/// The project's test tools (the venv's Python, the DynamoDB emulator), also for other crates'
/// tests through the `testkit` feature; never in a Lambda.
#[cfg(any(test, feature = "testkit"))]
pub mod test_support;

#[cfg(test)]
mod oracle_tests;
