//! Reads TwiML the way Twilio does for the verbs Warmline uses, and refuses what Twilio refuses,
//! with Twilio's error codes. Stricter than Twilio in one way: an unknown verb or a misplaced
//! noun, which Twilio logs as warning 12200 and may skip, fails the call here, so that a test
//! notices it instead of a caller.

use std::fmt;

use serde::Serialize;

/// A parsed `<Response>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub verbs: Vec<Verb>,
    /// Unknown attributes and similar things Twilio only warns about (12200).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `loop` 0 repeats until the call moves on.
    Say {
        text: String,
        loop_count: u32,
    },
    Play {
        url: String,
        loop_count: u32,
    },
    Pause {
        seconds: u32,
    },
    Redirect {
        url: String,
        method: Method,
    },
    Hangup,
    Dial(Dial),
    Gather(Gather),
    Record(Record),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    pub caller_id: Option<String>,
    /// Seconds to ring the other party; Twilio's default is 30.
    pub timeout_seconds: u32,
    pub action: Option<String>,
    pub method: Method,
    pub target: DialTarget,
}

/// `<Gather input="dtmf">`: keypad input, with `<Say>`, `<Play>` and `<Pause>` prompts nested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// `None`: Twilio requests the current document's URL.
    pub action: Option<String>,
    pub method: Method,
    /// Seconds Twilio waits for the next digit once the prompts are over; Twilio's default is 5.
    pub timeout_seconds: u32,
    /// `None`: unlimited.
    pub num_digits: Option<u32>,
    /// Empty: no key ends the input, only `numDigits` or the timeout do.
    pub finish_on_key: String,
    /// Request `action` even when the caller entered nothing.
    pub action_on_empty_result: bool,
    /// Only `Say`, `Play` and `Pause`, as Twilio allows.
    pub prompts: Vec<Verb>,
}

impl Default for Gather {
    /// Twilio's defaults for `<Gather/>`.
    fn default() -> Self {
        Self {
            action: None,
            method: Method::Post,
            timeout_seconds: 5,
            num_digits: None,
            finish_on_key: "#".into(),
            action_on_empty_result: false,
            prompts: Vec::new(),
        }
    }
}

/// `<Record>`: the caller's voice, until silence, `maxLength`, a key or a hang-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `None`: Twilio requests the current document's URL.
    pub action: Option<String>,
    pub method: Method,
    /// Seconds of silence that end the recording; 0 turns that off.
    pub timeout_seconds: u32,
    pub max_length_seconds: u32,
    /// Any of these keys ends the recording; empty: none does.
    pub finish_on_key: String,
    pub play_beep: bool,
    /// `trim="trim-silence"`, Twilio's default: leading and trailing silence is cut from the file.
    pub trim_silence: bool,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: Method,
    /// `in-progress`, `completed`, `absent`; Twilio's default is `completed` alone.
    pub recording_status_callback_events: Vec<String>,
}

impl Default for Record {
    /// Twilio's defaults for `<Record/>`.
    fn default() -> Self {
        Self {
            action: None,
            method: Method::Post,
            timeout_seconds: 5,
            max_length_seconds: 3600,
            finish_on_key: DTMF_KEYS.into(),
            play_beep: true,
            trim_silence: true,
            recording_status_callback: None,
            recording_status_callback_method: Method::Post,
            recording_status_callback_events: vec!["completed".into()],
        }
    }
}

/// Every key on a phone's keypad, in the order Twilio writes `<Record>`'s default `finishOnKey`.
pub const DTMF_KEYS: &str = "1234567890*#";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    Number(String),
    Client(String),
    Conference(ConferenceOptions),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceOptions {
    pub name: String,
    pub start_conference_on_enter: bool,
    pub end_conference_on_exit: bool,
    /// `None`: Twilio's own default hold music.
    pub wait_url: Option<String>,
    pub wait_method: Method,
    pub muted: bool,
    pub status_callback: Option<String>,
    pub status_callback_method: Method,
    pub status_callback_events: Vec<String>,
}

impl ConferenceOptions {
    /// Twilio's defaults for `<Conference>name</Conference>`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            start_conference_on_enter: true,
            end_conference_on_exit: false,
            wait_url: None,
            wait_method: Method::Post,
            muted: false,
            status_callback: None,
            status_callback_method: Method::Post,
            status_callback_events: Vec::new(),
        }
    }
}

