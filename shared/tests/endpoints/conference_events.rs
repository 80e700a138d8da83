//! The conference's status callbacks and the agents' call status callbacks: the router, missed
//! offers, agents leaving, the end of a call.

use crate::prelude::*;
use shared::domain::{Availability, CallerState, Presence};
use shared::handlers::conference_events::handle;
use shared::store::memory::MemoryCallStore;

fn call(n: &str) -> CallSid {
    CallSid::parse(n).unwrap()
}

async fn report(t: &TestApp, request: Request) {
    let response = handle(&t.app, request).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    assert_eq!(content_type(&response), "text/xml; charset=utf-8");
}

async fn presence(t: &TestApp, agent: &str) -> Presence {
    let now = shared::app::Clock::now(t.clock.as_ref());
    t.agent_state(agent).await.map_or(Presence::Offline, |state| state.presence(now).0)
}

// --- the router -------------------------------------------------------------------------------

#[tokio::test]
async fn a_caller_who_joins_is_offered_to_an_available_agent() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;

    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")]);
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!((caller.state, caller.ringing.clone()), (CallerState::Ringing, vec![AgentId::parse("agent1").unwrap()]));
    assert_eq!(
        caller.agent_calls,
        [(call(&placed_sid(0)), AgentId::parse("agent1").unwrap())],
        "so it can be canceled"
    );
    assert_eq!(caller.conference_sid.as_deref(), Some(conference_sid(&sid(1)).as_str()));
    assert_eq!(t.agent_state("agent1").await.unwrap().ringing_for, Some(call(&sid(1))));
    assert_eq!(presence(&t, "agent1").await, Presence::Busy);
}

#[tokio::test]
async fn with_nobody_free_the_caller_waits() {
    let t = TestApp::new();
    t.occupied("agent0").await;
    t.available("agent1").await;
    let mut away = t.agent_state("agent1").await.unwrap();
    away.say(Availability::Away, NOW * 1000);
    assert!(
        shared::store::CallStore::commit(t.store.as_ref(), &[shared::store::Write::Agent(away)], NOW).await.unwrap()
    );
    t.customer_arrives(&sid(1)).await;
    assert_eq!(t.dialer.placed().len(), 1, "agent0's call only");
    assert_eq!((t.caller(&sid(1)).await.unwrap().state, t.dialer.updated()), (CallerState::Waiting, vec![]));
}

#[tokio::test]
async fn the_longest_waiting_caller_goes_to_the_agent_idle_longest() {
    let t = TestApp::new();
    t.occupied("agent0").await;
    for n in 1..=3 {
        t.customer_arrives(&sid(n)).await;
        t.clock.advance(1);
    }
    t.available("agent2").await; // idle since now: offered caller 1 at once
    t.clock.advance(1);
    t.available("agent1").await; // offered caller 2
    let placed: Vec<String> = t.dialer.placed().into_iter().skip(1).map(|c| c.url).collect();
    assert_eq!(
        placed,
        [
            format!("{BASE}/conference/{}/connect/agent2", sid(1)),
            format!("{BASE}/conference/{}/connect/agent1", sid(2)),
        ]
    );
    assert_eq!(t.caller(&sid(3)).await.unwrap().state, CallerState::Waiting, "caller 3 still waits");
}

#[tokio::test]
async fn an_agent_is_offered_one_caller_at_a_time() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.customer_arrives(&sid(2)).await;
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1")]);
    assert_eq!(t.caller(&sid(2)).await.unwrap().state, CallerState::Waiting);
}

#[tokio::test]
async fn an_agent_whose_presence_lapsed_is_not_offered_a_caller() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.clock.advance(shared::domain::PRESENCE_LEASE_SECONDS);
    t.customer_arrives(&sid(1)).await;
    assert_eq!(t.dialer.placed(), []);
    assert_eq!(presence(&t, "agent1").await, Presence::Offline);
}

#[tokio::test]
async fn a_disabled_agent_is_never_offered_a_caller() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.available("agent2").await;
    t.agents.set_disabled(&AgentId::parse("agent1").unwrap(), Some(NOW)).await.unwrap();
    t.customer_arrives(&sid(1)).await;
    assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent2")]);
    assert_eq!(t.agent_state("agent1").await.unwrap().availability, Availability::Away, "out of the pool");
}

