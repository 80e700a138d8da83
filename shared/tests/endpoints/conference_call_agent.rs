use crate::prelude::*;
use shared::domain::CallSid;
use shared::handlers::conference_call_agent::handle;
use shared::handlers::{conference_connect_agent, conference_connect_client};
use shared::store::CallStore;
use shared::store::memory::MemoryCallStore;

async fn customer_calls(t: &TestApp, call_sid: &str) {
    let params = inbound_call_params(call_sid);
    conference_connect_client::handle(&t.app, signed_webhook("/conference/connect/client", &borrowed(&params)))
        .await
        .unwrap();
}

async fn agent_answers(t: &TestApp, conference: &str, agent: &str) {
    let path = format!("/conference/{conference}/connect/{agent}");
    let response =
        conference_connect_agent::handle(&t.app, signed_webhook(&path, &[("CallSid", &sid(0xa9e47))])).await.unwrap();
    assert!(body_text(&response).contains("<Conference"));
}

/// As `agent`'s dashboard, signed in.
async fn dial_colleague(t: &TestApp, agent: &str, body: &str) -> Response<Body> {
    let cookie = t.session_cookie(agent).await;
    handle(&t.app, with_header(json_post(&format!("/conference/{agent}/call"), body), "cookie", &cookie)).await.unwrap()
}

#[tokio::test]
async fn dials_agent2_into_the_conference_agent1_is_in() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1").await;

    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 201);
    assert_eq!(content_type(&response), "application/json");
    let placed = t.dialer.placed();
    assert_eq!(placed.last().unwrap(), &agent_call(&sid(1), "agent2"));
    assert_eq!(
        body_json(&response),
        serde_json::json!({"conference_id": sid(1), "agent": "agent2", "call_sid": placed_sid(1)})
    );
    // Kept, so that the colleague's call is canceled if the conference ends while it rings.
    let stored = t.store.conference(&CallSid::parse(&sid(1)).unwrap(), NOW).await.unwrap().unwrap();
    assert_eq!(stored.agent_calls, [placed_sid(0), placed_sid(1)].map(|s| CallSid::parse(&s).unwrap()));
}

#[tokio::test]
async fn after_the_conference_ended_answers_409_and_dials_nobody() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1").await;
    // The agent's record outlives the conference, as when the end's clean-up failed half-way.
    t.store.delete_conference(&CallSid::parse(&sid(1)).unwrap()).await.unwrap();
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 409);
    assert_eq!(body_json(&response), serde_json::json!({"error": "agent1 is not in a call right now"}));
    assert_eq!(t.dialer.placed().len(), 1, "only the first agent was dialed");
}

/// A store whose conference ends between the check and the moment the colleague's call is
/// remembered: the race with a conference-end callback.
struct EndsWhileDialing(MemoryCallStore);

#[async_trait::async_trait]
impl CallStore for EndsWhileDialing {
    async fn create_conference(&self, c: &shared::domain::Conference) -> Result<bool, shared::store::StoreError> {
        self.0.create_conference(c).await
    }
    async fn conference(
        &self,
        id: &CallSid,
        now: i64,
    ) -> Result<Option<shared::domain::Conference>, shared::store::StoreError> {
        self.0.conference(id, now).await
    }
    async fn delete_conference(&self, id: &CallSid) -> Result<(), shared::store::StoreError> {
        self.0.delete_conference(id).await
    }
    async fn add_agent_call(&self, id: &CallSid, _: &CallSid, now: i64) -> Result<bool, shared::store::StoreError> {
        self.0.end_conference(id, now).await?;
        Ok(false)
    }
    async fn try_next_agent(
        &self,
        id: &CallSid,
        n: usize,
        next: &shared::domain::AgentId,
        now: i64,
    ) -> Result<bool, shared::store::StoreError> {
        self.0.try_next_agent(id, n, next, now).await
    }
    async fn abandon_conference(&self, id: &CallSid, n: usize, now: i64) -> Result<bool, shared::store::StoreError> {
        self.0.abandon_conference(id, n, now).await
    }
    async fn record_agent_joined(
        &self,
        agent: &shared::domain::AgentId,
        call: &CallSid,
        conference: &CallSid,
        now: i64,
    ) -> Result<bool, shared::store::StoreError> {
        self.0.record_agent_joined(agent, call, conference, now).await
    }
    async fn conference_of_agent(
        &self,
        agent: &shared::domain::AgentId,
        now: i64,
    ) -> Result<Option<CallSid>, shared::store::StoreError> {
        self.0.conference_of_agent(agent, now).await
    }
    async fn agent_left(
        &self,
        conference: &CallSid,
        call: &CallSid,
    ) -> Result<Option<shared::domain::AgentId>, shared::store::StoreError> {
        self.0.agent_left(conference, call).await
    }
    async fn end_conference(
        &self,
        id: &CallSid,
        now: i64,
    ) -> Result<Option<shared::domain::Conference>, shared::store::StoreError> {
        self.0.end_conference(id, now).await
    }
}

