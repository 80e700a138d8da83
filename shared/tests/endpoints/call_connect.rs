use crate::prelude::*;
use shared::call_flow::{AGENT_SESSION_PARAM, OUTSIDE_DIAL_COUNTRIES, TOO_MANY_CALLS};
use shared::domain::SlotHolder;
use shared::domain::Ticket;
use shared::domain::TicketId;
use shared::domain::{Caller, Identity};
use shared::handlers::call_connect::handle;
use shared::store::memory::{MemoryCallStore, MemoryTicketStore};
use shared::store::{CallStore, TicketStore};
use shared::twilio::OutboundCall;

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

fn call(n: u32) -> CallSid {
    CallSid::parse(&sid(n)).unwrap()
}

const PATH: &str = "/call/connect";
const AGENT_PATH: &str = "/call/agent";
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
        outside_dial_countries: false,
    };
    t.tickets.create_ticket(&ticket).await.unwrap();
    t.enroll("agent1").await;
    t
}

/// What Twilio sends for `device.connect({params})` from a browser whose token names `from`:
/// an agent's token grants the agents' app (`/call/agent`), any other the customers'.
fn browser_call(call_sid: &str, from: &str, phone_number: Option<&str>) -> Request {
    let agent = matches!(Identity::from_client_address(from), Ok(Identity::Agent(_)));
    let (path, app) = if agent { (AGENT_PATH, AGENT_APP_SID) } else { (PATH, CUSTOMER_APP_SID) };
    let extra: Vec<(&str, &str)> = phone_number.map(|number| ("phoneNumber", number)).into_iter().collect();
    signed_webhook(path, &borrowed(&browser_params(call_sid, from, app, &extra)))
}

/// Twilio's parameters of a browser call through `app`, then the browser's `custom` ones.
fn browser_params(
    call_sid: &str,
    from: &str,
    app: &str,
    custom: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("ApiVersion", "2010-04-01".to_owned()),
        ("ApplicationSid", app.to_owned()),
        ("CallSid", call_sid.to_owned()),
        ("CallStatus", "ringing".to_owned()),
        ("Direction", "inbound".to_owned()),
        ("From", from.to_owned()),
        ("Caller", from.to_owned()),
    ];
    params.extend(custom.iter().map(|(name, value)| (*name, (*value).to_owned())));
    params
}

fn refusal_twiml() -> String {
    format!("{XML_HEAD}<Response><Say>{REFUSAL}</Say><Hangup/></Response>")
}

/// The agent's side of their call to a customer: in the conference named after the customer's
/// call (`customer`), whose status callback is theirs since they are in first.
fn agent_waits_in(customer: &str) -> String {
    format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false" statusCallback="{BASE}/conference/{customer}/events" statusCallbackEvent="join leave end" statusCallbackMethod="POST">{customer}</Conference></Dial></Response>"#
    )
}

/// Warmline's REST request that calls `number` for `agent`, with the support number as caller id.
fn customer_call(number: &str, agent: &str) -> OutboundCall {
    OutboundCall {
        status_callback: Some(format!("{BASE}/call/customer/{agent}/status")),
        ..OutboundCall::new(number, NUMBER, format!("{BASE}/call/customer/{agent}"))
    }
}

#[tokio::test]
async fn an_agent_calls_a_ticket_number_into_a_conference_of_theirs() {
    let t = app_with_ticket().await;
    t.available("agent1").await; // the dashboard keeps their presence
    let response = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
    let customer = placed_sid(0);
    assert_eq!(body_text(&response), agent_waits_in(&customer));
    assert_eq!(t.dialer.placed(), [customer_call(TICKET_NUMBER, "agent1")]);
    let record = t.caller(&customer).await.unwrap();
    assert_eq!(record.state, shared::domain::CallerState::Dialing);
    assert_eq!(record.dialed_by, Some(agent("agent1")));
    assert_eq!(record.caller, Caller::Phone(PhoneNumber::parse(TICKET_NUMBER).unwrap()));
    assert_eq!(
        (record.joined.clone(), record.agent_calls.clone()),
        (vec![agent("agent1")], vec![(call(1), agent("agent1"))])
    );
    let state = t.agent_state("agent1").await.unwrap();
    assert_eq!(
        state.in_call,
        Some(CallSid::parse(&customer).unwrap()),
        "busy with the call: no support call is offered"
    );

    // Twilio asking again for the same call calls nobody else.
    let again = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    assert_eq!(body_text(&again), agent_waits_in(&customer));
    assert_eq!(t.dialer.placed().len(), 1);
}

