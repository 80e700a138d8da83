//! The only place TwiML text is escaped.

/// Characters XML 1.0 forbids anywhere, even escaped: most C0 controls and two non-characters.
/// They are dropped, because Twilio rejects a document that contains them.
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

fn needs_escaping(c: char, escape_whitespace: bool) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'' | '\r')
        || (escape_whitespace && matches!(c, '\t' | '\n'))
        || !is_xml_char(c)
}

/// Appends `input` to `out`, escaped.
fn escape(out: &mut String, input: &str, escape_whitespace: bool) {
    // Most text (URLs, CallSids, fixed messages) is printable ASCII with nothing to escape: a byte
    // scan finds that, and the text is copied whole.
    if input.bytes().all(|b| matches!(b, b' '..=b'~') && !matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')) {
        out.push_str(input);
        return;
    }
    out.reserve(input.len() + 16);
    for c in input.chars().filter(|&c| is_xml_char(c)) {
        if !needs_escaping(c, escape_whitespace) {
            out.push(c);
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A parser normalises raw tabs and newlines in attributes to spaces; keep them.
            '\t' if escape_whitespace => out.push_str("&#9;"),
            '\n' if escape_whitespace => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

pub(super) fn escape_text(out: &mut String, input: &str) {
    escape(out, input, false)
}

pub(super) fn escape_attribute(out: &mut String, input: &str) {
    escape(out, input, true)
}
