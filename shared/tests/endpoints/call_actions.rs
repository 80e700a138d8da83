//! `POST /calls/{call_id}/{action}`: hold, resume, consult, complete, cancel and cold transfer,
//! each checked by what is answered, what is stored, and what was asked of Twilio.

use crate::prelude::*;
use serde_json::json;
use shared::call_flow::HOLD_LIMIT_SECONDS;
use shared::domain::{Availability, CallerState, ColleagueOutcome};
use shared::handlers::conference_call_agent::handle;
use shared::store::memory::MemoryCallStore;
use shared::twilio::ParticipantUpdate;

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

fn call(n: u32) -> CallSid {
    CallSid::parse(&sid(n)).unwrap()
}

fn placed(n: u32) -> CallSid {
    CallSid::parse(&placed_sid(n)).unwrap()
}

fn hold() -> ParticipantUpdate {
    ParticipantUpdate::Hold { hold_url: format!("{BASE}/conference/wait?held=1") }
}

/// Twilio's id of caller 1's conference, which the participant changes name.
fn conference() -> String {
    conference_sid(&sid(1))
}

/// agent1 takes caller 1 (the recording dialer's call `placed_sid(0)`); agent2 is available.
async fn agent1_with_caller1_and_agent2_free() -> TestApp {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    t.available("agent2").await;
    t
}

/// `agent`'s dashboard asks for `action` on caller `customer`'s call.
async fn act(t: &TestApp, agent: &str, customer: &str, action: &str, body: &str) -> Response<Body> {
    let cookie = t.session_cookie(agent).await;
    let request = with_header(json_post(&format!("/calls/{customer}/{action}"), body), "cookie", &cookie);
    handle(&t.app, request).await.unwrap()
}

async fn act_ok(t: &TestApp, agent: &str, action: &str, body: &str) -> serde_json::Value {
    let response = act(t, agent, &sid(1), action, body).await;
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "application/json"), "{action}");
    body_json(&response)
}

async fn refused(t: &TestApp, agent: &str, customer: &str, action: &str, body: &str) -> (u16, serde_json::Value) {
    let response = act(t, agent, customer, action, body).await;
    (response.status().as_u16(), body_json(&response))
}

/// Twilio reports that the participant on `agent_call` left caller 1's conference.
async fn left(t: &TestApp, agent_call: &str) {
    let report = conference_report(&sid(1), "participant-leave", Some(agent_call));
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
}

/// Twilio reports that the participant on `agent_call` joined caller 1's conference.
async fn joined(t: &TestApp, agent_call: &str) {
    let report = conference_report(&sid(1), "participant-join", Some(agent_call));
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
}

async fn call_report(t: &TestApp, agent: &str, agent_call: &str, status: &str) {
    let report = agent_call_report(&sid(1), agent, agent_call, status);
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
}

fn sent_back_in_line(t: &TestApp) -> bool {
    t.dialer.updated().iter().any(|(to, update)| {
        *to == call(1) && matches!(update, CallUpdate::Twiml(twiml) if twiml.contains(BACK_IN_LINE))
    })
}

#[tokio::test]
async fn hold_and_resume_go_to_twilio_once_each() {
    let t = agent1_with_caller1_and_agent2_free().await;
    let held = act_ok(&t, "agent1", "hold", "").await;
    assert_eq!(
        held,
        json!({"call": {"id": sid(1), "on_hold": true, "held_since": shared::domain::rfc3339(NOW), "transfer": null}})
    );
    assert_eq!(t.dialer.participant_updates(), [(conference(), call(1), hold())]);
    assert_eq!(t.caller(&sid(1)).await.unwrap().held_since, Some(NOW));

    // A double click: the same answer, nothing asked of Twilio again.
    assert_eq!(act_ok(&t, "agent1", "hold", "").await, held);
    assert_eq!(t.dialer.participant_updates().len(), 1);

    let resumed = act_ok(&t, "agent1", "resume", "").await;
    assert_eq!(resumed["call"]["on_hold"], false);
    assert_eq!(t.dialer.participant_updates()[1..], [(conference(), call(1), ParticipantUpdate::Resume)]);
    assert_eq!(t.caller(&sid(1)).await.unwrap().held_since, None);
    // Again: Twilio is asked again (it changes nothing there), the record stays as it is.
    let version = t.caller(&sid(1)).await.unwrap().version;
    assert_eq!(act_ok(&t, "agent1", "resume", "").await, resumed);
    assert_eq!(t.caller(&sid(1)).await.unwrap().version, version);
}

