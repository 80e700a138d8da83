//! Every endpoint through its handler, as API Gateway hands it requests: status, headers,
//! body, and what changed in the stores and what was sent to Twilio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod prelude {
    pub use lambda_http::{Body, Request, Response};
    pub use shared::call_flow::{BACK_IN_LINE, CALL_ENDED, HOLD_MESSAGE, REFUSAL};
    pub use shared::domain::{AgentId, CallSid, PhoneNumber, TicketId};
    pub use shared::error::INVALID_CREDENTIALS;
    pub use shared::testkit::*;
    pub use shared::twilio::CallUpdate;
}

mod call_actions;
mod call_connect;
mod conference_call_agent;
mod conference_connect_agent;
mod conference_connect_client;
mod conference_events;
mod conference_wait;
mod current_call;
mod ledger;
mod metrics;
mod pages;
mod presence;
mod secrets;
mod session;
mod ticket_work;
mod tickets;
mod token;
mod voicemail;
mod wallboard;
mod webhook_limits;
