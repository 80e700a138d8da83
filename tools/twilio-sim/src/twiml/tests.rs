use super::*;
use shared::twiml as warmline;

fn call(xml: &str) -> Result<Document, TwimlError> {
    parse(xml, Context::Call)
}

fn code(xml: &str, context: Context) -> u32 {
    parse(xml, context).unwrap_err().code
}

fn conference(name: &str, start: bool, end: bool, wait_url: Option<&str>) -> ConferenceOptions {
    ConferenceOptions {
        start_conference_on_enter: start,
        end_conference_on_exit: end,
        wait_url: wait_url.map(str::to_owned),
        ..ConferenceOptions::named(name)
    }
}

fn dial(target: DialTarget, caller_id: Option<&str>) -> Verb {
    Verb::Dial(Dial {
        caller_id: caller_id.map(str::to_owned),
        timeout_seconds: 30,
        action: None,
        method: Method::Post,
        target,
    })
}

#[test]
fn reads_the_documents_warmline_writes() {
    let customer = warmline::VoiceResponse::new().dial(warmline::Dial {
        action: None,
        caller_id: None,
        timeout_seconds: None,
        noun: warmline::DialNoun::Conference(warmline::Conference {
            start_conference_on_enter: Some(false),
            end_conference_on_exit: Some(true),
            wait_url: Some("https://h.example/conference/wait".into()),
            wait_method: Some(warmline::Method::Post),
            ..warmline::Conference::named("CA123")
        }),
    });
    assert_eq!(
        call(&customer.to_xml()).unwrap().verbs,
        [dial(
            DialTarget::Conference(conference("CA123", false, true, Some("https://h.example/conference/wait"))),
            None
        )]
    );

    let hold =
        warmline::VoiceResponse::new().say("Please wait & hold.").play("https://h.example/m.mp3?a=1&b=2", Some(0));
    assert_eq!(
        parse(&hold.to_xml(), Context::Wait).unwrap().verbs,
        [
            Verb::Say { text: "Please wait & hold.".into(), loop_count: 1 },
            Verb::Play { url: "https://h.example/m.mp3?a=1&b=2".into(), loop_count: 0 }
        ]
    );

    let number = warmline::VoiceResponse::new().dial(warmline::Dial {
        action: None,
        caller_id: Some("+15555555555".into()),
        timeout_seconds: Some(20),
        noun: warmline::DialNoun::Number("+15551234567".into()),
    });
    assert_eq!(
        call(&number.to_xml()).unwrap().verbs,
        [Verb::Dial(Dial {
            caller_id: Some("+15555555555".into()),
            timeout_seconds: 20,
            action: None,
            method: Method::Post,
            target: DialTarget::Number("+15551234567".into())
        })]
    );

    let apology = warmline::VoiceResponse::new().say("Sorry.").hangup();
    let document = call(&apology.to_xml()).unwrap();
    assert_eq!(document.verbs, [Verb::Say { text: "Sorry.".into(), loop_count: 1 }, Verb::Hangup]);
    assert!(document.warnings.is_empty());
}

