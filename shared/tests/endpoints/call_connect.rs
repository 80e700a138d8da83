use crate::prelude::*;
use shared::domain::Ticket;
use shared::domain::TicketId;
use shared::handlers::call_connect::handle;
use shared::store::TicketStore;
use shared::store::memory::{MemoryCallStore, MemoryTicketStore};

const PATH: &str = "/call/connect";
const TICKET_NUMBER: &str = "+15551234567";

async fn app_with_ticket() -> TestApp {
    let t = TestApp::new();
    let ticket = Ticket {
        id: TicketId::generate(NOW * 1000).unwrap(),
        name: "Ada".into(),
        phone_number: PhoneNumber::parse(TICKET_NUMBER).ok(),
        description: "d".into(),
        created_at: "2027-01-15T08:00:00Z".into(),
        customer: None,
        voicemail: None,
    };
    t.tickets.create_ticket(&ticket).await.unwrap();
    t.enroll("agent1").await;
    t
}

/// What Twilio sends for `device.connect({params})` from a browser signed in as `identity`.
fn browser_call(call_sid: &str, from: &str, phone_number: Option<&str>) -> Request {
    let mut params = vec![
        ("AccountSid", format!("AC{}", "0".repeat(32))),
        ("ApiVersion", "2010-04-01".to_owned()),
        ("ApplicationSid", format!("AP{}", "0".repeat(32))),
        ("CallSid", call_sid.to_owned()),
        ("CallStatus", "ringing".to_owned()),
        ("Direction", "inbound".to_owned()),
        ("From", from.to_owned()),
        ("Caller", from.to_owned()),
    ];
    if let Some(number) = phone_number {
        params.push(("phoneNumber", number.to_owned()));
    }
    signed_webhook(PATH, &borrowed(&params))
}

fn refusal_twiml() -> String {
    format!("{XML_HEAD}<Response><Say>{REFUSAL}</Say><Hangup/></Response>")
}

#[tokio::test]
async fn an_agent_calls_a_ticket_number_with_the_support_caller_id() {
    let t = app_with_ticket().await;
    let response = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    assert_eq!(
        body_text(&response),
        format!(r#"{XML_HEAD}<Response><Dial callerId="{NUMBER}"><Number>{TICKET_NUMBER}</Number></Dial></Response>"#)
    );
    assert_eq!(t.dialer.placed(), [], "Twilio dials from the TwiML; no REST call");
}

#[tokio::test]
async fn no_number_off_the_tickets_is_ever_dialed() {
    let t = app_with_ticket().await;
    for (from, number) in [
        ("client:agent1", Some("+15559999999")),
        ("client:agent1", Some("+1 555 123 4567")),
        ("client:agent1", Some("911")),
        ("client:agent1", Some("client:agent2")),
        ("client:agent1", Some("")),
        ("client:agent1", None),
        ("client:mallory", Some(TICKET_NUMBER)),
        ("", Some(TICKET_NUMBER)),
        ("+15557654321", Some(TICKET_NUMBER)),
        ("client:", Some(TICKET_NUMBER)),
    ] {
        let response = handle(&t.app, browser_call(&sid(1), from, number)).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, refusal_twiml()), "{from} {number:?}");
    }
    assert_eq!(t.dialer.placed(), []);
    assert_eq!(t.store.conference_ids(), []);
}

#[tokio::test]
async fn a_customer_waits_in_line_like_a_phone_caller() {
    let t = app_with_ticket().await;
    let response = handle(&t.app, browser_call(&sid(7), "client:customer_0a1b2c", None)).await.unwrap();
    assert_eq!(body_text(&response), crate::conference_connect_client::conference_twiml(BASE, &sid(7)));
    assert_eq!(t.dialer.placed(), [], "the router rings an agent once the caller joins");
    let caller = t.caller(&sid(7)).await.unwrap();
    assert_eq!(caller.caller, shared::domain::Caller::Browser("customer_0a1b2c".into()));
    assert_eq!(caller.state, shared::domain::CallerState::Waiting);
}

#[tokio::test]
async fn an_agent_who_may_no_longer_sign_in_cannot_call_out() {
    let t = app_with_ticket().await;
    t.agents.set_disabled(&AgentId::parse("agent1").unwrap(), Some(NOW)).await.unwrap();
    let response = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    assert_eq!(body_text(&response), refusal_twiml());
}

#[tokio::test]
async fn a_customer_cannot_make_warmline_dial_a_number() {
    let t = app_with_ticket().await;
    let response = handle(&t.app, browser_call(&sid(8), "client:customer_0a1b2c", Some(TICKET_NUMBER))).await.unwrap();
    let body = body_text(&response);
    assert!(body.contains("<Conference") && !body.contains("<Number>"), "{body}");
    assert_eq!(t.dialer.placed(), []);
}

#[tokio::test]
async fn a_forged_request_changes_nothing() {
    let t = app_with_ticket().await;
    let params = [("CallSid", sid(1)), ("From", "client:agent1".to_owned()), ("phoneNumber", TICKET_NUMBER.to_owned())];
    let response = handle(&t.app, webhook_with_signature(PATH, &borrowed(&params), Some("Zm9yZ2Vk"))).await.unwrap();
    assert_eq!(response.status(), 403);
    let params = [("CallSid", sid(2)), ("From", "client:customer_1".to_owned())];
    let response = handle(&t.app, webhook_with_signature(PATH, &borrowed(&params), None)).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!((t.dialer.placed(), t.store.conference_ids()), (vec![], vec![]));
}

#[tokio::test]
async fn apologises_when_the_tickets_cannot_be_read() {
    let t = TestApp::build_with_tickets(
        config_with(&[]),
        MemoryCallStore::new(),
        MemoryTicketStore::failing(),
        RecordingDialer::default(),
    );
    t.enroll("agent1").await;
    let response = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (200, APOLOGY_TWIML.to_owned()));
}
