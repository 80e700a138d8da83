//! Pure types and decisions. Each type parses its input once; holding a value means it is valid.

mod call_sid;
mod identity;
mod phone_number;
mod roster;
mod ticket;

pub use call_sid::CallSid;
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