#[test]
fn applies_twilios_defaults() {
    let document =
        call("<Response><Dial><Conference>room</Conference></Dial><Pause/><Redirect>/next</Redirect></Response>")
            .unwrap();
    assert_eq!(
        document.verbs,
        [
            dial(DialTarget::Conference(conference("room", true, false, None)), None),
            Verb::Pause { seconds: 1 },
            Verb::Redirect { url: "/next".into(), method: Method::Post }
        ]
    );
    let dial = call(r#"<Response><Dial timeout="1">+15551234567</Dial><Dial timeout="900"><Client>agent1</Client></Dial></Response>"#)
        .unwrap();
    let timeouts: Vec<u32> = dial
        .verbs
        .iter()
        .filter_map(|verb| match verb {
            Verb::Dial(dial) => Some(dial.timeout_seconds),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, [5, 600], "Twilio clamps Dial timeouts into 5..=600");
}

#[test]
fn a_document_that_is_not_xml_is_a_parse_failure() {
    for xml in ["", "Thank you for calling", "<Response><Say>hi</Response>", "<Response>", "{\"say\": \"hi\"}"] {
        assert_eq!(code(xml, Context::Call), DOCUMENT_PARSE_FAILURE, "{xml:?}");
    }
}

#[test]
fn schema_violations_are_12200() {
    for xml in [
        "<Html><Say>hi</Say></Html>",
        "<Response><Speak>hi</Speak></Response>",
        "<Response><Conference>room</Conference></Response>",
        "<Response><Number>+15551234567</Number></Response>",
        "<Response><Dial><Say>hi</Say></Dial></Response>",
        "<Response><Dial></Dial></Response>",
        "<Response><Say><Play>x</Play></Say></Response>",
        "<Response>stray text</Response>",
        r#"<Response><Dial><Conference startConferenceOnEnter="yes">r</Conference></Dial></Response>"#,
        r#"<Response><Play loop="-1">x.mp3</Play></Response>"#,
        r#"<Response><Pause length="soon"/></Response>"#,
        r#"<Response><Redirect method="PUT">/x</Redirect></Response>"#,
        "<Response><Play/></Response>",
        "<Response><Dial><Conference/></Dial></Response>",
    ] {
        assert_eq!(code(xml, Context::Call), SCHEMA_VALIDATION, "{xml:?}");
    }
}

#[test]
fn wait_twiml_may_only_play_say_pause_and_redirect() {
    assert!(
        parse("<Response><Say>a</Say><Play>b</Play><Pause/><Redirect>/w</Redirect></Response>", Context::Wait).is_ok()
    );
    // Twilio's error 13238 names exactly these four as not allowed in waitUrl/holdUrl TwiML.
    for xml in [
        "<Response><Hangup/></Response>",
        "<Response><Dial>+15551234567</Dial></Response>",
        "<Response><Gather><Say>Press 1</Say></Gather></Response>",
        "<Response><Record/></Response>",
    ] {
        assert_eq!(code(xml, Context::Wait), INVALID_WAIT_VERB, "{xml:?}");
        assert!(parse(xml, Context::Call).is_ok());
    }
}

#[test]
fn gather_has_twilios_defaults() {
    assert_eq!(call("<Response><Gather/></Response>").unwrap().verbs, [Verb::Gather(Gather::default())]);
    let gather = Gather::default();
    assert_eq!(
        (gather.action, gather.method, gather.timeout_seconds, gather.num_digits),
        (None, Method::Post, 5, None)
    );
    assert_eq!((gather.finish_on_key.as_str(), gather.action_on_empty_result), ("#", false));
}

#[test]
fn gather_reads_its_attributes_and_nested_prompts() {
    let document = call(
        r#"<Response><Gather input="dtmf" action="/menu" method="GET" timeout="3" numDigits="1" finishOnKey="" actionOnEmptyResult="true"><Say loop="2">Press 1.</Say><Play>https://h.example/beep.mp3</Play><Pause length="2"/></Gather><Say>Bye.</Say></Response>"#,
    )
    .unwrap();
    assert_eq!(
        document.verbs,
        [
            Verb::Gather(Gather {
                action: Some("/menu".into()),
                method: Method::Get,
                timeout_seconds: 3,
                num_digits: Some(1),
                finish_on_key: String::new(),
                action_on_empty_result: true,
                prompts: vec![
                    Verb::Say { text: "Press 1.".into(), loop_count: 2 },
                    Verb::Play { url: "https://h.example/beep.mp3".into(), loop_count: 1 },
                    Verb::Pause { seconds: 2 },
                ],
            }),
            Verb::Say { text: "Bye.".into(), loop_count: 1 },
        ]
    );
    assert!(document.warnings.is_empty(), "{:?}", document.warnings);
    assert_eq!(
        document.to_string(),
        r#"Gather numDigits=1 finishOnKey="" action=/menu (Say "Press 1.", Play beep.mp3, Pause 2s); Say "Bye.""#
    );
}

#[test]
fn gather_only_nests_say_play_and_pause() {
    for xml in [
        "<Response><Gather><Dial>+15551234567</Dial></Gather></Response>",
        "<Response><Gather><Gather/></Gather></Response>",
        "<Response><Gather><Record/></Gather></Response>",
        "<Response><Gather><Redirect>/x</Redirect></Gather></Response>",
        "<Response><Gather><Hangup/></Gather></Response>",
        "<Response><Gather><Number>+15551234567</Number></Gather></Response>",
        "<Response><Gather>Press 1</Gather></Response>",
        r#"<Response><Gather finishOnKey="*#"/></Response>"#,
        r#"<Response><Gather finishOnKey="A"/></Response>"#,
        r#"<Response><Gather numDigits="0"/></Response>"#,
        r#"<Response><Gather timeout="0"/></Response>"#,
        r#"<Response><Gather timeout="soon"/></Response>"#,
        r#"<Response><Gather actionOnEmptyResult="yes"/></Response>"#,
        r#"<Response><Gather method="PUT"/></Response>"#,
        r#"<Response><Gather input="keypad"/></Response>"#,
    ] {
        assert_eq!(code(xml, Context::Call), SCHEMA_VALIDATION, "{xml:?}");
    }
}

#[test]
fn record_has_twilios_defaults() {
    assert_eq!(call("<Response><Record/></Response>").unwrap().verbs, [Verb::Record(Record::default())]);
    let record = Record::default();
    assert_eq!((record.action, record.method), (None, Method::Post));
    assert_eq!((record.timeout_seconds, record.max_length_seconds), (5, 3600));
    assert_eq!(record.finish_on_key, "1234567890*#");
    assert!(record.play_beep && record.trim_silence);
    assert_eq!((record.recording_status_callback, record.recording_status_callback_method), (None, Method::Post));
    assert_eq!(record.recording_status_callback_events, ["completed"]);
}

#[test]
fn record_reads_its_attributes() {
    let document = call(
        r#"<Response><Record action="/recorded" method="GET" timeout="10" maxLength="30" finishOnKey="*#" playBeep="false" trim="do-not-trim" recordingStatusCallback="/recording-status" recordingStatusCallbackMethod="GET" recordingStatusCallbackEvent="in-progress completed absent"/></Response>"#,
    )
    .unwrap();
    assert_eq!(
        document.verbs,
        [Verb::Record(Record {
            action: Some("/recorded".into()),
            method: Method::Get,
            timeout_seconds: 10,
            max_length_seconds: 30,
            finish_on_key: "*#".into(),
            play_beep: false,
            trim_silence: false,
            recording_status_callback: Some("/recording-status".into()),
            recording_status_callback_method: Method::Get,
            recording_status_callback_events: vec!["in-progress".into(), "completed".into(), "absent".into()],
        })]
    );
    assert!(document.warnings.is_empty(), "{:?}", document.warnings);
    assert_eq!(document.to_string(), "Record maxLength=30s action=/recorded recordingStatusCallback");
}

#[test]
fn record_refuses_what_twilio_refuses() {
    for xml in [
        "<Response><Record><Say>hi</Say></Record></Response>",
        "<Response><Record>text</Record></Response>",
        r#"<Response><Record maxLength="0"/></Response>"#,
        r#"<Response><Record maxLength="14401"/></Response>"#,
        r#"<Response><Record finishOnKey="A"/></Response>"#,
        r#"<Response><Record playBeep="no"/></Response>"#,
        r#"<Response><Record trim="yes"/></Response>"#,
        r#"<Response><Record recordingStatusCallbackEvent="done"/></Response>"#,
        r#"<Response><Record recordingStatusCallbackMethod="PUT"/></Response>"#,
        r#"<Response><Record timeout="-1"/></Response>"#,
    ] {
        assert_eq!(code(xml, Context::Call), SCHEMA_VALIDATION, "{xml:?}");
    }
}

#[test]
fn unknown_attributes_are_warnings_like_on_twilio() {
    let document = call(r#"<Response><Dial><Conference waitURL="/w">room</Conference></Dial></Response>"#).unwrap();
    assert_eq!(document.warnings, [r#"<Conference> has an unknown attribute "waitURL""#]);
}

#[test]
fn valid_twiml_the_simulator_does_not_model_is_named_as_such() {
    for xml in [
        r#"<Response><Gather input="speech"/></Response>"#,
        r#"<Response><Gather input="dtmf speech"/></Response>"#,
        r#"<Response><Record transcribe="true"/></Response>"#,
        "<Response><Enqueue>support</Enqueue></Response>",
        "<Response><Dial><Sip>sip:a@b</Sip></Dial></Response>",
    ] {
        assert_eq!(code(xml, Context::Call), NOT_SIMULATED, "{xml:?}");
    }
}

#[test]
fn summarises_a_document_in_one_line() {
    let document = call(
        r#"<Response><Say>Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.</Say><Play loop="0">http://x/BusyStrings.mp3</Play></Response>"#,
    )
    .unwrap();
    assert_eq!(
        document.to_string(),
        r#"Say "Thank you for calling. Please wait in line for a…"; Play BusyStrings.mp3 (loop forever)"#
    );
    let conference = call(&format!(
        r#"<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="/w">CA{}</Conference></Dial></Response>"#,
        "ab".repeat(16)
    ))
    .unwrap();
    assert_eq!(conference.to_string(), "Dial Conference CAab…abab (waits for an agent, ends it on exit, waitUrl)");
}

/// The official library writes attributes in its own order and escapes in its own way; what it
/// writes must read back as the same document.
#[test]
fn reads_what_twilios_python_library_writes() {
    let script = r#"
from twilio.twiml.voice_response import VoiceResponse, Dial
r = VoiceResponse()
r.say('Hello & welcome <3')
r.play('https://h.example/m.mp3?a=1&b=2', loop=0)
r.pause(length=2)
d = Dial(caller_id='+15555555555', timeout=20)
d.conference('CA123', start_conference_on_enter=False, end_conference_on_exit=True,
             wait_url='https://h.example/conference/wait', wait_method='POST')
r.append(d)
r.redirect('/again', method='GET')
r.hangup()
print(r.to_xml())
"#;
    let xml = shared::test_support::run_python(script, "");
    let document = call(&xml).unwrap();
    assert_eq!(
        document.verbs,
        [
            Verb::Say { text: "Hello & welcome <3".into(), loop_count: 1 },
            Verb::Play { url: "https://h.example/m.mp3?a=1&b=2".into(), loop_count: 0 },
            Verb::Pause { seconds: 2 },
            Verb::Dial(Dial {
                caller_id: Some("+15555555555".into()),
                timeout_seconds: 20,
                action: None,
                method: Method::Post,
                target: DialTarget::Conference(conference(
                    "CA123",
                    false,
                    true,
                    Some("https://h.example/conference/wait")
                )),
            }),
            Verb::Redirect { url: "/again".into(), method: Method::Get },
            Verb::Hangup,
        ]
    );
    assert!(document.warnings.is_empty(), "{:?}", document.warnings);
}

/// Gather and Record as the official library writes them (its attribute names, its nesting).
#[test]
fn reads_gather_and_record_as_twilios_python_library_writes_them() {
    let script = r#"
from twilio.twiml.voice_response import VoiceResponse, Gather
r = VoiceResponse()
g = Gather(action='/menu', method='POST', num_digits=1, timeout=3, finish_on_key='*', action_on_empty_result=True, input='dtmf')
g.say('Press 1 for sales')
g.pause(length=1)
r.append(g)
r.record(action='/recorded', max_length=30, play_beep=False, timeout=2, trim='do-not-trim',
         recording_status_callback='/recording-status', recording_status_callback_event='completed absent')
print(r.to_xml())
"#;
    let xml = shared::test_support::run_python(script, "");
    let document = call(&xml).unwrap();
    assert_eq!(
        document.verbs,
        [
            Verb::Gather(Gather {
                action: Some("/menu".into()),
                num_digits: Some(1),
                timeout_seconds: 3,
                finish_on_key: "*".into(),
                action_on_empty_result: true,
                prompts: vec![
                    Verb::Say { text: "Press 1 for sales".into(), loop_count: 1 },
                    Verb::Pause { seconds: 1 }
                ],
                ..Gather::default()
            }),
            Verb::Record(Record {
                action: Some("/recorded".into()),
                max_length_seconds: 30,
                play_beep: false,
                timeout_seconds: 2,
                trim_silence: false,
                recording_status_callback: Some("/recording-status".into()),
                recording_status_callback_events: vec!["completed".into(), "absent".into()],
                ..Record::default()
            }),
        ]
    );
    assert!(document.warnings.is_empty(), "{:?}", document.warnings);
}
