use super::*;

const SID: &str = "CA0123456789abcdef0123456789abcdef";

#[test]
fn customer_conference() {
    let twiml = VoiceResponse::new().dial(Dial {
        action: None,
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(Conference {
            start_conference_on_enter: Some(false),
            end_conference_on_exit: Some(true),
            wait_url: Some("https://HOST/conference/wait".into()),
            wait_method: Some(Method::Post),
            status_callback: Some("https://HOST/conference/CA123/events".into()),
            status_callback_event: Some("leave end".into()),
            status_callback_method: Some(Method::Post),
            ..Conference::named("CA123")
        }),
    });
    assert_eq!(
        twiml.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="https://HOST/conference/wait" waitMethod="POST" statusCallback="https://HOST/conference/CA123/events" statusCallbackEvent="leave end" statusCallbackMethod="POST">CA123</Conference></Dial></Response>"#
    );
}

#[test]
fn hold_message_then_looping_music() {
    let twiml = VoiceResponse::new()
        .say("Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.")
        .play("https://s3.amazonaws.com/com.twilio.music.classical/BusyStrings.mp3", Some(0));
    assert_eq!(
        twiml.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.</Say><Play loop="0">https://s3.amazonaws.com/com.twilio.music.classical/BusyStrings.mp3</Play></Response>"#
    );
}

#[test]
fn agent_conference() {
    let twiml = VoiceResponse::new().dial(Dial {
        action: None,
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(Conference {
            start_conference_on_enter: Some(true),
            end_conference_on_exit: Some(false),
            ..Conference::named(SID)
        }),
    });
    assert_eq!(
        twiml.to_xml(),
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">{SID}</Conference></Dial></Response>"#
        )
    );
}

#[test]
fn dial_a_number_with_caller_id() {
    let twiml = VoiceResponse::new().dial(Dial {
        action: None,
        caller_id: Some("+15555555555".into()),
        timeout_seconds: None,
        noun: DialNoun::Number("+15551234567".into()),
    });
    assert_eq!(
        twiml.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial callerId="+15555555555"><Number>+15551234567</Number></Dial></Response>"#
    );
}

#[test]
fn keeps_verb_order_and_renders_every_verb() {
    let twiml = VoiceResponse::new()
        .hangup()
        .verb(Verb::Pause { length_seconds: Some(2) })
        .say("one")
        .verb(Verb::Redirect { url: "https://h/x".into(), method: Some(Method::Get) })
        .dial(Dial {
            action: None,
            caller_id: None,
            timeout_seconds: Some(20),
            noun: DialNoun::Client("agent2".into()),
        })
        .say("two")
        .play("https://h/a.mp3", None);
    assert_eq!(
        twiml.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/><Pause length="2"/><Say>one</Say><Redirect method="GET">https://h/x</Redirect><Dial timeout="20"><Client>agent2</Client></Dial><Say>two</Say><Play>https://h/a.mp3</Play></Response>"#
    );
}

#[test]
fn empty_response() {
    assert_eq!(VoiceResponse::new().to_xml(), r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#);
}

#[test]
fn escapes_markup_in_text_and_attributes() {
    let twiml = VoiceResponse::new().say(r#"<Hangup/> & "quotes" 'n' stuff"#).dial(Dial {
        action: None,
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(Conference {
            wait_url: Some(r#"https://h/wait?a=1&b="2"<>"#.into()),
            ..Conference::named("x")
        }),
    });
    assert_eq!(
        twiml.to_xml(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>&lt;Hangup/&gt; &amp; &quot;quotes&quot; &apos;n&apos; stuff</Say><Dial><Conference waitUrl="https://h/wait?a=1&amp;b=&quot;2&quot;&lt;&gt;">x</Conference></Dial></Response>"#
    );
}

#[test]
fn drops_characters_xml_forbids() {
    let twiml = VoiceResponse::new().say("a\u{0}b\u{8}c\u{B}d\u{C}e\u{1F}f\u{FFFE}g\u{FFFF}h\tI\nJ\u{1F600}");
    assert_eq!(
        twiml.to_xml(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>abcdefgh\tI\nJ\u{1F600}</Say></Response>"
    );
}

#[test]
fn keeps_whitespace_in_attributes_through_a_parser() {
    let twiml = VoiceResponse::new().dial(Dial {
        action: None,
        caller_id: Some("a\tb\nc\rd".into()),
        timeout_seconds: None,
        noun: DialNoun::Number("+1".into()),
    });
    assert!(twiml.to_xml().contains(r#"callerId="a&#9;b&#10;c&#13;d""#));
}

#[test]
fn gathers_a_key_and_records_a_message() {
    let twiml = VoiceResponse::new()
        .verb(Verb::Gather(Gather {
            action: "https://h/choice?a=1&b=2".into(),
            method: Some(Method::Post),
            num_digits: Some(1),
            timeout_seconds: Some(8),
            prompt: "Press 1 & wait".into(),
        }))
        .verb(Verb::Record(Record {
            action: "https://h/done".into(),
            method: Some(Method::Post),
            max_length_seconds: Some(120),
            timeout_seconds: Some(5),
            finish_on_key: Some("#".into()),
            play_beep: Some(true),
            recording_status_callback: Some("https://h/recording".into()),
            recording_status_callback_event: Some("completed".into()),
            recording_status_callback_method: Some(Method::Post),
        }));
    assert_eq!(
        twiml.to_xml(),
        r##"<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="https://h/choice?a=1&amp;b=2" method="POST" numDigits="1" timeout="8"><Say>Press 1 &amp; wait</Say></Gather><Record action="https://h/done" method="POST" maxLength="120" timeout="5" finishOnKey="#" playBeep="true" recordingStatusCallback="https://h/recording" recordingStatusCallbackEvent="completed" recordingStatusCallbackMethod="POST"/></Response>"##
    );
}