/// Why Twilio would not run a document; the call then hears "an application error has
/// occurred" and is hung up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TwimlError {
    pub code: u32,
    pub message: String,
}

pub const DOCUMENT_PARSE_FAILURE: u32 = 12100;
pub const SCHEMA_VALIDATION: u32 = 12200;
/// "Dial->Conference: Invalid Verb used in waitUrl, holdUrl, or announceUrl TwiML".
pub const INVALID_WAIT_VERB: u32 = 13238;
/// The simulator's own code for TwiML that is valid for Twilio but not modelled here.
pub const NOT_SIMULATED: u32 = 0;

impl TwimlError {
    fn parse(message: impl Into<String>) -> Self {
        Self { code: DOCUMENT_PARSE_FAILURE, message: format!("Document parse failure: {}", message.into()) }
    }

    fn schema(message: impl Into<String>) -> Self {
        Self { code: SCHEMA_VALIDATION, message: format!("Schema validation warning: {}", message.into()) }
    }
}

const VERBS_NOT_SIMULATED: &[&str] =
    &["Reject", "Enqueue", "Leave", "Sms", "Message", "Connect", "Refer", "Pay", "Start", "Stop"];
const NOUNS: &[&str] = &["Number", "Client", "Conference", "Sip", "Queue", "Identity", "Parameter"];

/// Which verbs a document may use where it runs: wait TwiML (a conference's `waitUrl`, a
/// participant's `holdUrl`) is limited by Twilio to `Say`, `Play`, `Pause` and `Redirect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Call,
    Wait,
}

pub fn parse(xml: &str, context: Context) -> Result<Document, TwimlError> {
    let tree = roxmltree::Document::parse(xml).map_err(|err| TwimlError::parse(err.to_string()))?;
    let root = tree.root_element();
    if root.tag_name().name() != "Response" {
        return Err(TwimlError::schema(format!("the root element is <{}>, not <Response>", root.tag_name().name())));
    }
    let mut document = Document::default();
    for child in root.children() {
        if child.is_text() {
            if child.text().is_some_and(|text| !text.trim().is_empty()) {
                return Err(TwimlError::schema("text directly inside <Response>"));
            }
            continue;
        }
        if !child.is_element() {
            continue;
        }
        let verb = parse_verb(child, &mut document.warnings)?;
        if context == Context::Wait
            && !matches!(verb, Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. } | Verb::Redirect { .. })
        {
            return Err(TwimlError {
                code: INVALID_WAIT_VERB,
                message: format!(
                    "Invalid Verb used in waitUrl, holdUrl, or announceUrl TwiML: <{}>; only Say, Play, Pause and Redirect are allowed",
                    child.tag_name().name()
                ),
            });
        }
        document.verbs.push(verb);
    }
    Ok(document)
}

fn parse_verb(node: roxmltree::Node, warnings: &mut Vec<String>) -> Result<Verb, TwimlError> {
    let name = node.tag_name().name();
    match name {
        "Say" => {
            known_attributes(node, &["voice", "language", "loop"], warnings);
            no_child_elements(node)?;
            let text = text_of(node);
            if text.trim().is_empty() {
                warnings.push("<Say> has no text".into());
            }
            Ok(Verb::Say { text, loop_count: number_attribute(node, "loop", 1)? })
        }
        "Play" => {
            known_attributes(node, &["loop", "digits"], warnings);
            no_child_elements(node)?;
            let url = text_of(node).trim().to_owned();
            if url.is_empty() {
                return Err(TwimlError::schema("<Play> needs a URL"));
            }
            Ok(Verb::Play { url, loop_count: number_attribute(node, "loop", 1)? })
        }
        "Pause" => {
            known_attributes(node, &["length"], warnings);
            no_child_elements(node)?;
            Ok(Verb::Pause { seconds: number_attribute(node, "length", 1)? })
        }
        "Redirect" => {
            known_attributes(node, &["method"], warnings);
            no_child_elements(node)?;
            let url = text_of(node).trim().to_owned();
            if url.is_empty() {
                return Err(TwimlError::schema("<Redirect> needs a URL"));
            }
            Ok(Verb::Redirect { url, method: method_attribute(node, "method")? })
        }
        "Hangup" => {
            known_attributes(node, &[], warnings);
            no_child_elements(node)?;
            Ok(Verb::Hangup)
        }
        "Dial" => parse_dial(node, warnings).map(Verb::Dial),
        "Gather" => parse_gather(node, warnings).map(Verb::Gather),
        "Record" => parse_record(node, warnings).map(Verb::Record),
        _ if VERBS_NOT_SIMULATED.contains(&name) => Err(TwimlError {
            code: NOT_SIMULATED,
            message: format!("<{name}> is valid TwiML the simulator does not model"),
        }),
        _ if NOUNS.contains(&name) => Err(TwimlError::schema(format!("<{name}> is a noun and belongs inside <Dial>"))),
        _ => Err(TwimlError::schema(format!("<{name}> is not a TwiML verb"))),
    }
}

