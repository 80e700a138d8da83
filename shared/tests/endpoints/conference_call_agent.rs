use crate::prelude::*;
use shared::domain::{Availability, Presence};
use shared::handlers::conference_call_agent::handle;
use shared::store::memory::MemoryCallStore;

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

/// agent1 takes caller 1 (the recording dialer's call `placed_sid(0)`).
async fn agent1_in_a_call(t: &TestApp) {
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
}

/// As `agent`'s dashboard, signed in.
async fn dial_colleague(t: &TestApp, agent: &str, body: &str) -> Response<Body> {
    let cookie = t.session_cookie(agent).await;
    handle(&t.app, with_header(json_post(&format!("/conference/{agent}/call"), body), "cookie", &cookie)).await.unwrap()
}

#[tokio::test]
async fn dials_the_available_colleague_idle_longest_into_the_call() {
    let t = TestApp::new();
    agent1_in_a_call(&t).await;
    t.available("agent3").await;
    t.clock.advance(1);
    t.available("agent2").await;

    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 201);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(t.dialer.placed().last().unwrap(), &colleague_call(&sid(1), "agent3", "agent1", "warm"));
    assert_eq!(
        body_json(&response),
        serde_json::json!({"conference_id": sid(1), "agent": "agent3", "call_sid": placed_sid(1)})
    );
    // Kept, so that the colleague's call is canceled if the call ends while it rings.
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!(caller.ringing, [agent("agent3")]);
    assert!(caller.agent_calls.contains(&(CallSid::parse(&placed_sid(1)).unwrap(), agent("agent3"))));
    assert_eq!(t.agent_state("agent3").await.unwrap().presence(NOW).0, Presence::Busy, "rung for one call only");

    // The colleague answers: both agents are in the call.
    t.agent_answers(&sid(1), "agent3", &placed_sid(1)).await;
    assert_eq!(t.caller(&sid(1)).await.unwrap().joined, [agent("agent1"), agent("agent3")]);
}

#[tokio::test]
async fn a_named_colleague_must_be_available() {
    let t = TestApp::new();
    agent1_in_a_call(&t).await;
    t.available("agent2").await;
    t.available("agent3").await;
    let response = dial_colleague(&t, "agent1", r#"{"to": "agent3"}"#).await;
    assert_eq!(response.status(), 201);
    assert!(t.dialer.placed().last().unwrap().to.starts_with("client:agent3?"));

    let mut away = t.agent_state("agent2").await.unwrap();
    away.say(Availability::Away, NOW * 1000);
    assert!(
        shared::store::CallStore::commit(t.store.as_ref(), &[shared::store::Write::Agent(away)], NOW).await.unwrap()
    );
    for to in ["agent2", "agent3", "ghost"] {
        let response = dial_colleague(&t, "agent1", &format!(r#"{{"to": "{to}"}}"#)).await;
        assert_eq!(
            (response.status().as_u16(), body_json(&response)),
            (409, serde_json::json!({"error": format!("{to} is not available")})),
            "{to}"
        );
    }
    assert_eq!(t.dialer.placed().len(), 2);
}

#[tokio::test]
async fn a_colleague_who_does_not_answer_is_set_away_and_the_customer_keeps_their_agent() {
    let t = TestApp::new();
    agent1_in_a_call(&t).await;
    t.available("agent2").await;
    assert_eq!(dial_colleague(&t, "agent1", "").await.status(), 201);
    let report = agent_call_report(&sid(1), "agent2", &placed_sid(1), "no-answer");
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
    assert_eq!(t.dialer.updated(), [], "agent1 is still with the customer");
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!((caller.joined, caller.ringing), (vec![agent("agent1")], vec![]));
    assert_eq!(t.agent_state("agent2").await.unwrap().availability, Availability::Away);
}

#[tokio::test]
async fn outside_a_call_or_with_nobody_available_answers_409_and_dials_nobody() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await; // agent1 rings but has not answered
    t.available("agent2").await;
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (409, serde_json::json!({"error": "agent1 is not in a call right now"}))
    );
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    t.clock.advance(shared::domain::CALL_RECORD_TTL_SECONDS);
    assert_eq!(dial_colleague(&t, "agent1", "").await.status(), 409, "the call's record expired");

    let t = TestApp::new();
    agent1_in_a_call(&t).await;
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (409, serde_json::json!({"error": "no colleague is available"}))
    );
    assert_eq!(t.dialer.placed().len(), 1, "only agent1 was rung");
}

