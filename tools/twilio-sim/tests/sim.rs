//! The simulator on its own, against a scriptable fake app: what Twilio sends, what it accepts,
//! conference rules, endpoint scripts, the REST API and status callbacks.

// Test code, where a panic is a failed test: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers an integration test crate shares between them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::json;
use twilio_sim::{AnswerMode, Behaviour, BrowserCall, CallStatus, CallbackMode, Event, InboundCall};

const CONFERENCE: &str = "CAcccccccccccccccccccccccccccccccc";

/// A support line like Warmline's, in TwiML only: callers wait in a conference, agents start it.
fn support_line(request: &Captured) -> (u16, &'static str, String) {
    match request.path() {
        "/voice" => twiml(&format!(
            r#"<Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="/wait" waitMethod="POST">{CONFERENCE}</Conference></Dial>"#
        )),
        "/wait" => twiml(r#"<Say>Please hold.</Say><Play loop="0">http://music.example/BusyStrings.mp3</Play>"#),
        "/agent1" => twiml(&format!(
            r#"<Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">{CONFERENCE}</Conference></Dial>"#
        )),
        "/agent2" => twiml(&format!(
            r#"<Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="true">{CONFERENCE}</Conference></Dial>"#
        )),
        _ => (404, "text/plain", "no such route".into()),
    }
}

async fn place(server: &twilio_sim::Server, app: &FakeApp, to: &str, path: &str) -> String {
    let url = format!("{}{path}", app.url);
    let (status, body) = rest(server, "Calls.json", &[("To", to), ("From", NUMBER), ("Url", &url)]).await;
    assert_eq!(status, 201, "{body}");
    body["sid"].as_str().unwrap().to_owned()
}

fn call_status(server: &twilio_sim::Server, sid: &str) -> CallStatus {
    server.sim.call(sid).unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_exactly_like_twilios_request_validator_expects() {
    let app = FakeApp::start(|request| match request.path() {
        "/voice" => {
            twiml(r#"<Dial><Conference waitUrl="/wait?x=1&amp;y=a%20b" waitMethod="GET">room</Conference></Dial>"#)
        }
        _ => twiml("<Say>hold</Say>"),
    })
    .await;
    let server = simulator(&app).await;
    let sid = server.sim.dial_in(InboundCall { from: Some("+15557654321".into()), ..InboundCall::default() });
    expect(&server, 0, "the wait music", |e| matches!(e.event, Event::Say { hold: true, .. })).await;
    server.sim.hang_up(&sid);

    let requests = app.requests();
    assert_eq!(requests.len(), 2);
    let cases: Vec<serde_json::Value> = requests
        .iter()
        .map(|request| {
            let url = format!("{}{}", app.url, request.uri);
            let params: BTreeMap<&str, Vec<&str>> = request.form.iter().fold(BTreeMap::new(), |mut map, (k, v)| {
                map.entry(k.as_str()).or_default().push(v.as_str());
                map
            });
            let signature = request.headers["x-twilio-signature"].to_str().unwrap();
            json!({ "url": url, "params": params, "signature": signature })
        })
        .collect();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[1].method, "GET");
    assert!(requests[1].uri.starts_with("/wait?x=1&y=a%20b&AccountSid="), "{}", requests[1].uri);

    let script = r#"
import json, sys
from twilio.request_validator import RequestValidator

class Params(dict):
    def getlist(self, name):
        return self[name]

validator = RequestValidator(sys.argv[1])
for case in json.load(sys.stdin):
    ok = validator.validate(case["url"], Params(case["params"]), case["signature"])
    forged = validator.validate(case["url"] + "&forged=1", Params(case["params"]), case["signature"])
    print(ok, forged)
"#;
    let verdicts = python::run_python_with_args(script, &[TOKEN], &serde_json::to_string(&cases).unwrap());
    assert_eq!(verdicts.lines().collect::<Vec<_>>(), ["True False", "True False"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_call_sends_twilios_standard_parameters() {
    let app = FakeApp::start(|_| twiml("<Hangup/>")).await;
    let server = simulator(&app).await;
    let sid = server.sim.dial_in(InboundCall { from: Some("+15557654321".into()), ..InboundCall::default() });
    expect(&server, 0, "the call to end", |e| is_call_end(e, &sid)).await;

    let request = &app.requests_to("/voice")[0];
    assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(request.headers["user-agent"], "TwilioProxy/1.1");
    let mut names: Vec<&str> = request.form.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "Caller", "Direction", "From", "To"]
    );
    for (name, value) in [
        ("AccountSid", ACCOUNT),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", sid.as_str()),
        ("CallStatus", "ringing"),
        ("Called", NUMBER),
        ("Caller", "+15557654321"),
        ("Direction", "inbound"),
        ("From", "+15557654321"),
        ("To", NUMBER),
    ] {
        assert_eq!(request.param(name), Some(value), "{name}");
    }
    assert!(sid.starts_with("CA") && sid.len() == 34 && sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_goes_to_the_twiml_app_with_the_sdk_params() {
    let app = FakeApp::start(|_| twiml("<Say>Hi</Say>")).await;
    let server = simulator(&app).await;
    let params = BTreeMap::from([("phoneNumber".to_owned(), "+15551234567".to_owned())]);
    let sid = server.sim.browser_call(BrowserCall { identity: "agent1".into(), params, ..BrowserCall::default() });
    expect(&server, 0, "the call to end", |e| is_call_end(e, &sid)).await;

    let request = &app.requests_to("/browser")[0];
    assert_eq!(request.param("From"), Some("client:agent1"));
    assert_eq!(request.param("Caller"), Some("client:agent1"));
    assert_eq!(request.param("phoneNumber"), Some("+15551234567"));
    assert_eq!(request.param("ApplicationSid"), Some(format!("AP{}", "3".repeat(32)).as_str()));
    assert_eq!(request.param("Direction"), Some("inbound"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_waits_with_music_until_an_agent_starts_the_conference() {
    let app = FakeApp::start(support_line).await;
    let server = simulator(&app).await;
    let customer = server.sim.dial_in(InboundCall { name: Some("customer".into()), ..InboundCall::default() });
    expect(&server, 0, "the music loops", |e| matches!(e.event, Event::Play { loop_count: 0, hold: true, .. })).await;
    let wait = &app.requests_to("/wait")[0];
    assert_eq!((wait.method.as_str(), wait.param("CallSid")), ("POST", Some(customer.as_str())));
    assert_eq!(server.sim.conference(CONFERENCE).unwrap().status, twilio_sim::sim::ConferenceStatus::Init);

    let agent1 = place(&server, &app, "client:agent1", "/agent1").await;
    let started =
        expect(&server, 0, "the conference starts", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;
    assert_eq!(
        started.event,
        Event::ConferenceStarted {
            conference: CONFERENCE.into(),
            participants: vec!["customer".into(), "agent1".into()]
        }
    );
    let answered = &app.requests_to("/agent1")[0];
    assert_eq!(answered.param("Direction"), Some("outbound-api"));
    assert_eq!(answered.param("CallStatus"), Some("in-progress"));
    assert_eq!(answered.param("To"), Some("client:agent1"));
    assert_eq!(answered.param("From"), Some(NUMBER));

    // The first agent leaves without endConferenceOnExit: the caller stays, alone.
    server.sim.hang_up(&agent1);
    expect(&server, 0, "agent1's call ends", |e| is_call_end(e, &agent1)).await;
    assert_eq!(call_status(&server, &customer), CallStatus::InProgress);
    assert_eq!(server.sim.call(&customer).unwrap().conference.as_deref(), Some(CONFERENCE));

    server.sim.hang_up(&customer);
    let ended = expect(&server, 0, "the conference ends", |e| matches!(e.event, Event::ConferenceEnded { .. })).await;
    assert_eq!(
        ended.event,
        Event::ConferenceEnded {
            conference: CONFERENCE.into(),
            reason: "customer left, with endConferenceOnExit".into()
        }
    );
    let entries = server.sim.timeline().entries_since(0);
    assert!(!entries.iter().any(|e| e.event == Event::HoldSilence), "{}", twilio_sim::timeline::render(&entries));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_with_end_conference_on_exit_disconnects_everyone() {
    let app = FakeApp::start(support_line).await;
    let server = simulator(&app).await;
    let customer = server.sim.dial_in(InboundCall { name: Some("customer".into()), ..InboundCall::default() });
    let agent1 = place(&server, &app, "client:agent1", "/agent1").await;
    expect(&server, 0, "the conference starts", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;
    let agent2 = place(&server, &app, "client:agent2", "/agent2").await;
    expect(&server, 0, "agent2 joins", |e| {
        e.call_sid.as_deref() == Some(agent2.as_str())
            && matches!(e.event, Event::ConferenceJoined { waiting: false, .. })
    })
    .await;
    assert_eq!(server.sim.conference(CONFERENCE).unwrap().participants.len(), 3);

    server.sim.hang_up(&agent2);
    for sid in [&customer, &agent1, &agent2] {
        expect(&server, 0, "every call ends", |e| is_call_end(e, sid)).await;
        assert_eq!(call_status(&server, sid), CallStatus::Completed);
    }
    let conference = server.sim.conference(CONFERENCE).unwrap();
    assert_eq!(conference.history, ["customer", "agent1", "agent2"]);
    assert!(conference.participants.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_twiml_that_runs_out_leaves_the_caller_in_silence() {
    let app = FakeApp::start(|request| match request.path() {
        "/voice" => {
            twiml(r#"<Dial><Conference startConferenceOnEnter="false" waitUrl="/wait">room</Conference></Dial>"#)
        }
        _ => twiml(r#"<Play>http://music.example/once.mp3</Play>"#),
    })
    .await;
    let server = simulator(&app).await;
    let sid = server.sim.dial_in(InboundCall::default());
    expect(&server, 0, "silence", |e| e.event == Event::HoldSilence).await;
    server.sim.hang_up(&sid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_gives_up_on_answers_it_cannot_use() {
    for (status, content_type, body, code) in [
        (500, XML, "<Response/>", 11200),
        (403, "text/plain", "forbidden", 11200),
        (200, "text/plain", "<Response><Say>hi</Say></Response>", 12300),
        (200, "application/json", "{}", 12300),
        (200, XML, "Thank you", 12100),
        (200, XML, "<Response><Speak>hi</Speak></Response>", 12200),
    ] {
        let app = FakeApp::start(move |_| (status, content_type, body.to_owned())).await;
        let server = simulator(&app).await;
        let sid = server.sim.dial_in(InboundCall::default());
        expect(&server, 0, "the call to end", |e| is_call_end(e, &sid)).await;
        let entries = server.sim.timeline().entries_since(0);
        let events: Vec<&Event> = entries.iter().map(|e| &e.event).collect();
        assert!(
            events.iter().any(|e| matches!(e, Event::TwimlError { code: c, .. } if *c == code)),
            "{status} {content_type} {body}: {events:?}"
        );
        assert!(events.contains(&&Event::Say { text: twilio_sim::call::APPLICATION_ERROR.into(), hold: false }));
        assert_eq!(call_status(&server, &sid), CallStatus::Completed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_reject_ignore_or_hang_up_as_scripted() {
    let app = FakeApp::start(|_| twiml(r#"<Play loop="0">http://music.example/x.mp3</Play>"#)).await;
    let server = simulator(&app).await;
    let script = |answer, hangup_after_ms| Behaviour { answer, after_ms: Some(10), hangup_after_ms, name: None };
    server.sim.set_behaviour("client:never", script(AnswerMode::Never, None));
    server.sim.set_behaviour("client:rejects", script(AnswerMode::Reject, None));
    server.sim.set_behaviour("+15550009999", script(AnswerMode::Fail, None));
    server.sim.set_behaviour("client:brief", script(AnswerMode::Auto, Some(50)));
    server.sim.set_behaviour("client:manual", script(AnswerMode::Manual, None));

    let never = place(&server, &app, "client:never", "/x").await;
    let rejects = place(&server, &app, "client:rejects", "/x").await;
    let fails = place(&server, &app, "+15550009999", "/x").await;
    let brief = place(&server, &app, "client:brief", "/x").await;
    let manual = place(&server, &app, "client:manual", "/x").await;
    for (sid, status) in [
        (&never, CallStatus::NoAnswer),
        (&rejects, CallStatus::Busy),
        (&fails, CallStatus::Failed),
        (&brief, CallStatus::Completed),
    ] {
        expect(&server, 0, "the call to end", |e| is_call_end(e, sid)).await;
        assert_eq!(call_status(&server, sid), status);
    }
    assert_eq!(app.requests().len(), 1, "only the answered call fetches its Url");

    assert!(server.sim.answer(&manual));
    expect(&server, 0, "the manual answer", |e| {
        e.call_sid.as_deref() == Some(manual.as_str()) && e.event == Event::Answered
    })
    .await;
    assert_eq!(call_status(&server, &manual), CallStatus::InProgress);
    server.sim.hang_up(&manual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_timeout_is_twilios_60_seconds_unless_given() {
    let app = FakeApp::start(|_| twiml("<Hangup/>")).await;
    let server = simulator(&app).await;
    server.sim.set_behaviour("client:never", Behaviour { answer: AnswerMode::Never, ..Behaviour::default() });
    let url = format!("{}/x", app.url);
    let started = std::time::Instant::now();
    let (_, default) = rest(&server, "Calls.json", &[("To", "client:never"), ("From", NUMBER), ("Url", &url)]).await;
    let default = default["sid"].as_str().unwrap().to_owned();
    expect(&server, 0, "no answer", |e| is_call_end(e, &default)).await;
    // 60 s at a hundredth of the time.
    assert!(started.elapsed() >= Duration::from_millis(600));

    let (_, short) =
        rest(&server, "Calls.json", &[("To", "client:never"), ("From", NUMBER), ("Url", &url), ("Timeout", "5")]).await;
    let short = short["sid"].as_str().unwrap().to_owned();
    let ended = expect(&server, 0, "no answer", |e| is_call_end(e, &short)).await;
    assert_eq!(ended.event, Event::CallEnded { status: "no-answer".into(), duration_ms: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_checks_auth_and_input_like_twilio() {
    let app = FakeApp::start(|_| twiml("<Hangup/>")).await;
    let server = simulator(&app).await;
    let http = reqwest::Client::new();
    let calls = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Calls.json", server.url());
    let url = format!("{}/x", app.url);
    let form = [("To", "client:agent1"), ("From", NUMBER), ("Url", url.as_str())];

    for auth in [None, Some((KEY, "wrong")), Some((ACCOUNT, SECRET))] {
        let mut request = http.post(&calls).form(&form);
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
        );
    }
    let with_token = http.post(&calls).basic_auth(ACCOUNT, Some(TOKEN)).form(&form).send().await.unwrap();
    assert_eq!(with_token.status(), 201, "the account SID and auth token work too");

    let other_account = format!("{}/2010-04-01/Accounts/AC{}/Calls.json", server.url(), "9".repeat(32));
    let response = http.post(other_account).basic_auth(KEY, Some(SECRET)).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 404);

    for (form, code) in [
        (vec![("From", NUMBER), ("Url", url.as_str())], 21201),
        (vec![("To", "agent1"), ("From", NUMBER), ("Url", url.as_str())], 21211),
        (vec![("To", "client:agent1"), ("Url", url.as_str())], 21213),
        (vec![("To", "client:agent1"), ("From", "support"), ("Url", url.as_str())], 21212),
        (vec![("To", "client:agent1"), ("From", NUMBER)], 21205),
        (vec![("To", "client:agent1"), ("From", NUMBER), ("Url", "/relative")], 21205),
    ] {
        let (status, body) = rest(&server, "Calls.json", &form).await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(code)), "{form:?}: {body}");
        assert_eq!(body["status"], 400);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    let (status, call) = rest(&server, "Calls.json", &form).await;
    assert_eq!(status, 201);
    let sid = call["sid"].as_str().unwrap();
    assert_eq!(call["status"], "queued");
    assert_eq!(call["direction"], "outbound-api");
    assert_eq!(call["to"], "client:agent1");
    assert_eq!(call["from"], NUMBER);
    assert_eq!(call["account_sid"], ACCOUNT);
    assert_eq!(call["api_version"], "2010-04-01");
    assert_eq!(call["uri"], format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"));

    let (status, missing) =
        rest(&server, &format!("Calls/CA{}.json", "0".repeat(32)), &[("Status", "completed")]).await;
    assert_eq!((status, missing["code"].as_u64()), (404, Some(20404)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_redirects_and_ends_live_calls() {
    let app = FakeApp::start(|request| match request.path() {
        "/moved" => twiml(r#"<Say>Moved.</Say><Play loop="0">http://music.example/x.mp3</Play>"#),
        _ => twiml(r#"<Play loop="0">http://music.example/first.mp3</Play>"#),
    })
    .await;
    let server = simulator(&app).await;
    let sid = place(&server, &app, "client:agent1", "/first").await;
    expect(
        &server,
        0,
        "the first music",
        |e| matches!(&e.event, Event::Play { url, .. } if url.ends_with("first.mp3")),
    )
    .await;

    let moved = format!("{}/moved", app.url);
    let (status, _) = rest(&server, &format!("Calls/{sid}.json"), &[("Url", &moved)]).await;
    assert_eq!(status, 200);
    expect(&server, 0, "the new TwiML", |e| matches!(&e.event, Event::Say { text, .. } if text == "Moved.")).await;

    let (status, _) =
        rest(&server, &format!("Calls/{sid}.json"), &[("Twiml", "<Response><Say>Bye.</Say><Hangup/></Response>")])
            .await;
    assert_eq!(status, 200);
    expect(&server, 0, "the call to end", |e| is_call_end(e, &sid)).await;

    let (status, body) = rest(&server, &format!("Calls/{sid}.json"), &[("Url", &moved)]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21220)), "a finished call cannot be redirected");

    let other = place(&server, &app, "client:agent2", "/first").await;
    expect(&server, 0, "music", |e| {
        e.call_sid.as_deref() == Some(other.as_str()) && matches!(e.event, Event::Play { .. })
    })
    .await;
    // "canceled" does not touch a call in progress; "completed" ends it.
    let (status, body) = rest(&server, &format!("Calls/{other}.json"), &[("Status", "canceled")]).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("in-progress")), "{body}");
    let (status, body) = rest(&server, &format!("Calls/{other}.json"), &[("Status", "completed")]).await;
    assert_eq!(status, 200, "{body}");
    expect(&server, 0, "the call to end", |e| is_call_end(e, &other)).await;
    assert_eq!(call_status(&server, &other), CallStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_cancels_a_ringing_call_only() {
    let app = FakeApp::start(|_| twiml(r#"<Play loop="0">http://music.example/first.mp3</Play>"#)).await;
    let server = simulator(&app).await;
    server.sim.set_behaviour("client:agent1", Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() });
    let sid = place(&server, &app, "client:agent1", "/first").await;
    expect(&server, 0, "the agent's phone rings", |e| {
        e.call_sid.as_deref() == Some(sid.as_str()) && matches!(e.event, Event::Ringing { .. })
    })
    .await;
    let (status, body) = rest(&server, &format!("Calls/{sid}.json"), &[("Status", "canceled")]).await;
    assert_eq!(status, 200, "{body}");
    expect(&server, 0, "the call to end", |e| is_call_end(e, &sid)).await;
    assert_eq!(call_status(&server, &sid), CallStatus::Canceled);
    assert!(!server.sim.answer(&sid) || call_status(&server, &sid) == CallStatus::Canceled, "too late to answer");
    // Canceling a call that is over is accepted and changes nothing.
    let (status, body) = rest(&server, &format!("Calls/{sid}.json"), &[("Status", "canceled")]).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("canceled")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_number_bridges_two_legs_and_continues_after_dial() {
    let app = FakeApp::start(|_| {
        twiml(r#"<Dial callerId="+15550001111"><Number>+15551234567</Number></Dial><Say>The other side hung up.</Say>"#)
    })
    .await;
    let server = simulator(&app).await;
    server.sim.set_behaviour(
        "+15551234567",
        Behaviour {
            answer: AnswerMode::Auto,
            after_ms: Some(10),
            hangup_after_ms: Some(100),
            name: Some("customer".into()),
        },
    );
    let agent = server.sim.browser_call(BrowserCall { identity: "agent1".into(), ..BrowserCall::default() });
    expect(&server, 0, "the caller's call ends", |e| is_call_end(e, &agent)).await;
    let calls = server.sim.calls();
    let leg = calls.iter().find(|c| c.parent_call_sid.as_deref() == Some(agent.as_str())).unwrap();
    assert_eq!((leg.party.as_str(), leg.from.as_str(), leg.direction.as_str()), ("customer", NUMBER, "outbound-dial"));
    let entries = server.sim.timeline().entries_since(0);
    let bridged = position(&entries, |e| matches!(e.event, Event::Bridged { .. })).unwrap();
    let said = position(&entries, |e| matches!(&e.event, Event::Say { text, .. } if text == "The other side hung up."))
        .unwrap();
    assert!(bridged < said);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_callbacks_arrive_in_order_or_reversed_and_twice_on_request() {
    let app = FakeApp::start(|request| match request.path() {
        "/status" => (204, "text/plain", String::new()),
        _ => twiml("<Hangup/>"),
    })
    .await;
    let server = simulator(&app).await;
    let url = format!("{}/x", app.url);
    let status_url = format!("{}/status", app.url);
    let events = ["initiated", "ringing", "answered", "completed"];

    let mut runs = Vec::new();
    for mode in [CallbackMode::default(), CallbackMode { duplicate: true, reverse: true }] {
        server.sim.set_callback_mode(mode);
        let mut form = vec![
            ("To", "client:agent1"),
            ("From", NUMBER),
            ("Url", url.as_str()),
            ("StatusCallback", status_url.as_str()),
        ];
        form.extend(events.iter().map(|e| ("StatusCallbackEvent", *e)));
        let (_, call) = rest(&server, "Calls.json", &form).await;
        let sid = call["sid"].as_str().unwrap().to_owned();
        let expected = if mode.duplicate { 8 } else { 4 };
        for _ in 0..200 {
            if app.requests_to("/status").iter().filter(|r| r.param("CallSid") == Some(sid.as_str())).count()
                >= expected
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let statuses: Vec<String> = app
            .requests_to("/status")
            .iter()
            .filter(|r| r.param("CallSid") == Some(sid.as_str()))
            .map(|r| r.param("CallStatus").unwrap().to_owned())
            .collect();
        runs.push(statuses);
    }
    assert_eq!(runs[0], ["queued", "ringing", "in-progress", "completed"]);
    assert_eq!(
        runs[1],
        ["completed", "completed", "in-progress", "in-progress", "ringing", "ringing", "queued", "queued"],
        "newest first, each twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conference_status_callbacks_follow_the_first_participant() {
    let app = FakeApp::start(|request| match request.path() {
        "/status" => (200, "text/plain", String::new()),
        "/voice" => twiml(r#"<Dial><Conference statusCallback="/status" statusCallbackEvent="start end join leave">room</Conference></Dial>"#),
        _ => twiml(r#"<Dial><Conference statusCallback="/ignored" statusCallbackEvent="start end join leave">room</Conference></Dial>"#),
    })
    .await;
    let server = simulator(&app).await;
    let customer = server.sim.dial_in(InboundCall::default());
    expect(&server, 0, "the customer waits", |e| matches!(e.event, Event::ConferenceJoined { .. })).await;
    let agent = place(&server, &app, "client:agent1", "/agent").await;
    expect(&server, 0, "the start", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;
    server.sim.hang_up(&customer);
    server.sim.hang_up(&agent);
    expect(
        &server,
        0,
        "the end callback",
        |e| matches!(&e.event, Event::StatusCallback { event, .. } if event == "conference-end"),
    )
    .await;
    let events: Vec<String> =
        app.requests_to("/status").iter().map(|r| r.param("StatusCallbackEvent").unwrap().to_owned()).collect();
    assert_eq!(
        events,
        [
            "participant-join",
            "participant-join",
            "conference-start",
            "participant-leave",
            "participant-leave",
            "conference-end"
        ]
    );
    assert!(app.requests_to("/ignored").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_participants_api_adds_holds_and_removes_participants() {
    let app = FakeApp::start(support_line).await;
    let server = simulator(&app).await;
    let customer = server.sim.dial_in(InboundCall { name: Some("customer".into()), ..InboundCall::default() });
    expect(&server, 0, "the customer waits", |e| matches!(e.event, Event::ConferenceJoined { .. })).await;

    let (status, participant) = rest(
        &server,
        &format!("Conferences/{CONFERENCE}/Participants.json"),
        &[("To", "client:agent1"), ("From", NUMBER), ("Label", "agent1"), ("StartConferenceOnEnter", "true")],
    )
    .await;
    assert_eq!(status, 201, "{participant}");
    let agent = participant["call_sid"].as_str().unwrap().to_owned();
    expect(&server, 0, "the conference starts", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;
    assert!(app.requests_to("/agent1").is_empty(), "a participant joins without fetching TwiML");

    let conference = server.sim.conference(CONFERENCE).unwrap().sid;
    let participant_path = format!("Conferences/{conference}/Participants/agent1.json");
    let (status, held) = rest(&server, &participant_path, &[("Hold", "true")]).await;
    assert_eq!((status, &held["hold"]), (200, &json!(true)));
    // Twilio's quirk: answered 200, but ignored while on hold.
    let (status, ignored) = rest(&server, &participant_path, &[("EndConferenceOnExit", "true")]).await;
    assert_eq!((status, &ignored["end_conference_on_exit"]), (200, &json!(false)));
    expect(&server, 0, "hold music", |e| {
        e.call_sid.as_deref() == Some(agent.as_str()) && matches!(e.event, Event::Play { hold: true, .. })
    })
    .await;

    let (_, unheld) = rest(&server, &participant_path, &[("Hold", "false"), ("EndConferenceOnExit", "true")]).await;
    assert_eq!((&unheld["hold"], &unheld["end_conference_on_exit"]), (&json!(false), &json!(true)));

    let response = reqwest::Client::new()
        .delete(format!("{}/2010-04-01/Accounts/{ACCOUNT}/{participant_path}", server.url()))
        .basic_auth(KEY, Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    expect(&server, 0, "the removed participant's call ends", |e| is_call_end(e, &agent)).await;
    // They had endConferenceOnExit by then: the conference ends with them.
    expect(&server, 0, "the customer's call ends", |e| is_call_end(e, &customer)).await;
    assert_eq!(
        server.sim.conference(CONFERENCE).unwrap().ended_reason.as_deref(),
        Some("agent1 left, with endConferenceOnExit")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_drives_calls_and_serves_the_timeline() {
    let app = FakeApp::start(support_line).await;
    let server = simulator(&app).await;
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{}/sim{path}", server.url());

    let info: serde_json::Value = http.get(control("")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["voice_url"], format!("{}/voice", app.url));
    let response =
        http.put(control("/endpoints/client:agent1")).json(&json!({"answer": "manual"})).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let created: serde_json::Value = http
        .post(control("/calls/inbound"))
        .json(&json!({"from": "+15557654321", "name": "customer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customer = created["sid"].as_str().unwrap().to_owned();
    expect(&server, 0, "hold music", |e| matches!(e.event, Event::Play { hold: true, .. })).await;
    http.post(control(&format!("/calls/{customer}/hangup"))).send().await.unwrap();
    expect(&server, 0, "the call ends", |e| is_call_end(e, &customer)).await;

    let timeline: Vec<twilio_sim::Entry> = http.get(control("/timeline")).send().await.unwrap().json().await.unwrap();
    assert_eq!(timeline, server.sim.timeline().entries_since(0));
    let text = http.get(control("/timeline.txt")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("hold: Play BusyStrings.mp3 (loop forever)"), "{text}");
    assert!(text.contains("customer CA"), "{text}");

    let unknown = http.post(control("/calls/CAnope/hangup")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}
