//! Everything that speaks Twilio's protocols: the REST client, Access Tokens, webhook signatures.

pub mod access_token;
pub mod rest;
pub mod signature;

pub use rest::{CallUpdate, Dialer, OutboundCall, ParticipantUpdate, Recording, TwilioError, TwilioRestClient};