fn parse_dial(node: roxmltree::Node, warnings: &mut Vec<String>) -> Result<Dial, TwimlError> {
    known_attributes(
        node,
        &[
            "action",
            "method",
            "timeout",
            "callerId",
            "hangupOnStar",
            "timeLimit",
            "record",
            "trim",
            "answerOnBridge",
            "ringTone",
            "recordingStatusCallback",
            "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent",
            "referUrl",
            "referMethod",
            "sequential",
        ],
        warnings,
    );
    let nouns: Vec<_> = node.children().filter(roxmltree::Node::is_element).collect();
    let target = match nouns.as_slice() {
        [] => {
            let number = text_of(node).trim().to_owned();
            if number.is_empty() {
                return Err(TwimlError::schema("<Dial> has nothing to dial"));
            }
            DialTarget::Number(number)
        }
        [noun] => parse_noun(*noun, warnings)?,
        _ => {
            return Err(TwimlError {
                code: NOT_SIMULATED,
                message: "<Dial> with several nouns (simultaneous ringing) is not modelled".into(),
            });
        }
    };
    if !nouns.is_empty() && !text_of(node).trim().is_empty() {
        return Err(TwimlError::schema("<Dial> mixes text and nouns"));
    }
    // Twilio accepts 5 to 600 seconds and clamps anything else into that range.
    let timeout_seconds = number_attribute(node, "timeout", 30)?.clamp(5, 600);
    Ok(Dial {
        caller_id: node.attribute("callerId").map(str::to_owned),
        timeout_seconds,
        action: node.attribute("action").map(str::to_owned),
        method: method_attribute(node, "method")?,
        target,
    })
}

fn parse_gather(node: roxmltree::Node, warnings: &mut Vec<String>) -> Result<Gather, TwimlError> {
    known_attributes(
        node,
        &[
            "action",
            "method",
            "timeout",
            "numDigits",
            "finishOnKey",
            "actionOnEmptyResult",
            "input",
            "hints",
            "language",
            "speechTimeout",
            "speechModel",
            "enhanced",
            "profanityFilter",
            "partialResultCallback",
            "partialResultCallbackMethod",
            "bargeIn",
            "debug",
            "maxSpeechTime",
        ],
        warnings,
    );
    let input = node.attribute("input").unwrap_or("dtmf");
    if input.split_whitespace().any(|kind| kind == "speech") {
        return Err(TwimlError { code: NOT_SIMULATED, message: "<Gather input=\"speech\"> is not modelled".into() });
    }
    if input.trim() != "dtmf" {
        return Err(TwimlError::schema(format!("<Gather> input={input:?} must be dtmf, speech or \"dtmf speech\"")));
    }
    if !text_of(node).trim().is_empty() {
        return Err(TwimlError::schema("text directly inside <Gather>"));
    }
    let mut prompts = Vec::new();
    for child in node.children().filter(roxmltree::Node::is_element) {
        let name = child.tag_name().name();
        if !matches!(name, "Say" | "Play" | "Pause") {
            return Err(TwimlError::schema(format!(
                "<{name}> is not allowed inside <Gather>; only Say, Play and Pause are"
            )));
        }
        prompts.push(parse_verb(child, warnings)?);
    }
    let timeout_seconds = number_attribute(node, "timeout", 5)?;
    if timeout_seconds == 0 {
        return Err(TwimlError::schema("<Gather> timeout must be a positive number of seconds"));
    }
    let num_digits = match node.attribute("numDigits") {
        None => None,
        Some(_) => match number_attribute(node, "numDigits", 1)? {
            0 => return Err(TwimlError::schema("<Gather> numDigits must be a positive whole number")),
            digits => Some(digits),
        },
    };
    let finish_on_key = node.attribute("finishOnKey").unwrap_or("#").to_owned();
    if finish_on_key.chars().count() > 1 || !finish_on_key.chars().all(|key| DTMF_KEYS.contains(key)) {
        return Err(TwimlError::schema(format!(
            "<Gather> finishOnKey={finish_on_key:?} must be one of 0-9, # or *, or empty"
        )));
    }
    Ok(Gather {
        action: node.attribute("action").map(str::to_owned),
        method: method_attribute(node, "method")?,
        timeout_seconds,
        num_digits,
        finish_on_key,
        action_on_empty_result: bool_attribute(node, "actionOnEmptyResult", false)?,
        prompts,
    })
}