#[tokio::test]
async fn the_customer_answers_and_joins_and_their_hanging_up_ends_the_call() {
    let t = app_with_ticket().await;
    t.available("agent1").await; // the dashboard keeps their presence
    handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    let customer = placed_sid(0);
    let answered = customer_webhook(&t, &customer, "agent1", &[("CallStatus", "in-progress")]).await;
    let joins = format!(
        r#"{XML_HEAD}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="true">{customer}</Conference></Dial></Response>"#
    );
    assert_eq!(answered, joins);
    let record = t.caller(&customer).await.unwrap();
    assert_eq!((record.state, record.answered_at), (shared::domain::CallerState::Answered, Some(NOW)));
    // Twilio asking again changes nothing.
    assert_eq!(customer_webhook(&t, &customer, "agent1", &[("CallStatus", "in-progress")]).await, joins);
    assert_eq!(t.caller(&customer).await.unwrap().version, record.version);
    // Another agent's route does not join this call.
    assert_eq!(
        customer_webhook(&t, &customer, "agent2", &[("CallStatus", "in-progress")]).await,
        said_and_hung_up(shared::call_flow::AGENT_GONE)
    );

    // They talk; the customer hangs up and the conference ends: the agent is free.
    conference_event(&t, &customer, "participant-join", Some(&customer)).await;
    conference_event(&t, &customer, "conference-end", None).await;
    customer_webhook(&t, &customer, "agent1", &[("CallStatus", "completed"), ("CallDuration", "42")]).await;
    assert!(t.caller(&customer).await.is_none());
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None);
    assert_eq!(t.dialer.updated(), [], "nobody's call needed ending");
}

#[tokio::test]
async fn the_agent_hanging_up_on_the_customer_they_called_ends_the_call() {
    let t = app_with_ticket().await;
    t.available("agent1").await;
    handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    let customer = placed_sid(0);
    customer_webhook(&t, &customer, "agent1", &[("CallStatus", "in-progress")]).await;
    conference_event(&t, &customer, "participant-join", Some(&customer)).await;
    conference_event(&t, &customer, "participant-leave", Some(&sid(1))).await;
    // Not put in the support line: the customer hears goodbye and their call ends.
    let goodbye = said_and_hung_up(shared::call_flow::GOODBYE);
    assert_eq!(t.dialer.updated(), [(CallSid::parse(&customer).unwrap(), CallUpdate::Twiml(goodbye))]);
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None, "the agent is free at once");
    assert_ne!(t.caller(&customer).await.unwrap().state, shared::domain::CallerState::Waiting);
    conference_event(&t, &customer, "conference-end", None).await;
    assert!(t.caller(&customer).await.is_none());
}

#[tokio::test]
async fn a_customer_who_does_not_answer_ends_the_agents_call_with_a_word() {
    let t = app_with_ticket().await;
    t.available("agent1").await; // the dashboard keeps their presence
    handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    let customer = placed_sid(0);
    let response = customer_status(&t, &customer, "no-answer").await;
    assert_eq!(response.status(), 200);
    let word =
        format!("{XML_HEAD}<Response><Say>{}</Say><Hangup/></Response>", shared::call_flow::CUSTOMER_NOT_REACHED);
    assert_eq!(t.dialer.updated(), [(call(1), CallUpdate::Twiml(word))]);
    // At once, whether or not the agent ever got into the conference: the record goes, the
    // agent is free.
    assert!(t.caller(&customer).await.is_none());
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None);
    // Their leaving after that changes nothing.
    conference_event(&t, &customer, "participant-leave", Some(&sid(1))).await;
    assert_eq!(t.dialer.updated().len(), 1);
}

#[tokio::test]
async fn a_ledger_failure_on_the_end_of_a_call_out_is_delivered_again_and_the_agent_is_free() {
    let t = app_with_ticket().await;
    t.available("agent1").await;
    handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    let customer = placed_sid(0);
    t.ledger.set_failing(true);
    let failed = customer_status(&t, &customer, "busy").await;
    // A status callback: 503, which Twilio delivers again; not TwiML nobody hears.
    assert_eq!((failed.status().as_u16(), failed.headers()["retry-after"].to_str().unwrap()), (503, "2"));
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None, "the agent is not held up by the ledger");
    assert!(t.caller(&customer).await.is_none());
    t.ledger.set_failing(false);
    assert_eq!(customer_status(&t, &customer, "busy").await.status(), 200);
    assert_eq!(t.dialer.updated().len(), 1, "the agent's call is ended once");
}

