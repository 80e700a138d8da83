//! Phone numbers: parsing any text never panics; what it accepts is canonical E.164 and parses
//! back to itself; the masked form shows only the `+`, the first country digit and the last two.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::PhoneNumber;

/// E.164 as the ITU writes it, independently of the parser: `+`, a non-zero digit, then up to 14
/// more digits, and at least two digits in all (a country code and a subscriber digit).
fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    let mut bytes = digits.bytes();
    matches!(bytes.next(), Some(b'1'..=b'9')) && bytes.all(|b| b.is_ascii_digit()) && (2..=15).contains(&digits.len())
}

fuzz_target!(|input: &str| {
    let parsed = PhoneNumber::parse(input);
    assert_eq!(parsed.is_ok(), is_e164(input), "{input:?}");
    let Ok(number) = parsed else {
        return;
    };
    assert_eq!(number.as_str(), input, "not canonical");
    assert_eq!(number.to_string(), input);
    assert_eq!(PhoneNumber::parse(number.as_str()), Ok(number.clone()), "does not reparse");

    let masked = number.masked();
    let shown: Vec<(usize, char)> = masked.char_indices().filter(|&(_, c)| c != '*').collect();
    assert_eq!(masked.chars().count(), input.chars().count(), "{masked:?}");
    let last = input.len() - 1;
    let allowed = [0, 1, last - 1, last];
    assert!(shown.iter().all(|(at, c)| allowed.contains(at) && input[*at..].starts_with(*c)), "{masked:?}");
    // At most the country's first digit and the last two: never enough to call the number.
    assert!(shown.iter().filter(|(_, c)| c.is_ascii_digit()).count() <= 3, "{masked:?}");
});
