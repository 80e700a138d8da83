//! Pure types and decisions. Each type parses its input once; holding a value means it is valid.

mod agent;
mod agent_token;
mod call_sid;
mod call_slots;
mod conference;
mod dial_countries;
mod hours;
mod identity;
mod ledger;
mod phone_number;
mod presence;
mod sign_in;
mod ticket;
mod wallboard;

pub use agent::Agent;
pub use agent_token::AgentToken;
pub use call_sid::CallSid;
pub use call_slots::{BROWSER_CALL_SLOT_SECONDS, CallSlots, SlotHolder, SourceAddress};
pub use conference::{
    CALL_RECORD_TTL_SECONDS, CallAction, Caller, CallerIntro, CallerState, ColleagueOutcome, Conference, Transfer,
    TransferKind, queue_key,
};
pub use dial_countries::{DialCountries, InvalidDialCountries};
pub use hours::{BusinessHours, InvalidHours};
pub use identity::{AgentId, Identity, InvalidIdentity};
pub use ledger::{
    AgentRole, CallOutcome, CallRecord, Channel, LEDGER_RETENTION_DAYS, LedgerEvent, VOICEMAIL_SILENCE_SECONDS,
    parse_started_key, reported_at_ms, started_key,
};
pub use phone_number::{InvalidPhoneNumber, PhoneNumber};
pub use presence::{AgentState, Availability, PRESENCE_LEASE_SECONDS, Presence, pool_key};
pub use sign_in::{
    AGENT_ID_LIMIT, SIGN_IN_WINDOW_SECONDS, SOURCE_ADDRESS_LIMIT, SignInAttempt, SignInCounter, SignInLimit,
};
pub use ticket::{
    FieldErrors, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_NOTE_CHARS, MAX_NOTES, MAX_STATUS_CHANGES, NewNote,
    NewTicket, Note, NoteAuthor, NoteId, StatusChange, Ticket, TicketId, TicketRecord, TicketSearch, TicketStatus,
    Voicemail, name_key, optional_text, parse_status,
};
pub use wallboard::{DAY_COUNTS_TTL_SECONDS, DayCounts, Line, Outcome, Team, Wallboard, day_of};

/// `epoch_seconds` as RFC 3339, UTC.
pub fn rfc3339(epoch_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// `bytes` random bytes as lower-case hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer)?;
    // Two digits a byte, without a formatted String for each: this names every new call.
    let mut hex = String::with_capacity(bytes * 2);
    for byte in buffer {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    Ok(hex)
}
