//! Warmline's functions run as API Gateway and Lambda run them, on loopback, with DynamoDB's and
//! Twilio's latency put back in: what a caller waits for (`latency`), and what a call costs
//! (`cost`). `make latency` and `make cost` run them; docs/PERFORMANCE.md has their figures.
//!
//! Layers, each using only those before it: `net` (loopback listeners), `units` (DynamoDB's
//! billing arithmetic), `taps`
//! (per-instance pass-throughs that price each request), `host` (the HTTP API and the Lambda
//! Runtime API), `stack` (everything together), `usage` (each invocation with what it used),
//! then the two measurements, `latency` and `cost`.

pub mod cost;
pub mod host;
pub mod latency;
pub mod net;
pub mod stack;
pub mod taps;
pub mod units;
pub mod usage;
