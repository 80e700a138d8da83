//! The tickets endpoint's parsing: any JSON or form body gives fields or a client error, never a
//! panic, and every ticket it accepts keeps the documented limits.

#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use lambda_http::http::HeaderValue;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Request};
use libfuzzer_sys::fuzz_target;
use shared::domain::{MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, NewTicket, PhoneNumber};
use shared::http;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Bytes as they come, to the JSON or the form parser.
    Raw { json: bool, body: Vec<u8> },
    /// A JSON object with mostly the right names, so that accepted tickets are common.
    Object(Vec<(Field, Value)>),
}

#[derive(Debug, Arbitrary)]
enum Field {
    Name,
    PhoneNumber,
    Description,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Text(String),
    /// `+` and digits, with optional surrounding spaces: E.164 often enough to get past the check.
    Phone {
        padded: bool,
        digits: Vec<u8>,
    },
    /// Long text, to reach the length limits.
    Repeated {
        text: String,
        times: u16,
    },
    Null,
    Number(u32),
    Bool(bool),
}

fn json_value(value: Value) -> serde_json::Value {
    match value {
        Value::Text(text) => text.into(),
        Value::Phone { padded, digits } => {
            let number: String = digits.iter().map(|d| char::from(b'0' + d % 10)).collect();
            if padded { format!(" +{number}\t") } else { format!("+{number}") }.into()
        }
        Value::Repeated { text, times } => text.repeat(usize::from(times) % 2100).into(),
        Value::Null => serde_json::Value::Null,
        Value::Number(n) => n.into(),
        Value::Bool(b) => b.into(),
    }
}

fn body(input: Input) -> (bool, Vec<u8>) {
    match input {
        Input::Raw { json, body } => (json, body),
        Input::Object(pairs) => {
            // Written by hand so a name can repeat, as an attacker's JSON may.
            let members: Vec<String> = pairs
                .into_iter()
                .map(|(name, value)| {
                    let name = match name {
                        Field::Name => "name".to_owned(),
                        Field::PhoneNumber => "phone_number".to_owned(),
                        Field::Description => "description".to_owned(),
                        Field::Other(other) => other,
                    };
                    format!("{}:{}", serde_json::Value::from(name), json_value(value))
                })
                .collect();
            (true, format!("{{{}}}", members.join(",")).into_bytes())
        }
    }
}

fn check_field(value: &str, max_chars: usize, multiline: bool) {
    assert!(!value.is_empty(), "empty");
    assert_eq!(value, value.trim(), "not trimmed");
    assert!(value.chars().count() <= max_chars, "{} characters", value.chars().count());
    assert!(
        value.chars().all(|c| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'))),
        "a control character in {value:?}"
    );
}

fn check(ticket: &NewTicket, fields: &BTreeMap<String, String>) {
    check_field(&ticket.name, MAX_NAME_CHARS, false);
    check_field(&ticket.description, MAX_DESCRIPTION_CHARS, true);
    assert_eq!(PhoneNumber::parse(ticket.phone_number.as_str()).as_ref(), Ok(&ticket.phone_number));
    // Accepted values are the submitted ones, trimmed, never something made up.
    assert_eq!(fields.get("name").map(|v| v.trim()), Some(ticket.name.as_str()));
    assert_eq!(fields.get("description").map(|v| v.trim()), Some(ticket.description.as_str()));
    assert_eq!(fields.get("phone_number").map(|v| v.trim()), Some(ticket.phone_number.as_str()));
}

fuzz_target!(|input: Input| {
    let (json, body) = body(input);
    let too_large = body.len() > http::MAX_BODY_BYTES;
    let mut req = Request::new(Body::from(body));
    let content_type = if json { "application/json" } else { "application/x-www-form-urlencoded" };
    req.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));

    let Ok(fields) = http::fields(&req) else {
        return;
    };
    assert!(!too_large, "a body over {} bytes was read", http::MAX_BODY_BYTES);
    match NewTicket::parse(&fields) {
        Ok(ticket) => check(&ticket, &fields),
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without saying why");
            let known = ["name", "phone_number", "description"];
            assert!(errors.keys().all(|k| known.contains(&k.as_str())), "{errors:?}");
        }
    }
});
