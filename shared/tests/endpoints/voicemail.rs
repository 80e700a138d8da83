//! Leaving a message: the offer, the choice, the recording that becomes a ticket, the way back
//! into line, and business hours.

use crate::prelude::*;
use shared::call_flow::{AFTER_HOURS, LEAVE_A_MESSAGE, MESSAGE_TAKEN, NO_MESSAGE, VOICEMAIL_OFFER};
use shared::domain::{Availability, CallerState};
use shared::handlers::voicemail::handle;
use shared::store::memory::MemoryCallStore;

const RECORDING: &str = "RE0123456789abcdef0123456789abcdef";

fn record_twiml(customer: &str) -> String {
    format!(
        r##"<Record action="{BASE}/voicemail/{customer}/done" method="POST" maxLength="120" finishOnKey="#" playBeep="true" recordingStatusCallback="{BASE}/voicemail/{customer}/recording" recordingStatusCallbackEvent="completed" recordingStatusCallbackMethod="POST"/>"##
    )
}

fn offer_twiml(customer: &str) -> String {
    format!(
        r#"{XML_HEAD}<Response><Gather action="{BASE}/voicemail/{customer}/choice" method="POST" numDigits="1" timeout="8"><Say>{VOICEMAIL_OFFER}</Say></Gather><Redirect method="POST">{BASE}/voicemail/{customer}/back</Redirect></Response>"#
    )
}

async fn twilio(t: &TestApp, path: &str, params: &[(&str, &str)]) -> String {
    let response = handle(&t.app, signed_webhook(path, params)).await.unwrap();
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "text/xml; charset=utf-8"));
    body_text(&response)
}

async fn recorded(t: &TestApp, customer: &str) -> String {
    let params = [
        ("CallSid", customer),
        ("RecordingSid", RECORDING),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "12"),
        ("RecordingUrl", "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE0"),
    ];
    twilio(t, &format!("/voicemail/{customer}/recording"), &params).await
}

async fn tickets(t: &TestApp) -> serde_json::Value {
    let cookie = t.session_cookie("agent9").await;
    let request = event("GET", "/tickets", &[("cookie", &cookie)], b"");
    body_json(&shared::handlers::tickets::handle(&t.app, request).await.unwrap())["tickets"].clone()
}

#[tokio::test]
async fn with_nobody_to_answer_a_caller_is_offered_to_leave_a_message_at_once() {
    let t = TestApp::new();
    t.customer_arrives(&sid(1)).await;
    assert_eq!(t.dialer.updated(), [(CallSid::parse(&sid(1)).unwrap(), CallUpdate::Twiml(offer_twiml(&sid(1))))]);
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!(caller.state, CallerState::Voicemail);
    assert_eq!(caller.voicemail_offered_at, Some(NOW));
    assert_eq!(caller.moving_from.as_deref(), Some(conference_sid(&sid(1)).as_str()));
}

#[tokio::test]
async fn an_agent_away_or_offline_is_nobody_to_answer_but_a_busy_one_is() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await; // agent1 rings: busy, and available after
    t.customer_arrives(&sid(2)).await;
    assert_eq!(t.dialer.updated(), [], "caller 2 waits for agent1");
    assert_eq!(t.caller(&sid(2)).await.unwrap().state, CallerState::Waiting);

    let t = TestApp::new();
    t.available("agent1").await;
    let mut away = t.agent_state("agent1").await.unwrap();
    away.say(Availability::Away, NOW * 1000);
    assert!(
        shared::store::CallStore::commit(t.store.as_ref(), &[shared::store::Write::Agent(away)], NOW).await.unwrap()
    );
    t.customer_arrives(&sid(1)).await;
    assert_eq!(t.dialer.updated().len(), 1, "offered a message");
}

