//! TwiML: an ordered list of verbs with typed nesting. Only the verbs Warmline uses are modelled.
//! Attributes are written in a fixed order and left out when `None`, so whole documents can be
//! compared in tests; text and attribute escaping happen in exactly one pair of functions.

mod escape;

use escape::{escape_attribute, escape_text};

/// A `<Response>` document. `to_xml()` cannot fail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoiceResponse {
    verbs: Vec<Verb>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Say(String),
    Play { url: String, loop_count: Option<u32> },
    Pause { length_seconds: Option<u32> },
    Dial(Dial),
    Redirect { url: String, method: Option<Method> },
    Hangup,
    Gather(Gather),
    Record(Record),
}

/// `<Gather>` keys pressed (DTMF), saying `prompt` meanwhile. With no key before `timeout`,
/// Twilio goes on to the next verb without requesting `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    pub action: String,
    pub method: Option<Method>,
    pub num_digits: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub prompt: String,
}

/// `<Record>` a message; Twilio requests `action` when it ends, and posts
/// `recording_status_callback` once the recording is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub action: String,
    pub method: Option<Method>,
    pub max_length_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub finish_on_key: Option<String>,
    pub play_beep: Option<bool>,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_event: Option<String>,
    pub recording_status_callback_method: Option<Method>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// `<Dial>` and the one noun it connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// Where Twilio reports how the dialed call ended (`DialCallStatus`), and fetches what the
    /// call does next (POST, Twilio's default).
    pub action: Option<String>,
    pub caller_id: Option<String>,
    pub timeout_seconds: Option<u32>,
    pub noun: DialNoun,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialNoun {
    Number(String),
    Client(String),
    Conference(Conference),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub name: String,
    pub start_conference_on_enter: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
    pub wait_url: Option<String>,
    pub wait_method: Option<Method>,
    /// Where Twilio reports the conference's events. Only the first participant's counts: the
    /// conference takes it from whoever creates it.
    pub status_callback: Option<String>,
    /// Space-separated: `start end join leave mute hold modify speaker announcement`.
    pub status_callback_event: Option<String>,
    pub status_callback_method: Option<Method>,
}

impl Conference {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            start_conference_on_enter: None,
            end_conference_on_exit: None,
            wait_url: None,
            wait_method: None,
            status_callback: None,
            status_callback_event: None,
            status_callback_method: None,
        }
    }
}

impl VoiceResponse {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn verb(mut self, verb: Verb) -> Self {
        self.verbs.push(verb);
        self
    }

    pub fn say(self, text: impl Into<String>) -> Self {
        self.verb(Verb::Say(text.into()))
    }

    /// `loop_count` 0 repeats until the call moves on (Twilio's `loop="0"`).
    pub fn play(self, url: impl Into<String>, loop_count: Option<u32>) -> Self {
        self.verb(Verb::Play { url: url.into(), loop_count })
    }

    pub fn dial(self, dial: Dial) -> Self {
        self.verb(Verb::Dial(dial))
    }

    pub fn hangup(self) -> Self {
        self.verb(Verb::Hangup)
    }

    pub fn to_xml(&self) -> String {
        // Room for the documents Warmline answers with, so the text is written without regrowing.
        let mut xml = String::with_capacity(768);
        xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
        for verb in &self.verbs {
            write_verb(&mut xml, verb);
        }
        xml.push_str("</Response>");
        xml
    }
}

/// An attribute's value, written straight into the document (no `String` per attribute).
#[derive(Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Number(u32),
    Bool(bool),
}

fn text(value: &Option<String>) -> Option<Value<'_>> {
    value.as_deref().map(Value::Text)
}

fn number(value: Option<u32>) -> Option<Value<'static>> {
    value.map(Value::Number)
}

fn boolean(value: Option<bool>) -> Option<Value<'static>> {
    value.map(Value::Bool)
}

fn method(value: Option<Method>) -> Option<Value<'static>> {
    value.map(|m| Value::Text(m.as_str()))
}

