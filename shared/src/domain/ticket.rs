use std::collections::BTreeMap;
use std::fmt;

use super::{AgentId, PhoneNumber};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A ticket id: a ULID (48-bit millisecond timestamp and 80 random bits in Crockford base32),
/// so ids sort by creation time and the newest-first index needs no other sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(String);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl TicketId {
    pub fn generate(now_millis: i64) -> Result<Self, getrandom::Error> {
        let mut random = [0u8; 10];
        getrandom::fill(&mut random)?;
        Ok(Self::from_parts(now_millis, random))
    }

    fn from_parts(now_millis: i64, random: [u8; 10]) -> Self {
        let time = u128::from(u64::try_from(now_millis).unwrap_or_default() & 0xFFFF_FFFF_FFFF);
        let value = random.iter().fold(time, |acc, byte| (acc << 8) | u128::from(*byte));
        Self((0..26).rev().map(|i| char::from(CROCKFORD[((value >> (5 * i)) & 0x1F) as usize])).collect())
    }

    pub fn parse(input: &str) -> Option<Self> {
        let well_formed = input.len() == 26
            && input.bytes().all(|b| CROCKFORD.contains(&b))
            // The first character carries only the top 3 of 128 bits.
            && input.as_bytes()[0] <= b'7';
        well_formed.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored support ticket: filed from the customer page, or left as a voicemail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub name: String,
    /// The number to call back; a browser caller's voicemail has none.
    pub phone_number: Option<PhoneNumber>,
    pub description: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The browser caller's identity, for a voicemail left from the customer page.
    pub customer: Option<String>,
    pub voicemail: Option<Voicemail>,
    /// The number is outside `DIAL_COUNTRIES` as the ticket was filed: agents cannot call it
    /// back. The ticket is kept all the same; `/call/connect` checks the number again anyway.
    pub outside_dial_countries: bool,
}

/// A message a caller left; the recording stays in Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voicemail {
    pub recording_sid: String,
    pub duration_seconds: u32,
}

impl TicketId {
    /// The id of the ticket a recording becomes, ordered by when its caller called
    /// (`called_at_millis`): the same for every delivery of the recording's callback, so a
    /// retried callback finds the ticket there already.
    pub fn for_recording(recording_sid: &str, called_at_millis: i64) -> Self {
        let seed = recording_sid
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&seed.to_be_bytes());
        Self::from_parts(called_at_millis, random)
    }
}

/// What a customer submits, checked: every field present, the phone number E.164, lengths
/// bounded, no control characters (line breaks and tabs are fine in the description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub name: String,
    pub phone_number: PhoneNumber,
    pub description: String,
}

/// Field name → what is wrong with it, in words for the person who typed it.
pub type FieldErrors = BTreeMap<String, String>;

impl NewTicket {
    pub fn parse(fields: &BTreeMap<String, String>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = text_field(fields, "name", MAX_NAME_CHARS, false, &mut errors);
        let description = text_field(fields, "description", MAX_DESCRIPTION_CHARS, true, &mut errors);
        let phone_number = match fields.get("phone_number").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => {
                errors.insert("phone_number".into(), "is required".into());
                None
            }
            Some(raw) => match PhoneNumber::parse(raw) {
                Ok(number) => Some(number),
                Err(err) => {
                    errors.insert("phone_number".into(), err.to_string());
                    None
                }
            },
        };
        match (name, phone_number, description) {
            (Some(name), Some(phone_number), Some(description)) if errors.is_empty() => {
                Ok(Self { name, phone_number, description })
            }
            _ => Err(errors),
        }
    }
}

fn text_field(
    fields: &BTreeMap<String, String>,
    name: &str,
    max_chars: usize,
    multiline: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    let checked = optional_text(fields.get(name).map(String::as_str), max_chars, multiline)
        .and_then(|value| value.ok_or_else(|| "is required".to_owned()));
    match checked {
        Err(problem) => {
            errors.insert(name.to_owned(), problem);
            None
        }
        Ok(value) => Some(value),
    }
}

/// A text field that may be left out: trimmed, `None` when empty, else at most `max_chars`
/// characters and no control characters (but line breaks and tabs when `multiline`). The error
/// says what is wrong, for the person who typed it.
pub fn optional_text(value: Option<&str>, max_chars: usize, multiline: bool) -> Result<Option<String>, String> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        Ok(None)
    } else if value.chars().count() > max_chars {
        Err(format!("must be at most {max_chars} characters"))
    } else if value.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(Some(value.to_owned()))
    }
}