fn parse_record(node: roxmltree::Node, warnings: &mut Vec<String>) -> Result<Record, TwimlError> {
    known_attributes(
        node,
        &[
            "action",
            "method",
            "timeout",
            "maxLength",
            "finishOnKey",
            "playBeep",
            "trim",
            "recordingStatusCallback",
            "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent",
            "transcribe",
            "transcribeCallback",
        ],
        warnings,
    );
    no_child_elements(node)?;
    if !text_of(node).trim().is_empty() {
        return Err(TwimlError::schema("<Record> takes no text"));
    }
    if bool_attribute(node, "transcribe", false)? {
        return Err(TwimlError { code: NOT_SIMULATED, message: "<Record transcribe=\"true\"> is not modelled".into() });
    }
    let defaults = Record::default();
    let max_length_seconds = number_attribute(node, "maxLength", defaults.max_length_seconds)?;
    if !(1..=MAX_RECORD_SECONDS).contains(&max_length_seconds) {
        return Err(TwimlError::schema(format!(
            "<Record> maxLength={max_length_seconds} must be between 1 and {MAX_RECORD_SECONDS} seconds"
        )));
    }
    let finish_on_key = node.attribute("finishOnKey").unwrap_or(DTMF_KEYS).to_owned();
    if !finish_on_key.chars().all(|key| DTMF_KEYS.contains(key)) {
        return Err(TwimlError::schema(format!("<Record> finishOnKey={finish_on_key:?} may only hold 0-9, # and *")));
    }
    let trim_silence = match node.attribute("trim") {
        None | Some("trim-silence") => true,
        Some("do-not-trim") => false,
        Some(other) => {
            return Err(TwimlError::schema(format!("<Record> trim={other:?} must be trim-silence or do-not-trim")));
        }
    };
    let recording_status_callback_events = match node.attribute("recordingStatusCallbackEvent") {
        None => defaults.recording_status_callback_events,
        Some(events) => {
            let events: Vec<String> = events.split([' ', ',']).filter(|e| !e.is_empty()).map(str::to_owned).collect();
            if let Some(unknown) = events.iter().find(|e| !matches!(e.as_str(), "in-progress" | "completed" | "absent"))
            {
                return Err(TwimlError::schema(format!(
                    "<Record> recordingStatusCallbackEvent {unknown:?} must be in-progress, completed or absent"
                )));
            }
            events
        }
    };
    Ok(Record {
        action: node.attribute("action").map(str::to_owned),
        method: method_attribute(node, "method")?,
        timeout_seconds: number_attribute(node, "timeout", defaults.timeout_seconds)?,
        max_length_seconds,
        finish_on_key,
        play_beep: bool_attribute(node, "playBeep", true)?,
        trim_silence,
        recording_status_callback: node.attribute("recordingStatusCallback").map(str::to_owned),
        recording_status_callback_method: method_attribute(node, "recordingStatusCallbackMethod")?,
        recording_status_callback_events,
    })
}

