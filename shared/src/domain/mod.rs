//! Pure types and decisions. Each type parses its input once; holding a value means it is valid.

mod agent;
mod call_sid;
mod conference;
mod identity;
mod phone_number;
mod roster;
mod ticket;

pub use agent::{Agent, LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_SECONDS};
pub use call_sid::CallSid;
pub use conference::{CALL_RECORD_TTL_SECONDS, Conference};
pub use identity::{AgentId, Identity, InvalidIdentity};
pub use phone_number::{InvalidPhoneNumber, PhoneNumber};
pub use roster::{Roster, RosterError};
pub use ticket::{FieldErrors, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, NewTicket, Ticket, TicketId};

/// `bytes` random bytes as lower-case hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}
