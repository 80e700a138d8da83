//! The call ledger: every call recorded once from Twilio's reports and Warmline's own actions,
//! whatever their order or how often they come, and read back on a ticket
//! (`GET /tickets/{ticket_id}/calls`) and as CSV (`GET /calls.csv`).

use std::sync::Arc;

use crate::prelude::*;
use serde_json::json;
use shared::domain::{Channel, LedgerEvent, Ticket};
use shared::handlers::tickets::handle;
use shared::store::memory::MemoryLedgerStore;
use shared::store::{LedgerStore, TicketStore};

/// The number `inbound_call_params` calls from.
const CALLER: &str = "+15557654321";
const RECORDING: &str = "RE0123456789abcdef0123456789abcdef";

async fn ticket_for(t: &TestApp, number: Option<&str>, customer: Option<&str>) -> TicketId {
    let ticket = Ticket {
        id: TicketId::generate(NOW * 1000).unwrap(),
        name: "Ada".into(),
        phone_number: number.map(|number| PhoneNumber::parse(number).unwrap()),
        description: "d".into(),
        created_at: "2027-01-15T08:00:00Z".into(),
        customer: customer.map(str::to_owned),
        voicemail: None,
        outside_dial_countries: false,
    };
    t.tickets.create_ticket(&ticket).await.unwrap();
    ticket.id
}

async fn calls_of(t: &TestApp, ticket: &TicketId, query: &str) -> Response<Body> {
    let cookie = t.session_cookie("agent9").await;
    handle(&t.app, event("GET", &format!("/tickets/{ticket}/calls{query}"), &[("cookie", &cookie)], b"")).await.unwrap()
}

async fn calls_json(t: &TestApp, ticket: &TicketId) -> serde_json::Value {
    let response = calls_of(t, ticket, "").await;
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "application/json"));
    body_json(&response)
}

async fn report(t: &TestApp, request: Request) -> Response<Body> {
    shared::handlers::conference_events::handle(&t.app, request).await.unwrap()
}

/// The end of the customer's conference, as Twilio reports it: stamped with when it happened
/// (`Timestamp`, the test's clock), which is when the ledger has it end however late it comes.
fn end_report(t: &TestApp, customer: &str) -> Request {
    let at = time::OffsetDateTime::from_unix_timestamp(shared::app::Clock::now(t.clock.as_ref())).unwrap();
    let params = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("ConferenceSid", conference_sid(customer)),
        ("FriendlyName", customer.to_owned()),
        ("StatusCallbackEvent", "conference-end".to_owned()),
        ("SequenceNumber", "9".to_owned()),
        ("Timestamp", at.format(&time::format_description::well_known::Rfc2822).unwrap()),
    ];
    signed_webhook(&format!("/conference/{customer}/events"), &borrowed(&params))
}

async fn conference_ends(t: &TestApp, customer: &str) -> Response<Body> {
    report(t, end_report(t, customer)).await
}

fn rfc3339(seconds: i64) -> String {
    shared::domain::rfc3339(seconds)
}

