//! JSON written straight into a buffer, where serde_json's writer showed up in every request's
//! instruction count (the response document, log lines, metric lines): strings escaped exactly
//! as serde_json escapes them, eight bytes at a time; numbers and the rare other value through
//! serde_json itself.

/// Any other value (numbers, `Display` text) as serde_json writes it.
pub fn value(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    // Into a Vec, serialising a number or a Display cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// What each byte becomes in a JSON string, as serde_json writes it: 0 for itself, `u` for
/// `\u00XX`, else the letter after the backslash.
const ESCAPES: [u8; 256] = {
    let mut escapes = [0; 256];
    let mut byte = 0;
    while byte < 0x20 {
        escapes[byte] = b'u';
        byte += 1;
    }
    escapes[0x08] = b'b';
    escapes[0x09] = b't';
    escapes[0x0a] = b'n';
    escapes[0x0c] = b'f';
    escapes[0x0d] = b'r';
    escapes[b'"' as usize] = b'"';
    escapes[b'\\' as usize] = b'\\';
    escapes
};

/// `value` as a JSON string, escaped exactly as serde_json escapes it. Runs with nothing to
/// escape are found eight bytes at a time and copied whole.
pub fn string(json: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    json.push(b'"');
    let bytes = value.as_bytes();
    let mut run = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(chunk) = bytes.get(at..at + 8).and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
            && !needs_escape(u64::from_le_bytes(chunk))
        {
            at += 8;
            continue;
        }
        let byte = bytes[at];
        let escape = ESCAPES[usize::from(byte)];
        if escape != 0 {
            json.extend_from_slice(&bytes[run..at]);
            match escape {
                b'u' => json.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]),
                letter => json.extend_from_slice(&[b'\\', letter]),
            }
            run = at + 1;
        }
        at += 1;
    }
    json.extend_from_slice(&bytes[run..]);
    json.push(b'"');
}

/// Whether any of eight bytes is a quote, a backslash or a control character (below 0x20):
/// the classic "has a zero byte" test on the bytes XORed with each, and "has a byte below n".
fn needs_escape(chunk: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below_space = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH != 0;
    below_space || has_zero(chunk ^ (ONES * u64::from(b'"'))) || has_zero(chunk ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let every_ascii: String = (0..128u8).map(char::from).collect();
        // Each character needing an escape at every place in a run of eight, among characters that do not.
        let mut placed: Vec<String> = Vec::new();
        for special in ["\"", "\\", "\u{0}", "\u{1f}", "\n"] {
            for at in 0..17 {
                placed.push(format!("{}{special}{}", "é".repeat(at % 3) + &"x".repeat(at), "ab ~\u{7f}".repeat(3)));
            }
        }
        let samples = ["", "plain", "a\"b\\c", "<Say loop=\"1\">café ✓</Say>\n", "\u{7f}\u{80}\u{2028}", &every_ascii];
        for value in samples.iter().copied().chain(placed.iter().map(String::as_str)) {
            let mut ours = Vec::new();
            super::string(&mut ours, value);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(value).unwrap(), "{value:?}");
        }
    }
}
