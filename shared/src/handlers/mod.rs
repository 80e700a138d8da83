//! One module per function, each with `pub async fn handle(app, req)`: an adapter that hands
//! the request to its entry in `pipeline`, calls the call flow or the stores, and renders the
//! result. No handler imports another; what two share lives below them.

pub mod call_connect;
pub mod conference_call_agent;
pub mod conference_connect_agent;
pub mod conference_connect_client;
pub mod conference_events;
pub mod conference_wait;
pub mod pages;
pub mod presence;
pub mod session;
pub mod tickets;
pub mod token;
pub mod voicemail;