#[tokio::test]
async fn an_answered_call_is_on_the_tickets_of_its_number_however_its_reports_come() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    t.available("agent1").await;
    t.available("agent2").await;
    t.customer_arrives(&sid(1)).await;
    let started = NOW;
    // agent1 lets it ring out, reported twice; agent2 answers 12 s after the caller arrived.
    t.clock.advance(5);
    for _ in 0..2 {
        let response = report(&t, agent_call_report(&sid(1), "agent1", &placed_sid(0), "no-answer")).await;
        assert_eq!(body_text(&response), EMPTY_TWIML);
    }
    t.clock.advance(7);
    assert!(t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await.contains("<Conference"));
    t.clock.advance(60);
    // The end, twice, and the join again late: each recorded once.
    for request in [
        end_report(&t, &sid(1)),
        end_report(&t, &sid(1)),
        conference_report(&sid(1), "participant-join", Some(&sid(1))),
    ] {
        assert_eq!(body_text(&report(&t, request).await), EMPTY_TWIML);
    }

    let expected = json!({
        "calls": [{
            "call_id": sid(1),
            "direction": "inbound",
            "channel": "phone",
            "started_at": rfc3339(started),
            "ended_at": rfc3339(started + 72),
            "caller": CALLER,
            "agents": [{"agent": "agent1", "role": "missed"}, {"agent": "agent2", "role": "answered"}],
            "waited_seconds": 12,
            "talked_seconds": 60,
            "holds": 0,
            "transfers": 0,
            "outcome": "answered",
            "recording_url": null,
        }],
        "next": null,
    });
    assert_eq!(calls_json(&t, &ticket).await, expected);
    // Began, two rings, the miss, the answer, the end: one write each, none for the repeats.
    assert_eq!(t.ledger.writes(), 6);
    // A number's calls are on its tickets only.
    let other = ticket_for(&t, Some("+15550009999"), None).await;
    assert_eq!(calls_json(&t, &other).await, json!({"calls": [], "next": null}));
}

#[tokio::test]
async fn abandoned_and_voicemail_calls_say_how_they_ended() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    // Nobody available: caller 1 is offered to leave a message on arrival, and hangs up.
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(9);
    assert_eq!(body_text(&conference_ends(&t, &sid(1)).await), EMPTY_TWIML);
    // Caller 2 waits for an agent who is busy, then hangs up.
    t.occupied("agent1").await;
    t.clock.advance(1);
    t.customer_arrives(&sid(2)).await;
    t.clock.advance(20);
    assert_eq!(body_text(&conference_ends(&t, &sid(2)).await), EMPTY_TWIML);
    // Caller 3 leaves a message (reported twice).
    t.clock.advance(1);
    t.customer_arrives(&sid(3)).await;
    for _ in 0..2 {
        let params = [
            ("CallSid", sid(3)),
            ("RecordingSid", RECORDING.into()),
            ("RecordingDuration", "7".into()),
            ("RecordingStatus", "completed".into()),
        ];
        let request = signed_webhook(&format!("/voicemail/{}/recording", sid(3)), &borrowed(&params));
        let response = shared::handlers::voicemail::handle(&t.app, request).await.unwrap();
        assert_eq!(body_text(&response), EMPTY_TWIML);
    }

    // Caller 1 was never heard of after the offer: gone, once a message could no longer be going on.
    t.clock.advance(shared::domain::VOICEMAIL_SILENCE_SECONDS);
    let calls = calls_json(&t, &ticket).await;
    let summary: Vec<_> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| (call["call_id"].clone(), call["outcome"].clone(), call["waited_seconds"].clone()))
        .collect();
    // The call that keeps agent1 busy came from the same number: it is on the ticket too.
    assert_eq!(
        summary,
        [
            (json!(sid(3)), json!("voicemail"), json!(null)),
            (json!(sid(2)), json!("abandoned"), json!(20)),
            (json!(sid(0xb05e)), json!("answered"), json!(0)),
            (json!(sid(1)), json!("no-agent"), json!(0)),
        ]
    );
    let voicemail_ticket = TicketId::for_recording(RECORDING, (NOW + 31) * 1000);
    assert_eq!(calls["calls"][0]["recording_url"], json!(format!("/tickets/{voicemail_ticket}/recording")));
}