#[tokio::test]
async fn consult_then_complete_leaves_the_customer_with_the_colleague() {
    let t = agent1_with_caller1_and_agent2_free().await;
    let consulting = act_ok(&t, "agent1", "consult", "").await;
    assert_eq!(consulting["call"]["on_hold"], true);
    assert_eq!(
        consulting["call"]["transfer"],
        json!({"kind": "consult", "from": "agent1", "to": "agent2", "since": shared::domain::rfc3339(NOW), "colleague": "ringing"})
    );
    assert_eq!(t.dialer.participant_updates(), [(conference(), call(1), hold())]);
    // The colleague's browser learns who hands the call over, and how, before they answer.
    assert_eq!(t.dialer.placed().last().unwrap(), &colleague_call(&sid(1), "agent2", "agent1", "consult"));

    // A double click rings nobody else.
    act_ok(&t, "agent1", "consult", "").await;
    assert_eq!(t.dialer.placed().len(), 2);
    // Not yet: the colleague is still ringing.
    assert_eq!(
        refused(&t, "agent1", &sid(1), "complete", "").await,
        (409, json!({"error": "agent2 is not in the call; cancel instead"}))
    );

    t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await;
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!(record.joined, [agent("agent1"), agent("agent2")]);
    assert_eq!(record.held_since, Some(NOW), "the agents talk privately");
    assert_eq!(t.dialer.participant_updates().len(), 1);
    // Only the agent who started the consultation completes it.
    assert_eq!(
        refused(&t, "agent2", &sid(1), "complete", "").await,
        (409, json!({"error": "there is no consultation of yours to complete"}))
    );

    let completed = act_ok(&t, "agent1", "complete", "").await;
    assert_eq!(completed["call"], json!({"id": sid(1), "on_hold": false, "held_since": null, "transfer": null}));
    assert_eq!(
        t.dialer.participant_updates()[1..],
        [(conference(), call(1), ParticipantUpdate::Resume), (conference(), placed(0), ParticipantUpdate::Remove)]
    );
    // Twilio reports agent1 gone: they are free, the customer stays with agent2.
    left(&t, &placed_sid(0)).await;
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.joined, record.state), (vec![agent("agent2")], CallerState::Answered));
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None);
    assert!(!sent_back_in_line(&t));
}

#[tokio::test]
async fn cancel_stops_a_ringing_colleague_and_takes_the_customer_back() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "consult", r#"{"to": "agent2"}"#).await;
    let canceled = act_ok(&t, "agent1", "cancel", "").await;
    assert_eq!(canceled["call"], json!({"id": sid(1), "on_hold": false, "held_since": null, "transfer": null}));
    assert_eq!(t.dialer.updated(), [(placed(1), CallUpdate::Cancel)]);
    assert_eq!(t.dialer.participant_updates()[1..], [(conference(), call(1), ParticipantUpdate::Resume)]);
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.joined, record.ringing), (vec![agent("agent1")], vec![]));
    // agent2 was not missing a call: they are free again, not away.
    let colleague = t.agent_state("agent2").await.unwrap();
    assert_eq!((colleague.availability, colleague.ringing_for), (Availability::Available, None));
    // Twilio's report of the canceled call changes nothing more.
    call_report(&t, "agent2", &placed_sid(1), "canceled").await;
    assert_eq!(t.agent_state("agent2").await.unwrap().availability, Availability::Available);
    assert_eq!(
        refused(&t, "agent1", &sid(1), "cancel", "").await,
        (409, json!({"error": "there is no consultation of yours to cancel"}))
    );
}

#[tokio::test]
async fn cancel_after_the_colleague_answered_removes_them() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "consult", "").await;
    t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await;
    act_ok(&t, "agent1", "cancel", "").await;
    assert_eq!(
        t.dialer.participant_updates()[1..],
        [(conference(), placed(1), ParticipantUpdate::Remove), (conference(), call(1), ParticipantUpdate::Resume)]
    );
    left(&t, &placed_sid(1)).await;
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.joined, record.held_since), (vec![agent("agent1")], None));
    assert_eq!(t.agent_state("agent2").await.unwrap().in_call, None);
}

#[tokio::test]
async fn an_agent_who_hangs_up_instead_of_completing_leaves_the_customer_with_the_colleague() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "consult", "").await;
    t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await;
    left(&t, &placed_sid(0)).await;
    assert_eq!(t.dialer.participant_updates()[1..], [(conference(), call(1), ParticipantUpdate::Resume)]);
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.joined, record.held_since, record.transfer), (vec![agent("agent2")], None, None));
}

