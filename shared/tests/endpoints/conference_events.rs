use crate::prelude::*;
use shared::handlers::conference_events::handle;
use shared::handlers::{conference_call_agent, conference_connect_agent, conference_connect_client};
use shared::store::CallStore;
use shared::store::memory::MemoryCallStore;

fn call(n: &str) -> CallSid {
    CallSid::parse(n).unwrap()
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

fn apology_twiml() -> CallUpdate {
    CallUpdate::Twiml(format!("{XML_HEAD}<Response><Say>{NO_AGENT_AVAILABLE}</Say><Hangup/></Response>"))
}

/// A customer calls; agent1 rings (the recording dialer's call `placed_sid(0)`).
async fn customer_waits(t: &TestApp, customer: &str) {
    let params = inbound_call_params(customer);
    let response =
        conference_connect_client::handle(&t.app, signed_webhook("/conference/connect/client", &borrowed(&params)))
            .await
            .unwrap();
    assert!(body_text(&response).contains("<Conference"), "{}", body_text(&response));
}

async fn agent_answers(t: &TestApp, conference: &str, agent: &str, agent_call: &str) -> String {
    let path = format!("/conference/{conference}/connect/{agent}");
    let params = [("CallSid", agent_call), ("To", &format!("client:{agent}")), ("Direction", "outbound-api")];
    body_text(&conference_connect_agent::handle(&t.app, signed_webhook(&path, &params)).await.unwrap())
}

/// The conference's status callback, as Twilio sends it.
fn conference_report(conference: &str, event: &str, participant: Option<&str>) -> Request {
    let mut params = vec![
        ("AccountSid", format!("AC{}", "0".repeat(32))),
        ("ConferenceSid", format!("CF{}", "c".repeat(32))),
        ("FriendlyName", conference.to_owned()),
        ("StatusCallbackEvent", event.to_owned()),
        ("SequenceNumber", "3".to_owned()),
        ("Timestamp", "Sat, 21 Nov 2026 11:00:00 +0000".to_owned()),
    ];
    if let Some(call) = participant {
        params.extend([("CallSid", call.to_owned()), ("EndConferenceOnExit", "false".to_owned())]);
    }
    signed_webhook(&format!("/conference/{conference}/events"), &borrowed(&params))
}

async fn conference_event(t: &TestApp, conference: &str, event: &str, participant: Option<&str>) {
    let response = handle(&t.app, conference_report(conference, event, participant)).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
}

/// The status callback of a call Warmline placed to an agent, as Twilio sends it.
fn call_report(conference: &str, agent: &str, agent_call: &str, status: &str) -> Request {
    let params = [
        ("AccountSid", format!("AC{}", "0".repeat(32))),
        ("CallSid", agent_call.to_owned()),
        ("CallStatus", status.to_owned()),
        ("CallbackSource", "call-progress-events".to_owned()),
        ("Direction", "outbound-api".to_owned()),
        ("From", NUMBER.to_owned()),
        ("To", format!("client:{agent}")),
        ("SequenceNumber", "1".to_owned()),
    ];
    signed_webhook(&format!("/conference/{conference}/agents/{agent}/status"), &borrowed(&params))
}

async fn call_ended(t: &TestApp, conference: &str, agent: &str, agent_call: &str, status: &str) {
    let response = handle(&t.app, call_report(conference, agent, agent_call, status)).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
}

async fn dial_agent_in(t: &TestApp, agent: &str) -> u16 {
    let cookie = t.session_cookie(agent).await;
    let request = with_header(json_post(&format!("/conference/{agent}/call"), ""), "cookie", &cookie);
    let response = conference_call_agent::handle(&t.app, request).await.unwrap();
    response.status().as_u16()
}

async fn in_call(t: &TestApp, agent_id: &str) -> Option<CallSid> {
    t.store.conference_of_agent(&agent(agent_id), NOW).await.unwrap()
}

// --- conference-end ---------------------------------------------------------------------

#[tokio::test]
async fn the_end_of_a_conference_frees_its_agents_and_forgets_it() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(dial_agent_in(&t, "agent1").await, 201);
    agent_answers(&t, &sid(1), "agent2", &placed_sid(1)).await;

    conference_event(&t, &sid(1), "conference-end", None).await;

    assert_eq!(t.store.conference_ids(), []);
    assert_eq!(t.store.participants(&call(&sid(1))), []);
    assert_eq!((in_call(&t, "agent1").await, in_call(&t, "agent2").await), (None, None));
    // Both calls are canceled; Twilio ignores that for the answered ones.
    assert_eq!(
        t.dialer.updated(),
        [(call(&placed_sid(0)), CallUpdate::Cancel), (call(&placed_sid(1)), CallUpdate::Cancel)]
    );
    // The dashboard's "Dial agent 2 in" now refuses, and nobody is dialed.
    assert_eq!(dial_agent_in(&t, "agent1").await, 409);
    assert_eq!(t.dialer.placed().len(), 2);
}

