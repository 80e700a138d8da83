//! `GET /calls/current`: the support call the signed-in agent is offered or on, with who is
//! calling, how long they waited, their tickets and who is in the call.

use crate::prelude::*;
use serde_json::json;
use shared::domain::Ticket;
use shared::handlers::presence::handle;
use shared::store::TicketStore;
use shared::store::memory::MemoryCallStore;

/// The number `customer_arrives` calls from.
const CALLER: &str = "+15557654321";

async fn current_call(t: &TestApp, agent: &str) -> Response<Body> {
    let cookie = t.session_cookie(agent).await;
    handle(&t.app, event("GET", "/calls/current", &[("cookie", &cookie)], b"")).await.unwrap()
}

async fn current_call_json(t: &TestApp, agent: &str) -> serde_json::Value {
    let response = current_call(t, agent).await;
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "application/json"));
    body_json(&response)
}

/// Files a ticket through `POST /tickets`, as a customer does; its JSON as the list shows it.
async fn file_ticket(t: &TestApp, name: &str, number: &str) -> serde_json::Value {
    let body = format!(r#"{{"name": "{name}", "phone_number": "{number}", "description": "The mallet broke"}}"#);
    let response = shared::handlers::tickets::handle(&t.app, json_post("/tickets", &body)).await.unwrap();
    assert_eq!(response.status(), 201);
    body_json(&response)
}

async fn stored_ticket(t: &TestApp, name: &str, at: i64) {
    let ticket = Ticket {
        id: TicketId::generate(at * 1000).unwrap(),
        name: name.into(),
        phone_number: Some(PhoneNumber::parse(CALLER).unwrap()),
        description: "d".into(),
        created_at: shared::domain::rfc3339(at),
        customer: None,
        voicemail: None,
        outside_dial_countries: false,
    };
    t.tickets.create_ticket(&ticket).await.unwrap();
}

fn the_agents_call(call: &serde_json::Value) -> CallSid {
    CallSid::parse(call["call"]["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_customer_the_agent_calls_rings_then_talks_and_never_waited() {
    let t = TestApp::new();
    let filed = file_ticket(&t, "Ada Lovelace", CALLER).await;
    t.available("agent1").await;
    let params = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("ApplicationSid", AGENT_APP_SID.to_owned()),
        ("CallSid", sid(9)),
        ("From", "client:agent1".to_owned()),
        ("phoneNumber", CALLER.to_owned()),
    ];
    shared::handlers::call_connect::handle(&t.app, signed_webhook("/call/agent", &borrowed(&params))).await.unwrap();
    let customer = placed_sid(0);
    t.clock.advance(5);
    let call = current_call_json(&t, "agent1").await;
    assert_eq!(
        (&call["call"]["id"], &call["call"]["direction"], &call["call"]["dialed_by"], &call["call"]["waited_seconds"]),
        (&json!(customer), &json!("outbound"), &json!("agent1"), &json!(null))
    );
    assert_eq!((&call["call"]["state"], &call["call"]["tickets"]), (&json!("talking"), &json!([filed])));
    assert_eq!(
        call["call"]["participants"],
        json!([
            {"role": "customer", "state": "ringing", "since": shared::domain::rfc3339(NOW)},
            {"role": "agent", "agent": "agent1", "state": "talking", "since": null},
        ])
    );

    let picked_up = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("CallSid", customer.clone()),
        ("CallStatus", "in-progress".to_owned()),
    ];
    let request = signed_webhook("/call/customer/agent1", &borrowed(&picked_up));
    shared::handlers::call_connect::handle(&t.app, request).await.unwrap();
    let call = current_call_json(&t, "agent1").await;
    assert_eq!(
        call["call"]["participants"][0],
        json!({"role": "customer", "state": "talking", "since": shared::domain::rfc3339(NOW + 5)})
    );
    assert_eq!(call["call"]["waited_seconds"], json!(null));
}

#[tokio::test]
async fn an_offer_shows_the_caller_their_wait_and_their_tickets_newest_first() {
    let t = TestApp::new();
    let filed = file_ticket(&t, "Ada Lovelace", CALLER).await;
    file_ticket(&t, "Someone else", "+15550001111").await;
    t.clock.advance(60);
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(7);

    let call = current_call_json(&t, "agent1").await;
    assert_eq!(
        call,
        json!({"call": {
            "id": sid(1),
            "state": "ringing",
            "since": shared::domain::rfc3339(NOW + 60),
            "caller": {"kind": "phone", "number": CALLER, "name": null},
            "direction": "inbound",
            "dialed_by": null,
            "about_ticket": null,
            "arrived_at": shared::domain::rfc3339(NOW + 60),
            "waited_seconds": 7,
            "new_caller": false,
            "tickets": [filed],
            "more_tickets": false,
            "participants": [
                {"role": "customer", "state": "waiting", "since": shared::domain::rfc3339(NOW + 60)},
                {"role": "agent", "agent": "agent1", "state": "ringing", "since": shared::domain::rfc3339(NOW + 60)},
            ],
            "transfer": null,
        }})
    );
}

#[tokio::test]
async fn once_answered_the_wait_stops_and_both_are_talking() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(10);
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    t.clock.advance(95);

    let call = &current_call_json(&t, "agent1").await["call"];
    assert_eq!((call["state"].as_str(), call["waited_seconds"].as_i64()), (Some("talking"), Some(10)));
    assert_eq!(call["since"], shared::domain::rfc3339(NOW + 10));
    assert_eq!(
        call["participants"],
        json!([
            {"role": "customer", "state": "talking", "since": shared::domain::rfc3339(NOW + 10)},
            {"role": "agent", "agent": "agent1", "state": "talking", "since": null},
        ])
    );
}