#[tokio::test]
async fn an_agent_who_hangs_up_while_the_colleague_rings_makes_it_a_cold_transfer() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "consult", "").await;
    left(&t, &placed_sid(0)).await;
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!(record.transfer.as_ref().map(|transfer| transfer.kind), Some(shared::domain::TransferKind::Cold));
    assert!(!sent_back_in_line(&t), "the customer holds for agent2");
    t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await;
    joined(&t, &placed_sid(1)).await;
    assert_eq!(t.dialer.participant_updates()[1..], [(conference(), call(1), ParticipantUpdate::Resume)]);
    assert_eq!(t.caller(&sid(1)).await.unwrap().held_since, None);
}

#[tokio::test]
async fn a_colleague_who_does_not_answer_a_consultation_is_shown_and_the_agent_resumes() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "consult", "").await;
    assert_eq!(
        refused(&t, "agent1", &sid(1), "resume", "").await,
        (409, json!({"error": "complete or cancel the consultation first"}))
    );
    t.clock.advance(20);
    call_report(&t, "agent2", &placed_sid(1), "no-answer").await;
    let record = t.caller(&sid(1)).await.unwrap();
    let transfer = record.transfer.clone().unwrap();
    assert_eq!(transfer.outcome, Some((ColleagueOutcome::NoAnswer, NOW + 20)));
    assert!(!sent_back_in_line(&t), "agent1 is still with the customer");
    let current = shared::handlers::presence::handle(
        &t.app,
        event("GET", "/calls/current", &[("cookie", &t.session_cookie("agent1").await)], b""),
    )
    .await
    .unwrap();
    let current = body_json(&current);
    assert_eq!(current["call"]["transfer"]["colleague"], "no-answer");
    assert_eq!(
        current["call"]["participants"],
        json!([
            {"role": "customer", "state": "on-hold", "since": shared::domain::rfc3339(NOW)},
            {"role": "agent", "agent": "agent1", "state": "talking", "since": null},
            {"role": "agent", "agent": "agent2", "state": "no-answer", "since": shared::domain::rfc3339(NOW + 20)},
        ])
    );
    act_ok(&t, "agent1", "resume", "").await;
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.held_since, record.transfer), (None, None));
}

#[tokio::test]
async fn a_cold_transfer_answered_takes_the_customer_off_hold_with_the_colleague() {
    let t = agent1_with_caller1_and_agent2_free().await;
    let transferring = act_ok(&t, "agent1", "transfer", r#"{"to": "agent2"}"#).await;
    assert_eq!(transferring["call"]["transfer"]["kind"], "cold");
    assert_eq!(
        t.dialer.participant_updates(),
        [(conference(), call(1), hold()), (conference(), placed(0), ParticipantUpdate::Remove)]
    );
    assert_eq!(t.dialer.placed().last().unwrap(), &colleague_call(&sid(1), "agent2", "agent1", "cold"));
    left(&t, &placed_sid(0)).await;
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.joined, record.ringing.clone()), (vec![], vec![agent("agent2")]));
    assert!(!sent_back_in_line(&t), "on hold, waiting for agent2");
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None);

    assert!(t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await.contains("<Conference"));
    assert_eq!(t.dialer.participant_updates().len(), 2, "held until Twilio says agent2 is in");
    joined(&t, &placed_sid(1)).await;
    assert_eq!(t.dialer.participant_updates()[2..], [(conference(), call(1), ParticipantUpdate::Resume)]);
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.joined, record.held_since, record.transfer), (vec![agent("agent2")], None, None));
}

#[tokio::test]
async fn a_cold_transfer_nobody_answers_sends_the_customer_back_to_the_front_of_the_line() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "transfer", "").await;
    t.clock.advance(5);
    t.customer_arrives(&sid(2)).await; // waits: nobody is free
    left(&t, &placed_sid(0)).await;
    call_report(&t, "agent2", &placed_sid(1), "no-answer").await;
    assert!(sent_back_in_line(&t));
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.state, record.held_since, record.transfer), (CallerState::Waiting, None, None));
    assert_eq!(t.agent_state("agent2").await.unwrap().availability, Availability::Away, "a missed call");
    // In their place: they arrived before caller 2, so they are first.
    let line = shared::store::CallStore::waiting(t.store.as_ref(), 5, NOW + 5).await.unwrap();
    // (Caller 2 rings agent1, free again.)
    assert_eq!(line.first().map(|caller| caller.id.to_string()), Some(sid(1)));
    assert_eq!(line.first().map(|caller| caller.arrived_at_ms), Some(NOW * 1000));
}