#[tokio::test]
async fn the_customer_hanging_up_stops_the_agent_ringing() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    conference_event(&t, &sid(1), "participant-leave", Some(&sid(1))).await;
    conference_event(&t, &sid(1), "conference-end", None).await;
    assert_eq!(t.dialer.updated(), [(call(&placed_sid(0)), CallUpdate::Cancel)]);

    // Had agent1 answered before the cancel took effect, they are told, not left alone.
    let answer = agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(answer, format!("{XML_HEAD}<Response><Say>{}</Say><Hangup/></Response>", CALL_ENDED));
    assert_eq!(in_call(&t, "agent1").await, None);
    // And their canceled call's report starts no chain: the conference is over.
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "canceled").await;
    assert_eq!(t.dialer.placed().len(), 1);
    assert_eq!(t.dialer.updated().len(), 1);
}

#[tokio::test]
async fn the_end_reported_twice_changes_nothing_more() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    conference_event(&t, &sid(1), "conference-end", None).await;
    conference_event(&t, &sid(1), "conference-end", None).await;
    assert_eq!(t.dialer.updated(), [(call(&placed_sid(0)), CallUpdate::Cancel)], "canceled once");
    assert_eq!(t.store.conference_ids(), []);
}

#[tokio::test]
async fn an_agent_in_a_newer_call_keeps_it_when_the_old_one_ends() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    customer_waits(&t, &sid(2)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(dial_agent_in(&t, "agent1").await, 201);
    agent_answers(&t, &sid(1), "agent2", &placed_sid(2)).await;
    // agent1 hands over, and takes the second customer; the first call's end comes late.
    conference_event(&t, &sid(1), "participant-leave", Some(&placed_sid(0))).await;
    agent_answers(&t, &sid(2), "agent1", &placed_sid(1)).await;
    conference_event(&t, &sid(1), "conference-end", None).await;

    assert_eq!(in_call(&t, "agent1").await, Some(call(&sid(2))));
    assert_eq!(in_call(&t, "agent2").await, None);
    assert_eq!(t.store.conference_ids(), [call(&sid(2))]);
    assert_eq!(dial_agent_in(&t, "agent1").await, 201);
}

#[tokio::test]
async fn a_cancel_twilio_refuses_is_only_logged() {
    let t = TestApp::with_dialer(RecordingDialer::refusing_updates());
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    conference_event(&t, &sid(1), "conference-end", None).await;
    assert_eq!(t.dialer.updated().len(), 1);
    assert_eq!((t.store.conference_ids(), in_call(&t, "agent1").await), (vec![], None));
}

// --- participant-leave ------------------------------------------------------------------

#[tokio::test]
async fn an_agent_who_leaves_is_in_no_call() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(dial_agent_in(&t, "agent1").await, 201);
    agent_answers(&t, &sid(1), "agent2", &placed_sid(1)).await;

    conference_event(&t, &sid(1), "participant-leave", Some(&placed_sid(0))).await;
    assert_eq!(in_call(&t, "agent1").await, None);
    assert_eq!(in_call(&t, "agent2").await, Some(call(&sid(1))), "agent2 stays with the customer");
    assert_eq!(dial_agent_in(&t, "agent1").await, 409);
    // Twilio repeats itself: no harm.
    conference_event(&t, &sid(1), "participant-leave", Some(&placed_sid(0))).await;
    assert_eq!(in_call(&t, "agent2").await, Some(call(&sid(1))));
    assert_eq!(t.dialer.updated(), [], "nothing is canceled while the call goes on");
    assert_eq!(t.store.conference_ids(), [call(&sid(1))]);
}