/// Twilio's ceiling for `maxLength` on accounts with the default four-hour call limit.
const MAX_RECORD_SECONDS: u32 = 14_400;

fn parse_noun(node: roxmltree::Node, warnings: &mut Vec<String>) -> Result<DialTarget, TwimlError> {
    let name = node.tag_name().name();
    match name {
        "Number" => {
            known_attributes(
                node,
                &[
                    "sendDigits",
                    "url",
                    "method",
                    "statusCallback",
                    "statusCallbackEvent",
                    "statusCallbackMethod",
                    "byoc",
                ],
                warnings,
            );
            no_child_elements(node)?;
            let number = text_of(node).trim().to_owned();
            if number.is_empty() {
                return Err(TwimlError::schema("<Number> is empty"));
            }
            Ok(DialTarget::Number(number))
        }
        "Client" => {
            known_attributes(
                node,
                &["url", "method", "statusCallback", "statusCallbackEvent", "statusCallbackMethod"],
                warnings,
            );
            // Twilio's newer form nests <Identity> and <Parameter>.
            let identity = node
                .children()
                .find(|child| child.has_tag_name("Identity"))
                .map_or_else(|| text_of(node), |identity| text_of(identity));
            let identity = identity.trim().to_owned();
            if identity.is_empty() {
                return Err(TwimlError::schema("<Client> has no identity"));
            }
            Ok(DialTarget::Client(identity))
        }
        "Conference" => {
            known_attributes(
                node,
                &[
                    "muted",
                    "beep",
                    "startConferenceOnEnter",
                    "endConferenceOnExit",
                    "waitUrl",
                    "waitMethod",
                    "maxParticipants",
                    "record",
                    "region",
                    "coach",
                    "trim",
                    "statusCallbackEvent",
                    "statusCallback",
                    "statusCallbackMethod",
                    "recordingStatusCallback",
                    "recordingStatusCallbackMethod",
                    "recordingStatusCallbackEvent",
                    "eventCallbackUrl",
                    "jitterBufferSize",
                    "participantLabel",
                ],
                warnings,
            );
            no_child_elements(node)?;
            let name = text_of(node).trim().to_owned();
            if name.is_empty() {
                return Err(TwimlError::schema("<Conference> has no name"));
            }
            let defaults = ConferenceOptions::named(name);
            Ok(DialTarget::Conference(ConferenceOptions {
                start_conference_on_enter: bool_attribute(node, "startConferenceOnEnter", true)?,
                end_conference_on_exit: bool_attribute(node, "endConferenceOnExit", false)?,
                wait_url: node.attribute("waitUrl").map(str::to_owned),
                wait_method: method_attribute(node, "waitMethod")?,
                muted: bool_attribute(node, "muted", false)?,
                status_callback: node.attribute("statusCallback").map(str::to_owned),
                status_callback_method: method_attribute(node, "statusCallbackMethod")?,
                status_callback_events: node
                    .attribute("statusCallbackEvent")
                    .map(|events| events.split([' ', ',']).filter(|e| !e.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default(),
                ..defaults
            }))
        }
        "Sip" | "Queue" => {
            Err(TwimlError { code: NOT_SIMULATED, message: format!("<Dial><{name}> is not modelled by the simulator") })
        }
        _ => Err(TwimlError::schema(format!("<{name}> is not allowed inside <Dial>"))),
    }
}

fn text_of(node: roxmltree::Node) -> String {
    node.children().filter(roxmltree::Node::is_text).filter_map(|t| t.text()).collect()
}

fn no_child_elements(node: roxmltree::Node) -> Result<(), TwimlError> {
    match node.children().find(roxmltree::Node::is_element) {
        Some(child) => Err(TwimlError::schema(format!(
            "<{}> is not allowed inside <{}>",
            child.tag_name().name(),
            node.tag_name().name()
        ))),
        None => Ok(()),
    }
}

fn known_attributes(node: roxmltree::Node, known: &[&str], warnings: &mut Vec<String>) {
    for attribute in node.attributes() {
        if !known.contains(&attribute.name()) {
            warnings.push(format!("<{}> has an unknown attribute {:?}", node.tag_name().name(), attribute.name()));
        }
    }
}

fn number_attribute(node: roxmltree::Node, name: &str, default: u32) -> Result<u32, TwimlError> {
    match node.attribute(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| {
            TwimlError::schema(format!("<{}> {name}={value:?} is not a whole number", node.tag_name().name()))
        }),
    }
}

fn bool_attribute(node: roxmltree::Node, name: &str, default: bool) -> Result<bool, TwimlError> {
    match node.attribute(name) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(value) => {
            Err(TwimlError::schema(format!("<{}> {name}={value:?} must be true or false", node.tag_name().name())))
        }
    }
}

