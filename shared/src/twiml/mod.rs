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
        let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
        for verb in &self.verbs {
            write_verb(&mut xml, verb);
        }
        xml.push_str("</Response>");
        xml
    }
}

fn write_verb(xml: &mut String, verb: &Verb) {
    match verb {
        Verb::Say(text) => element(xml, "Say", &[], text),
        Verb::Play { url, loop_count } => element(xml, "Play", &[("loop", loop_count.map(|n| n.to_string()))], url),
        Verb::Pause { length_seconds } => {
            empty_element(xml, "Pause", &[("length", length_seconds.map(|n| n.to_string()))])
        }
        Verb::Redirect { url, method } => {
            element(xml, "Redirect", &[("method", method.map(|m| m.as_str().to_owned()))], url)
        }
        Verb::Hangup => empty_element(xml, "Hangup", &[]),
        Verb::Gather(gather) => {
            open_tag(
                xml,
                "Gather",
                &[
                    ("action", Some(gather.action.clone())),
                    ("method", gather.method.map(|m| m.as_str().to_owned())),
                    ("numDigits", gather.num_digits.map(|n| n.to_string())),
                    ("timeout", gather.timeout_seconds.map(|n| n.to_string())),
                ],
            );
            element(xml, "Say", &[], &gather.prompt);
            xml.push_str("</Gather>");
        }
        Verb::Record(record) => empty_element(
            xml,
            "Record",
            &[
                ("action", Some(record.action.clone())),
                ("method", record.method.map(|m| m.as_str().to_owned())),
                ("maxLength", record.max_length_seconds.map(|n| n.to_string())),
                ("timeout", record.timeout_seconds.map(|n| n.to_string())),
                ("finishOnKey", record.finish_on_key.clone()),
                ("playBeep", record.play_beep.map(|b| b.to_string())),
                ("recordingStatusCallback", record.recording_status_callback.clone()),
                ("recordingStatusCallbackEvent", record.recording_status_callback_event.clone()),
                (
                    "recordingStatusCallbackMethod",
                    record.recording_status_callback_method.map(|m| m.as_str().to_owned()),
                ),
            ],
        ),
        Verb::Dial(dial) => {
            open_tag(
                xml,
                "Dial",
                &[("callerId", dial.caller_id.clone()), ("timeout", dial.timeout_seconds.map(|n| n.to_string()))],
            );
            match &dial.noun {
                DialNoun::Number(number) => element(xml, "Number", &[], number),
                DialNoun::Client(identity) => element(xml, "Client", &[], identity),
                DialNoun::Conference(conference) => element(
                    xml,
                    "Conference",
                    &[
                        ("startConferenceOnEnter", conference.start_conference_on_enter.map(|b| b.to_string())),
                        ("endConferenceOnExit", conference.end_conference_on_exit.map(|b| b.to_string())),
                        ("waitUrl", conference.wait_url.clone()),
                        ("waitMethod", conference.wait_method.map(|m| m.as_str().to_owned())),
                        ("statusCallback", conference.status_callback.clone()),
                        ("statusCallbackEvent", conference.status_callback_event.clone()),
                        ("statusCallbackMethod", conference.status_callback_method.map(|m| m.as_str().to_owned())),
                    ],
                    &conference.name,
                ),
            }
            xml.push_str("</Dial>");
        }
    }
}

type Attributes<'a> = [(&'a str, Option<String>)];

fn open_tag(xml: &mut String, name: &str, attributes: &Attributes) {
    xml.push('<');
    xml.push_str(name);
    write_attributes(xml, attributes);
    xml.push('>');
}

fn element(xml: &mut String, name: &str, attributes: &Attributes, text: &str) {
    open_tag(xml, name, attributes);
    xml.push_str(&escape_text(text));
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
        if let Some(value) = value {
            xml.push(' ');
            xml.push_str(name);
            xml.push_str("=\"");
            xml.push_str(&escape_attribute(value));
            xml.push('"');
        }
    }
}

#[cfg(test)]
mod tests;
