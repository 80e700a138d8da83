//! Pure types and decisions. Each type parses its input once; holding a value means it is valid.

mod agent;
mod call_sid;
mod conference;
mod hours;
mod identity;
mod phone_number;
mod presence;
mod ticket;

pub use agent::{Agent, LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_SECONDS};
pub use call_sid::CallSid;
pub use conference::{CALL_RECORD_TTL_SECONDS, Caller, CallerState, Conference, queue_key};
pub use hours::{BusinessHours, InvalidHours};
pub use identity::{AgentId, Identity, InvalidIdentity};
pub use phone_number::{InvalidPhoneNumber, PhoneNumber};
pub use presence::{AgentState, Availability, PRESENCE_LEASE_SECONDS, Presence, pool_key};
pub use ticket::{FieldErrors, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, NewTicket, Ticket, TicketId, Voicemail};

/// `epoch_seconds` as RFC 3339, UTC.
pub fn rfc3339(epoch_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// `bytes` random bytes as lower-case hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}