fn write_verb(xml: &mut String, verb: &Verb) {
    match verb {
        Verb::Say(text) => element(xml, "Say", &[], text),
        Verb::Play { url, loop_count } => element(xml, "Play", &[("loop", number(*loop_count))], url),
        Verb::Pause { length_seconds } => empty_element(xml, "Pause", &[("length", number(*length_seconds))]),
        Verb::Redirect { url, method: how } => element(xml, "Redirect", &[("method", method(*how))], url),
        Verb::Hangup => empty_element(xml, "Hangup", &[]),
        Verb::Gather(gather) => {
            open_tag(
                xml,
                "Gather",
                &[
                    ("action", Some(Value::Text(&gather.action))),
                    ("method", method(gather.method)),
                    ("numDigits", number(gather.num_digits)),
                    ("timeout", number(gather.timeout_seconds)),
                ],
            );
            element(xml, "Say", &[], &gather.prompt);
            xml.push_str("</Gather>");
        }
        Verb::Record(record) => empty_element(
            xml,
            "Record",
            &[
                ("action", Some(Value::Text(&record.action))),
                ("method", method(record.method)),
                ("maxLength", number(record.max_length_seconds)),
                ("timeout", number(record.timeout_seconds)),
                ("finishOnKey", text(&record.finish_on_key)),
                ("playBeep", boolean(record.play_beep)),
                ("recordingStatusCallback", text(&record.recording_status_callback)),
                ("recordingStatusCallbackEvent", text(&record.recording_status_callback_event)),
                ("recordingStatusCallbackMethod", method(record.recording_status_callback_method)),
            ],
        ),
        Verb::Dial(dial) => {
            open_tag(
                xml,
                "Dial",
                &[
                    ("action", text(&dial.action)),
                    ("callerId", text(&dial.caller_id)),
                    ("timeout", number(dial.timeout_seconds)),
                ],
            );
            match &dial.noun {
                DialNoun::Number(number) => element(xml, "Number", &[], number),
                DialNoun::Client(identity) => element(xml, "Client", &[], identity),
                DialNoun::Conference(conference) => element(
                    xml,
                    "Conference",
                    &[
                        ("startConferenceOnEnter", boolean(conference.start_conference_on_enter)),
                        ("endConferenceOnExit", boolean(conference.end_conference_on_exit)),
                        ("waitUrl", text(&conference.wait_url)),
                        ("waitMethod", method(conference.wait_method)),
                        ("statusCallback", text(&conference.status_callback)),
                        ("statusCallbackEvent", text(&conference.status_callback_event)),
                        ("statusCallbackMethod", method(conference.status_callback_method)),
                    ],
                    &conference.name,
                ),
            }
            xml.push_str("</Dial>");
        }
    }
}

type Attributes<'a> = [(&'static str, Option<Value<'a>>)];

fn open_tag(xml: &mut String, name: &str, attributes: &Attributes) {
    xml.push('<');
    xml.push_str(name);
    write_attributes(xml, attributes);
    xml.push('>');
}

fn element(xml: &mut String, name: &str, attributes: &Attributes, text: &str) {
    open_tag(xml, name, attributes);
    escape_text(xml, text);
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

fn empty_element(xml: &mut String, name: &str, attributes: &Attributes) {
    xml.push('<');
    xml.push_str(name);
    write_attributes(xml, attributes);
    xml.push_str("/>");
}

fn write_attributes(xml: &mut String, attributes: &Attributes) {
    for (name, value) in attributes {
        let Some(value) = value else { continue };
        xml.push(' ');
        xml.push_str(name);
        xml.push_str("=\"");
        match *value {
            Value::Text(text) => escape_attribute(xml, text),
            Value::Number(n) => {
                use std::fmt::Write as _;
                // Writing to a String cannot fail.
                let _ = write!(xml, "{n}");
            }
            Value::Bool(b) => xml.push_str(if b { "true" } else { "false" }),
        }
        xml.push('"');
    }
}

#[cfg(test)]
mod tests;