#[tokio::test]
async fn a_leave_after_the_end_changes_nothing() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    conference_event(&t, &sid(1), "conference-end", None).await;
    // agent1 answers the next customer before the first conference's leave arrives.
    customer_waits(&t, &sid(2)).await;
    agent_answers(&t, &sid(2), "agent1", &placed_sid(1)).await;
    conference_event(&t, &sid(1), "participant-leave", Some(&placed_sid(0))).await;
    conference_event(&t, &sid(1), "participant-leave", Some(&sid(1))).await;
    assert_eq!(in_call(&t, "agent1").await, Some(call(&sid(2))));
    assert_eq!(t.store.conference_ids(), [call(&sid(2))]);
}

#[tokio::test]
async fn other_events_are_acknowledged_and_ignored() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    for event in ["conference-start", "participant-join", "participant-hold", ""] {
        conference_event(&t, &sid(1), event, Some(&placed_sid(0))).await;
    }
    assert_eq!(in_call(&t, "agent1").await, Some(call(&sid(1))));
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (1, 0));
}

// --- an agent's call ends ---------------------------------------------------------------

#[tokio::test]
async fn when_the_first_agent_does_not_answer_the_next_one_rings() {
    for status in ["no-answer", "busy", "failed", "canceled"] {
        let t = TestApp::new();
        customer_waits(&t, &sid(1)).await;
        call_ended(&t, &sid(1), "agent1", &placed_sid(0), status).await;
        assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1"), agent_call(&sid(1), "agent2")], "{status}");
        let record = t.store.conference(&call(&sid(1)), NOW).await.unwrap().unwrap();
        assert_eq!(record.tried, [agent("agent1"), agent("agent2")]);
        assert_eq!(record.agent_calls, [call(&placed_sid(0)), call(&placed_sid(1))]);
        assert_eq!(t.dialer.updated(), [], "the customer keeps waiting");
    }
}

#[tokio::test]
async fn the_agent_who_answers_next_is_the_first_responder() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "no-answer").await;
    let answer = agent_answers(&t, &sid(1), "agent2", &placed_sid(1)).await;
    // agent2 may hand over and leave, as the first agent could.
    assert!(answer.contains(r#"endConferenceOnExit="false""#), "{answer}");
    assert_eq!(dial_agent_in(&t, "agent2").await, 201);
    assert_eq!(t.dialer.placed().last(), Some(&agent_call(&sid(1), "agent1")));
    let answer = agent_answers(&t, &sid(1), "agent1", &placed_sid(2)).await;
    assert!(answer.contains(r#"endConferenceOnExit="true""#), "{answer}");
}

#[tokio::test]
async fn a_repeated_or_late_report_rings_nobody_twice() {
    let t = TestApp::build(
        config_with(&[("AGENT_IDS", "agent1,agent2,agent3")]),
        MemoryCallStore::new(),
        RecordingDialer::default(),
    );
    customer_waits(&t, &sid(1)).await;
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "no-answer").await;
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "no-answer").await;
    // agent2 rings now; agent1's report arriving yet again is about a call long over.
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "busy").await;
    let to: Vec<String> = t.dialer.placed().into_iter().map(|c| c.to).collect();
    assert_eq!(to, ["client:agent1", "client:agent2"]);
}

#[tokio::test]
async fn an_answered_call_changes_nothing_when_it_ends() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    for status in ["completed", "in-progress", ""] {
        call_ended(&t, &sid(1), "agent1", &placed_sid(0), status).await;
    }
    // A status that means "not taken", for an agent who did take the call: out of order.
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "no-answer").await;
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (1, 0));
}

#[tokio::test]
async fn when_nobody_answers_the_customer_hears_an_apology_once() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "no-answer").await;
    call_ended(&t, &sid(1), "agent2", &placed_sid(1), "busy").await;
    assert_eq!(t.dialer.updated(), [(call(&sid(1)), apology_twiml())]);
    assert_eq!(t.store.conference_ids(), [], "the conference is given up");
    assert_eq!(t.dialer.placed().len(), 2, "nobody is rung twice");

    // Twilio repeats the last report, then the conference ends as the customer leaves it.
    call_ended(&t, &sid(1), "agent2", &placed_sid(1), "busy").await;
    conference_event(&t, &sid(1), "participant-leave", Some(&sid(1))).await;
    conference_event(&t, &sid(1), "conference-end", None).await;
    assert_eq!(t.dialer.updated(), [(call(&sid(1)), apology_twiml())], "one apology");
    assert_eq!(t.dialer.placed().len(), 2);
}

