use std::fmt;

/// A phone number in E.164 form: `+`, a non-zero country digit, at most 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an E.164 phone number such as +15551234567")]
pub struct InvalidPhoneNumber;

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, InvalidPhoneNumber> {
        let digits = input.strip_prefix('+').ok_or(InvalidPhoneNumber)?;
        let well_formed =
            (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if well_formed { Ok(Self(input.to_owned())) } else { Err(InvalidPhoneNumber) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form that may appear in logs: country code and the last two digits only.
    pub fn masked(&self) -> String {
        mask_phone_number(&self.0)
    }
}

/// Masks anything that might be a phone number, valid or not, for logging.
pub fn mask_phone_number(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164() {
        for ok in ["+15551234567", "+442071838750", "+12", "+123456789012345"] {
            assert_eq!(PhoneNumber::parse(ok).map(|p| p.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "+",
            "+1",
            "15551234567",
            "+05551234567",
            "+1555123456789012",
            "+1 555 123 4567",
            "+1555-123-4567",
            "++15551234567",
            "+1555123456７",
            "client:agent1",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(InvalidPhoneNumber), "{bad:?}");
        }
    }

    #[test]
    fn masks_all_but_the_edges() {
        let number = PhoneNumber::parse("+15551234567").map(|p| p.masked());
        assert_eq!(number, Ok("+1********67".to_owned()));
        assert_eq!(mask_phone_number("123"), "***");
    }
}