#[tokio::test]
async fn when_twilio_cannot_ring_the_agent_the_offer_is_undone() {
    let t = TestApp::with_dialer(RecordingDialer::failing());
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await; // acknowledged: the failure is logged
    assert_eq!(t.dialer.placed().len(), 1);
    assert_eq!(t.caller(&sid(1)).await.unwrap().state, CallerState::Waiting, "back in line for the next trigger");
    assert_eq!(presence(&t, "agent1").await, Presence::Available, "no missed call: Twilio failed, not the agent");
}

// --- offers that end unanswered ------------------------------------------------------------------

#[tokio::test]
async fn an_agent_who_lets_it_ring_out_is_set_away_and_the_next_agent_rings() {
    for status in ["no-answer", "busy", "failed"] {
        let t = TestApp::new();
        t.available("agent1").await;
        t.clock.advance(1);
        t.available("agent2").await;
        t.customer_arrives(&sid(1)).await;
        report(&t, agent_call_report(&sid(1), "agent1", &placed_sid(0), status)).await;

        let agent1 = t.agent_state("agent1").await.unwrap();
        assert_eq!((agent1.availability, agent1.missed_at), (Availability::Away, Some(NOW + 1)), "{status}");
        assert_eq!(t.dialer.placed(), [agent_call(&sid(1), "agent1"), agent_call(&sid(1), "agent2")], "{status}");
        assert_eq!(t.caller(&sid(1)).await.unwrap().ringing, [AgentId::parse("agent2").unwrap()]);
    }
}

#[tokio::test]
async fn a_missed_offer_puts_the_caller_back_in_their_place() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.clock.advance(5);
    t.customer_arrives(&sid(2)).await;
    report(&t, agent_call_report(&sid(1), "agent1", &placed_sid(0), "no-answer")).await;
    let first = t.caller(&sid(1)).await.unwrap();
    assert_eq!((first.state, first.arrived_at_ms), (CallerState::Waiting, NOW * 1000));
    // agent1 comes back: caller 1 is still first.
    t.available("agent1").await;
    assert_eq!(t.dialer.placed().last().unwrap(), &agent_call(&sid(1), "agent1"));
}

#[tokio::test]
async fn a_report_twice_or_late_changes_nothing_more() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.available("agent2").await;
    t.customer_arrives(&sid(1)).await;
    report(&t, agent_call_report(&sid(1), "agent1", &placed_sid(0), "no-answer")).await;
    let after_first = (t.caller(&sid(1)).await, t.agent_state("agent1").await, t.dialer.placed());
    report(&t, agent_call_report(&sid(1), "agent1", &placed_sid(0), "no-answer")).await;
    report(&t, agent_call_report(&sid(1), "agent1", &placed_sid(0), "completed")).await;
    assert_eq!((t.caller(&sid(1)).await, t.agent_state("agent1").await, t.dialer.placed()), after_first);
}

#[tokio::test]
async fn a_ring_canceled_because_the_caller_left_is_no_missed_call() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    report(&t, conference_report(&sid(1), "participant-leave", Some(&sid(1)))).await;
    report(&t, conference_report(&sid(1), "conference-end", None)).await;
    assert_eq!(t.dialer.updated(), [(call(&placed_sid(0)), CallUpdate::Cancel)]);
    report(&t, agent_call_report(&sid(1), "agent1", &placed_sid(0), "canceled")).await;
    assert_eq!(presence(&t, "agent1").await, Presence::Available);
    assert_eq!(t.agent_state("agent1").await.unwrap().missed_at, None);

    // Had agent1 answered before the cancel took effect, they are told, not left alone.
    let answer = t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(answer, format!("{XML_HEAD}<Response><Say>{CALL_ENDED}</Say><Hangup/></Response>"));
}

// --- agents leaving ------------------------------------------------------------------------------

#[tokio::test]
async fn a_customer_left_alone_goes_back_to_the_front_of_the_line() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    t.clock.advance(30);
    report(&t, conference_report(&sid(1), "participant-leave", Some(&placed_sid(0)))).await;

    let back = format!(
        "{XML_HEAD}<Response><Say>{BACK_IN_LINE}</Say>{}",
        crate::conference_connect_client::conference_twiml(BASE, &sid(1)).split_once("<Response>").unwrap().1
    );
    assert_eq!(t.dialer.updated(), [(call(&sid(1)), CallUpdate::Twiml(back))]);
    let caller = t.caller(&sid(1)).await.unwrap();
    assert_eq!((caller.state, caller.arrived_at_ms), (CallerState::Waiting, NOW * 1000));
    assert_eq!(caller.moving_from.as_deref(), Some(conference_sid(&sid(1)).as_str()));
    // The conference they leave ends; their call does not.
    report(&t, conference_report(&sid(1), "conference-end", None)).await;
    assert!(t.caller(&sid(1)).await.is_some());
    // agent1 is free again, idle from the moment they left.
    let agent1 = t.agent_state("agent1").await.unwrap();
    assert_eq!((agent1.in_call, agent1.idle_since_ms), (None, (NOW + 30) * 1000));
}