#[tokio::test]
async fn a_colleague_dialed_in_sees_the_call_and_the_wait_that_ended_at_the_first_answer() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(10);
    assert!(t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await.contains("<Conference"));
    t.clock.advance(60);
    t.available("agent2").await;
    let cookie = t.session_cookie("agent1").await;
    let dial = with_header(json_post("/conference/agent1/call", ""), "cookie", &cookie);
    let response = shared::handlers::conference_call_agent::handle(&t.app, dial).await.unwrap();
    assert_eq!(response.status(), 201);
    t.clock.advance(5);

    let ringing = &current_call_json(&t, "agent2").await["call"];
    assert_eq!((ringing["id"].as_str(), ringing["state"].as_str()), (Some(sid(1).as_str()), Some("ringing")));
    assert_eq!(ringing["waited_seconds"], 10, "the caller's wait ended when agent1 answered");
    assert_eq!(
        ringing["participants"],
        json!([
            {"role": "customer", "state": "talking", "since": shared::domain::rfc3339(NOW + 10)},
            {"role": "agent", "agent": "agent1", "state": "talking", "since": null},
            {"role": "agent", "agent": "agent2", "state": "ringing", "since": shared::domain::rfc3339(NOW + 70)},
        ])
    );
    t.clock.advance(3);
    assert!(t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await.contains("<Conference"));
    let joined = &current_call_json(&t, "agent2").await["call"];
    assert_eq!((joined["state"].as_str(), joined["waited_seconds"].as_i64()), (Some("talking"), Some(10)));
    assert_eq!(joined["participants"].as_array().unwrap().len(), 3, "{joined}");
}

#[tokio::test]
async fn a_caller_with_no_ticket_is_a_new_caller() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let call = &current_call_json(&t, "agent1").await["call"];
    assert_eq!((call["new_caller"].as_bool(), call["tickets"].clone()), (Some(true), json!([])));
}

#[tokio::test]
async fn a_caller_on_the_customer_page_shows_their_name_and_the_ticket_they_picked() {
    let t = TestApp::new();
    let filed = file_ticket(&t, "Ada Lovelace", CALLER).await;
    t.available("agent1").await;
    let params = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("ApplicationSid", CUSTOMER_APP_SID.to_owned()),
        ("CallSid", sid(1)),
        ("From", "client:customer_0a1b2c".to_owned()),
        ("Direction", "inbound".to_owned()),
        ("callerName", "Ada".to_owned()),
        ("ticketId", filed["id"].as_str().unwrap().to_owned()),
    ];
    let arrived = shared::handlers::call_connect::handle(&t.app, signed_webhook("/call/connect", &borrowed(&params)));
    assert_eq!(arrived.await.unwrap().status(), 200);
    let joined = conference_report(&sid(1), "participant-join", Some(&sid(1)));
    shared::handlers::conference_events::handle(&t.app, joined).await.unwrap();

    let call = &current_call_json(&t, "agent1").await["call"];
    assert_eq!(call["caller"], json!({"kind": "web", "number": null, "name": "Ada"}));
    assert_eq!((&call["about_ticket"], &call["tickets"]), (&filed["id"], &json!([filed])));
    assert_eq!(call["new_caller"], false);
}

#[tokio::test]
async fn a_number_with_many_tickets_shows_the_newest_five() {
    let t = TestApp::new();
    // A number has one open ticket (filing again adds to it); these are a customer's history.
    for n in 0..7 {
        stored_ticket(&t, &format!("Ticket {n}"), NOW + n).await;
    }
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let call = &current_call_json(&t, "agent1").await["call"];
    let names: Vec<&str> = call["tickets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ticket 6", "Ticket 5", "Ticket 4", "Ticket 3", "Ticket 2"]);
    assert_eq!(call["more_tickets"], true);
}

#[tokio::test]
async fn an_agent_on_no_call_and_a_colleague_not_in_it_see_none() {
    let t = TestApp::new();
    assert_eq!(current_call_json(&t, "agent1").await, json!({"call": null}));
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    assert_eq!(the_agents_call(&current_call_json(&t, "agent1").await).as_str(), sid(1));
    // Whoever asks is the session's agent: agent2 learns nothing of agent1's call.
    assert_eq!(current_call_json(&t, "agent2").await, json!({"call": null}));
    // Once the caller hangs up, agent1 is on no call either.
    let report = conference_report(&sid(1), "conference-end", None);
    shared::handlers::conference_events::handle(&t.app, report).await.unwrap();
    assert_eq!(current_call_json(&t, "agent1").await, json!({"call": null}));
}

#[tokio::test]
async fn only_for_signed_in_agents_and_only_get() {
    let t = TestApp::new();
    let response = handle(&t.app, event("GET", "/calls/current", &[], b"")).await.unwrap();
    assert_eq!(response.status(), 401);
    let cookie = t.session_cookie("agent1").await;
    let response = handle(&t.app, event("POST", "/calls/current", &[("cookie", &cookie)], b"")).await.unwrap();
    assert_eq!((response.status().as_u16(), response.headers()["allow"].to_str().unwrap()), (405, "GET"));
}

#[tokio::test]
async fn a_store_fault_is_a_retryable_503() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let response = current_call(&t, "agent1").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
}
