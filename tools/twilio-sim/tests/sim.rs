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
use twilio_sim::{AnswerMode, Behaviour, BrowserCall, CallStatus, CallbackMode, Entry, Event, InboundCall};

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
    let sid =
        server.sim.browser_call(BrowserCall { identity: "agent1".into(), params, ..BrowserCall::default() }).unwrap();
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
async fn custom_parameters_in_a_client_address_reach_the_device_not_the_webhook() {
    let app = FakeApp::start(|_| twiml(r#"<Play loop="0">http://music.example/x.mp3</Play>"#)).await;
    let server = simulator(&app).await;
    server.sim.set_behaviour(
        "client:alice",
        Behaviour { answer: AnswerMode::Auto, after_ms: Some(10), ..Behaviour::default() },
    );
    let sid = place(&server, &app, "client:alice?conference=CA1&callerName=Zo%C3%AB+O%27Hara", "/x").await;
    let call = server.sim.call(&sid).unwrap();
    // The behaviour scripted for the client applies: the address is the identity alone.
    assert_eq!(call.to, "client:alice");
    assert_eq!(
        call.custom_parameters,
        [("conference".into(), "CA1".into()), ("callerName".into(), "Zoë O'Hara".into())].into()
    );
    expect(&server, 0, "the TwiML fetched", |e| {
        e.call_sid.as_deref() == Some(sid.as_str()) && matches!(e.event, Event::Webhook { .. })
    })
    .await;
    let fetched = app.requests();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].param("To"), Some("client:alice"));
    assert_eq!((fetched[0].param("conference"), fetched[0].param("callerName")), (None, None));
    server.sim.hang_up(&sid);

    // Only a client address carries them: a phone number with a query is no number.
    let url = format!("{}/x", app.url);
    let (status, _) = rest(&server, "Calls.json", &[("To", "+15550001111?a=b"), ("From", NUMBER), ("Url", &url)]).await;
    assert_eq!(status, 400);
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
    let agent = server.sim.browser_call(BrowserCall { identity: "agent1".into(), ..BrowserCall::default() }).unwrap();
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

/// Whether Twilio's own `RequestValidator` accepts each request's `X-Twilio-Signature`.
fn valid_per_twilios_library(app: &FakeApp, requests: &[Captured]) -> Vec<bool> {
    let cases: Vec<serde_json::Value> = requests
        .iter()
        .map(|request| {
            let params: BTreeMap<&str, Vec<&str>> = request.form.iter().fold(BTreeMap::new(), |mut map, (k, v)| {
                map.entry(k.as_str()).or_default().push(v.as_str());
                map
            });
            json!({
                "url": format!("{}{}", app.url, request.uri),
                "params": params,
                "signature": request.headers["x-twilio-signature"].to_str().unwrap(),
            })
        })
        .collect();
    let script = r#"
import json, sys
from twilio.request_validator import RequestValidator

class Params(dict):
    def getlist(self, name):
        return self[name]

validator = RequestValidator(sys.argv[1])
for case in json.load(sys.stdin):
    print(validator.validate(case["url"], Params(case["params"]), case["signature"]))
"#;
    let verdicts = python::run_python_with_args(script, &[TOKEN], &serde_json::to_string(&cases).unwrap());
    verdicts.lines().map(|line| line == "True").collect()
}

fn of_call(entry: &Entry, sid: &str) -> bool {
    entry.call_sid.as_deref() == Some(sid)
}

fn said(entry: &Entry, sid: &str, words: &str) -> bool {
    of_call(entry, sid) && matches!(&entry.event, Event::Say { text, .. } if text == words)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_sends_the_keys_pressed_to_its_action() {
    let app = FakeApp::start(|request| match request.path() {
        // No action: Twilio requests the document's own URL, this one, with the digits.
        "/voice" if request.param("Digits").is_none() => twiml(
            r#"<Gather numDigits="2" timeout="60"><Play loop="0">http://music.example/menu.mp3</Play></Gather><Say>No input.</Say>"#,
        ),
        "/voice" => twiml(r#"<Gather action="/pin" method="GET" timeout="60"><Say>Your PIN, then hash.</Say></Gather>"#),
        "/pin" => twiml("<Say>Thank you.</Say><Hangup/>"),
        _ => (404, "text/plain", String::new()),
    })
    .await;
    let server = simulator(&app).await;
    let sid = server.sim.dial_in(InboundCall { name: Some("customer".into()), ..InboundCall::default() });
    expect(&server, 0, "the menu plays", |e| of_call(e, &sid) && matches!(e.event, Event::Play { .. })).await;
    // The first key stops the prompt; the second completes numDigits.
    assert!(server.sim.press(&sid, "4"));
    assert!(server.sim.press(&sid, "2"));
    let second = expect(&server, 0, "the second Gather", |e| {
        of_call(e, &sid) && matches!(e.event, Event::GatherStarted { num_digits: None, .. })
    })
    .await;
    assert!(server.sim.press(&sid, "123#9"), "keys after the finishOnKey are lost");
    expect(&server, 0, "the call ends", |e| is_call_end(e, &sid)).await;

    let menu = &app.requests_to("/voice")[1];
    assert_eq!(menu.method, "POST");
    assert_eq!((menu.param("Digits"), menu.param("FinishedOnKey")), (Some("42"), Some("")));
    assert_eq!((menu.param("CallSid"), menu.param("CallStatus")), (Some(sid.as_str()), Some("in-progress")));
    let pin = &app.requests_to("/pin")[0];
    assert_eq!(pin.method, "GET");
    assert!(pin.uri.contains("Digits=123&") || pin.uri.ends_with("Digits=123"), "{}", pin.uri);
    assert!(pin.uri.contains("FinishedOnKey=%23"), "{}", pin.uri);
    assert_eq!(valid_per_twilios_library(&app, &app.requests()), [true, true, true]);

    let entries = server.sim.timeline().entries_since(0);
    assert!(!entries.iter().any(|e| said(e, &sid, "No input.")), "the digits went to the action instead");
    let ends: Vec<&Event> =
        entries.iter().filter(|e| matches!(e.event, Event::GatherEnded { .. })).map(|e| &e.event).collect();
    assert_eq!(
        ends,
        [
            &Event::GatherEnded { digits: "42".into(), ended_by: "numDigits".into(), action: true },
            &Event::GatherEnded { digits: "123".into(), ended_by: "finishOnKey".into(), action: true },
        ]
    );
    assert!(entries.iter().any(|e| e.seq > second.seq && e.event == Event::DigitsPressed { digits: "123#9".into() }));
    let text = twilio_sim::timeline::render(&entries);
    assert!(text.contains("Gather ends (numDigits): Digits=42; Twilio requests the action URL"), "{text}");
    assert!(text.contains("Gather action: POST /voice → 200"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_without_input_goes_on_with_the_next_verb() {
    let app = FakeApp::start(|request| match request.path() {
        "/timeout" => twiml(
            r#"<Gather action="/menu" timeout="3"><Say>Press 1.</Say></Gather><Say>We did not get that.</Say><Hangup/>"#,
        ),
        "/hash" => twiml(r#"<Gather action="/menu" timeout="60"><Play loop="0">http://music.example/menu.mp3</Play></Gather><Say>Nothing entered.</Say><Hangup/>"#),
        "/empty" => twiml(r#"<Gather action="/menu" timeout="3" actionOnEmptyResult="true"/><Say>Unreachable.</Say>"#),
        "/menu" => twiml("<Hangup/>"),
        _ => (404, "text/plain", String::new()),
    })
    .await;
    let server = simulator(&app).await;

    let timed_out = place(&server, &app, "client:agent1", "/timeout").await;
    expect(&server, 0, "the call ends", |e| is_call_end(e, &timed_out)).await;
    assert!(app.requests_to("/menu").is_empty(), "no input: no action request");
    let entries = server.sim.timeline().entries_since(0);
    let ended = position(&entries, |e| {
        of_call(e, &timed_out)
            && e.event == Event::GatherEnded { digits: String::new(), ended_by: "timeout".into(), action: false }
    })
    .unwrap();
    let next = position(&entries, |e| said(e, &timed_out, "We did not get that.")).unwrap();
    assert!(ended < next);

    // finishOnKey before any digit is no input either.
    let hash = place(&server, &app, "client:agent2", "/hash").await;
    expect(&server, 0, "the menu plays", |e| of_call(e, &hash) && matches!(e.event, Event::Play { .. })).await;
    assert!(server.sim.press(&hash, "#"));
    expect(&server, 0, "the next verb", |e| said(e, &hash, "Nothing entered.")).await;
    assert!(app.requests_to("/menu").is_empty());

    let empty = place(&server, &app, "client:agent3", "/empty").await;
    expect(&server, 0, "the call ends", |e| is_call_end(e, &empty)).await;
    let menu = app.requests_to("/menu");
    assert_eq!(menu.len(), 1, "actionOnEmptyResult requests the action anyway");
    assert_eq!((menu[0].param("Digits"), menu[0].param("FinishedOnKey")), (Some(""), Some("")));
    let entries = server.sim.timeline().entries_since(0);
    assert!(!entries.iter().any(|e| said(e, &empty, "Unreachable.")));
}

/// The app's side of voicemail: `<Record>`, its action and its recordingStatusCallback.
fn voicemail(request: &Captured) -> (u16, &'static str, String) {
    match request.path() {
        "/voice" => twiml(
            r#"<Say>Leave a message.</Say><Record action="/recorded" maxLength="30" recordingStatusCallback="/recording-status"/><Say>Unreachable.</Say>"#,
        ),
        "/keyed" => twiml(
            r##"<Record action="/recorded" finishOnKey="*#" recordingStatusCallback="/recording-status" trim="do-not-trim"/>"##,
        ),
        "/silent" => twiml(
            r#"<Record action="/recorded" timeout="2" recordingStatusCallback="/recording-status" recordingStatusCallbackEvent="completed absent"/><Say>No message.</Say><Hangup/>"#,
        ),
        "/recorded" => twiml("<Say>Thanks.</Say><Hangup/>"),
        "/recording-status" => (204, "text/plain", String::new()),
        _ => (404, "text/plain", String::new()),
    }
}

async fn status_callback_for(server: &twilio_sim::Server, sid: &str, status: &str) {
    let event = format!("recording {status}");
    expect(server, 0, "the recording status callback", |e| {
        of_call(e, sid) && matches!(&e.event, Event::StatusCallback { event: ev, status: Some(_), .. } if *ev == event)
    })
    .await;
}

async fn fetch(url: &str, auth: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_stores_a_recording_and_tells_the_app_twice() {
    let app = FakeApp::start(voicemail).await;
    let server = simulator(&app).await;
    let sid = server.sim.dial_in(InboundCall { name: Some("customer".into()), ..InboundCall::default() });
    expect(&server, 0, "the recording starts", |e| {
        of_call(e, &sid) && matches!(e.event, Event::RecordingStarted { beep: true, max_length_seconds: 30, .. })
    })
    .await;
    assert!(server.sim.speak(&sid, 3));
    expect(&server, 0, "the call ends", |e| is_call_end(e, &sid)).await;
    status_callback_for(&server, &sid, "completed").await;

    let action = &app.requests_to("/recorded")[0];
    let recording_sid = action.param("RecordingSid").unwrap().to_owned();
    assert!(recording_sid.starts_with("RE") && recording_sid.len() == 34);
    assert!(recording_sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
    let recording_url = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{recording_sid}", server.url());
    assert_eq!(action.param("RecordingUrl"), Some(recording_url.as_str()));
    assert_eq!((action.param("CallSid"), action.param("CallStatus")), (Some(sid.as_str()), Some("in-progress")));
    assert_eq!(action.param("Digits"), None, "the silence ended it, not a key");
    // Untrimmed: three seconds of speech and the five of silence that ended it.
    let untrimmed: u64 = action.param("RecordingDuration").unwrap().parse().unwrap();
    assert!((8..=10).contains(&untrimmed), "{untrimmed}");

    let callback = &app.requests_to("/recording-status")[0];
    assert_eq!(callback.method, "POST");
    let mut names: Vec<&str> = callback.form.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "AccountSid",
            "CallSid",
            "ErrorCode",
            "RecordingChannels",
            "RecordingDuration",
            "RecordingSid",
            "RecordingSource",
            "RecordingStartTime",
            "RecordingStatus",
            "RecordingUrl"
        ]
    );
    for (name, value) in [
        ("AccountSid", ACCOUNT),
        ("CallSid", sid.as_str()),
        ("RecordingSid", recording_sid.as_str()),
        ("RecordingUrl", recording_url.as_str()),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "3"),
        ("RecordingChannels", "1"),
        ("RecordingSource", "RecordVerb"),
        ("ErrorCode", "0"),
    ] {
        assert_eq!(callback.param(name), Some(value), "{name}");
    }
    let started = callback.param("RecordingStartTime").unwrap();
    assert!(time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc2822).is_ok(), "{started}");
    assert_eq!(valid_per_twilios_library(&app, &[action.clone(), callback.clone()]), [true, true]);

    let entries = server.sim.timeline().entries_since(0);
    assert!(!entries.iter().any(|e| said(e, &sid, "Unreachable.")));
    assert!(entries.iter().any(|e| said(e, &sid, "Thanks.")));
    assert!(entries.iter().any(|e| e.event
        == Event::RecordingCompleted {
            recording_sid: recording_sid.clone(),
            duration_seconds: 3,
            ended_by: "timeout".into(),
            empty: false
        }));
    assert_eq!(server.sim.recording(&recording_sid).unwrap().duration_seconds, 3);

    // The resource and its media, behind the API's credentials.
    let resource = fetch(&format!("{recording_url}.json"), Some((KEY, SECRET))).await;
    assert_eq!(resource.status(), 200);
    let resource: serde_json::Value = resource.json().await.unwrap();
    for (field, value) in [
        ("sid", json!(recording_sid)),
        ("account_sid", json!(ACCOUNT)),
        ("call_sid", json!(sid)),
        ("duration", json!("3")),
        ("status", json!("completed")),
        ("source", json!("RecordVerb")),
        ("channels", json!(1)),
        ("media_url", json!(recording_url)),
        ("uri", json!(format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings/{recording_sid}.json"))),
    ] {
        assert_eq!(resource[field], value, "{field}");
    }
    for (suffix, content_type, magic) in
        [("", "audio/x-wav", &b"RIFF"[..]), (".wav", "audio/x-wav", b"RIFF"), (".mp3", "audio/mpeg", b"\xFF\xFB")]
    {
        let media = fetch(&format!("{recording_url}{suffix}"), Some((ACCOUNT, TOKEN))).await;
        assert_eq!(media.status(), 200, "{suffix:?}");
        assert_eq!(media.headers()["content-type"], content_type);
        let bytes = media.bytes().await.unwrap();
        assert!(bytes.starts_with(magic) && bytes.len() > 100, "{suffix:?}");
        if content_type == "audio/x-wav" {
            assert_eq!(&bytes[8..12], b"WAVE");
        }
        let refused = fetch(&format!("{recording_url}{suffix}"), None).await;
        assert_eq!(refused.status(), 401, "media needs the API's credentials");
        assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["code"], 20003);
    }
    let missing = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{}", server.url(), "0".repeat(32));
    for suffix in ["", ".json", ".mp3"] {
        let response = fetch(&format!("{missing}{suffix}"), Some((KEY, SECRET))).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["code"], 20404);
    }
    let list = fetch(&format!("{}/2010-04-01/Accounts/{ACCOUNT}/Recordings.json", server.url()), Some((KEY, SECRET)))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(list["recordings"][0]["sid"], json!(recording_sid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_or_a_hang_up_ends_a_recording() {
    let app = FakeApp::start(voicemail).await;
    let server = simulator(&app).await;

    let keyed = place(&server, &app, "client:agent1", "/keyed").await;
    expect(&server, 0, "recording", |e| of_call(e, &keyed) && matches!(e.event, Event::RecordingStarted { .. })).await;
    server.sim.speak(&keyed, 2);
    expect(&server, 0, "speech", |e| of_call(e, &keyed) && matches!(e.event, Event::Spoke { .. })).await;
    assert!(server.sim.press(&keyed, "5"), "not a finishOnKey: ignored");
    assert!(server.sim.press(&keyed, "#"));
    expect(&server, 0, "the call ends", |e| is_call_end(e, &keyed)).await;
    let action = &app.requests_to("/recorded")[0];
    assert_eq!(action.param("Digits"), Some("#"));
    assert_eq!(action.param("CallStatus"), Some("in-progress"));

    let hung_up = server.sim.dial_in(InboundCall { name: Some("caller".into()), ..InboundCall::default() });
    expect(&server, 0, "recording", |e| of_call(e, &hung_up) && matches!(e.event, Event::RecordingStarted { .. }))
        .await;
    server.sim.speak(&hung_up, 60);
    expect(&server, 0, "speech", |e| of_call(e, &hung_up) && matches!(e.event, Event::Spoke { .. })).await;
    server.sim.hang_up(&hung_up);
    let requested = expect(&server, 0, "the action after the hang-up", |e| {
        of_call(e, &hung_up) && matches!(&e.event, Event::Webhook { purpose, .. } if purpose == "Record action")
    })
    .await;
    let ended = expect(&server, 0, "the call ends", |e| is_call_end(e, &hung_up)).await;
    assert!(ended.seq < requested.seq, "Twilio tells the app after the call is over");
    let action = app.requests_to("/recorded").into_iter().find(|r| r.param("CallSid") == Some(&hung_up)).unwrap();
    assert_eq!((action.param("Digits"), action.param("CallStatus")), (Some("hangup"), Some("completed")));
    assert!(action.param("RecordingUrl").is_some() && action.param("RecordingSid").is_some());
    let entries = server.sim.timeline().entries_since(0);
    assert!(!entries.iter().any(|e| said(e, &hung_up, "Thanks.")), "nothing runs on a call that is over");
    assert_eq!(server.sim.recordings().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_recording_skips_the_action_and_goes_on() {
    let app = FakeApp::start(voicemail).await;
    let server = simulator(&app).await;
    let sid = place(&server, &app, "client:agent1", "/silent").await;
    expect(&server, 0, "the call ends", |e| is_call_end(e, &sid)).await;
    status_callback_for(&server, &sid, "absent").await;
    assert!(app.requests_to("/recorded").is_empty(), "Twilio does not request the action for an empty recording");
    let entries = server.sim.timeline().entries_since(0);
    let completed = position(&entries, |e| {
        of_call(e, &sid)
            && matches!(&e.event, Event::RecordingCompleted { empty: true, ended_by, .. } if ended_by == "timeout")
    })
    .unwrap();
    let next = position(&entries, |e| said(e, &sid, "No message.")).unwrap();
    assert!(completed < next);
    let callback = &app.requests_to("/recording-status")[0];
    assert_eq!(callback.param("RecordingStatus"), Some("absent"));
    let recording = &server.sim.recordings()[0];
    assert_eq!((recording.status.as_str(), recording.duration_seconds), ("absent", 0));
    let url = callback.param("RecordingUrl").unwrap();
    assert_eq!(fetch(url, Some((KEY, SECRET))).await.status(), 404, "a silent recording has no media");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirecting_a_participant_takes_it_out_of_its_conference_first() {
    let app = FakeApp::start(|request| match request.path() {
        "/voice" => twiml(
            r#"<Dial><Conference endConferenceOnExit="true" statusCallback="/conference-status" statusCallbackEvent="start end join leave">room</Conference></Dial><Say>Unreachable.</Say>"#,
        ),
        "/agent" => twiml(r#"<Dial><Conference>room</Conference></Dial>"#),
        "/survey" => twiml("<Say>Please rate the call.</Say><Hangup/>"),
        "/conference-status" => (204, "text/plain", String::new()),
        _ => (404, "text/plain", String::new()),
    })
    .await;
    let server = simulator(&app).await;
    let customer = server.sim.dial_in(InboundCall { name: Some("customer".into()), ..InboundCall::default() });
    expect(&server, 0, "the customer joins", |e| {
        of_call(e, &customer) && matches!(e.event, Event::ConferenceJoined { .. })
    })
    .await;
    let agent = place(&server, &app, "client:agent1", "/agent").await;
    expect(&server, 0, "the conference starts", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;

    let survey = format!("{}/survey", app.url);
    let (status, body) = rest(&server, &format!("Calls/{customer}.json"), &[("Url", &survey)]).await;
    assert_eq!(status, 200, "{body}");
    expect(&server, 0, "the customer's call ends", |e| is_call_end(e, &customer)).await;
    expect(&server, 0, "the agent's call ends", |e| is_call_end(e, &agent)).await;
    expect(
        &server,
        0,
        "the end callback",
        |e| matches!(&e.event, Event::StatusCallback { event, status: Some(_), .. } if event == "conference-end"),
    )
    .await;

    let entries = server.sim.timeline().entries_since(0);
    let left = position(&entries, |e| {
        of_call(e, &customer)
            && matches!(&e.event, Event::ConferenceLeft { reason, .. } if reason.contains("redirected"))
    })
    .unwrap();
    let ended = position(&entries, |e| {
        e.event
            == Event::ConferenceEnded {
                conference: "room".into(),
                reason: "customer left, with endConferenceOnExit".into(),
            }
    })
    .unwrap();
    let fetched = position(&entries, |e| {
        of_call(e, &customer) && matches!(&e.event, Event::Webhook { purpose, url, .. } if purpose == "redirect" && url.ends_with("/survey"))
    })
    .unwrap();
    let surveyed = position(&entries, |e| said(e, &customer, "Please rate the call.")).unwrap();
    assert!(left < ended && ended < fetched && fetched < surveyed, "{}", twilio_sim::timeline::render(&entries));
    assert!(!entries.iter().any(|e| said(e, &customer, "Unreachable.")), "the redirect replaces the rest of the TwiML");
    assert_eq!(
        server.sim.conference("room").unwrap().ended_reason.as_deref(),
        Some("customer left, with endConferenceOnExit")
    );

    let callbacks = app.requests_to("/conference-status");
    let events: Vec<(&str, Option<&str>, u32)> = callbacks
        .iter()
        .map(|r| {
            (
                r.param("StatusCallbackEvent").unwrap(),
                r.param("CallSid"),
                r.param("SequenceNumber").unwrap().parse().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(
        names,
        ["participant-join", "participant-join", "conference-start", "participant-leave", "conference-end"]
    );
    assert_eq!(events[3].1, Some(customer.as_str()), "the redirected customer leaves");
    assert!(events.windows(2).all(|pair| pair[0].2 < pair[1].2), "SequenceNumber rises: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_presses_keys_and_speaks() {
    let app = FakeApp::start(voicemail).await;
    let server = simulator(&app).await;
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{}/sim{path}", server.url());
    let sid = place(&server, &app, "client:agent1", "/keyed").await;
    expect(&server, 0, "recording", |e| of_call(e, &sid) && matches!(e.event, Event::RecordingStarted { .. })).await;

    let spoke = http.post(control(&format!("/calls/{sid}/speak"))).json(&json!({"seconds": 4})).send().await.unwrap();
    assert_eq!(spoke.status(), 204);
    expect(&server, 0, "speech", |e| of_call(e, &sid) && e.event == Event::Spoke { seconds: 4 }).await;
    let bad = http.post(control(&format!("/calls/{sid}/digits"))).json(&json!({"digits": "12a"})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let pressed =
        http.post(control(&format!("/calls/{sid}/digits"))).json(&json!({"digits": "#"})).send().await.unwrap();
    assert_eq!(pressed.status(), 204);
    expect(&server, 0, "the call ends", |e| is_call_end(e, &sid)).await;
    let gone = http.post(control(&format!("/calls/{sid}/digits"))).json(&json!({"digits": "1"})).send().await.unwrap();
    assert_eq!(gone.status(), 404, "the call is over");

    let recordings: Vec<twilio_sim::RecordingView> =
        http.get(control("/recordings")).send().await.unwrap().json().await.unwrap();
    assert_eq!(recordings, server.sim.recordings());
    assert_eq!((recordings.len(), recordings[0].call_sid.as_str()), (1, sid.as_str()));
    let text = http.get(control("/timeline.txt")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("speaks for 4s") && text.contains("presses #"), "{text}");
    assert!(text.contains("ends (finishOnKey)"), "{text}");
}

/// The time from `from` to the first entry after it that matches, in the timeline's milliseconds.
fn ms_between(entries: &[Entry], from: &Entry, to: impl Fn(&Entry) -> bool) -> u64 {
    let to = entries.iter().find(|e| e.seq > from.seq && to(e)).unwrap();
    to.at_ms - from.at_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hangs_up_a_while_after_they_first_talk_however_long_they_waited() {
    let app = FakeApp::start(support_line).await;
    let server = simulator(&app).await;
    // Waits on hold for longer than they will talk: the clock starts when an agent joins.
    let customer = server.sim.dial_in(InboundCall {
        name: Some("customer".into()),
        hangup_after_talking_ms: Some(300),
        ..InboundCall::default()
    });
    expect(&server, 0, "the hold music", |e| matches!(e.event, Event::Play { hold: true, .. })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(call_status(&server, &customer), CallStatus::InProgress, "nobody to talk to yet");

    let agent1 = place(&server, &app, "client:agent1", "/agent1").await;
    let joined = expect(&server, 0, "agent1 joins", |e| {
        of_call(e, &agent1) && matches!(e.event, Event::ConferenceJoined { waiting: false, .. })
    })
    .await;
    let hung_up = expect(&server, 0, "the customer hangs up", |e| {
        of_call(e, &customer) && matches!(&e.event, Event::HungUp { by } if by == "customer")
    })
    .await;
    let talked = hung_up.at_ms - joined.at_ms;
    assert!((300..1_000).contains(&talked), "talked {talked} ms, scripted 300 ms");
    expect(&server, 0, "the customer's call ends", |e| is_call_end(e, &customer)).await;
    // The customer had endConferenceOnExit: agent1 is disconnected with them.
    expect(&server, 0, "agent1's call ends", |e| is_call_end(e, &agent1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talking_starts_the_clock_once_and_waiting_together_does_not() {
    let app = FakeApp::start(|request| match request.path() {
        // Two browser callers in one room, neither a moderator: they wait with music.
        "/browser" => twiml(
            r#"<Dial><Conference startConferenceOnEnter="false" waitUrl="/wait" waitMethod="POST">room</Conference></Dial>"#,
        ),
        "/wait" => twiml(r#"<Play loop="0">http://music.example/BusyStrings.mp3</Play>"#),
        "/host" => twiml(r#"<Dial><Conference startConferenceOnEnter="true">room</Conference></Dial>"#),
        _ => (404, "text/plain", "no such route".into()),
    })
    .await;
    let server = simulator(&app).await;
    let browser = |identity: &str, ms| BrowserCall {
        identity: identity.into(),
        hangup_after_talking_ms: Some(ms),
        ..BrowserCall::default()
    };
    let first = server.sim.browser_call(browser("customer_a", 200)).unwrap();
    let second = server.sim.browser_call(browser("customer_b", 600)).unwrap();
    for sid in [&first, &second] {
        expect(&server, 0, "both wait", |e| {
            of_call(e, sid) && matches!(e.event, Event::ConferenceJoined { waiting: true, .. })
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(call_status(&server, &first), CallStatus::InProgress, "waiting with someone is not talking");

    // The host starts the conference: both talk from now on, and each hangs up on their own time.
    let host = place(&server, &app, "client:host", "/host").await;
    let started =
        expect(&server, 0, "the conference starts", |e| matches!(e.event, Event::ConferenceStarted { .. })).await;
    for (sid, party, ms) in [(&first, "customer_a", 200), (&second, "customer_b", 600)] {
        expect(&server, 0, "the caller hangs up", |e| is_call_end(e, sid)).await;
        let entries = server.sim.timeline().entries_since(0);
        let talked = ms_between(&entries, &started, |e| {
            of_call(e, sid) && matches!(&e.event, Event::HungUp { by } if by == party)
        });
        assert!((ms..ms + 700).contains(&talked), "{party} talked {talked} ms, scripted {ms} ms");
    }
    assert_eq!(call_status(&server, &host), CallStatus::InProgress, "the host stays");
    server.sim.hang_up(&host);

    // Over the control API too.
    let response = reqwest::Client::new()
        .post(format!("{}/sim/calls/inbound", server.url()))
        .json(&json!({ "name": "caller", "hangup_after_talking_ms": 100 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}