#[tokio::test]
async fn no_colleague_is_dialed_in_while_the_customers_phone_rings() {
    let t = app_with_ticket().await;
    t.available("agent1").await;
    t.available("agent2").await;
    handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    let cookie = t.session_cookie("agent1").await;
    let request = with_header(json_post("/conference/agent1/call", "{}"), "cookie", &cookie);
    let response = shared::handlers::conference_call_agent::handle(&t.app, request).await.unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(body_json(&response)["error"], "the customer has not picked up yet");
    assert_eq!(t.dialer.placed().len(), 1, "only the customer was called");
}

async fn customer_status(t: &TestApp, customer: &str, status: &str) -> Response<Body> {
    let params = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("CallSid", customer.to_owned()),
        ("CallStatus", status.to_owned()),
        ("From", NUMBER.to_owned()),
        ("To", TICKET_NUMBER.to_owned()),
    ];
    handle(&t.app, signed_webhook("/call/customer/agent1/status", &borrowed(&params))).await.unwrap()
}

#[tokio::test]
async fn an_agent_who_hangs_up_while_it_rings_stops_the_customers_phone() {
    let t = app_with_ticket().await;
    t.available("agent1").await; // the dashboard keeps their presence
    handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    let customer = placed_sid(0);
    conference_event(&t, &customer, "participant-join", Some(&sid(1))).await;
    conference_event(&t, &customer, "participant-leave", Some(&sid(1))).await;
    assert!(t.caller(&customer).await.is_none(), "not put in line: nobody called support");
    assert_eq!(t.agent_state("agent1").await.unwrap().in_call, None);
    assert_eq!(t.dialer.updated(), [(CallSid::parse(&customer).unwrap(), CallUpdate::Cancel)]);
    // Picking up after that, the customer is told.
    let late = customer_webhook(&t, &customer, "agent1", &[("CallStatus", "in-progress")]).await;
    assert_eq!(late, said_and_hung_up(shared::call_flow::AGENT_GONE));
}

#[tokio::test]
async fn twilio_refusing_the_call_tells_the_agent_and_keeps_nothing() {
    let t = TestApp::build(config_with(&[]), MemoryCallStore::new(), RecordingDialer::failing());
    t.enroll("agent1").await;
    file_ticket(&t, TICKET_NUMBER).await;
    let response = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    assert_eq!(body_text(&response), said_and_hung_up(shared::call_flow::CUSTOMER_NOT_CALLED));
    assert_eq!(t.store.conference_ids(), []);
    assert_eq!(t.agent_state("agent1").await.and_then(|state| state.in_call), None);
}