#[tokio::test]
async fn refuses_agents_not_in_the_call_ended_calls_and_bad_input_and_changes_nothing() {
    let t = agent1_with_caller1_and_agent2_free().await;
    assert_eq!(refused(&t, "agent2", &sid(1), "hold", "").await, (403, json!({"error": "forbidden"})));
    assert_eq!(refused(&t, "agent1", &sid(9), "hold", "").await, (409, json!({"error": "this call has ended"})));
    let (status, body) = refused(&t, "agent1", "CA123", "hold", "").await;
    assert_eq!((status, &body["fields"]), (400, &json!({"call_id": "is malformed"})));
    let (status, body) = refused(&t, "agent1", &sid(1), "mute", "").await;
    assert_eq!((status, &body["fields"]), (400, &json!({"action": "is malformed"})));
    let (status, body) = refused(&t, "agent1", &sid(1), "consult", r#"{"to": "agent1"}"#).await;
    assert_eq!((status, &body["fields"]), (400, &json!({"to": "must be another agent"})));
    let (status, body) = refused(&t, "agent1", &sid(1), "transfer", r#"{"to": "no such agent!"}"#).await;
    assert_eq!((status, &body["fields"]), (400, &json!({"to": "is not an agent id"})));
    let anonymous = handle(&t.app, json_post(&format!("/calls/{}/hold", sid(1)), "")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let cookie = t.session_cookie("agent1").await;
    let signed_in = || with_header(json_post(&format!("/calls/{}/hold", sid(1)), ""), "cookie", &cookie);
    let elsewhere = handle(&t.app, with_header(signed_in(), "origin", "https://evil.example")).await.unwrap();
    let nowhere = handle(&t.app, without_header(signed_in(), "origin")).await.unwrap();
    assert_eq!((elsewhere.status().as_u16(), nowhere.status().as_u16()), (403, 403), "only this site's pages act");
    assert_eq!(t.dialer.participant_updates(), []);
    assert_eq!(t.dialer.placed().len(), 1);
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.held_since, record.transfer, record.ringing), (None, None, vec![]));

    // The call ends: its record goes, and an action on it is refused.
    let ended = conference_report(&sid(1), "conference-end", None);
    shared::handlers::conference_events::handle(&t.app, ended).await.unwrap();
    assert_eq!(refused(&t, "agent1", &sid(1), "hold", "").await.0, 409);
}

#[tokio::test]
async fn twilio_failing_answers_503_and_leaves_the_call_as_it_was() {
    let t = agent1_with_caller1_and_agent2_free().await;
    t.dialer.go_down();
    for action in ["hold", "consult", "transfer"] {
        let response = act(&t, "agent1", &sid(1), action, "").await;
        assert_eq!(response.status(), 503, "{action}");
        assert!(response.headers().contains_key("retry-after"), "{action}");
    }
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.held_since, record.transfer, record.ringing), (None, None, vec![]));
    assert_eq!(t.agent_state("agent2").await.unwrap().ringing_for, None);
}

#[tokio::test]
async fn the_store_failing_answers_503() {
    let t = TestApp::build(config_with(&[]), MemoryCallStore::new(), RecordingDialer::default());
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    t.store.go_down();
    let response = act(&t, "agent1", &sid(1), "hold", "").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_customer_held_too_long_with_nobody_left_goes_back_to_the_front_of_the_line() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "hold", "").await;
    let turn = || async {
        let params = inbound_call_params(&sid(1));
        shared::handlers::conference_wait::handle(&t.app, signed_webhook("/conference/wait?held=1", &borrowed(&params)))
            .await
            .unwrap()
    };
    // agent1's dashboard keeps their presence alive: they are there, so the hold goes on.
    t.clock.advance(HOLD_LIMIT_SECONDS);
    t.available("agent1").await;
    assert_eq!(turn().await.status(), 200);
    assert!(!sent_back_in_line(&t));
    assert_eq!(t.caller(&sid(1)).await.unwrap().state, CallerState::Answered);

    // Their dashboard went away (its presence lapsed) and Twilio's report of their leaving
    // was lost: the customer is not left on hold.
    t.clock.advance(shared::domain::PRESENCE_LEASE_SECONDS + 1);
    assert_eq!(turn().await.status(), 200);
    assert!(sent_back_in_line(&t));
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.state, record.held_since), (CallerState::Waiting, None));
    // agent1's leave was never heard: they are out of the record and free, so the next agent's
    // leaving cannot leave the customer alone behind a stale name.
    assert_eq!((record.joined, record.ringing), (vec![], vec![]));
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None);
}