#[tokio::test]
async fn a_colleague_dialed_as_the_conference_ends_is_canceled() {
    let t = TestApp::new();
    let app = shared::App::new(
        config_with(&[]),
        shared::app::Ports { calls: std::sync::Arc::new(EndsWhileDialing(MemoryCallStore::new())), ..t.ports() },
    );
    let conference = shared::domain::Conference::new(
        CallSid::parse(&sid(1)).unwrap(),
        shared::domain::AgentId::parse("agent1").unwrap(),
        NOW,
    );
    app.calls.create_conference(&conference).await.unwrap();
    let agent1 = shared::domain::AgentId::parse("agent1").unwrap();
    app.calls.record_agent_joined(&agent1, &CallSid::parse(&sid(0xa9e47)).unwrap(), &conference.id, NOW).await.unwrap();

    let cookie = t.session_cookie("agent1").await;
    let request = with_header(json_post("/conference/agent1/call", ""), "cookie", &cookie);
    let response = handle(&app, request).await.unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent2")]);
    assert_eq!(
        t.dialer.updated(),
        [(CallSid::parse(&placed_sid(0)).unwrap(), shared::twilio::CallUpdate::Cancel)],
        "agent2 must not answer into an empty conference"
    );
}

#[tokio::test]
async fn with_two_callers_agent2_lands_in_the_right_call() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    customer_calls(&t, &sid(2)).await;
    // Agent 1 takes the second caller; the seeds' one-row-per-agent design sent agent 2
    // to whichever caller dialed agent 1 last.
    agent_answers(&t, &sid(2), "agent1").await;
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 201);
    assert_eq!(t.dialer.placed().last().unwrap().url, format!("{BASE}/conference/{}/connect/agent2", sid(2)));
}

#[tokio::test]
async fn a_named_colleague_can_be_chosen() {
    let t = TestApp::build(
        config_with(&[("AGENT_IDS", "agent1,agent2,agent3")]),
        MemoryCallStore::new(),
        Default::default(),
    );
    customer_calls(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1").await;
    let cookie = t.session_cookie("agent1").await;
    let request = with_header(form_post("/conference/agent1/call", &[("to", "agent3")]), "cookie", &cookie);
    let response = handle(&t.app, request).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(t.dialer.placed().last().unwrap().to, "client:agent3");
}

#[tokio::test]
async fn without_a_live_conference_answers_409() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await; // agent 1 is dialed but has not answered
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 409);
    assert_eq!(body_json(&response), serde_json::json!({"error": "agent1 is not in a call right now"}));
    assert_eq!(t.dialer.placed().len(), 1, "only the first agent was dialed");

    agent_answers(&t, &sid(1), "agent1").await;
    t.clock.advance(shared::domain::CALL_RECORD_TTL_SECONDS);
    assert_eq!(dial_colleague(&t, "agent1", "").await.status(), 409);
}

#[tokio::test]
async fn refuses_bad_input() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1").await;

    let response = dial_colleague(&t, "mallory", "").await;
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (404, serde_json::json!({"error": "unknown agent \"mallory\""}))
    );

    let response = dial_colleague(&t, "agent1", r#"{"to": "agent1"}"#).await;
    assert_eq!(response.status(), 400);
    assert_eq!(body_json(&response)["fields"], serde_json::json!({"to": "must be another agent"}));

    let response = dial_colleague(&t, "agent1", r#"{"to": "ghost"}"#).await;
    assert_eq!(body_json(&response)["fields"], serde_json::json!({"to": "is not an agent on the roster"}));

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

    assert_eq!(t.dialer.placed().len(), 1, "nothing dialed after the first agent");
}

#[tokio::test]
async fn a_solo_roster_has_no_one_to_transfer_to() {
    let t = TestApp::build(config_with(&[("AGENT_IDS", "agent1")]), MemoryCallStore::new(), Default::default());
    customer_calls(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1").await;
    assert_eq!(dial_colleague(&t, "agent1", "").await.status(), 409);
}

#[tokio::test]
async fn upstream_failures_are_503_with_a_retry_hint() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").unwrap(), "2");
    assert_eq!(body_json(&response), serde_json::json!({"error": "temporarily unavailable, please retry"}));

    let t = TestApp::with_dialer(RecordingDialer::failing());
    t.store
        .create_conference(&shared::domain::Conference::new(
            CallSid::parse(&sid(1)).unwrap(),
            shared::domain::AgentId::parse("agent1").unwrap(),
            NOW,
        ))
        .await
        .unwrap();
    agent_answers(&t, &sid(1), "agent1").await;
    let response = dial_colleague(&t, "agent1", "").await;
    assert_eq!(response.status(), 503);
    assert!(!body_text(&response).contains("injected"), "internal details stay in the log");
}

#[tokio::test]
async fn only_the_signed_in_agent_named_in_the_path_may_transfer() {
    let t = TestApp::new();
    customer_calls(&t, &sid(1)).await;
    agent_answers(&t, &sid(1), "agent1").await;
    let before = t.store.conference(&CallSid::parse(&sid(1)).unwrap(), NOW).await.unwrap();
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
    t.agents.end_sessions(&shared::domain::AgentId::parse("agent1").unwrap()).await.unwrap();
    let response = handle(&t.app, with_header(json_post(path, ""), "cookie", &ended)).await.unwrap();
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (401, serde_json::json!({"error": "sign in first"})),
        "a session ended by signing out"
    );
    assert_eq!(t.dialer.placed().len(), 1, "nobody was dialed but the first agent");
    assert_eq!(t.store.conference(&CallSid::parse(&sid(1)).unwrap(), NOW).await.unwrap(), before, "nothing changed");
}
