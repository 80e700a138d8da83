//! Warmline: a serverless support call center. Every Lambda in `functions/` is a thin `main`
//! that wires one handler from here; all behaviour lives in this crate.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod http;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod twilio;
pub mod twiml;

pub use app::App;

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod oracle_tests;
