use std::collections::BTreeMap;
use std::fmt;

use super::PhoneNumber;

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
    let value = fields.get(name).map(|v| v.trim()).unwrap_or_default();
    let problem = if value.is_empty() {
        Some("is required".to_owned())
    } else if value.chars().count() > max_chars {
        Some(format!("must be at most {max_chars} characters"))
    } else if value.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) {
        Some("must not contain control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => {
            errors.insert(name.to_owned(), problem);
            None
        }
        None => Some(value.to_owned()),
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
    fn counts_characters_not_bytes() {
        let name = "日".repeat(MAX_NAME_CHARS);
        assert!(
            NewTicket::parse(&fields(&[("name", &name), ("phone_number", "+15551234567"), ("description", "d")]))
                .is_ok()
        );
    }
}