/// How long an agent's note may be. A customer's re-filed description (up to
/// `MAX_DESCRIPTION_CHARS`) becomes a note too.
pub const MAX_NOTE_CHARS: usize = 1000;
/// Notes a ticket holds. Notes live on the ticket's item, which DynamoDB caps at 400 KB: 40
/// notes of at most 2,000 characters (8 KB in the worst UTF-8) leave room for the ticket itself.
pub const MAX_NOTES: usize = 40;
/// Status changes a ticket remembers, the latest ones; older ones fall off.
pub const MAX_STATUS_CHANGES: usize = 20;
/// Longest client-supplied note id.
pub const MAX_NOTE_ID_CHARS: usize = 64;

/// Whether a ticket still needs work. A ticket stored without a status is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TicketStatus {
    Open,
    Closed,
}

impl TicketStatus {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// One change of a ticket's status: to what, by which agent, when (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: TicketStatus,
    pub by: AgentId,
    pub at: String,
}

/// Who wrote a note: an agent, or the customer filing again while the ticket was open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteAuthor {
    Agent(AgentId),
    Customer,
}

/// The id a client gives a note, so that a retried request appends it once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteId(String);

impl NoteId {
    pub fn parse(input: &str) -> Option<Self> {
        let well_formed = (1..=MAX_NOTE_ID_CHARS).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(input.to_owned()))
    }

    /// The id of a customer's re-filed description: the same text re-filed (a retried POST)
    /// is the same note.
    pub fn for_refiling(description: &str) -> Self {
        let hash = description
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
        Self(format!("customer-{hash:016x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A note on a ticket: appended, never edited or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: NoteId,
    pub author: NoteAuthor,
    /// RFC 3339, UTC.
    pub at: String,
    pub text: String,
}

/// A ticket with what agents did with it: its status, the latest status changes, its notes.
/// `revision` counts status changes, so a change is written only over the one it was decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRecord {
    pub ticket: Ticket,
    pub status: TicketStatus,
    /// Oldest first, at most `MAX_STATUS_CHANGES`.
    pub history: Vec<StatusChange>,
    /// Oldest first, at most `MAX_NOTES`.
    pub notes: Vec<Note>,
    pub revision: u32,
}

impl TicketRecord {
    /// A ticket as filed: open, nothing done with it yet.
    pub fn new(ticket: Ticket) -> Self {
        Self { ticket, status: TicketStatus::Open, history: Vec::new(), notes: Vec::new(), revision: 0 }
    }

    /// Who closed it and when, while it is closed.
    pub fn closed(&self) -> Option<&StatusChange> {
        match self.status {
            TicketStatus::Closed => self.history.iter().rev().find(|change| change.status == TicketStatus::Closed),
            TicketStatus::Open => None,
        }
    }

    /// The record after `change`, or `None` when the ticket has that status already (closing a
    /// closed ticket changes nothing).
    pub fn after(&self, change: StatusChange) -> Option<Self> {
        if change.status == self.status {
            return None;
        }
        let mut next = self.clone();
        next.status = change.status;
        next.history.push(change);
        let excess = next.history.len().saturating_sub(MAX_STATUS_CHANGES);
        next.history.drain(..excess);
        next.revision = self.revision.saturating_add(1);
        Some(next)
    }

    pub fn has_note(&self, id: &NoteId) -> bool {
        self.notes.iter().any(|note| &note.id == id)
    }
}

/// What an agent asks of a ticket's status (`status`: `open` or `closed`).
pub fn parse_status(fields: &BTreeMap<String, String>) -> Result<TicketStatus, FieldErrors> {
    match fields.get("status").map(|v| v.trim()) {
        None | Some("") => Err([("status".to_owned(), "is required".to_owned())].into()),
        Some(raw) => TicketStatus::parse(raw)
            .ok_or_else(|| [("status".to_owned(), "must be \"open\" or \"closed\"".to_owned())].into()),
    }
}

/// A note an agent submits: `text` checked like a ticket's description, `note_id` the
/// client's own id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    pub id: NoteId,
    pub text: String,
}