#[tokio::test]
async fn a_colleague_who_cannot_be_rung_leaves_the_customer_with_the_agent_off_hold() {
    let t = agent1_with_caller1_and_agent2_free().await;
    t.dialer.stop_placing_calls();
    let response = act(&t, "agent1", &sid(1), "consult", "").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        t.dialer.participant_updates(),
        [(conference(), call(1), hold()), (conference(), call(1), ParticipantUpdate::Resume)]
    );
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.held_since, record.transfer, record.ringing), (None, None, vec![]));
    assert_eq!(t.agent_state("agent2").await.unwrap().ringing_for, None, "agent2 is free again");
}

#[tokio::test]
async fn a_cold_transfers_customer_stays_held_until_twilio_takes_them_off_hold() {
    let t = agent1_with_caller1_and_agent2_free().await;
    act_ok(&t, "agent1", "transfer", "").await;
    left(&t, &placed_sid(0)).await;
    // Twilio fails as agent2 answers: they join, and the customer is still on hold.
    t.dialer.go_down();
    assert!(t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await.contains("<Conference"));
    joined(&t, &placed_sid(1)).await;
    let record = t.caller(&sid(1)).await.unwrap();
    assert_eq!((record.joined.clone(), record.held_since), (vec![agent("agent2")], Some(NOW)));
    // agent2 takes them off hold from the dashboard once Twilio answers again.
    t.dialer.come_back();
    let resumed = act_ok(&t, "agent2", "resume", "").await;
    assert_eq!((resumed["call"]["on_hold"].as_bool(), &resumed["call"]["transfer"]), (Some(false), &json!(null)));
}

#[tokio::test]
async fn a_hold_whose_commit_reply_is_lost_is_recorded_once_and_asked_of_twilio_once() {
    let t = TestApp::build(config_with(&[]), MemoryCallStore::new(), RecordingDialer::default());
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    t.store.lose_next_commit_reply();
    assert_eq!(act_ok(&t, "agent1", "hold", "").await["call"]["on_hold"], true);
    assert_eq!(t.dialer.participant_updates(), [(conference(), call(1), hold())]);
    assert_eq!(t.caller(&sid(1)).await.unwrap().held_since, Some(NOW));
}

#[tokio::test]
async fn a_customer_the_agent_called_is_held_and_transferred_like_a_support_caller() {
    let t = TestApp::new();
    let number = "+15557654399";
    let body = format!(r#"{{"name": "Ada", "phone_number": "{number}", "description": "Call me back"}}"#);
    let filed = shared::handlers::tickets::handle(&t.app, json_post("/tickets", &body)).await.unwrap();
    assert_eq!(filed.status(), 201);
    t.available("agent1").await;
    let agent_leg = sid(9);
    let params = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("ApplicationSid", AGENT_APP_SID.to_owned()),
        ("CallSid", agent_leg.clone()),
        ("From", "client:agent1".to_owned()),
        ("phoneNumber", number.to_owned()),
    ];
    shared::handlers::call_connect::handle(&t.app, signed_webhook("/call/agent", &borrowed(&params))).await.unwrap();
    let customer = placed_sid(0);
    // Before the customer picks up there is nobody to hold.
    let (status, _) = refused(&t, "agent1", &customer, "hold", "").await;
    assert_eq!(status, 409);

    let picked_up = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("CallSid", customer.clone()),
        ("CallStatus", "in-progress".to_owned()),
    ];
    shared::handlers::call_connect::handle(&t.app, signed_webhook("/call/customer/agent1", &borrowed(&picked_up)))
        .await
        .unwrap();
    let report = conference_report(&customer, "participant-join", Some(&customer));
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
    let held = act(&t, "agent1", &customer, "hold", "").await;
    assert_eq!(held.status(), 200);
    let customer_call = CallSid::parse(&customer).unwrap();
    assert_eq!(t.dialer.participant_updates(), [(conference_sid(&customer), customer_call.clone(), hold())]);

    // A cold transfer: the colleague is rung with the hand-over on the ring, agent1 leaves.
    t.available("agent2").await;
    let transferred = act(&t, "agent1", &customer, "transfer", r#"{"to": "agent2"}"#).await;
    assert_eq!(transferred.status(), 200);
    assert_eq!(t.dialer.placed().last().unwrap(), &colleague_call(&customer, "agent2", "agent1", "cold"));
    assert_eq!(
        t.dialer.participant_updates().last().unwrap(),
        &(conference_sid(&customer), CallSid::parse(&agent_leg).unwrap(), ParticipantUpdate::Remove)
    );
}
