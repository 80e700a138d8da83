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
    for xml in ["<Response><Hangup/></Response>", "<Response><Dial>+15551234567</Dial></Response>"] {
        assert_eq!(code(xml, Context::Wait), SCHEMA_VALIDATION, "{xml:?}");
        assert!(parse(xml, Context::Call).is_ok());
    }
}

#[test]
fn unknown_attributes_are_warnings_like_on_twilio() {
    let document = call(r#"<Response><Dial><Conference waitURL="/w">room</Conference></Dial></Response>"#).unwrap();
    assert_eq!(document.warnings, [r#"<Conference> has an unknown attribute "waitURL""#]);
}

#[test]
fn valid_twiml_the_simulator_does_not_model_is_named_as_such() {
    for xml in ["<Response><Gather/></Response>", "<Response><Dial><Sip>sip:a@b</Sip></Dial></Response>"] {
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