#[tokio::test]
async fn a_solo_roster_apologises_at_once() {
    let t = TestApp::build(config_with(&[("AGENT_IDS", "agent1")]), MemoryCallStore::new(), RecordingDialer::default());
    customer_waits(&t, &sid(1)).await;
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "failed").await;
    assert_eq!(t.dialer.updated(), [(call(&sid(1)), apology_twiml())]);
}

#[tokio::test]
async fn a_colleague_who_does_not_answer_leaves_the_customer_alone() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(dial_agent_in(&t, "agent1").await, 201);
    call_ended(&t, &sid(1), "agent2", &placed_sid(1), "no-answer").await;
    assert_eq!(t.dialer.updated(), [], "no apology: agent1 is still with the customer");
    assert_eq!(t.dialer.placed().len(), 2, "and nobody else rings");
    assert_eq!(t.store.conference_ids(), [call(&sid(1))]);
    assert_eq!(in_call(&t, "agent1").await, Some(call(&sid(1))));
    // agent1 can try again.
    assert_eq!(dial_agent_in(&t, "agent1").await, 201);
}

#[tokio::test]
async fn an_agent_who_cannot_be_rung_is_skipped() {
    // Twilio refuses every call: agent2 cannot be rung, so there is nobody left.
    let t = TestApp::with_dialer(RecordingDialer::failing());
    let conference = shared::domain::Conference::new(call(&sid(1)), agent("agent1"), NOW);
    assert!(t.store.create_conference(&conference).await.unwrap());
    call_ended(&t, &sid(1), "agent1", &placed_sid(0), "no-answer").await;
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent2")]);
    assert_eq!(t.dialer.updated(), [(call(&sid(1)), apology_twiml())]);
    assert_eq!(t.store.conference_ids(), []);
}

// --- bad requests -----------------------------------------------------------------------

#[tokio::test]
async fn forged_reports_change_nothing() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1", &placed_sid(0)).await;
    let events = format!("/conference/{}/events", sid(1));
    let status = format!("/conference/{}/agents/agent1/status", sid(1));
    let requests = [
        webhook_with_signature(&events, &[("StatusCallbackEvent", "conference-end")], None),
        webhook_with_signature(&events, &[("StatusCallbackEvent", "conference-end")], Some("Zm9yZ2Vk")),
        webhook_with_signature(
            &events,
            &[("StatusCallbackEvent", "participant-leave"), ("CallSid", &placed_sid(0))],
            None,
        ),
        webhook_with_signature(&status, &[("CallStatus", "no-answer"), ("CallSid", &placed_sid(0))], None),
        // Signed for the other route: not what Twilio requested.
        {
            let params = [("CallStatus".to_owned(), "no-answer".to_owned())];
            let signature = shared::twilio::signature::compute(AUTH_TOKEN, &format!("{BASE}{events}"), &params);
            webhook_with_signature(&status, &[("CallStatus", "no-answer")], Some(&signature))
        },
    ];
    for request in requests {
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!(response.status(), 403);
    }
    assert_eq!(t.store.conference_ids(), [call(&sid(1))]);
    assert_eq!(in_call(&t, "agent1").await, Some(call(&sid(1))));
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (1, 0));
}

#[tokio::test]
async fn malformed_reports_are_acknowledged_and_change_nothing() {
    let t = TestApp::new();
    customer_waits(&t, &sid(1)).await;
    let requests = [
        conference_report("CA123", "conference-end", None),
        call_report(&sid(1), "mallory", &placed_sid(0), "no-answer"),
        call_report("CA123", "agent1", &placed_sid(0), "no-answer"),
        signed_webhook(&format!("/conference/{}/events", sid(1)), &[("StatusCallbackEvent", "participant-leave")]),
        signed_webhook(&format!("/conference/{}/elsewhere", sid(1)), &[("StatusCallbackEvent", "conference-end")]),
    ];
    for request in requests {
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    }
    assert_eq!(t.store.conference_ids(), [call(&sid(1))]);
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (1, 0));
}

#[tokio::test]
async fn a_failing_store_is_logged_not_a_5xx() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    for request in [
        conference_report(&sid(1), "conference-end", None),
        call_report(&sid(1), "agent1", &placed_sid(0), "no-answer"),
    ] {
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    }
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (0, 0));
}