fn method_attribute(node: roxmltree::Node, name: &str) -> Result<Method, TwimlError> {
    match node.attribute(name) {
        None => Ok(Method::Post),
        Some(value) => Method::parse(value).ok_or_else(|| {
            TwimlError::schema(format!("<{}> {name}={value:?} must be GET or POST", node.tag_name().name()))
        }),
    }
}

/// One line per document for the timeline: what Warmline told Twilio to do.
impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.verbs.is_empty() {
            return f.write_str("(empty Response: the call ends)");
        }
        for (i, verb) in self.verbs.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{verb}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Say { text, .. } => write!(f, "Say {:?}", ellipsis(text, 48)),
            Self::Play { url, loop_count } => write!(f, "Play {}{}", file_name(url), loop_text(*loop_count)),
            Self::Pause { seconds } => write!(f, "Pause {seconds}s"),
            Self::Redirect { url, .. } => write!(f, "Redirect {url}"),
            Self::Hangup => f.write_str("Hangup"),
            Self::Gather(gather) => {
                f.write_str("Gather")?;
                if let Some(digits) = gather.num_digits {
                    write!(f, " numDigits={digits}")?;
                }
                if gather.finish_on_key != "#" {
                    write!(f, " finishOnKey={:?}", gather.finish_on_key)?;
                }
                if let Some(action) = &gather.action {
                    write!(f, " action={action}")?;
                }
                if !gather.prompts.is_empty() {
                    let prompts: Vec<String> = gather.prompts.iter().map(ToString::to_string).collect();
                    write!(f, " ({})", prompts.join(", "))?;
                }
                Ok(())
            }
            Self::Record(record) => {
                write!(f, "Record maxLength={}s", record.max_length_seconds)?;
                if let Some(action) = &record.action {
                    write!(f, " action={action}")?;
                }
                if record.recording_status_callback.is_some() {
                    f.write_str(" recordingStatusCallback")?;
                }
                Ok(())
            }
            Self::Dial(dial) => {
                f.write_str("Dial ")?;
                match &dial.target {
                    DialTarget::Number(number) => write!(f, "Number {number}")?,
                    DialTarget::Client(identity) => write!(f, "Client {identity}")?,
                    DialTarget::Conference(conference) => {
                        write!(f, "Conference {}", short_sid(&conference.name))?;
                        let mut notes = Vec::new();
                        if !conference.start_conference_on_enter {
                            notes.push("waits for an agent");
                        } else {
                            notes.push("starts it");
                        }
                        if conference.end_conference_on_exit {
                            notes.push("ends it on exit");
                        }
                        if conference.wait_url.is_some() {
                            notes.push("waitUrl");
                        }
                        write!(f, " ({})", notes.join(", "))?;
                    }
                }
                if let Some(caller_id) = &dial.caller_id {
                    write!(f, " callerId={caller_id}")?;
                }
                Ok(())
            }
        }
    }
}

pub fn loop_text(loop_count: u32) -> &'static str {
    match loop_count {
        0 => " (loop forever)",
        1 => "",
        _ => " (looped)",
    }
}

pub fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().filter(|name| !name.is_empty()).unwrap_or(url)
}

pub fn ellipsis(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars).collect();
    format!("{}…", cut.trim_end())
}

/// `CAab…cdef`: long enough to tell calls apart in a timeline, short enough to read.
pub fn short_sid(sid: &str) -> String {
    let is_sid = sid.len() == 34 && sid.chars().all(|c| c.is_ascii_alphanumeric());
    if !is_sid {
        return sid.to_owned();
    }
    format!("{}…{}", &sid[..4], &sid[sid.len() - 4..])
}

#[cfg(test)]
mod tests;
