//! What agents do with tickets: close and reopen them, note them, list them open first, find
//! them by number or name; and a customer filing again while their ticket is open.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::prelude::*;
use shared::domain::{MAX_NOTES, Note, NoteAuthor, NoteId, StatusChange, Ticket, TicketRecord, TicketStatus};
use shared::handlers::tickets::handle;
use shared::store::memory::{MemoryCallStore, MemoryTicketStore};
use shared::store::{NoteAppended, StoreError, TicketPage, TicketStore};

const FILED_AT: &str = "2027-01-15T08:00:00Z";

async fn file(t: &TestApp, name: &str, number: &str, description: &str) -> Value {
    let body = json!({"name": name, "phone_number": number, "description": description}).to_string();
    let response = handle(&t.app, json_post("/tickets", &body)).await.unwrap();
    assert_eq!(response.status(), 201, "{}", body_text(&response));
    body_json(&response)
}

/// A JSON post from the dashboard, as `agent`.
async fn agent_post(t: &TestApp, agent: &str, path: &str, body: &Value) -> Response<Body> {
    let cookie = t.session_cookie(agent).await;
    handle(&t.app, with_header(json_post(path, &body.to_string()), "cookie", &cookie)).await.unwrap()
}

async fn agent_get(t: &TestApp, query: &str) -> Response<Body> {
    let cookie = t.session_cookie("agent1").await;
    handle(&t.app, event("GET", &format!("/tickets{query}"), &[("cookie", &cookie)], b"")).await.unwrap()
}

async fn stored(t: &TestApp, id: &str) -> TicketRecord {
    t.tickets.ticket_record(&TicketId::parse(id).unwrap()).await.unwrap().unwrap()
}

fn id_of(ticket: &Value) -> String {
    ticket["id"].as_str().unwrap().to_owned()
}

fn names(page: &Value) -> Vec<String> {
    page["tickets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

// --- status ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_agent_closes_and_reopens_a_ticket_and_each_change_is_kept() {
    let t = TestApp::new();
    let id = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    let path = format!("/tickets/{id}/status");

    let response = agent_post(&t, "agent1", &path, &json!({"status": "closed"})).await;
    assert_eq!(response.status(), 200);
    let body = body_json(&response);
    assert_eq!(
        (&body["status"], &body["closed_by"], &body["closed_at"]),
        (&json!("closed"), &json!("agent1"), &json!(FILED_AT))
    );
    assert_eq!(body["status_history"], json!([{"status": "closed", "by": "agent1", "at": FILED_AT}]));
    let record = stored(&t, &id).await;
    assert_eq!(record.status, TicketStatus::Closed);
    assert_eq!(
        record.history,
        [StatusChange { status: TicketStatus::Closed, by: agent("agent1"), at: FILED_AT.into() }]
    );

    // Closing a closed ticket: 200, and nothing changes (still closed by agent1).
    t.clock.advance(60);
    let again = agent_post(&t, "agent2", &path, &json!({"status": "closed"})).await;
    assert_eq!((again.status().as_u16(), body_json(&again)), (200, body.clone()));
    assert_eq!(stored(&t, &id).await, record);

    let reopened = agent_post(&t, "agent2", &path, &json!({"status": "open"})).await;
    assert_eq!(reopened.status(), 200);
    let reopened = body_json(&reopened);
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened.get("closed_by"), None);
    assert_eq!(
        reopened["status_history"],
        json!([
            {"status": "closed", "by": "agent1", "at": FILED_AT},
            {"status": "open", "by": "agent2", "at": "2027-01-15T08:01:00Z"},
        ])
    );
    let record = stored(&t, &id).await;
    assert_eq!((record.status, record.history.len()), (TicketStatus::Open, 2));
}