#[tokio::test]
async fn a_call_after_hours_and_a_browser_call_are_recorded_too() {
    let t = TestApp::build(
        config_with(&[("BUSINESS_HOURS", "Mon-Fri 09:00-09:01 UTC")]),
        shared::store::memory::MemoryCallStore::new(),
        RecordingDialer::default(),
    );
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    let params = inbound_call_params(&sid(1));
    let request = signed_webhook("/conference/connect/client", &borrowed(&params));
    let answer = shared::handlers::conference_connect_client::handle(&t.app, request).await.unwrap();
    assert!(body_text(&answer).contains("<Record"));
    let calls = calls_json(&t, &ticket).await;
    assert_eq!(calls["calls"][0]["outcome"], json!("after-hours"));
    assert_eq!(calls["calls"][0]["agents"], json!([]));

    // A browser caller's calls are on the ticket that names them.
    let t = TestApp::new();
    let ticket = ticket_for(&t, None, Some("customer_0a1b2c")).await;
    let event = LedgerEvent::Began {
        at_ms: NOW * 1000,
        channel: Channel::Browser,
        caller: "customer_0a1b2c".into(),
        party: Some("customer_0a1b2c".into()),
        day: "2027-01-15".into(),
        agent: None,
    };
    t.ledger.record(&CallSid::parse(&sid(7)).unwrap(), &event, NOW + 1).await.unwrap();
    let calls = calls_json(&t, &ticket).await;
    assert_eq!(
        (&calls["calls"][0]["channel"], &calls["calls"][0]["outcome"]),
        (&json!("browser"), &json!("in-progress"))
    );
}

#[tokio::test]
async fn an_agents_call_to_a_ticket_number_is_recorded_with_how_it_ended() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    t.enroll("agent1").await;
    let params = |extra: &[(&'static str, &str)]| {
        let mut params = vec![
            ("AccountSid", ACCOUNT_SID.to_owned()),
            ("ApplicationSid", AGENT_APP_SID.to_owned()),
            ("CallSid", sid(5)),
            ("CallStatus", "in-progress".to_owned()),
            ("From", "client:agent1".to_owned()),
        ];
        params.extend(extra.iter().map(|(name, value)| (*name, (*value).to_owned())));
        params
    };
    let placed = signed_webhook("/call/agent", &borrowed(&params(&[("phoneNumber", CALLER)])));
    let answer = shared::handlers::call_connect::handle(&t.app, placed).await.unwrap();
    // The customer's call is Warmline's REST call; the ledger keeps the call under its SID.
    let customer = placed_sid(0);
    assert!(body_text(&answer).contains(&format!(">{customer}</Conference>")));
    let customer_leg = |path: String, extra: &[(&'static str, &str)]| {
        let mut params = vec![("AccountSid", ACCOUNT_SID.to_owned()), ("CallSid", customer.clone())];
        params.extend(extra.iter().map(|(name, value)| (*name, (*value).to_owned())));
        signed_webhook(&path, &borrowed(&params))
    };
    let picked_up = customer_leg("/call/customer/agent1".into(), &[("CallStatus", "in-progress")]);
    shared::handlers::call_connect::handle(&t.app, picked_up).await.unwrap();
    let joined = conference_report(&customer, "participant-join", Some(&customer));
    shared::handlers::conference_events::handle(&t.app, joined).await.unwrap();
    t.clock.advance(50);
    shared::handlers::conference_events::handle(&t.app, conference_report(&customer, "conference-end", None))
        .await
        .unwrap();
    // Twilio reports how the customer's call ended; twice changes nothing.
    for _ in 0..2 {
        let done =
            customer_leg("/call/customer/agent1/status".into(), &[("CallStatus", "completed"), ("CallDuration", "42")]);
        let answer = shared::handlers::call_connect::handle(&t.app, done).await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    let calls = calls_json(&t, &ticket).await;
    let call = &calls["calls"][0];
    assert_eq!(
        (&call["direction"], &call["channel"], &call["outcome"], &call["talked_seconds"], &call["ended_at"]),
        (&json!("outbound"), &json!("agent"), &json!("answered"), &json!(42), &json!(rfc3339(NOW + 50)))
    );
    assert_eq!(call["agents"], json!([{"agent": "agent1", "role": "called"}]));
    // Began (once, though the customer's join offers it again), ended, dialed.
    assert_eq!(t.ledger.writes(), 3);
}

#[tokio::test]
async fn a_ledger_that_fails_during_a_report_gets_it_again_and_records_it_once() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(30);
    t.ledger.set_failing(true);
    let failed = conference_ends(&t, &sid(1)).await;
    // Not the empty answer Twilio ignores: a 503, which it delivers again.
    assert_eq!((failed.status().as_u16(), failed.headers()["retry-after"].to_str().unwrap()), (503, "2"));
    // The call's end is cleared up all the same: the agent is free, the ring canceled.
    assert_eq!(t.caller(&sid(1)).await, None);
    assert!(t.agent_state("agent1").await.unwrap().ringing_for.is_none());
    t.ledger.set_failing(false);
    // Twilio sends the report again a minute later, stamped with when the call ended.
    let again = end_report(&t, &sid(1));
    t.clock.advance(60);
    assert_eq!(body_text(&report(&t, again).await), EMPTY_TWIML);
    assert_eq!(body_text(&conference_ends(&t, &sid(1)).await), EMPTY_TWIML);
    let calls = calls_json(&t, &ticket).await;
    assert_eq!(
        (&calls["calls"][0]["outcome"], &calls["calls"][0]["waited_seconds"]),
        (&json!("abandoned"), &json!(30))
    );
    let events = t.ledger.events(&CallSid::parse(&sid(1)).unwrap()).await.unwrap();
    assert_eq!(events.iter().filter(|event| matches!(event, LedgerEvent::Ended { .. })).count(), 1);
}

/// The store applies an agent's answer but its reply is lost, so the AWS SDK sends the
/// transaction again, which fails its condition: `agent_answers` finds the agent in the call
/// already. The answer is still in the ledger and in the day's count, once, and a retried
/// webhook after that adds nothing.
#[tokio::test]
async fn an_answer_whose_reply_the_store_lost_is_recorded_once() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(4);
    t.store.lose_next_commit_reply();
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    let joined: Vec<String> =
        t.store.participants(&CallSid::parse(&sid(1)).unwrap()).iter().map(ToString::to_string).collect();
    assert_eq!(joined, ["agent1"]);
    let writes = t.ledger.writes();
    t.clock.advance(1);
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    assert_eq!(t.ledger.writes(), writes, "a retried webhook records nothing new");
    t.clock.advance(29);
    assert_eq!(body_text(&conference_ends(&t, &sid(1)).await), EMPTY_TWIML);

    let call = &calls_json(&t, &ticket).await["calls"][0];
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["waited_seconds"], 4);
    assert_eq!(call["talked_seconds"], 30);
    assert_eq!(call["agents"], json!([{"agent": "agent1", "role": "answered"}]));
    let today = shared::call_flow::wallboard(&t.app).await.unwrap().today;
    assert_eq!((today.answered, today.answered_wait_ms), (1, 4_000));
}