/// A webhook of the call Warmline placed to a customer for `agent`: its answer (`in-progress`)
/// or how it ended. Returns the TwiML.
async fn customer_webhook(t: &TestApp, customer: &str, agent: &str, status: &[(&'static str, &str)]) -> String {
    let mut params = vec![
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("CallSid", customer.to_owned()),
        ("From", NUMBER.to_owned()),
        ("To", TICKET_NUMBER.to_owned()),
        ("Direction", "outbound-api".to_owned()),
    ];
    params.extend(status.iter().map(|(name, value)| (*name, (*value).to_owned())));
    let path = match status.first() {
        Some((_, "in-progress")) => format!("/call/customer/{agent}"),
        _ => format!("/call/customer/{agent}/status"),
    };
    let response = handle(&t.app, signed_webhook(&path, &borrowed(&params))).await.unwrap();
    assert_eq!(response.status(), 200, "{}", body_text(&response));
    body_text(&response)
}

async fn conference_event(t: &TestApp, customer: &str, event: &str, participant: Option<&str>) {
    let request = conference_report(customer, event, participant);
    let response = shared::handlers::conference_events::handle(&t.app, request).await.unwrap();
    assert_eq!(response.status(), 200, "{}", body_text(&response));
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
async fn a_customer_may_give_their_name_and_the_ticket_they_call_about() {
    let t = app_with_ticket().await;
    let ticket = TicketId::generate(NOW * 1000).unwrap();
    let intro = [("callerName", "  Ada Lovelace "), ("ticketId", ticket.as_str())];
    let params = browser_params(&sid(7), "client:customer_0a1b2c", CUSTOMER_APP_SID, &intro);
    let response = handle(&t.app, signed_webhook(PATH, &borrowed(&params))).await.unwrap();
    assert_eq!(body_text(&response), crate::conference_connect_client::conference_twiml(BASE, &sid(7)));
    let caller = t.caller(&sid(7)).await.unwrap();
    assert_eq!((caller.intro.name.as_deref(), caller.intro.ticket.as_ref()), (Some("Ada Lovelace"), Some(&ticket)));

    // Checked like a ticket's fields: what fails is left out, and the call goes on.
    let long_name = "a".repeat(shared::domain::MAX_NAME_CHARS + 1);
    let cases =
        [(long_name.as_str(), "not-a-ticket", 'd'), ("Ada\u{7}", "01KCV0R4ZJ8Y7W3A2B1C0D9E8", 'e'), ("", "", 'f')];
    for (name, ticket_id, who) in cases {
        let intro = [("callerName", name), ("ticketId", ticket_id)];
        let from = format!("client:customer_0a1b2{who}");
        let params = browser_params(&sid(8), &from, CUSTOMER_APP_SID, &intro);
        let response = handle(&t.app, signed_webhook(PATH, &borrowed(&params))).await.unwrap();
        assert_eq!(body_text(&response), crate::conference_connect_client::conference_twiml(BASE, &sid(8)));
        let caller = t.caller(&sid(8)).await.unwrap();
        assert_eq!(caller.intro, shared::domain::CallerIntro::default(), "{name:?} {ticket_id:?}");
        shared::handlers::conference_events::handle(&t.app, conference_report(&sid(8), "conference-end", None))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_ring_tells_the_agents_browser_what_the_caller_said() {
    let t = app_with_ticket().await;
    let ticket = TicketId::generate(NOW * 1000).unwrap();
    let intro = [("callerName", "Zoë O'Hara & co"), ("ticketId", ticket.as_str())];
    let params = browser_params(&sid(7), "client:customer_0a1b2c", CUSTOMER_APP_SID, &intro);
    handle(&t.app, signed_webhook(PATH, &borrowed(&params))).await.unwrap();
    t.available("agent1").await;
    let ring = t.dialer.placed().last().unwrap().clone();
    // Percent-encoded as a query string: the Voice SDK decodes it into the call's customParameters.
    let expected = format!("client:agent1?conference={}&callerName=Zo%C3%AB+O%27Hara+%26+co&ticketId={ticket}", sid(7));
    assert_eq!(ring, OutboundCall { to: expected, ..agent_call(&sid(7), "agent1") });

    // A name that would swell the ring past what Twilio asks custom parameters to stay under is
    // left to `GET /calls/current`.
    let long_name = "日".repeat(shared::domain::MAX_NAME_CHARS);
    let params = browser_params(&sid(8), "client:customer_0a1b2d", CUSTOMER_APP_SID, &[("callerName", &long_name)]);
    handle(&t.app, signed_webhook(PATH, &borrowed(&params))).await.unwrap();
    assert_eq!(t.caller(&sid(8)).await.unwrap().intro.name.as_deref(), Some(long_name.as_str()));
    t.available("agent2").await;
    assert_eq!(t.dialer.placed().last().unwrap(), &agent_call(&sid(8), "agent2"));
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

// --- The route says who calls: two TwiML Apps, and nothing smuggled past them -----------------

fn nothing_happened(t: &TestApp) {
    assert_eq!((t.dialer.placed(), t.store.conference_ids()), (vec![], vec![]));
}

#[tokio::test]
async fn the_customers_app_never_serves_an_agent_whatever_from_says() {
    let t = app_with_ticket().await;
    for from in ["client:agent1", "client:agent2"] {
        let params = browser_params(&sid(1), from, CUSTOMER_APP_SID, &[("phoneNumber", TICKET_NUMBER)]);
        let response = handle(&t.app, signed_webhook(PATH, &borrowed(&params))).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, refusal_twiml()), "{from}");
    }
    nothing_happened(&t);
}

#[tokio::test]
async fn the_agents_app_serves_agents_only() {
    let t = app_with_ticket().await;
    for from in ["client:customer_0a1b2c", "+15557654321", "client:"] {
        let params = browser_params(&sid(1), from, AGENT_APP_SID, &[("phoneNumber", TICKET_NUMBER)]);
        let response = handle(&t.app, signed_webhook(AGENT_PATH, &borrowed(&params))).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, refusal_twiml()), "{from}");
    }
    nothing_happened(&t);
}

#[tokio::test]
async fn a_call_through_the_other_app_or_another_account_is_refused() {
    let t = app_with_ticket().await;
    let agent = [("phoneNumber", TICKET_NUMBER)];
    let other_account = "AC11111111111111111111111111111111";
    let mut refused = vec![
        // The agents' Voice URL asked about a call through the customers' app, and the reverse:
        // one app's URL pasted into the other, or a token for the other app.
        (AGENT_PATH, browser_params(&sid(1), "client:agent1", CUSTOMER_APP_SID, &agent)),
        (PATH, browser_params(&sid(2), "client:customer_0a1b2c", AGENT_APP_SID, &[])),
        (AGENT_PATH, browser_params(&sid(1), "client:agent1", "AP22222222222222222222222222222222", &agent)),
    ];
    let mut no_app = browser_params(&sid(1), "client:agent1", AGENT_APP_SID, &agent);
    no_app.retain(|(name, _)| *name != "ApplicationSid");
    refused.push((AGENT_PATH, no_app));
    let mut elsewhere = browser_params(&sid(2), "client:customer_0a1b2c", CUSTOMER_APP_SID, &[]);
    elsewhere[0].1 = other_account.to_owned();
    refused.push((PATH, elsewhere));
    for (path, params) in refused {
        let response = handle(&t.app, signed_webhook(path, &borrowed(&params))).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (403, "forbidden".to_owned()), "{params:?}");
    }
    nothing_happened(&t);
}

#[tokio::test]
async fn a_standard_parameter_smuggled_in_twice_is_refused() {
    let t = app_with_ticket().await;
    // What a browser's `device.connect({params})` adds after Twilio's own parameters.
    let customer = "client:customer_0a1b2c";
    let refused = async |path: &str, from: &str, custom: &[(&'static str, &str)]| {
        let app = if path == PATH { CUSTOMER_APP_SID } else { AGENT_APP_SID };
        let params = browser_params(&sid(1), from, app, custom);
        let response = handle(&t.app, signed_webhook(path, &borrowed(&params))).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (403, "forbidden".to_owned()), "{custom:?}");
    };
    refused(PATH, customer, &[("From", "client:agent1")]).await;
    refused(PATH, customer, &[("ApplicationSid", AGENT_APP_SID)]).await;
    refused(PATH, customer, &[("CallSid", "CA00000000000000000000000000000099")]).await;
    refused(AGENT_PATH, "client:agent1", &[("From", "client:agent2"), ("phoneNumber", TICKET_NUMBER)]).await;
    refused(AGENT_PATH, "client:agent1", &[("phoneNumber", "+15559999999"), ("phoneNumber", TICKET_NUMBER)]).await;
    nothing_happened(&t);

    // The same calls without the smuggled parameter go through.
    let response = handle(&t.app, browser_call(&sid(1), customer, None)).await.unwrap();
    assert_eq!(body_text(&response), crate::conference_connect_client::conference_twiml(BASE, &sid(1)));
    assert_eq!(t.caller(&sid(1)).await.unwrap().caller, Caller::Browser("customer_0a1b2c".into()));
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

// --- Numbers outside DIAL_COUNTRIES, tokens of ended sessions, browser-call floods --------------

/// Files a ticket through `POST /tickets`, as anyone may.
async fn file_ticket(t: &TestApp, number: &str) {
    let body = format!(r#"{{"name": "Ada", "phone_number": "{number}", "description": "Urgent, call me back"}}"#);
    let response = shared::handlers::tickets::handle(&t.app, json_post("/tickets", &body)).await.unwrap();
    assert_eq!(response.status(), 201);
}

/// Warmline called `number` for agent1 (its latest REST call) and agent1 waits in that call's
/// conference.
fn dialed(t: &TestApp, body: &str, number: &str) -> bool {
    let placed = t.dialer.placed();
    let Some(last) = placed.len().checked_sub(1) else { return false };
    placed[last] == customer_call(number, "agent1") && body == agent_waits_in(&placed_sid(last as u32))
}

fn said_and_hung_up(text: &str) -> String {
    format!("{XML_HEAD}<Response><Say>{text}</Say><Hangup/></Response>")
}

#[tokio::test]
async fn an_agent_cannot_call_a_ticket_number_outside_the_dial_countries() {
    let t = app_with_ticket().await; // the support number is +1 555: the US only
    for number in ["+18765550123", "+18095550123", "+442071838750", "+19005550123"] {
        file_ticket(&t, number).await;
        let response = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(number))).await.unwrap();
        assert_eq!(body_text(&response), said_and_hung_up(OUTSIDE_DIAL_COUNTRIES), "{number}");
    }
    assert_eq!(t.dialer.placed(), [], "nobody outside was called");
    let response = handle(&t.app, browser_call(&sid(2), "client:agent1", Some(TICKET_NUMBER))).await.unwrap();
    assert!(dialed(&t, &body_text(&response), TICKET_NUMBER));
}

#[tokio::test]
async fn dial_countries_allow_the_listed_countries_by_area_code() {
    let config = config_with(&[("DIAL_COUNTRIES", "US,JM")]);
    let t = TestApp::build(config, MemoryCallStore::new(), RecordingDialer::default());
    t.enroll("agent1").await;
    for (number, allowed) in [("+18765550123", true), ("+18095550123", false), ("+14165550123", false)] {
        file_ticket(&t, number).await;
        let response = handle(&t.app, browser_call(&sid(1), "client:agent1", Some(number))).await.unwrap();
        let body = body_text(&response);
        assert!(
            if allowed { dialed(&t, &body, number) } else { body == said_and_hung_up(OUTSIDE_DIAL_COUNTRIES) },
            "{number}: {body}"
        );
    }
}

/// The session tag an agent's token passes with its calls, from `POST /token` with `cookie`.
async fn agent_session(t: &TestApp, cookie: &str) -> String {
    let request = with_header(json_post("/token", "{}"), "cookie", cookie);
    let response = shared::handlers::token::handle(&t.app, request).await.unwrap();
    let claims = crate::token::claims(body_json(&response)["token"].as_str().unwrap());
    claims["grants"]["voice"]["outgoing"]["params"][AGENT_SESSION_PARAM].as_str().unwrap().to_owned()
}

/// An agent's browser call as Twilio sends it: the token's `agentSession` among the params.
fn agent_call_with(call_sid: &str, agent: &str, number: &str, session: &str) -> Request {
    let params = [
        ("AccountSid", ACCOUNT_SID.to_owned()),
        ("ApplicationSid", AGENT_APP_SID.to_owned()),
        ("CallSid", call_sid.to_owned()),
        ("From", format!("client:{agent}")),
        ("phoneNumber", number.to_owned()),
        (AGENT_SESSION_PARAM, session.to_owned()),
    ];
    signed_webhook(AGENT_PATH, &borrowed(&params))
}

#[tokio::test]
async fn a_token_of_an_ended_session_cannot_call_out() {
    let t = app_with_ticket().await;
    let old = agent_session(&t, &t.session_cookie("agent1").await).await;
    let call = |session: &str| handle(&t.app, agent_call_with(&sid(1), "agent1", TICKET_NUMBER, session));
    assert!(dialed(&t, &body_text(&call(&old).await.unwrap()), TICKET_NUMBER));

    // The agent signs out: the token in their browser lives on for minutes, its calls do not.
    let agent1 = AgentId::parse("agent1").unwrap();
    t.agents.end_sessions(&agent1).await.unwrap();
    assert_eq!(body_text(&call(&old).await.unwrap()), refusal_twiml());

    // Signed in again: the new session's token calls out, the old one still cannot.
    let new = agent_session(&t, &t.session_cookie("agent1").await).await;
    assert!(dialed(&t, &body_text(&call(&new).await.unwrap()), TICKET_NUMBER));
    assert_eq!(body_text(&call(&old).await.unwrap()), refusal_twiml());

    // Another agent's token of the same epoch, or anything made up, opens nothing.
    t.session_cookie("agent2").await;
    t.agents.end_sessions(&AgentId::parse("agent2").unwrap()).await.unwrap();
    let borrowed_token = agent_session(&t, &t.session_cookie("agent2").await).await;
    let shouted = new.to_uppercase();
    let made_up = "0".repeat(32);
    for forged in [borrowed_token.as_str(), &made_up, &shouted, &new[..31], "", "1", "x.y"] {
        assert_eq!(body_text(&call(forged).await.unwrap()), refusal_twiml(), "{forged:?}");
    }

    // Disabled: not even the current session's token.
    t.agents.set_disabled(&agent1, Some(NOW)).await.unwrap();
    assert_eq!(body_text(&call(&new).await.unwrap()), refusal_twiml());
}

/// A customer's identity, from a token fetched at `address`.
async fn customer_at(t: &TestApp, address: &str) -> String {
    let response = shared::handlers::token::handle(&t.app, crate::token::token_request_from(address)).await.unwrap();
    format!("client:{}", body_json(&response)["identity"].as_str().unwrap())
}

async fn customer_calls(t: &TestApp, call_sid: &str, from: &str) -> String {
    body_text(&handle(&t.app, browser_call(call_sid, from, None)).await.unwrap())
}

fn in_line(call_sid: &str) -> String {
    crate::conference_connect_client::conference_twiml(BASE, call_sid)
}

#[tokio::test]
async fn a_customer_has_one_browser_call_at_a_time() {
    let t = TestApp::new();
    t.available("agent1").await;
    let customer = customer_at(&t, "203.0.113.7").await;
    assert_eq!(customer_calls(&t, &sid(1), &customer).await, in_line(&sid(1)));
    assert_eq!(customer_calls(&t, &sid(1), &customer).await, in_line(&sid(1)), "a retried webhook keeps its slot");
    let joined = conference_report(&sid(1), "participant-join", Some(&sid(1)));
    shared::handlers::conference_events::handle(&t.app, joined).await.unwrap();
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")]);

    // A second call while the first goes on: refused before it is in line or rings anyone.
    assert_eq!(customer_calls(&t, &sid(2), &customer).await, said_and_hung_up(TOO_MANY_CALLS));
    assert_eq!(t.caller(&sid(2)).await, None);
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")]);

    // The first call ends: its slot is free again.
    shared::handlers::conference_events::handle(&t.app, conference_report(&sid(1), "conference-end", None))
        .await
        .unwrap();
    assert_eq!(customer_calls(&t, &sid(3), &customer).await, in_line(&sid(3)));
}

#[tokio::test]
async fn an_address_has_three_browser_calls_at_a_time() {
    let t = TestApp::new();
    let mut n = 0;
    let mut call = async |address: &str| {
        n += 1;
        let customer = customer_at(&t, address).await;
        customer_calls(&t, &sid(n), &customer).await == in_line(&sid(n))
    };
    for address in ["198.51.100.20", "198.51.100.20", "198.51.100.20"] {
        assert!(call(address).await, "{address}");
    }
    assert!(!call("198.51.100.20").await, "a fourth from the same address");
    assert!(call("198.51.100.21").await, "another address");
    // IPv6 counts by the /64: one subscriber's line picks addresses from it at will.
    for address in ["2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:ffff:ffff:ffff:ffff"] {
        assert!(call(address).await, "{address}");
    }
    assert!(!call("2001:db8:7:7:1234::5").await, "a fourth from the same /64");
    assert!(call("2001:db8:7:8::1").await, "the next /64");
}

#[tokio::test]
async fn a_slot_whose_end_was_never_reported_lapses() {
    let t = TestApp::new();
    let customer = customer_at(&t, "203.0.113.7").await;
    assert_eq!(customer_calls(&t, &sid(1), &customer).await, in_line(&sid(1)));
    t.clock.advance(shared::domain::BROWSER_CALL_SLOT_SECONDS - 1);
    assert_eq!(customer_calls(&t, &sid(2), &customer).await, said_and_hung_up(TOO_MANY_CALLS));
    t.clock.advance(1);
    assert_eq!(customer_calls(&t, &sid(3), &customer).await, in_line(&sid(3)));
}

#[tokio::test]
async fn the_browser_call_limits_are_settings() {
    let config = config_with(&[("BROWSER_CALLS_PER_IDENTITY", "2"), ("BROWSER_CALLS_PER_ADDRESS", "2")]);
    let t = TestApp::build(config, MemoryCallStore::new(), RecordingDialer::default());
    let customer = customer_at(&t, "203.0.113.7").await;
    assert_eq!(customer_calls(&t, &sid(1), &customer).await, in_line(&sid(1)));
    assert_eq!(customer_calls(&t, &sid(2), &customer).await, in_line(&sid(2)));
    assert_eq!(customer_calls(&t, &sid(3), &customer).await, said_and_hung_up(TOO_MANY_CALLS));
    let neighbour = customer_at(&t, "203.0.113.7").await;
    assert_eq!(customer_calls(&t, &sid(4), &neighbour).await, said_and_hung_up(TOO_MANY_CALLS), "the address's 2");
}

#[tokio::test]
async fn the_hold_music_never_puts_a_browser_caller_over_the_limit_in_line() {
    let t = TestApp::new();
    let customer = customer_at(&t, "203.0.113.7").await;
    assert_eq!(customer_calls(&t, &sid(1), &customer).await, in_line(&sid(1)));
    // A second call of theirs at the hold music with no record (as when its arrival's write
    // failed): counted again there, refused, and ended through the REST API.
    let turn = signed_webhook("/conference/wait?held=1", &[("CallSid", &sid(2)), ("From", &customer)]);
    let response = shared::handlers::conference_wait::handle(&t.app, turn).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(t.caller(&sid(2)).await, None);
    let call2 = CallSid::parse(&sid(2)).unwrap();
    assert_eq!(t.dialer.updated(), [(call2, CallUpdate::Twiml(said_and_hung_up(TOO_MANY_CALLS)))]);
}

#[tokio::test]
async fn a_customer_whose_calls_cannot_be_counted_still_gets_their_music_and_is_counted_at_its_first_turn() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    let answer = customer_calls(&t, &sid(1), "client:customer_0a1b2c3d4e5f6a7b").await;
    assert_eq!(answer, in_line(&sid(1)), "the conference and its music, not an apology");
    assert_eq!(t.store.conference_ids(), []);
    // The hold music's first turn on a store that answers counts them and puts them in line.
    let healthy = TestApp::new();
    let turn = signed_webhook(
        "/conference/wait?held=1",
        &[("CallSid", &sid(1)), ("From", "client:customer_0a1b2c3d4e5f6a7b")],
    );
    shared::handlers::conference_wait::handle(&healthy.app, turn).await.unwrap();
    assert_eq!(healthy.caller(&sid(1)).await.unwrap().state, shared::domain::CallerState::Waiting);
    let slots = healthy.store.call_slots(&SlotHolder::Customer("customer_0a1b2c3d4e5f6a7b".into()), NOW).await;
    assert!(slots.unwrap().unwrap().holds(&CallSid::parse(&sid(1)).unwrap(), NOW));
}