#[tokio::test]
async fn a_status_change_is_refused_with_the_reason_and_nothing_changes() {
    let t = TestApp::new();
    let id = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    let path = format!("/tickets/{id}/status");
    let before = stored(&t, &id).await;

    let no_session = handle(&t.app, json_post(&path, r#"{"status": "closed"}"#)).await.unwrap();
    assert_eq!((no_session.status().as_u16(), body_json(&no_session)), (401, json!({"error": "sign in first"})));

    let cookie = t.session_cookie("agent1").await;
    let foreign = with_header(
        with_header(json_post(&path, r#"{"status": "closed"}"#), "cookie", &cookie),
        "origin",
        "https://evil.example",
    );
    assert_eq!(handle(&t.app, foreign).await.unwrap().status(), 403);
    let no_origin =
        without_header(with_header(json_post(&path, r#"{"status": "closed"}"#), "cookie", &cookie), "origin");
    assert_eq!(handle(&t.app, no_origin).await.unwrap().status(), 403, "writes need the page's own origin");

    for (body, problem) in [
        (json!({}), "is required"),
        (json!({"status": "done"}), "must be \"open\" or \"closed\""),
        (json!({"status": "CLOSED"}), "must be \"open\" or \"closed\""),
    ] {
        let response = agent_post(&t, "agent1", &path, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(body_json(&response)["fields"], json!({"status": problem}), "{body}");
    }
    let unknown =
        agent_post(&t, "agent1", "/tickets/01J00000000000000000000099/status", &json!({"status": "closed"})).await;
    assert_eq!((unknown.status().as_u16(), body_json(&unknown)), (404, json!({"error": "no such ticket"})));
    let malformed = agent_post(&t, "agent1", "/tickets/not-a-ticket/status", &json!({"status": "closed"})).await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(body_json(&malformed)["fields"], json!({"ticket_id": "is malformed"}));
    let get = handle(&t.app, event("GET", &path, &[("cookie", &cookie)], b"")).await.unwrap();
    assert_eq!(get.status(), 405);

    assert_eq!(stored(&t, &id).await, before, "nothing changed");
}

#[tokio::test]
async fn a_store_fault_is_a_503_to_retry() {
    let t = TestApp::build_with_tickets(
        config_with(&[]),
        MemoryCallStore::new(),
        MemoryTicketStore::failing(),
        RecordingDialer::default(),
    );
    let id = "01J00000000000000000000001";
    for (path, body) in [
        (format!("/tickets/{id}/status"), json!({"status": "closed"})),
        (format!("/tickets/{id}/notes"), json!({"note_id": "n1", "text": "Called back."})),
    ] {
        let response = agent_post(&t, "agent1", &path, &body).await;
        assert_eq!(response.status(), 503, "{path}");
        assert_eq!(response.headers().get("retry-after").unwrap(), "2");
    }
    for query in ["?phone=%2B15551234567", "?name=ada", "?status=closed"] {
        let response = agent_get(&t, query).await;
        assert_eq!(response.status(), 503, "{query}");
        assert_eq!(response.headers().get("retry-after").unwrap(), "2");
    }
}

/// A ticket store where another agent's change lands between each read and write: `rival` is
/// what they do; `None`, a write always refused as if the ticket had just changed.
struct Racing {
    inner: MemoryTicketStore,
    rival: Option<StatusChange>,
}

#[async_trait]
impl TicketStore for Racing {
    async fn create_ticket(&self, ticket: &Ticket) -> Result<bool, StoreError> {
        self.inner.create_ticket(ticket).await
    }
    async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.inner.ticket(id).await
    }
    async fn list_tickets(&self, s: TicketStatus, l: u32, a: Option<&TicketId>) -> Result<TicketPage, StoreError> {
        self.inner.list_tickets(s, l, a).await
    }
    async fn has_ticket_for(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        self.inner.has_ticket_for(number).await
    }
    async fn ticket_record(&self, id: &TicketId) -> Result<Option<TicketRecord>, StoreError> {
        self.inner.ticket_record(id).await
    }
    async fn change_status(&self, read: &TicketRecord, next: &TicketRecord) -> Result<bool, StoreError> {
        let Some(rival) = &self.rival else { return Ok(false) };
        let now = self.inner.ticket_record(&read.ticket.id).await?.unwrap();
        if let Some(theirs) = now.after(rival.clone()) {
            assert!(self.inner.change_status(&now, &theirs).await?);
        }
        self.inner.change_status(read, next).await
    }
    async fn append_note(&self, id: &TicketId, note: &Note) -> Result<NoteAppended, StoreError> {
        self.inner.append_note(id, note).await
    }
    async fn tickets_for_number(
        &self,
        n: &PhoneNumber,
        l: u32,
        a: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError> {
        self.inner.tickets_for_number(n, l, a).await
    }
    async fn tickets_named(&self, p: &str, l: u32, a: Option<&TicketId>) -> Result<TicketPage, StoreError> {
        self.inner.tickets_named(p, l, a).await
    }
}

fn racing(rival: Option<StatusChange>) -> (TestApp, Arc<Racing>) {
    let mut t = TestApp::new();
    let store = Arc::new(Racing { inner: MemoryTicketStore::new(), rival });
    let mut ports = t.ports();
    ports.tickets = store.clone();
    t.app = shared::App::new(t.app.config.clone(), ports);
    (t, store)
}

async fn record_in(store: &Racing, id: &str) -> TicketRecord {
    store.inner.ticket_record(&TicketId::parse(id).unwrap()).await.unwrap().unwrap()
}

#[tokio::test]
async fn closing_a_ticket_another_agent_closes_at_that_moment_is_no_error() {
    let rival = StatusChange { status: TicketStatus::Closed, by: agent("agent2"), at: FILED_AT.into() };
    let (t, store) = racing(Some(rival));
    let id = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    let response = agent_post(&t, "agent1", &format!("/tickets/{id}/status"), &json!({"status": "closed"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["closed_by"], "agent2", "their close stands; ours had nothing left to do");
    assert_eq!(record_in(&store, &id).await.history.len(), 1);
}

#[tokio::test]
async fn a_status_change_that_loses_every_race_is_a_409() {
    let (t, store) = racing(None);
    let id = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    let before = record_in(&store, &id).await;
    let response = agent_post(&t, "agent1", &format!("/tickets/{id}/status"), &json!({"status": "closed"})).await;
    assert_eq!(response.status(), 409);
    assert_eq!(body_json(&response), json!({"error": "the ticket changed at the same time; reload it and try again"}));
    assert_eq!(record_in(&store, &id).await, before, "nothing written");
}

// --- notes ----------------------------------------------------------------------------------

#[tokio::test]
async fn an_agent_appends_notes_once_each_however_often_the_request_is_sent() {
    let t = TestApp::new();
    let id = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    let path = format!("/tickets/{id}/notes");
    let first = json!({"note_id": "n-1", "text": "Called back: no answer.\nTry <b>tomorrow</b>."});
    let response = agent_post(&t, "agent1", &path, &first).await;
    assert_eq!(response.status(), 201);
    let expected_note = json!({"id": "n-1", "author": "agent", "by": "agent1", "at": FILED_AT, "text": "Called back: no answer.\nTry <b>tomorrow</b>."});
    assert_eq!(body_json(&response)["notes"], json!([expected_note]));

    // The same request again (a retry): 200, still one note.
    let retry = agent_post(&t, "agent1", &path, &first).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(body_json(&retry)["notes"], json!([expected_note]));

    t.clock.advance(5);
    let second = agent_post(&t, "agent2", &path, &json!({"note_id": "n-2", "text": "Sent a new mallet."})).await;
    assert_eq!(second.status(), 201);
    let record = stored(&t, &id).await;
    assert_eq!(
        record.notes,
        [
            Note {
                id: NoteId::parse("n-1").unwrap(),
                author: NoteAuthor::Agent(agent("agent1")),
                at: FILED_AT.into(),
                text: "Called back: no answer.\nTry <b>tomorrow</b>.".into(),
            },
            Note {
                id: NoteId::parse("n-2").unwrap(),
                author: NoteAuthor::Agent(agent("agent2")),
                at: "2027-01-15T08:00:05Z".into(),
                text: "Sent a new mallet.".into(),
            },
        ]
    );
    // The list shows them too.
    let listed = body_json(&agent_get(&t, "").await);
    assert_eq!(listed["tickets"][0]["notes"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_note_is_refused_with_the_reason_and_nothing_is_appended() {
    let t = TestApp::new();
    let id = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    let path = format!("/tickets/{id}/notes");
    let long = "x".repeat(1001);
    for (body, fields) in [
        (json!({"note_id": "n1"}), json!({"text": "is required"})),
        (json!({"note_id": "n1", "text": "   "}), json!({"text": "is required"})),
        (json!({"note_id": "n1", "text": long}), json!({"text": "must be at most 1000 characters"})),
        (json!({"note_id": "n1", "text": "bell\u{7}"}), json!({"text": "must not contain control characters"})),
        (json!({"text": "ok"}), json!({"note_id": "is required (any id of yours, the same when you retry)"})),
        (json!({"note_id": "a b", "text": "ok"}), json!({"note_id": "must be 1 to 64 letters, digits, '-' or '_'"})),
        (json!({"note_id": "n1", "text": 5}), json!({"text": "must be a string"})),
    ] {
        let response = agent_post(&t, "agent1", &path, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(body_json(&response)["fields"], fields, "{body}");
    }
    let no_session = handle(&t.app, json_post(&path, r#"{"note_id": "n1", "text": "hi"}"#)).await.unwrap();
    assert_eq!(no_session.status(), 401);
    let cookie = t.session_cookie("agent1").await;
    let foreign = with_header(
        with_header(json_post(&path, r#"{"note_id": "n1", "text": "hi"}"#), "cookie", &cookie),
        "origin",
        "https://evil.example",
    );
    assert_eq!(handle(&t.app, foreign).await.unwrap().status(), 403);
    let unknown =
        agent_post(&t, "agent1", "/tickets/01J00000000000000000000099/notes", &json!({"note_id": "n1", "text": "hi"}))
            .await;
    assert_eq!((unknown.status().as_u16(), body_json(&unknown)), (404, json!({"error": "no such ticket"})));
    assert!(stored(&t, &id).await.notes.is_empty());
}

#[tokio::test]
async fn a_full_ticket_takes_no_more_notes() {
    let t = TestApp::new();
    let id = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    let path = format!("/tickets/{id}/notes");
    for n in 0..MAX_NOTES {
        let response = agent_post(&t, "agent1", &path, &json!({"note_id": format!("n{n}"), "text": "again"})).await;
        assert_eq!(response.status(), 201);
    }
    let response = agent_post(&t, "agent1", &path, &json!({"note_id": "one-more", "text": "again"})).await;
    assert_eq!(
        (response.status().as_u16(), body_json(&response)),
        (409, json!({"error": "this ticket holds 40 notes, the most it can"}))
    );
    assert_eq!(stored(&t, &id).await.notes.len(), MAX_NOTES);
    // A retry of a note it holds is still answered as stored.
    assert_eq!(agent_post(&t, "agent1", &path, &json!({"note_id": "n0", "text": "again"})).await.status(), 200);
}

// --- lists and searches ---------------------------------------------------------------------

#[tokio::test]
async fn lists_open_tickets_first_then_closed_each_newest_first() {
    let t = TestApp::new();
    let mut ids = Vec::new();
    for (name, number) in [("first", "+15550000001"), ("second", "+15550000002"), ("third", "+15550000003")] {
        ids.push(id_of(&file(&t, name, number, "d").await));
        t.clock.advance(1);
    }
    let closed = agent_post(&t, "agent1", &format!("/tickets/{}/status", ids[2]), &json!({"status": "closed"})).await;
    assert_eq!(closed.status(), 200);

    let all = body_json(&agent_get(&t, "").await);
    assert_eq!(names(&all), ["second", "first", "third"]);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(names(&body_json(&agent_get(&t, "?status=open").await)), ["second", "first"]);
    assert_eq!(names(&body_json(&agent_get(&t, "?status=closed").await)), ["third"]);

    // One at a time, across the turn from open to closed.
    let mut seen = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let page = body_json(&agent_get(&t, &query).await);
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["second", "first", "third"]);
    // A cursor of the closed part does not page the open list.
    let closed_part = body_json(&agent_get(&t, "?limit=2").await)["next_cursor"].as_str().unwrap().to_owned();
    let mixed = agent_get(&t, &format!("?status=open&cursor={closed_part}")).await;
    assert_eq!(body_json(&mixed)["fields"], json!({"cursor": "is not a cursor from a previous page"}));

    let bad = agent_get(&t, "?status=pending").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(body_json(&bad)["fields"], json!({"status": "must be \"open\", \"closed\" or \"all\""}));
}

#[tokio::test]
async fn finds_a_numbers_tickets_as_typed_and_nobody_elses() {
    let t = TestApp::new();
    let first = id_of(&file(&t, "Ada", "+15551234567", "My mallet broke.").await);
    agent_post(&t, "agent1", &format!("/tickets/{first}/status"), &json!({"status": "closed"})).await;
    t.clock.advance(1);
    let second = id_of(&file(&t, "Ada", "+15551234567", "The ball is flat.").await);
    file(&t, "Grace", "+15557654321", "Other customer.").await;

    for typed in ["%2B15551234567", "%2B1%20(555)%20123-4567", "001.555.123.4567", "%2B1-555-123-4567"] {
        let page = body_json(&agent_get(&t, &format!("?phone={typed}")).await);
        let ids: Vec<String> = page["tickets"].as_array().unwrap().iter().map(id_of).collect();
        assert_eq!(ids, [second.clone(), first.clone()], "{typed}: open and closed, newest first");
    }
    // Paged.
    let page = body_json(&agent_get(&t, "?phone=%2B15551234567&limit=1").await);
    assert_eq!(page["tickets"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = body_json(&agent_get(&t, &format!("?phone=%2B15551234567&limit=1&cursor={cursor}")).await);
    assert_eq!(rest["tickets"].as_array().unwrap().len(), 1);
    assert_ne!(rest["tickets"][0]["id"], page["tickets"][0]["id"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    // A cursor belongs to its search.
    let wrong = agent_get(&t, &format!("?name=ada&cursor={cursor}")).await;
    assert_eq!(body_json(&wrong)["fields"], json!({"cursor": "is not a cursor from a previous page"}));

    assert!(body_json(&agent_get(&t, "?phone=%2B15559999999").await)["tickets"].as_array().unwrap().is_empty());
    for bad in ["555-1234", "%2B0123", "call+me"] {
        let response = agent_get(&t, &format!("?phone={bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(
            body_json(&response)["fields"],
            json!({"phone": "must be a phone number with its country code, such as +1 555 123 4567"})
        );
    }
}

#[tokio::test]
async fn finds_tickets_by_a_name_prefix_in_any_case() {
    let t = TestApp::new();
    for (name, number) in
        [("Ada Lovelace", "+15550000001"), ("ADAM Smith", "+15550000002"), ("Grace Hopper", "+15550000003")]
    {
        file(&t, name, number, "d").await;
    }
    assert_eq!(names(&body_json(&agent_get(&t, "?name=ada").await)), ["Ada Lovelace", "ADAM Smith"]);
    assert_eq!(names(&body_json(&agent_get(&t, "?name=%20aDaM%20").await)), ["ADAM Smith"]);
    assert_eq!(names(&body_json(&agent_get(&t, "?name=grace%20h").await)), ["Grace Hopper"]);
    assert!(names(&body_json(&agent_get(&t, "?name=bob").await)).is_empty());
    let both = agent_get(&t, "?name=ada&phone=%2B15550000001").await;
    assert_eq!(body_json(&both)["fields"], json!({"name": "search by phone or by name, not both"}));
    let control = agent_get(&t, "?name=a%07").await;
    assert_eq!(body_json(&control)["fields"], json!({"name": "must not contain control characters"}));
    let page = body_json(&agent_get(&t, "?name=ad&limit=1").await);
    assert_eq!(names(&page), ["Ada Lovelace"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_eq!(names(&body_json(&agent_get(&t, &format!("?name=ad&limit=1&cursor={cursor}")).await)), ["ADAM Smith"]);
    let anonymous = handle(&t.app, event("GET", "/tickets?name=ada", &[], b"")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

// --- filing again ---------------------------------------------------------------------------

#[tokio::test]
async fn filing_again_while_a_ticket_is_open_adds_to_it() {
    let t = TestApp::new();
    let first = file(&t, "Ada", "+15551234567", "My mallet broke.").await;
    let id = id_of(&first);
    t.clock.advance(60);
    let again = file(&t, "Ada L.", "+15551234567", "Still broken, please call.").await;
    assert_eq!(again["added_to_open_ticket"], true);
    assert_eq!(again["id"], json!(id), "the open ticket");
    // Only what this request sent: not what the ticket held before.
    assert_eq!(again["description"], "Still broken, please call.");
    assert!(!body_text_of(&again).contains("My mallet broke."));
    assert_eq!(t.tickets.len(), 1, "no second ticket");
    let record = stored(&t, &id).await;
    assert_eq!(
        record.notes,
        [Note {
            id: NoteId::for_refiling("Still broken, please call."),
            author: NoteAuthor::Customer,
            at: "2027-01-15T08:01:00Z".into(),
            text: "Still broken, please call.".into(),
        }]
    );
    // The same filing sent again (a retry), or the first one again: nothing more.
    file(&t, "Ada L.", "+15551234567", "Still broken, please call.").await;
    let retried_first = file(&t, "Ada", "+15551234567", "My mallet broke.").await;
    assert_eq!(retried_first["added_to_open_ticket"], true);
    assert_eq!(stored(&t, &id).await.notes.len(), 1);
    let listed = body_json(&agent_get(&t, "").await);
    assert_eq!(
        listed["tickets"][0]["notes"][0],
        json!({"id": record.notes[0].id.as_str(), "author": "customer", "by": "customer", "at": "2027-01-15T08:01:00Z", "text": "Still broken, please call."})
    );

    // Another number: a ticket of its own.
    let other = file(&t, "Grace", "+15557654321", "Hello").await;
    assert_eq!(other.get("added_to_open_ticket"), None);
    assert_eq!(t.tickets.len(), 2);

    // Once closed, filing again opens a new ticket.
    agent_post(&t, "agent1", &format!("/tickets/{id}/status"), &json!({"status": "closed"})).await;
    let new = file(&t, "Ada", "+15551234567", "Broken again.").await;
    assert_eq!(new.get("added_to_open_ticket"), None);
    assert_ne!(new["id"], json!(id));
    assert_eq!(t.tickets.len(), 3);
}

#[tokio::test]
async fn a_full_open_ticket_leaves_the_customer_a_new_one() {
    let t = TestApp::new();
    let first = file(&t, "Ada", "+15551234567", "My mallet broke.").await;
    let id = TicketId::parse(&id_of(&first)).unwrap();
    for n in 0..MAX_NOTES {
        let note = Note {
            id: NoteId::parse(&format!("n{n}")).unwrap(),
            author: NoteAuthor::Agent(agent("agent1")),
            at: FILED_AT.into(),
            text: "x".into(),
        };
        assert_eq!(t.tickets.append_note(&id, &note).await.unwrap(), NoteAppended::Appended);
    }
    let again = file(&t, "Ada", "+15551234567", "Still broken.").await;
    assert_eq!(again.get("added_to_open_ticket"), None);
    assert_ne!(again["id"], json!(id.as_str()));
    assert_eq!(t.tickets.len(), 2);
}

fn body_text_of(value: &Value) -> String {
    value.to_string()
}