#[tokio::test]
async fn pressing_1_records_a_message_that_becomes_a_ticket_once() {
    let t = TestApp::new();
    t.customer_arrives(&sid(1)).await;
    let answer = twilio(&t, &format!("/voicemail/{}/choice", sid(1)), &[("CallSid", &sid(1)), ("Digits", "1")]).await;
    assert_eq!(
        answer,
        format!(
            r#"{XML_HEAD}<Response><Say>{LEAVE_A_MESSAGE}</Say>{}<Redirect method="POST">{BASE}/voicemail/{}/back</Redirect></Response>"#,
            record_twiml(&sid(1)),
            sid(1)
        )
    );
    let done =
        twilio(&t, &format!("/voicemail/{}/done", sid(1)), &[("CallSid", &sid(1)), ("RecordingSid", RECORDING)]).await;
    assert_eq!(done, format!("{XML_HEAD}<Response><Say>{MESSAGE_TAKEN}</Say><Hangup/></Response>"));

    assert_eq!(recorded(&t, &sid(1)).await, EMPTY_TWIML);
    let listed = tickets(&t).await;
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        listed,
        serde_json::json!([{
            "id": id,
            "name": "Phone caller",
            "phone_number": "+15557654321",
            "description": "Voicemail",
            "created_at": shared::domain::rfc3339(NOW),
            "status": "open",
            "voicemail": {"duration_seconds": 12, "recording_url": format!("/tickets/{id}/recording")},
        }])
    );
    // Twilio repeats the callback: still one ticket.
    t.clock.advance(30);
    recorded(&t, &sid(1)).await;
    assert_eq!(t.tickets.len(), 1);
    // An agent may call the number back: it is on a ticket now.
    assert!(
        shared::store::TicketStore::has_ticket_for(t.tickets.as_ref(), &PhoneNumber::parse("+15557654321").unwrap())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_browser_callers_message_names_them_instead_of_a_number() {
    let t = TestApp::new();
    let params = [
        ("ApplicationSid", CUSTOMER_APP_SID.to_owned()),
        ("CallSid", sid(7)),
        ("From", "client:customer_0a1b2c".to_owned()),
    ];
    shared::handlers::call_connect::handle(&t.app, signed_webhook("/call/connect", &borrowed(&params))).await.unwrap();
    recorded(&t, &sid(7)).await;
    let ticket = &tickets(&t).await[0];
    assert_eq!(
        (ticket["name"].as_str(), ticket["customer"].as_str()),
        (Some("Browser caller"), Some("customer_0a1b2c"))
    );
    assert_eq!(ticket.get("phone_number"), None, "nobody to call back");
}

#[tokio::test]
async fn any_other_key_or_none_keeps_the_callers_place_in_line() {
    for path in ["choice", "back"] {
        let t = TestApp::new();
        t.customer_arrives(&sid(1)).await;
        let answer =
            twilio(&t, &format!("/voicemail/{}/{path}", sid(1)), &[("CallSid", &sid(1)), ("Digits", "5")]).await;
        assert_eq!(answer, crate::conference_connect_client::conference_twiml(BASE, &sid(1)), "{path}");
        let caller = t.caller(&sid(1)).await.unwrap();
        assert_eq!((caller.state, caller.arrived_at_ms), (CallerState::Waiting, NOW * 1000), "{path}");
        // They join the new conference: offered to an agent available by then, and the end of
        // the conference they left is not the end of their call.
        t.available("agent1").await;
        assert_eq!(t.dialer.placed(), [], "{path}: not while they are on their way back");
        let joined =
            conference_run_report(&sid(1), &format!("CF{}", "2".repeat(32)), "participant-join", Some(&sid(1)));
        shared::handlers::conference_events::handle(&t.app, joined).await.unwrap();
        assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")], "{path}");
        shared::handlers::conference_events::handle(&t.app, conference_report(&sid(1), "conference-end", None))
            .await
            .unwrap();
        assert!(t.caller(&sid(1)).await.is_some(), "{path}: the old conference's end");
        assert_eq!(t.dialer.updated().len(), 1, "{path}: not offered a message twice");
    }
}

async fn hold_music_turn(t: &TestApp, customer: &str) {
    let params = inbound_call_params(customer);
    let request = signed_webhook("/conference/wait?held=1", &borrowed(&params));
    shared::handlers::conference_wait::handle(&t.app, request).await.unwrap();
}

#[tokio::test]
async fn after_waiting_long_the_caller_is_offered_again_and_again() {
    let t =
        TestApp::build(config_with(&[("QUEUE_MAX_WAIT_SECONDS", "120")]), MemoryCallStore::new(), Default::default());
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await; // agent1 takes them
    t.customer_arrives(&sid(2)).await; // caller 2 waits for agent1
    t.clock.advance(119);
    hold_music_turn(&t, &sid(2)).await;
    assert_eq!(t.dialer.updated(), []);
    t.clock.advance(1);
    hold_music_turn(&t, &sid(2)).await;
    assert_eq!(t.dialer.updated(), [(CallSid::parse(&sid(2)).unwrap(), CallUpdate::Twiml(offer_twiml(&sid(2))))]);
}

#[tokio::test]
async fn outside_business_hours_nobody_is_rung_and_the_caller_may_leave_a_message() {
    // NOW is a Friday, 08:00 UTC.
    let config = config_with(&[("BUSINESS_HOURS", "Mon-Fri 09:00-17:00 UTC")]);
    let t = TestApp::build(config, MemoryCallStore::new(), Default::default());
    t.available("agent1").await;
    let params = inbound_call_params(&sid(1));
    let request = signed_webhook("/conference/connect/client", &borrowed(&params));
    let answer = body_text(&shared::handlers::conference_connect_client::handle(&t.app, request).await.unwrap());
    assert_eq!(
        answer,
        format!(
            "{XML_HEAD}<Response><Say>{AFTER_HOURS}</Say><Say>{LEAVE_A_MESSAGE}</Say>{}<Say>{NO_MESSAGE}</Say><Hangup/></Response>",
            record_twiml(&sid(1))
        )
    );
    assert_eq!(t.dialer.placed(), [], "nobody is rung");
    assert_eq!(t.caller(&sid(1)).await.unwrap().state, CallerState::Voicemail, "who called, for the ticket");
    recorded(&t, &sid(1)).await;
    assert_eq!(tickets(&t).await[0]["phone_number"], "+15557654321");

    // An hour later the line is open.
    t.clock.advance(3600);
    let params = inbound_call_params(&sid(2));
    let request = signed_webhook("/conference/connect/client", &borrowed(&params));
    let answer = body_text(&shared::handlers::conference_connect_client::handle(&t.app, request).await.unwrap());
    assert_eq!(answer, crate::conference_connect_client::conference_twiml(BASE, &sid(2)));
}

#[tokio::test]
async fn refuses_forged_and_malformed_reports_and_changes_nothing() {
    let t = TestApp::new();
    let path = format!("/voicemail/{}/recording", sid(1));
    let response = handle(
        &t.app,
        webhook_with_signature(&path, &[("RecordingSid", RECORDING), ("RecordingStatus", "completed")], None),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
    for sid_param in ["RE123", "CA0123456789abcdef0123456789abcdef", ""] {
        twilio(&t, &path, &[("RecordingSid", sid_param), ("RecordingStatus", "completed")]).await;
    }
    twilio(&t, &path, &[("RecordingSid", RECORDING), ("RecordingStatus", "absent")]).await;
    assert!(t.tickets.is_empty());
}

#[tokio::test]
async fn agents_hear_a_voicemail_through_warmline_and_nobody_else_does() {
    let t = TestApp::new();
    t.customer_arrives(&sid(1)).await;
    recorded(&t, &sid(1)).await;
    let id = tickets(&t).await[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/tickets/{id}/recording");
    let cookie = t.session_cookie("agent1").await;
    let response =
        shared::handlers::tickets::handle(&t.app, event("GET", &path, &[("cookie", &cookie)], b"")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "audio/mpeg");
    assert_eq!(response.body().as_ref(), recording_audio(RECORDING).as_slice());
    assert_eq!(response.headers()["cache-control"], "private, max-age=86400");

    let response = shared::handlers::tickets::handle(&t.app, event("GET", &path, &[], b"")).await.unwrap();
    assert_eq!(response.status(), 401);
    let filed = shared::handlers::tickets::handle(
        &t.app,
        json_post("/tickets", r#"{"name": "Ada", "phone_number": "+15551234567", "description": "d"}"#),
    )
    .await
    .unwrap();
    let plain = body_json(&filed)["id"].as_str().unwrap().to_owned();
    let response = shared::handlers::tickets::handle(
        &t.app,
        event("GET", &format!("/tickets/{plain}/recording"), &[("cookie", &cookie)], b""),
    )
    .await
    .unwrap();
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (404, serde_json::json!({"error": "this ticket has no recording"}))
    );
    let response =
        shared::handlers::tickets::handle(&t.app, event("GET", "/tickets/nope/recording", &[("cookie", &cookie)], b""))
            .await
            .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_message_from_a_number_outside_the_dial_countries_is_a_ticket_no_one_calls_back() {
    let t = TestApp::new(); // the US by default
    let mut params = inbound_call_params(&sid(1));
    params.retain(|(name, _)| !matches!(*name, "From" | "Caller"));
    params.extend([("From", "+18765550123".to_owned()), ("Caller", "+18765550123".to_owned())]);
    let request = signed_webhook("/conference/connect/client", &borrowed(&params));
    shared::handlers::conference_connect_client::handle(&t.app, request).await.unwrap();
    recorded(&t, &sid(1)).await;
    let ticket = &tickets(&t).await[0];
    assert_eq!(
        (ticket["phone_number"].as_str(), &ticket["outside_dial_countries"]),
        (Some("+18765550123"), &true.into())
    );
}

/// A browser customer with a token fetched at `address`, as `client:<identity>`.
async fn browser_customer(t: &TestApp, address: &str) -> String {
    let token = shared::handlers::token::handle(&t.app, crate::token::token_request_from(address)).await.unwrap();
    format!("client:{}", body_json(&token)["identity"].as_str().unwrap())
}

/// What `/call/connect` answers the browser call `call_sid` from `from`.
async fn browser_call(t: &TestApp, from: &str, call_sid: &str) -> String {
    let params =
        [("ApplicationSid", CUSTOMER_APP_SID.to_owned()), ("CallSid", call_sid.to_owned()), ("From", from.to_owned())];
    let request = signed_webhook("/call/connect", &borrowed(&params));
    body_text(&shared::handlers::call_connect::handle(&t.app, request).await.unwrap())
}

#[tokio::test]
async fn a_browser_callers_message_gives_their_call_slot_back() {
    let t = TestApp::new();
    let from = browser_customer(&t, "203.0.113.7").await;
    let call = async |call_sid: &str| browser_call(&t, &from, call_sid).await;
    assert!(call(&sid(7)).await.contains("<Conference"));
    assert!(call(&sid(8)).await.contains(shared::call_flow::TOO_MANY_CALLS), "one call at a time");
    // The first call ends with its message (its conference was left on purpose, so no
    // conference-end says so): the slot is free for the next.
    recorded(&t, &sid(7)).await;
    assert!(call(&sid(9)).await.contains("<Conference"));
}

#[tokio::test]
async fn a_browser_caller_offered_voicemail_holds_their_slot_only_as_long_as_a_message_takes() {
    use shared::call_flow::{TOO_MANY_CALLS, VOICEMAIL_SLOT_SECONDS};
    let t = TestApp::new();
    let from = browser_customer(&t, "203.0.113.7").await;
    let call = async |call_sid: &str| browser_call(&t, &from, call_sid).await;
    let joins = async |call_sid: &str| {
        let report = conference_report(call_sid, "participant-join", Some(call_sid));
        shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
    };

    // Nobody to answer: offered voicemail as they join, and they hang up at the offer. Twilio
    // reports no conference end for a caller who left it for the offer.
    assert!(call(&sid(7)).await.contains("<Conference"));
    joins(&sid(7)).await;
    assert_eq!(t.caller(&sid(7)).await.unwrap().state, CallerState::Voicemail);
    t.clock.advance(VOICEMAIL_SLOT_SECONDS - 1);
    assert!(call(&sid(8)).await.contains(TOO_MANY_CALLS), "still within a message's time");
    t.clock.advance(1);
    assert!(call(&sid(9)).await.contains("<Conference"), "free again minutes later, not an hour");

    // Offered again, they choose to stay in line: held as any call in line again.
    joins(&sid(9)).await;
    assert_eq!(t.caller(&sid(9)).await.unwrap().state, CallerState::Voicemail);
    twilio(&t, &format!("/voicemail/{}/back", sid(9)), &[("CallSid", &sid(9))]).await;
    t.clock.advance(VOICEMAIL_SLOT_SECONDS + 1);
    assert!(call(&sid(10)).await.contains(TOO_MANY_CALLS), "in line: the slot is held");
}