impl NewNote {
    pub fn parse(fields: &BTreeMap<String, String>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let text = text_field(fields, "text", MAX_NOTE_CHARS, true, &mut errors);
        let id = match fields.get("note_id").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => {
                errors.insert("note_id".into(), "is required (any id of yours, the same when you retry)".into());
                None
            }
            Some(raw) => {
                let id = NoteId::parse(raw);
                if id.is_none() {
                    errors.insert(
                        "note_id".into(),
                        format!("must be 1 to {MAX_NOTE_ID_CHARS} letters, digits, '-' or '_'"),
                    );
                }
                id
            }
        };
        match (id, text) {
            (Some(id), Some(text)) if errors.is_empty() => Ok(Self { id, text }),
            _ => Err(errors),
        }
    }
}

/// A name as the name-prefix index sorts it: lower case, so a search ignores case.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// What a search for tickets asks: a number's tickets, or names starting with a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketSearch {
    Phone(PhoneNumber),
    /// In `name_key` form.
    NamePrefix(String),
}

impl TicketSearch {
    /// `phone` (E.164, or as typed with spaces, dashes, dots or brackets, or `00` for `+`) or
    /// `name` (a prefix of the name, any case); `None` when neither is given.
    pub fn parse(query: &BTreeMap<String, String>) -> Result<Option<Self>, FieldErrors> {
        let given = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        match (given("phone"), given("name")) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err([("name".to_owned(), "search by phone or by name, not both".to_owned())].into()),
            (Some(typed), None) => {
                let digits: String = typed.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
                let e164 = match digits.strip_prefix("00") {
                    Some(rest) => format!("+{rest}"),
                    None => digits,
                };
                PhoneNumber::parse(&e164).map(|number| Some(Self::Phone(number))).map_err(|_| {
                    [(
                        "phone".to_owned(),
                        "must be a phone number with its country code, such as +1 555 123 4567".to_owned(),
                    )]
                    .into()
                })
            }
            (None, Some(prefix)) => {
                let mut errors = FieldErrors::new();
                let fields = [("name".to_owned(), prefix.to_owned())].into();
                text_field(&fields, "name", MAX_NAME_CHARS, false, &mut errors)
                    .map(|prefix| Some(Self::NamePrefix(name_key(&prefix))))
                    .ok_or(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn ids_sort_by_time_and_parse_back() {
        let earlier = TicketId::generate(1_800_000_000_000).unwrap();
        let later = TicketId::generate(1_800_000_000_001).unwrap();
        assert!(earlier < later);
        assert_eq!(earlier.as_str().len(), 26);
        assert_eq!(TicketId::parse(earlier.as_str()), Some(earlier.clone()));
        assert_ne!(TicketId::generate(1).unwrap(), TicketId::generate(1).unwrap());
        for bad in [
            "",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVV",
            "01ARZ3NDEKTSV4RRFFQ69G5FAU",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
        ] {
            assert_eq!(TicketId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encodes_the_timestamp_like_the_ulid_spec() {
        // 1469918176385 ms is 01ARYZ6S41 in the ULID spec's example.
        assert!(TicketId::generate(1_469_918_176_385).unwrap().as_str().starts_with("01ARYZ6S41"));
    }

    #[test]
    fn accepts_a_complete_ticket_and_trims_it() {
        let ticket = NewTicket::parse(&fields(&[
            ("name", "  Ada Lovelace "),
            ("phone_number", " +15551234567"),
            ("description", "Mallet broke.\nTwice!\t(again)"),
        ]));
        assert_eq!(
            ticket,
            Ok(NewTicket {
                name: "Ada Lovelace".into(),
                phone_number: PhoneNumber::parse("+15551234567").unwrap(),
                description: "Mallet broke.\nTwice!\t(again)".into(),
            })
        );
    }

    #[test]
    fn reports_every_field_problem() {
        let errors = NewTicket::parse(&fields(&[("name", " "), ("phone_number", "555-1234")])).unwrap_err();
        assert_eq!(
            errors,
            fields(&[
                ("description", "is required"),
                ("name", "is required"),
                ("phone_number", "must be an E.164 phone number such as +15551234567"),
            ])
        );
        let errors = NewTicket::parse(&fields(&[
            ("name", "Ada\u{7}"),
            ("phone_number", ""),
            ("description", &"x".repeat(MAX_DESCRIPTION_CHARS + 1)),
        ]))
        .unwrap_err();
        assert_eq!(
            errors,
            fields(&[
                ("description", "must be at most 2000 characters"),
                ("name", "must not contain control characters"),
                ("phone_number", "is required"),
            ])
        );
        let errors =
            NewTicket::parse(&fields(&[("name", "A\nB"), ("phone_number", "+15551234567"), ("description", "ok")]));
        assert_eq!(errors, Err(fields(&[("name", "must not contain control characters")])));
    }

    #[test]
    fn a_status_change_is_kept_and_the_oldest_fall_off() {
        let filed = TicketRecord::new(ticket_for_tests());
        let change = |status, at: &str| StatusChange { status, by: AgentId::parse("agent1").unwrap(), at: at.into() };
        assert_eq!(filed.after(change(TicketStatus::Open, "t0")), None, "open already: nothing to do");
        let closed = filed.after(change(TicketStatus::Closed, "t1")).unwrap();
        assert_eq!((closed.status, closed.revision), (TicketStatus::Closed, 1));
        assert_eq!(closed.closed(), Some(&change(TicketStatus::Closed, "t1")));
        assert_eq!(closed.after(change(TicketStatus::Closed, "t2")), None);
        let mut record = closed;
        for n in 0..MAX_STATUS_CHANGES * 2 {
            let status = if n % 2 == 0 { TicketStatus::Open } else { TicketStatus::Closed };
            record = record.after(change(status, &format!("n{n}"))).unwrap();
        }
        assert_eq!(record.history.len(), MAX_STATUS_CHANGES);
        assert_eq!(record.history.last().unwrap().at, format!("n{}", MAX_STATUS_CHANGES * 2 - 1));
        assert_eq!(record.closed().unwrap().at, format!("n{}", MAX_STATUS_CHANGES * 2 - 1));
        assert_eq!(record.revision, u32::try_from(MAX_STATUS_CHANGES * 2 + 1).unwrap());
    }

    fn ticket_for_tests() -> Ticket {
        Ticket {
            id: TicketId::generate(1_800_000_000_000).unwrap(),
            name: "Ada".into(),
            phone_number: PhoneNumber::parse("+15551234567").ok(),
            description: "d".into(),
            created_at: "2027-01-15T08:00:00Z".into(),
            customer: None,
            voicemail: None,
            outside_dial_countries: false,
        }
    }

    #[test]
    fn parses_a_search_by_number_as_typed_or_by_name_in_any_case() {
        let number = PhoneNumber::parse("+15551234567").unwrap();
        for typed in ["+15551234567", " +1 (555) 123-4567 ", "+1.555.123.4567", "0015551234567"] {
            assert_eq!(
                TicketSearch::parse(&fields(&[("phone", typed)])),
                Ok(Some(TicketSearch::Phone(number.clone())))
            );
        }
        assert_eq!(
            TicketSearch::parse(&fields(&[("name", " ÉLodie ")])),
            Ok(Some(TicketSearch::NamePrefix("élodie".into())))
        );
        assert_eq!(TicketSearch::parse(&fields(&[("phone", " "), ("name", "")])), Ok(None));
        assert!(TicketSearch::parse(&fields(&[("phone", "5551234567")])).unwrap_err().contains_key("phone"));
        assert!(TicketSearch::parse(&fields(&[("phone", "+1"), ("name", "a")])).unwrap_err().contains_key("name"));
        assert!(
            TicketSearch::parse(&fields(&[("name", &"a".repeat(MAX_NAME_CHARS + 1))]))
                .unwrap_err()
                .contains_key("name")
        );
    }

    #[test]
    fn a_note_needs_its_id_and_text_checked_like_a_description() {
        let ok = NewNote::parse(&fields(&[("note_id", "3f1c-aa_9"), ("text", " Called.\nNo answer. ")]));
        assert_eq!(ok, Ok(NewNote { id: NoteId::parse("3f1c-aa_9").unwrap(), text: "Called.\nNo answer.".into() }));
        let errors =
            NewNote::parse(&fields(&[("note_id", "a/b"), ("text", &"x".repeat(MAX_NOTE_CHARS + 1))])).unwrap_err();
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["note_id", "text"]);
        assert_eq!(NoteId::parse(&"a".repeat(MAX_NOTE_ID_CHARS + 1)), None);
        assert_eq!(NoteId::for_refiling("same"), NoteId::for_refiling("same"));
        assert_ne!(NoteId::for_refiling("same"), NoteId::for_refiling("other"));
        assert_eq!(parse_status(&fields(&[("status", "closed")])), Ok(TicketStatus::Closed));
        assert!(parse_status(&fields(&[])).unwrap_err().contains_key("status"));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let name = "日".repeat(MAX_NAME_CHARS);
        assert!(
            NewTicket::parse(&fields(&[("name", &name), ("phone_number", "+15551234567"), ("description", "d")]))
                .is_ok()
        );
    }
}
