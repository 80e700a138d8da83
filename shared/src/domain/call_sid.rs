use std::fmt;

/// A Twilio Call SID: `CA` followed by 32 hexadecimal digits. A support conference is named
/// after the CallSid of the customer's call, so this is also a conference's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallSid(String);

impl CallSid {
    pub fn parse(input: &str) -> Option<Self> {
        let hex = input.strip_prefix("CA")?;
        (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_call_sids() {
        let sid = "CA0123456789abcdef0123456789ABCDEF";
        assert_eq!(CallSid::parse(sid).map(|s| s.to_string()), Some(sid.to_owned()));
        for bad in [
            "",
            "CA123",
            "PA0123456789abcdef0123456789abcdef",
            "CA0123456789abcdef0123456789abcdeg",
            "CA0123456789abcdef0123456789abcdef0",
        ] {
            assert_eq!(CallSid::parse(bad), None, "{bad:?}");
        }
    }
}