#[tokio::test]
async fn an_agent_leaving_a_colleague_with_the_customer_changes_nothing_for_them() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    t.available("agent2").await;
    let cookie = t.session_cookie("agent1").await;
    let dial = with_header(json_post("/conference/agent1/call", ""), "cookie", &cookie);
    assert_eq!(shared::handlers::conference_call_agent::handle(&t.app, dial).await.unwrap().status(), 201);
    t.agent_answers(&sid(1), "agent2", &placed_sid(1)).await;
    report(&t, conference_report(&sid(1), "participant-leave", Some(&placed_sid(0)))).await;
    assert_eq!(t.dialer.updated(), [], "the customer stays with agent2");
    assert_eq!(t.caller(&sid(1)).await.unwrap().joined, [AgentId::parse("agent2").unwrap()]);
    assert_eq!(presence(&t, "agent1").await, Presence::Available);
}

// --- the end of a call ---------------------------------------------------------------------------

#[tokio::test]
async fn the_end_of_a_call_frees_its_agents_and_forgets_it() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    assert_eq!(presence(&t, "agent1").await, Presence::Busy);
    report(&t, conference_report(&sid(1), "conference-end", None)).await;
    assert_eq!(t.store.conference_ids(), []);
    assert_eq!(presence(&t, "agent1").await, Presence::Available);
    assert_eq!(t.dialer.updated(), [], "an answered agent call ends with its conference");
    // Reported twice: nothing more.
    report(&t, conference_report(&sid(1), "conference-end", None)).await;
    assert_eq!(t.dialer.updated(), []);
}

#[tokio::test]
async fn a_freed_agent_is_offered_the_next_caller() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    t.customer_arrives(&sid(2)).await;
    assert_eq!(t.dialer.placed().len(), 1, "agent1 is busy");
    report(&t, conference_report(&sid(1), "conference-end", None)).await;
    assert_eq!(t.dialer.placed().last().unwrap(), &agent_call(&sid(2), "agent1"));
}

// --- bad requests ------------------------------------------------------------------------------

#[tokio::test]
async fn forged_reports_change_nothing() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    let before = (t.caller(&sid(1)).await, t.agent_state("agent1").await);
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
        assert_eq!(handle(&t.app, request).await.unwrap().status(), 403);
    }
    assert_eq!((t.caller(&sid(1)).await, t.agent_state("agent1").await), before);
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (1, 0));
}

#[tokio::test]
async fn malformed_reports_are_acknowledged_and_change_nothing() {
    let t = TestApp::new();
    t.customer_arrives(&sid(1)).await;
    let before = (t.caller(&sid(1)).await, t.dialer.placed().len(), t.dialer.updated().len());
    let requests = [
        conference_report("CA123", "conference-end", None),
        agent_call_report(&sid(1), "not an id", &placed_sid(0), "no-answer"),
        agent_call_report("CA123", "agent1", &placed_sid(0), "no-answer"),
        signed_webhook(&format!("/conference/{}/events", sid(1)), &[("StatusCallbackEvent", "participant-leave")]),
        signed_webhook(&format!("/conference/{}/elsewhere", sid(1)), &[("StatusCallbackEvent", "conference-end")]),
    ];
    for request in requests {
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    }
    assert_eq!((t.caller(&sid(1)).await, t.dialer.placed().len(), t.dialer.updated().len()), before);
}

#[tokio::test]
async fn a_failing_store_is_logged_not_a_5xx() {
    let t = TestApp::with_store(MemoryCallStore::failing());
    for request in [
        conference_report(&sid(1), "participant-join", Some(&sid(1))),
        conference_report(&sid(1), "conference-end", None),
        agent_call_report(&sid(1), "agent1", &placed_sid(0), "no-answer"),
    ] {
        let response = handle(&t.app, request).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    }
    assert_eq!((t.dialer.placed().len(), t.dialer.updated().len()), (0, 0));
}