#[tokio::test]
async fn the_ledger_never_costs_a_caller_or_an_agent_their_call() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.ledger.set_failing(true);
    let params = inbound_call_params(&sid(1));
    let request = signed_webhook("/conference/connect/client", &borrowed(&params));
    let answer = shared::handlers::conference_connect_client::handle(&t.app, request).await.unwrap();
    assert!(body_text(&answer).contains("<Conference"), "{}", body_text(&answer));
    // The join is a report: Twilio gets a 503 and sends it again; the caller is in line anyway.
    let joined = report(&t, conference_report(&sid(1), "participant-join", Some(&sid(1)))).await;
    assert_eq!(joined.status(), 503);
    t.ledger.set_failing(false);
    assert_eq!(
        body_text(&report(&t, conference_report(&sid(1), "participant-join", Some(&sid(1)))).await),
        EMPTY_TWIML
    );
    t.ledger.set_failing(true);
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
}

#[tokio::test]
async fn a_tickets_calls_come_newest_first_a_page_at_a_time() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    for n in 0..25_i64 {
        let event = LedgerEvent::Began {
            at_ms: (NOW + n) * 1000,
            channel: Channel::Phone,
            caller: CALLER.into(),
            party: Some(CALLER.into()),
            day: "2027-01-15".into(),
            agent: None,
        };
        t.ledger.record(&CallSid::parse(&sid(100 + n as u32)).unwrap(), &event, NOW + 1).await.unwrap();
    }
    let first = calls_json(&t, &ticket).await;
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["calls"].as_array().unwrap().iter().map(|call| call["call_id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&first), (105..125).rev().map(sid).collect::<Vec<_>>());
    let cursor = first["next"].as_str().unwrap();
    let second = body_json(&calls_of(&t, &ticket, &format!("?cursor={cursor}")).await);
    assert_eq!(ids(&second), (100..105).rev().map(sid).collect::<Vec<_>>());
    assert_eq!(second["next"], json!(null));
}

#[tokio::test]
async fn a_tickets_calls_are_for_agents_and_say_what_is_wrong() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    let anonymous = handle(&t.app, event("GET", &format!("/tickets/{ticket}/calls"), &[], b"")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad_id = calls_of(&t, &TicketId::parse("01J00000000000000000000009").unwrap(), "").await;
    assert_eq!(bad_id.status(), 404);
    let cookie = t.session_cookie("agent9").await;
    let malformed = handle(&t.app, event("GET", "/tickets/nope/calls", &[("cookie", &cookie)], b"")).await.unwrap();
    assert_eq!(
        (malformed.status().as_u16(), body_json(&malformed)["fields"].clone()),
        (400, json!({"ticket_id": "is malformed"}))
    );
    let cursor = calls_of(&t, &ticket, "?cursor=bm90LWEtY3Vyc29y").await;
    assert_eq!(
        (cursor.status().as_u16(), body_json(&cursor)["fields"].clone()),
        (400, json!({"cursor": "is not a cursor from a previous page"}))
    );
    let app = shared::App::new(
        config_with(&[]),
        shared::app::Ports { ledger: Arc::new(MemoryLedgerStore::failing()), ..t.ports() },
    );
    let response =
        handle(&app, event("GET", &format!("/tickets/{ticket}/calls"), &[("cookie", &cookie)], b"")).await.unwrap();
    assert_eq!((response.status().as_u16(), response.headers()["retry-after"].to_str().unwrap()), (503, "2"));
}

async fn export(t: &TestApp, query: &str) -> Response<Body> {
    let cookie = t.session_cookie("agent9").await;
    handle(&t.app, event("GET", &format!("/calls.csv{query}"), &[("cookie", &cookie)], b"")).await.unwrap()
}

#[tokio::test]
async fn the_call_log_exports_a_range_of_days_as_csv_a_page_at_a_time() {
    let t = TestApp::new();
    let began = |n: i64, day: &str, caller: &str| LedgerEvent::Began {
        at_ms: (NOW + n) * 1000,
        channel: Channel::Phone,
        caller: caller.into(),
        party: Some(caller.into()),
        day: day.into(),
        agent: None,
    };
    // 60 calls on each of two days, one on the day after the range; one caller is a formula.
    for n in 0..120_i64 {
        let day = if n < 60 { "2027-01-14" } else { "2027-01-15" };
        let event = began(n, day, if n == 0 { "=cmd|' /C calc'!A0" } else { CALLER });
        t.ledger.record(&CallSid::parse(&sid(1000 + n as u32)).unwrap(), &event, NOW + 1).await.unwrap();
    }
    t.ledger.record(&CallSid::parse(&sid(9)).unwrap(), &began(500, "2027-01-16", CALLER), NOW + 1).await.unwrap();
    t.ledger
        .record(
            &CallSid::parse(&sid(1001)).unwrap(),
            &LedgerEvent::Ended { at_ms: (NOW + 31) * 1000, run: "CF".into() },
            NOW + 1,
        )
        .await
        .unwrap();

    let first = export(&t, "?from=2027-01-14&to=2027-01-15").await;
    assert_eq!((first.status().as_u16(), content_type(&first)), (200, "text/csv; charset=utf-8"));
    let text = body_text(&first);
    let lines: Vec<&str> = text.split("\r\n").filter(|line| !line.is_empty()).collect();
    assert_eq!(lines[0], shared::handlers::tickets::CSV_HEADER);
    assert_eq!(lines.len(), 1 + 100);
    assert_eq!(
        lines[1],
        format!("{},inbound,phone,{},,'=cmd|' /C calc'!A0,,,,0,0,in-progress,", sid(1000), rfc3339(NOW))
    );
    assert_eq!(
        lines[2],
        format!("{},inbound,phone,{},{},'{CALLER},,30,,0,0,abandoned,", sid(1001), rfc3339(NOW + 1), rfc3339(NOW + 31))
    );
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let next = link.strip_prefix('<').and_then(|link| link.strip_suffix(">; rel=\"next\"")).unwrap();
    assert!(next.starts_with("/calls.csv?from=2027-01-14&to=2027-01-15&cursor="), "{next}");
    let second = export(&t, next.trim_start_matches("/calls.csv")).await;
    let text = body_text(&second);
    let rows: Vec<&str> = text.split("\r\n").skip(1).filter(|line| !line.is_empty()).collect();
    assert_eq!(rows.len(), 20);
    assert!(rows[19].starts_with(&sid(1119)), "{}", rows[19]);
    assert!(second.headers().get("link").is_none());
}

#[tokio::test]
async fn the_call_log_export_is_for_agents_and_names_what_is_wrong() {
    let t = TestApp::new();
    let anonymous = handle(&t.app, event("GET", "/calls.csv?from=2027-01-14&to=2027-01-15", &[], b"")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    for (query, fields) in [
        ("", json!({"from": "must be a day, YYYY-MM-DD", "to": "must be a day, YYYY-MM-DD"})),
        ("?from=2027-01-15&to=2027-01-14", json!({"to": "must not be before from"})),
        ("?from=2027-01-01&to=2027-02-01", json!({"to": "must be at most 31 days from from, counting both"})),
        (
            "?from=2027-01-01&to=2027-01-31&cursor=eA",
            json!({"cursor": "is not a cursor from a previous page of this range"}),
        ),
    ] {
        let response = export(&t, query).await;
        assert_eq!((response.status().as_u16(), body_json(&response)["fields"].clone()), (400, fields), "{query}");
    }
    let empty = export(&t, "?from=2027-01-01&to=2027-01-31").await;
    assert_eq!(body_text(&empty), format!("{}\r\n", shared::handlers::tickets::CSV_HEADER));
}

#[tokio::test]
async fn a_call_whose_reports_come_newest_first_is_on_its_ticket_once() {
    let t = TestApp::new();
    let ticket = ticket_for(&t, Some(CALLER), None).await;
    let params = inbound_call_params(&sid(1));
    let request = signed_webhook("/conference/connect/client", &borrowed(&params));
    let answer = shared::handlers::conference_connect_client::handle(&t.app, request).await.unwrap();
    assert!(body_text(&answer).contains("<Conference"));
    t.clock.advance(15);
    // Twilio held the conference's reports until it ended, then sent them newest first, twice.
    for _ in 0..2 {
        assert_eq!(body_text(&conference_ends(&t, &sid(1)).await), EMPTY_TWIML);
        let joined = conference_report(&sid(1), "participant-join", Some(&sid(1)));
        assert_eq!(body_text(&report(&t, joined).await), EMPTY_TWIML);
    }
    let calls = calls_json(&t, &ticket).await;
    let listed: Vec<_> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| (call["call_id"].clone(), call["outcome"].clone()))
        .collect();
    assert_eq!(listed, [(json!(sid(1)), json!("abandoned"))]);
    assert_eq!(calls["calls"][0]["waited_seconds"], json!(15));
}