#[tokio::test]
async fn refuses_bad_input() {
    let t = TestApp::new();
    agent1_in_a_call(&t).await;
    t.available("agent2").await;
    let response = dial_colleague(&t, "agent1", r#"{"to": "agent1"}"#).await;
    assert_eq!(response.status(), 400);
    assert_eq!(body_json(&response)["fields"], serde_json::json!({"to": "must be another agent"}));
    let response = dial_colleague(&t, "agent1", r#"{"to": "not an id"}"#).await;
    assert_eq!(body_json(&response)["fields"], serde_json::json!({"to": "is not an agent id"}));
    let response = dial_colleague(&t, "agent1", r#"{"to": 7}"#).await;
    assert_eq!(
        body_json(&response),
        serde_json::json!({"error": "invalid input", "fields": {"to": "must be a string"}})
    );
    let response = dial_colleague(&t, "agent1", "{not json").await;
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (400, serde_json::json!({"error": "the body is not valid JSON"}))
    );
    let cookie = t.session_cookie("agent1").await;
    let response =
        handle(&t.app, with_header(json_post("/conference/not%20an%20id/call", ""), "cookie", &cookie)).await.unwrap();
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (400, serde_json::json!({"error": "invalid input", "fields": {"agent_id": "is malformed"}}))
    );
    assert_eq!(t.dialer.placed().len(), 1, "nothing dialed after the first agent");
}

#[tokio::test]
async fn upstream_failures_are_503_with_a_retry_hint() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").unwrap(), "2");
    assert_eq!(body_json(&response), serde_json::json!({"error": "temporarily unavailable, please retry"}));
}

#[tokio::test]
async fn only_the_signed_in_agent_named_in_the_path_may_transfer() {
    let t = TestApp::new();
    agent1_in_a_call(&t).await;
    t.available("agent3").await;
    let before = (t.caller(&sid(1)).await, t.agent_state("agent3").await);
    let path = "/conference/agent1/call";
    let agent2 = t.session_cookie("agent2").await;
    let agent1 = t.session_cookie("agent1").await;
    let ended = t.session_cookie("agent1").await;
    let cases = [
        ("no session", json_post(path, ""), 401),
        ("another agent", with_header(json_post(path, ""), "cookie", &agent2), 403),
        ("a forged session", with_header(json_post(path, ""), "cookie", &format!("{SESSION_COOKIE}=x.y.z")), 401),
        (
            "another site",
            with_header(with_header(json_post(path, ""), "cookie", &agent1), "origin", "https://evil.example"),
            403,
        ),
        ("no Origin", without_header(with_header(json_post(path, ""), "cookie", &agent1), "origin"), 403),
    ];
    for (case, request, status) in cases {
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!(response.status(), status, "{case}");
    }
    t.agents.end_sessions(&agent("agent1")).await.unwrap();
    let response = handle(&t.app, with_header(json_post(path, ""), "cookie", &ended)).await.unwrap();
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (401, serde_json::json!({"error": "sign in first"})),
        "a session ended by signing out"
    );
    assert_eq!(t.dialer.placed().len(), 1, "nobody was dialed but the first agent");
    assert_eq!((t.caller(&sid(1)).await, t.agent_state("agent3").await), before, "nothing changed");
}

#[tokio::test]
async fn a_disabled_colleague_is_never_dialed_in() {
    let t = TestApp::new();
    agent1_in_a_call(&t).await;
    t.available("agent2").await;
    t.agents.set_disabled(&agent("agent2"), Some(NOW)).await.unwrap();
    let placed = t.dialer.placed().len();

    // Named, or the one idle longest: either way not rung.
    for body in [r#"{"to": "agent2"}"#, ""] {
        let response = dial_colleague(&t, "agent1", body).await;
        assert_eq!(response.status(), 409, "{body}");
    }
    assert_eq!(t.dialer.placed().len(), placed, "nobody rung");
    assert_eq!(t.caller(&sid(1)).await.unwrap().ringing, Vec::<AgentId>::new());
}