#[tokio::test]
async fn calls_arriving_together_never_overshoot_the_limit_on_dynamodb() {
    // The real store on the emulator, where calls counted at once do interleave: each takes its
    // slots over the version it read, so at most three of one address's calls get one.
    let tables = shared::test_support::emulator_tables().await;
    let calls = std::sync::Arc::new(shared::store::dynamo::DynamoCallStore::new(
        tables.client.clone(),
        tables.name("CallsTable"),
    ));
    let t = TestApp::new();
    let app = shared::App::new(config_with(&[]), shared::app::Ports { calls: calls.clone(), ..t.ports() });
    let mut customers = Vec::new();
    for _ in 0..6 {
        let token = shared::handlers::token::handle(&app, crate::token::token_request_from("198.51.100.77")).await;
        customers.push(format!("client:{}", body_json(&token.unwrap())["identity"].as_str().unwrap()));
    }
    let sids: Vec<String> = (1..=6).map(sid).collect();
    let arrivals = sids.iter().zip(&customers).map(|(call_sid, from)| handle(&app, browser_call(call_sid, from, None)));
    let answers: Vec<String> =
        futures::future::join_all(arrivals).await.iter().map(|r| body_text(r.as_ref().unwrap())).collect();
    let now = shared::app::Clock::now(t.clock.as_ref());
    let address = SlotHolder::Address(shared::domain::SourceAddress::parse("198.51.100.77").unwrap());
    let held = calls.call_slots(&address, now).await.unwrap().unwrap().taken(now);
    let mut waiting = 0;
    for (call_sid, answer) in sids.iter().zip(&answers) {
        let caller = calls.conference(&CallSid::parse(call_sid).unwrap(), now).await.unwrap();
        // Refused, or in their conference; in line only with a slot (one that lost every race
        // waits for the hold music to count it again).
        assert!(*answer == said_and_hung_up(TOO_MANY_CALLS) || *answer == in_line(call_sid), "{answer}");
        waiting += usize::from(caller.is_some());
    }
    assert_eq!((held, waiting), (3, 3), "{answers:#?}");
}
