//! The behaviour every storage port must have. Each implementation instantiates the suites
//! with `call_store_contract!(async { /* a fresh, empty store */ })` and the like.

use super::{CallStore, Write};
use crate::domain::{
    AgentId, AgentState, AgentToken, Availability, CALL_RECORD_TTL_SECONDS, CallSid, CallSlots, Caller, CallerIntro,
    CallerState, ColleagueOutcome, Conference, DAY_COUNTS_TTL_SECONDS, DayCounts, Line, Outcome, PhoneNumber,
    SlotHolder, SourceAddress, TicketId, Transfer, TransferKind,
};

pub fn sid(n: u8) -> CallSid {
    CallSid::parse(&format!("CA{n:032x}")).unwrap()
}

/// An agent's call (as opposed to a customer's, which names a conference).
pub fn agent_call(n: u8) -> CallSid {
    CallSid::parse(&format!("CA{:032x}", 0xa9e0 + u32::from(n))).unwrap()
}

pub fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

pub const NOW: i64 = 1_800_000_000;

/// Caller `n`, arrived at `now` (plus `n` milliseconds, so callers arrive in their order).
pub fn caller(n: u8, now: i64) -> Conference {
    let number = PhoneNumber::parse(&format!("+1555000{n:04}")).unwrap();
    Conference::arriving(sid(n), Caller::Phone(number), now * 1000 + i64::from(n))
}

/// An agent who said they are available at `now`.
pub fn available(id: &str, now: i64) -> AgentState {
    let mut state = AgentState::new(agent(id));
    state.say(Availability::Available, now * 1000);
    state
}

async fn stored_caller(store: &dyn CallStore, n: u8, now: i64) -> Conference {
    store.conference(&sid(n), now).await.unwrap().unwrap()
}

async fn stored_agent(store: &dyn CallStore, id: &str, now: i64) -> AgentState {
    store.agent_state(&agent(id), now).await.unwrap().unwrap()
}

pub async fn enqueues_a_caller_once(store: &dyn CallStore) {
    let first = caller(1, NOW);
    assert!(store.enqueue(&first).await.unwrap());
    let retry = caller(1, NOW + 5);
    assert!(!store.enqueue(&retry).await.unwrap(), "a retry must not create a second record");
    let stored = stored_caller(store, 1, NOW).await;
    assert_eq!(stored, Conference { version: stored.version, ..first });
    assert!(stored.version > 0);
    assert_eq!(stored.expires_at - stored.created_at, CALL_RECORD_TTL_SECONDS);
}

pub async fn a_resent_arrival_knows_the_record_as_its_own(store: &dyn CallStore) {
    let first = caller(1, NOW);
    assert!(store.enqueue(&first).await.unwrap());
    assert!(store.enqueue(&first).await.unwrap(), "the same delivery's write, sent again");
}

pub async fn unknown_and_expired_records_are_none(store: &dyn CallStore) {
    assert_eq!(store.conference(&sid(9), NOW).await.unwrap(), None);
    assert_eq!(store.agent_state(&agent("nobody"), NOW).await.unwrap(), None);
    store.enqueue(&caller(1, NOW)).await.unwrap();
    assert!(store.commit(&[Write::Agent(available("agent1", NOW))], NOW).await.unwrap());
    let later = NOW + CALL_RECORD_TTL_SECONDS + 120;
    assert_eq!(store.conference(&sid(1), later).await.unwrap(), None);
    assert_eq!(store.agent_state(&agent("agent1"), later).await.unwrap(), None);
    assert_eq!(store.waiting(10, later).await.unwrap(), []);
    // An expired caller's id can be used again.
    assert!(store.enqueue(&caller(1, later)).await.unwrap());
}

pub async fn commits_only_over_the_version_read(store: &dyn CallStore) {
    store.enqueue(&caller(1, NOW)).await.unwrap();
    let read = stored_caller(store, 1, NOW).await;
    let mut first = read.clone();
    first.offer_voicemail(NOW);
    let mut second = read.clone();
    second.state = CallerState::Answered;
    assert!(store.commit(&[Write::Caller(first)], NOW).await.unwrap());
    assert!(!store.commit(&[Write::Caller(second)], NOW).await.unwrap(), "lost the race");
    assert_eq!(stored_caller(store, 1, NOW).await.state, CallerState::Voicemail);

    // A new agent state must not exist yet; a second creation loses.
    assert!(store.commit(&[Write::Agent(available("agent1", NOW))], NOW).await.unwrap());
    assert!(!store.commit(&[Write::Agent(available("agent1", NOW + 1))], NOW).await.unwrap());
}

pub async fn commits_all_or_nothing(store: &dyn CallStore) {
    store.enqueue(&caller(1, NOW)).await.unwrap();
    let read = stored_caller(store, 1, NOW).await;
    assert!(store.commit(&[Write::Agent(available("agent1", NOW))], NOW).await.unwrap());
    let mut offered = read.clone();
    offered.offer_to(&agent("agent1"), NOW);
    // agent1's state was read before it existed: stale, so the caller does not change either.
    let mut stale = available("agent1", NOW);
    stale.ring_for(&sid(1), NOW);
    assert!(!store.commit(&[Write::Caller(offered.clone()), Write::Agent(stale)], NOW).await.unwrap());
    assert_eq!(stored_caller(store, 1, NOW).await.state, CallerState::Waiting);

    let mut ringing = stored_agent(store, "agent1", NOW).await;
    ringing.ring_for(&sid(1), NOW);
    assert!(store.commit(&[Write::Caller(offered), Write::Agent(ringing)], NOW).await.unwrap());
    assert_eq!(stored_caller(store, 1, NOW).await.ringing, [agent("agent1")]);
    assert_eq!(stored_agent(store, "agent1", NOW).await.ringing_for, Some(sid(1)));
}

pub async fn stores_every_field(store: &dyn CallStore) {
    store.enqueue(&caller(1, NOW)).await.unwrap();
    let mut changed = stored_caller(store, 1, NOW).await;
    changed.caller = Caller::Browser("customer_abc".into());
    changed.intro =
        CallerIntro { name: Some("Ada Lovelace".into()), ticket: TicketId::parse("01KCV0R4ZJ8Y7W3A2B1C0D9E8F") };
    assert!(changed.intro.ticket.is_some());
    changed.offer_to(&agent("agent2"), NOW + 1);
    changed.placed(&agent_call(2), &agent("agent2"));
    changed.answered(&agent("agent2"), NOW + 1);
    changed.ring(&agent("agent3"), NOW + 2);
    changed.placed(&agent_call(3), &agent("agent3"));
    changed.conference_sid = Some(format!("CF{}", "c".repeat(32)));
    changed.moving_from = Some(format!("CF{}", "d".repeat(32)));
    changed.announced_at = Some(NOW + 3);
    changed.voicemail_offered_at = Some(NOW + 4);
    changed.held_since = Some(NOW + 5);
    changed.transfer = Some(Transfer {
        kind: TransferKind::Consult,
        from: agent("agent2"),
        to: agent("agent3"),
        since: NOW + 5,
        outcome: None,
    });
    assert!(store.commit(&[Write::Caller(changed.clone())], NOW).await.unwrap());
    let stored = stored_caller(store, 1, NOW).await;
    assert_eq!(stored, Conference { version: changed.version + 1, ..changed.clone() });

    // The colleague's part ended; a cold transfer keeps how.
    let mut changed = stored;
    // A customer an agent called, their phone still ringing.
    changed.state = CallerState::Dialing;
    changed.dialed_by = Some(agent("agent2"));
    changed.transfer = Some(Transfer {
        kind: TransferKind::Cold,
        from: agent("agent2"),
        to: agent("agent3"),
        since: NOW + 6,
        outcome: Some((ColleagueOutcome::NoAnswer, NOW + 7)),
    });
    assert!(store.commit(&[Write::Caller(changed.clone())], NOW).await.unwrap());
    assert_eq!(stored_caller(store, 1, NOW).await, Conference { version: changed.version + 1, ..changed });

    let mut state = available("agent2", NOW);
    state.answered(&sid(1), NOW + 1);
    state.missed_at = Some(NOW - 5);
    assert!(store.commit(&[Write::Agent(state.clone())], NOW).await.unwrap());
    assert_eq!(stored_agent(store, "agent2", NOW).await, AgentState { version: 1, ..state });
}

pub async fn forgets_a_caller_only_over_the_version_read(store: &dyn CallStore) {
    store.enqueue(&caller(1, NOW)).await.unwrap();
    let read = stored_caller(store, 1, NOW).await;
    let mut changed = read.clone();
    changed.announced_at = Some(NOW);
    assert!(store.commit(&[Write::Caller(changed)], NOW).await.unwrap());
    assert!(!store.commit(&[Write::ForgetCaller(read)], NOW).await.unwrap());
    let current = stored_caller(store, 1, NOW).await;
    assert!(store.commit(&[Write::ForgetCaller(current)], NOW).await.unwrap());
    assert_eq!(store.conference(&sid(1), NOW).await.unwrap(), None);
    assert!(store.enqueue(&caller(1, NOW)).await.unwrap(), "and the id is free again");
}

pub async fn lists_waiting_callers_in_arrival_order(store: &dyn CallStore) {
    for n in [3, 1, 2, 4] {
        store.enqueue(&caller(n, NOW)).await.unwrap();
    }
    // Caller 4 is with an agent now: out of the line.
    let mut answered = stored_caller(store, 4, NOW).await;
    answered.answered(&agent("agent1"), NOW);
    assert!(store.commit(&[Write::Caller(answered)], NOW).await.unwrap());
    let ids = |callers: Vec<Conference>| callers.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(store.waiting(10, NOW).await.unwrap()), [sid(1), sid(2), sid(3)]);
    assert_eq!(ids(store.waiting(2, NOW).await.unwrap()), [sid(1), sid(2)]);
    for (n, ahead) in [(1, 0), (2, 1), (3, 2)] {
        assert_eq!(store.ahead_of(&stored_caller(store, n, NOW).await).await.unwrap(), ahead, "caller {n}");
    }
    // Back in line, a caller keeps their place.
    let mut back = stored_caller(store, 4, NOW).await;
    back.requeue();
    assert!(store.commit(&[Write::Caller(back)], NOW).await.unwrap());
    assert_eq!(ids(store.waiting(10, NOW).await.unwrap()), [sid(1), sid(2), sid(3), sid(4)]);
    let mut first_back = stored_caller(store, 1, NOW).await;
    first_back.offer_voicemail(NOW);
    assert!(store.commit(&[Write::Caller(first_back)], NOW).await.unwrap());
    assert_eq!(store.ahead_of(&stored_caller(store, 2, NOW).await).await.unwrap(), 0);
}

pub async fn lists_free_agents_idle_longest_first(store: &dyn CallStore) {
    for (id, at) in [("agent3", NOW + 1), ("agent1", NOW + 3), ("agent2", NOW + 2), ("agent4", NOW)] {
        assert!(store.commit(&[Write::Agent(available(id, at))], NOW).await.unwrap());
    }
    let mut away = stored_agent(store, "agent4", NOW).await;
    away.say(Availability::Away, NOW * 1000);
    let mut ringing = stored_agent(store, "agent2", NOW).await;
    ringing.ring_for(&sid(1), NOW);
    assert!(store.commit(&[Write::Agent(away), Write::Agent(ringing)], NOW).await.unwrap());
    let ids = |agents: Vec<AgentState>| agents.into_iter().map(|a| a.agent.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(store.available_agents(10, NOW).await.unwrap()), ["agent3", "agent1"]);
    assert_eq!(ids(store.available_agents(1, NOW).await.unwrap()), ["agent3"]);
    let mut free_again = stored_agent(store, "agent2", NOW).await;
    free_again.ring_ended(false, (NOW + 10) * 1000);
    assert!(store.commit(&[Write::Agent(free_again)], NOW).await.unwrap());
    assert_eq!(ids(store.available_agents(10, NOW).await.unwrap()), ["agent3", "agent1", "agent2"]);
}

fn customer_slots(identity: &str) -> SlotHolder {
    SlotHolder::Customer(identity.to_owned())
}

fn address_slots(address: &str) -> SlotHolder {
    SlotHolder::Address(SourceAddress::parse(address).unwrap())
}

pub async fn stores_call_slots_over_the_version_read(store: &dyn CallStore) {
    let holder = customer_slots("customer_0a1b2c3d4e5f6a7b");
    assert_eq!(store.call_slots(&holder, NOW).await.unwrap(), None);
    let address = SourceAddress::parse("2001:db8:1:2::7").unwrap();
    let bound = CallSlots::bound("customer_0a1b2c3d4e5f6a7b", Some(address.clone()), NOW + 360);
    assert!(store.commit(&[Write::Slots(bound.clone())], NOW).await.unwrap());
    assert!(!store.commit(&[Write::Slots(bound.clone())], NOW).await.unwrap(), "a second creation loses");
    let stored = store.call_slots(&holder, NOW).await.unwrap().unwrap();
    assert_eq!(stored, CallSlots { version: 1, ..bound.clone() });

    // A call takes a slot of the customer and of their address together.
    let mut mine = stored.clone();
    assert!(mine.take(&sid(1), 1, NOW, NOW + 3600));
    let mut theirs = CallSlots::new(SlotHolder::Address(address.clone()), NOW);
    assert!(theirs.take(&sid(1), 3, NOW, NOW + 3600));
    assert!(store.commit(&[Write::Slots(mine.clone()), Write::Slots(theirs.clone())], NOW).await.unwrap());
    let stored = store.call_slots(&holder, NOW).await.unwrap().unwrap();
    assert_eq!(stored, CallSlots { version: 2, expires_at: NOW + 3600, ..mine.clone() });
    assert_eq!(stored.calls, [(sid(1), NOW + 3600)]);
    let at_address = store.call_slots(&address_slots("2001:db8:1:2::ffff"), NOW).await.unwrap().unwrap();
    assert_eq!(at_address, CallSlots { version: 1, ..theirs.clone() });

    // Stale: both read before the last write; neither changes.
    let mut stale = stored.clone();
    stale.version = 1;
    let mut other = at_address.clone();
    assert!(other.take(&sid(2), 3, NOW, NOW + 3600));
    assert!(!store.commit(&[Write::Slots(stale), Write::Slots(other)], NOW).await.unwrap());
    assert_eq!(store.call_slots(&address_slots("2001:db8:1:2::1"), NOW).await.unwrap().unwrap().calls.len(), 1);

    // The record expires with the last slot in it.
    assert_eq!(store.call_slots(&holder, NOW + 3600).await.unwrap(), None);
    assert_eq!(store.call_slots(&address_slots("203.0.113.9"), NOW).await.unwrap(), None);
}

pub async fn records_agent_tokens_until_they_expire(store: &dyn CallStore) {
    let token = AgentToken::issue(agent("agent1"), 4, NOW + 660).unwrap();
    assert_eq!(store.agent_token(&token.id, NOW).await.unwrap(), None);
    assert!(store.record_agent_token(&token).await.unwrap());
    let imposter = AgentToken { agent: agent("agent2"), ..token.clone() };
    assert!(!store.record_agent_token(&imposter).await.unwrap(), "an id is recorded once");
    assert_eq!(store.agent_token(&token.id, NOW + 659).await.unwrap(), Some(token.clone()));
    assert_eq!(store.agent_token(&token.id, NOW + 660).await.unwrap(), None);
    assert_eq!(store.agent_token(&"0".repeat(32), NOW).await.unwrap(), None);
}

pub async fn lists_the_agents_whose_presence_holds(store: &dyn CallStore) {
    for (id, at) in [("agent1", NOW), ("agent2", NOW - 60), ("agent3", NOW - 200)] {
        assert!(store.commit(&[Write::Agent(available(id, at))], NOW).await.unwrap());
    }
    let mut busy_away = stored_agent(store, "agent1", NOW).await;
    busy_away.answered(&sid(1), NOW);
    busy_away.say(Availability::Away, NOW * 1000);
    assert!(store.commit(&[Write::Agent(busy_away)], NOW).await.unwrap());
    let ids = |agents: Vec<AgentState>| agents.into_iter().map(|a| a.agent.to_string()).collect::<Vec<_>>();
    // agent3's lease ran out 110 s ago; away and busy agents are online.
    assert_eq!(ids(store.online_agents(NOW).await.unwrap()), ["agent2", "agent1"]);
}

pub async fn counts_the_line_and_the_team(store: &dyn CallStore) {
    assert_eq!(store.line(NOW).await.unwrap(), Line::default());
    assert_eq!(store.team(NOW).await.unwrap(), []);
    for n in [3, 1, 2] {
        store.enqueue(&caller(n, NOW)).await.unwrap();
    }
    // Caller 1 is with an agent: out of the line.
    let mut answered = stored_caller(store, 1, NOW).await;
    answered.answered(&agent("agent1"), NOW);
    assert!(store.commit(&[Write::Caller(answered)], NOW).await.unwrap());
    assert_eq!(store.line(NOW).await.unwrap(), Line { waiting: 2, longest_since_ms: Some(NOW * 1000 + 2) });
    assert_eq!(store.line(NOW + CALL_RECORD_TTL_SECONDS).await.unwrap(), Line::default(), "expired records");

    // agent2's lease ran out long ago, but their record holds: the team counts them, offline.
    for (id, at) in [("agent1", NOW), ("agent2", NOW - 3600)] {
        assert!(store.commit(&[Write::Agent(available(id, at))], NOW).await.unwrap());
    }
    let ids = |agents: Vec<AgentState>| {
        let mut ids = agents.into_iter().map(|a| a.agent.to_string()).collect::<Vec<_>>();
        ids.sort();
        ids
    };
    assert_eq!(ids(store.team(NOW).await.unwrap()), ["agent1", "agent2"]);
    assert_eq!(ids(store.online_agents(NOW).await.unwrap()), ["agent1"]);
    let after_agent2 = NOW - 3600 + crate::domain::PRESENCE_LEASE_SECONDS + CALL_RECORD_TTL_SECONDS;
    assert_eq!(ids(store.team(after_agent2).await.unwrap()), ["agent1"]);
}

pub async fn counts_each_outcome_of_a_call_once(store: &dyn CallStore) {
    let (day, expires_at) = ("2027-01-15", NOW + DAY_COUNTS_TTL_SECONDS);
    assert_eq!(store.day_counts(day).await.unwrap(), DayCounts::default());
    let count =
        async |call: u8, outcome: Outcome| store.count_outcome(day, &sid(call), outcome, expires_at).await.unwrap();
    assert!(count(1, Outcome::Answered { waited_ms: 10_000 }).await);
    assert!(!count(1, Outcome::Answered { waited_ms: 12_000 }).await, "a retry counts nothing");
    assert!(count(2, Outcome::Answered { waited_ms: 20_000 }).await);
    assert!(count(1, Outcome::Abandoned).await, "another outcome of the same call counts");
    assert!(count(3, Outcome::Voicemail).await);
    assert!(!count(3, Outcome::Voicemail).await);
    assert_eq!(
        store.day_counts(day).await.unwrap(),
        DayCounts { answered: 2, answered_wait_ms: 30_000, abandoned: 1, voicemails: 1 }
    );
    assert_eq!(store.day_counts("2027-01-16").await.unwrap(), DayCounts::default(), "each day its own");
}

macro_rules! call_store_contract {
    ($make_store:expr) => {
        mod contract_tests {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        let store = $make_store.await;
                        $crate::store::contract::$name(store.as_ref()).await;
                    }
                };
            }

            case!(enqueues_a_caller_once);
            case!(a_resent_arrival_knows_the_record_as_its_own);
            case!(unknown_and_expired_records_are_none);
            case!(commits_only_over_the_version_read);
            case!(commits_all_or_nothing);
            case!(stores_every_field);
            case!(forgets_a_caller_only_over_the_version_read);
            case!(lists_waiting_callers_in_arrival_order);
            case!(lists_free_agents_idle_longest_first);
            case!(lists_the_agents_whose_presence_holds);
            case!(stores_call_slots_over_the_version_read);
            case!(records_agent_tokens_until_they_expire);
            case!(counts_the_line_and_the_team);
            case!(counts_each_outcome_of_a_call_once);
        }
    };
}
pub(crate) use call_store_contract;

pub mod tickets {
    use crate::domain::{
        AgentId, MAX_NOTES, Note, NoteAuthor, NoteId, PhoneNumber, StatusChange, Ticket, TicketId, TicketRecord,
        TicketStatus, Voicemail,
    };
    use crate::store::{NoteAppended, TicketStore};

    pub fn ticket(n: u8) -> Ticket {
        Ticket {
            // Fixed ids, ordered by n, so a fixture compares equal to itself.
            id: TicketId::parse(&format!("01J{n:023}")).unwrap(),
            name: format!("Customer {n}"),
            phone_number: PhoneNumber::parse(&format!("+1555000{n:04}")).ok(),
            description: format!("Problem {n}: the mallet's head came off & \"won't\" go back <on>."),
            created_at: "2027-01-15T08:00:00Z".into(),
            customer: None,
            voicemail: None,
            outside_dial_countries: false,
        }
    }

    /// A browser caller's voicemail: no number, their identity, the recording.
    pub fn voicemail(n: u8) -> Ticket {
        Ticket {
            name: "Browser caller".into(),
            phone_number: None,
            description: "Voicemail".into(),
            customer: Some(format!("customer_{n:016x}")),
            voicemail: Some(Voicemail { recording_sid: format!("RE{n:032x}"), duration_seconds: 42 }),
            ..ticket(n)
        }
    }

    fn ids(tickets: &[Ticket]) -> Vec<TicketId> {
        tickets.iter().map(|t| t.id.clone()).collect()
    }

    fn record_ids(records: &[TicketRecord]) -> Vec<TicketId> {
        records.iter().map(|r| r.ticket.id.clone()).collect()
    }

    /// A ticket whose number agents may not call back.
    pub fn outside(n: u8) -> Ticket {
        Ticket {
            phone_number: PhoneNumber::parse(&format!("+1876555{n:04}")).ok(),
            outside_dial_countries: true,
            ..ticket(n)
        }
    }

    pub async fn stores_and_returns_tickets_unchanged(store: &dyn TicketStore) {
        assert!(store.create_ticket(&ticket(1)).await.unwrap());
        assert!(store.create_ticket(&voicemail(2)).await.unwrap());
        assert!(store.create_ticket(&outside(4)).await.unwrap());
        let page = store.list_tickets(TicketStatus::Open, 10, None).await.unwrap();
        assert_eq!(page.tickets, [outside(4), voicemail(2), ticket(1)].map(TicketRecord::new));
        assert_eq!(store.ticket(&outside(4).id).await.unwrap(), Some(outside(4)));
        assert_eq!(page.next_after, None);
        assert_eq!(store.ticket(&ticket(1).id).await.unwrap(), Some(ticket(1)));
        assert_eq!(store.ticket(&voicemail(2).id).await.unwrap(), Some(voicemail(2)));
        assert_eq!(store.ticket(&ticket(3).id).await.unwrap(), None);
    }

    pub async fn never_overwrites_a_ticket(store: &dyn TicketStore) {
        assert!(store.create_ticket(&voicemail(1)).await.unwrap());
        let again = Ticket { name: "Someone else".into(), ..voicemail(1) };
        assert!(!store.create_ticket(&again).await.unwrap(), "another ticket under its id");
        assert!(store.create_ticket(&voicemail(1)).await.unwrap(), "the same ticket: its write resent");
        assert_eq!(store.ticket(&voicemail(1).id).await.unwrap(), Some(voicemail(1)));
    }

    pub async fn lists_newest_first_in_pages(store: &dyn TicketStore) {
        // Stored out of order: the order comes from the ids, not from insertion.
        for n in [3, 1, 5, 2, 4] {
            store.create_ticket(&ticket(n)).await.unwrap();
        }
        let first = store.list_tickets(TicketStatus::Open, 2, None).await.unwrap();
        assert_eq!(record_ids(&first.tickets), ids(&[ticket(5), ticket(4)]));
        assert_eq!(first.next_after, Some(ticket(4).id));
        let second = store.list_tickets(TicketStatus::Open, 2, first.next_after.as_ref()).await.unwrap();
        assert_eq!(record_ids(&second.tickets), ids(&[ticket(3), ticket(2)]));
        let last = store.list_tickets(TicketStatus::Open, 2, second.next_after.as_ref()).await.unwrap();
        assert_eq!(record_ids(&last.tickets), ids(&[ticket(1)]));
        assert_eq!(last.next_after, None, "no cursor past the oldest ticket");
        let exact = store.list_tickets(TicketStatus::Open, 5, None).await.unwrap();
        assert_eq!((exact.tickets.len(), exact.next_after), (5, None));
    }

    pub async fn an_empty_store_lists_nothing(store: &dyn TicketStore) {
        let page = store.list_tickets(TicketStatus::Open, 20, None).await.unwrap();
        assert_eq!((page.tickets.len(), page.next_after), (0, None));
    }

    pub async fn finds_tickets_by_phone_number(store: &dyn TicketStore) {
        store.create_ticket(&ticket(1)).await.unwrap();
        store.create_ticket(&ticket(2)).await.unwrap();
        store.create_ticket(&voicemail(3)).await.unwrap();
        assert!(store.has_ticket_for(ticket(2).phone_number.as_ref().unwrap()).await.unwrap());
        assert!(!store.has_ticket_for(&PhoneNumber::parse("+15559999999").unwrap()).await.unwrap());
    }

    fn change(status: TicketStatus, by: &str, at: &str) -> StatusChange {
        StatusChange { status, by: AgentId::parse(by).unwrap(), at: at.into() }
    }

    pub fn note(n: usize, by: &str) -> Note {
        Note {
            id: NoteId::parse(&format!("note-{n}")).unwrap(),
            author: NoteAuthor::Agent(AgentId::parse(by).unwrap()),
            at: "2027-01-15T09:00:00Z".into(),
            text: format!("Called back, no answer ({n}).\nTry again <tomorrow> & \"later\"."),
        }
    }

    pub async fn closes_and_reopens_over_the_status_read(store: &dyn TicketStore) {
        store.create_ticket(&ticket(1)).await.unwrap();
        store.create_ticket(&ticket(2)).await.unwrap();
        let read = store.ticket_record(&ticket(1).id).await.unwrap().unwrap();
        assert_eq!(read, TicketRecord::new(ticket(1)), "filed open, with no history");
        let closed = read.after(change(TicketStatus::Closed, "agent1", "2027-01-15T09:00:00Z")).unwrap();
        assert!(store.change_status(&read, &closed).await.unwrap());
        assert_eq!(store.ticket_record(&ticket(1).id).await.unwrap(), Some(closed.clone()));
        let open = store.list_tickets(TicketStatus::Open, 10, None).await.unwrap();
        assert_eq!(record_ids(&open.tickets), [ticket(2).id]);
        let listed = store.list_tickets(TicketStatus::Closed, 10, None).await.unwrap();
        assert_eq!(listed.tickets, std::slice::from_ref(&closed));
        // Decided on the open ticket, after it was closed: refused, nothing written.
        let stale = read.after(change(TicketStatus::Closed, "agent2", "2027-01-15T09:01:00Z")).unwrap();
        assert!(!store.change_status(&read, &stale).await.unwrap());
        let reopened = closed.after(change(TicketStatus::Open, "agent2", "2027-01-15T09:02:00Z")).unwrap();
        assert!(store.change_status(&closed, &reopened).await.unwrap());
        let stored = store.ticket_record(&ticket(1).id).await.unwrap().unwrap();
        assert_eq!(stored, reopened);
        assert_eq!(stored.history.len(), 2);
        assert_eq!(
            record_ids(&store.list_tickets(TicketStatus::Open, 10, None).await.unwrap().tickets),
            [ticket(2).id, ticket(1).id]
        );
        assert!(store.list_tickets(TicketStatus::Closed, 10, None).await.unwrap().tickets.is_empty());
        let missing = TicketRecord::new(ticket(3));
        let next = missing.after(change(TicketStatus::Closed, "agent1", "2027-01-15T09:00:00Z")).unwrap();
        assert!(!store.change_status(&missing, &next).await.unwrap(), "no such ticket: nothing created");
        assert_eq!(store.ticket(&ticket(3).id).await.unwrap(), None);
    }

    pub async fn appends_each_note_once_up_to_the_limit(store: &dyn TicketStore) {
        store.create_ticket(&ticket(1)).await.unwrap();
        let id = ticket(1).id;
        assert_eq!(store.append_note(&id, &note(0, "agent1")).await.unwrap(), NoteAppended::Appended);
        assert_eq!(store.append_note(&id, &note(0, "agent1")).await.unwrap(), NoteAppended::AlreadyThere);
        assert_eq!(store.append_note(&ticket(2).id, &note(0, "agent1")).await.unwrap(), NoteAppended::NoSuchTicket);
        assert_eq!(store.ticket(&ticket(2).id).await.unwrap(), None, "no ticket made for a note");
        let customer = Note { id: NoteId::for_refiling("again"), author: NoteAuthor::Customer, ..note(1, "agent1") };
        assert_eq!(store.append_note(&id, &customer).await.unwrap(), NoteAppended::Appended);
        for n in 2..MAX_NOTES {
            assert_eq!(store.append_note(&id, &note(n, "agent2")).await.unwrap(), NoteAppended::Appended);
        }
        assert_eq!(store.append_note(&id, &note(MAX_NOTES, "agent1")).await.unwrap(), NoteAppended::Full);
        assert_eq!(store.append_note(&id, &note(0, "agent1")).await.unwrap(), NoteAppended::AlreadyThere);
        let record = store.ticket_record(&id).await.unwrap().unwrap();
        let mut expected = vec![note(0, "agent1"), customer];
        expected.extend((2..MAX_NOTES).map(|n| note(n, "agent2")));
        assert_eq!(record.notes, expected, "in order, unchanged");
        assert_eq!(record.ticket, ticket(1));
        assert_eq!(record.status, TicketStatus::Open);
    }

    pub async fn finds_a_numbers_tickets_in_pages(store: &dyn TicketStore) {
        let number = ticket(1).phone_number;
        for n in [3, 1, 5, 2, 4] {
            store.create_ticket(&Ticket { phone_number: number.clone(), ..ticket(n) }).await.unwrap();
        }
        store.create_ticket(&ticket(6)).await.unwrap();
        store.create_ticket(&voicemail(7)).await.unwrap();
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let page = store.tickets_for_number(number.as_ref().unwrap(), 2, after.as_ref()).await.unwrap();
            assert!(page.tickets.len() <= 2);
            let page_ids = record_ids(&page.tickets);
            let mut newest_first = page_ids.clone();
            newest_first.sort_by(|a, b| b.cmp(a));
            assert_eq!(page_ids, newest_first, "each page newest first");
            found.extend(page_ids);
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        found.sort();
        assert_eq!(found, [1, 2, 3, 4, 5].map(|n| ticket(n).id), "every one once, no other");
        let none = store.tickets_for_number(&PhoneNumber::parse("+15559999999").unwrap(), 2, None).await.unwrap();
        assert_eq!((none.tickets.len(), none.next_after), (0, None));
    }

    pub async fn finds_names_by_prefix_in_any_case(store: &dyn TicketStore) {
        for (n, name) in
            [(1, "Ada Lovelace"), (2, "ada Byron"), (3, "Grace Hopper"), (4, "ADAM Smith"), (5, "Adelaide")]
        {
            store.create_ticket(&Ticket { name: name.into(), ..ticket(n) }).await.unwrap();
        }
        let first = store.tickets_named("ada", 2, None).await.unwrap();
        assert_eq!(record_ids(&first.tickets), [ticket(2).id, ticket(1).id], "in name order");
        let rest = store.tickets_named("ada", 2, first.next_after.as_ref()).await.unwrap();
        assert_eq!((record_ids(&rest.tickets), rest.next_after), (vec![ticket(4).id], None));
        let all = store.tickets_named("ad", 10, None).await.unwrap();
        assert_eq!(record_ids(&all.tickets), [2, 1, 4, 5].map(|n| ticket(n).id));
        assert!(store.tickets_named("adx", 10, None).await.unwrap().tickets.is_empty());
        assert_eq!(record_ids(&store.tickets_named("grace h", 10, None).await.unwrap().tickets), [ticket(3).id]);
    }
}

macro_rules! ticket_store_contract {
    ($make_store:expr) => {
        macro_rules! ticket_case {
            ($name:ident) => {
                #[tokio::test]
                async fn $name() {
                    let store = $make_store.await;
                    $crate::store::contract::tickets::$name(store.as_ref()).await;
                }
            };
        }

        ticket_case!(stores_and_returns_tickets_unchanged);
        ticket_case!(lists_newest_first_in_pages);
        ticket_case!(an_empty_store_lists_nothing);
        ticket_case!(finds_tickets_by_phone_number);
        ticket_case!(never_overwrites_a_ticket);
        ticket_case!(closes_and_reopens_over_the_status_read);
        ticket_case!(appends_each_note_once_up_to_the_limit);
        ticket_case!(finds_a_numbers_tickets_in_pages);
        ticket_case!(finds_names_by_prefix_in_any_case);
    };
}
pub(crate) use ticket_store_contract;

pub mod agents {
    use crate::domain::AgentId;
    use crate::domain::{Agent, SIGN_IN_WINDOW_SECONDS, SignInAttempt, SignInCounter, SourceAddress};
    use crate::secret::Secret;
    use crate::store::AgentStore;

    use super::NOW;

    pub fn agent(id: &str) -> Agent {
        Agent::new(
            AgentId::parse(id).unwrap(),
            format!("Agent {id}"),
            Secret::new(format!("$argon2id$hash-of-{id}")),
            NOW,
        )
    }

    fn id(id: &str) -> AgentId {
        AgentId::parse(id).unwrap()
    }

    pub async fn creates_an_agent_once(store: &dyn AgentStore) {
        assert!(store.create_agent(&agent("agent1")).await.unwrap());
        let mut impostor = agent("agent1");
        impostor.password_hash = Secret::new("$argon2id$impostor");
        assert!(!store.create_agent(&impostor).await.unwrap(), "an existing agent is never overwritten");
        assert_eq!(store.agent(&id("agent1")).await.unwrap(), Some(agent("agent1")));
        assert_eq!(store.agent(&id("agent2")).await.unwrap(), None);
    }

    pub async fn lists_agents_by_id(store: &dyn AgentStore) {
        for name in ["agent2", "agent10", "agent1"] {
            store.create_agent(&agent(name)).await.unwrap();
        }
        // Sign-in counts live in the same table and must not show up as agents.
        store.count_sign_in_attempt(&SignInCounter::AgentId(id("agent1")), NOW).await.unwrap();
        store.count_sign_in_attempt(&address("192.0.2.1"), NOW).await.unwrap();
        let ids: Vec<String> =
            store.list_agents().await.unwrap().into_iter().map(|a| a.id.as_str().to_owned()).collect();
        assert_eq!(ids, ["agent1", "agent10", "agent2"]);
    }

    pub async fn every_change_ends_the_agents_sessions(store: &dyn AgentStore) {
        store.create_agent(&agent("agent1")).await.unwrap();
        store.create_agent(&agent("agent2")).await.unwrap();
        let epoch = |a: Option<Agent>| a.unwrap().session_epoch;

        store.end_sessions(&id("agent1")).await.unwrap();
        assert_eq!(epoch(store.agent(&id("agent1")).await.unwrap()), 1);

        assert!(store.set_password(&id("agent1"), &Secret::new("$argon2id$new")).await.unwrap());
        let changed = store.agent(&id("agent1")).await.unwrap().unwrap();
        assert_eq!((changed.password_hash.expose(), changed.session_epoch), ("$argon2id$new", 2));

        assert!(store.set_disabled(&id("agent1"), Some(NOW + 5)).await.unwrap());
        let disabled = store.agent(&id("agent1")).await.unwrap().unwrap();
        assert_eq!((disabled.disabled_at, disabled.session_epoch, disabled.is_enabled()), (Some(NOW + 5), 3, false));
        assert!(store.set_disabled(&id("agent1"), None).await.unwrap());
        assert!(store.agent(&id("agent1")).await.unwrap().unwrap().is_enabled());

        assert_eq!(store.agent(&id("agent2")).await.unwrap(), Some(agent("agent2")), "others are untouched");
        assert!(!store.set_password(&id("ghost"), &Secret::new("x")).await.unwrap());
        assert!(!store.set_disabled(&id("ghost"), Some(NOW)).await.unwrap());
        store.end_sessions(&id("ghost")).await.unwrap();
        assert_eq!(store.agent(&id("ghost")).await.unwrap(), None, "nothing is created for an unknown id");
    }

    fn address(address: &str) -> SignInCounter {
        SignInCounter::Address(SourceAddress::parse(address).unwrap())
    }

    fn counted(failures: u32) -> SignInAttempt {
        SignInAttempt::Counted { failures }
    }

    fn refused(retry_after: i64) -> SignInAttempt {
        SignInAttempt::Refused { retry_after }
    }

    pub async fn counts_sign_in_attempts_within_their_limits(store: &dyn AgentStore) {
        let agent1 = SignInCounter::AgentId(id("agent1"));
        let attempt = |counter: &SignInCounter, at: i64| {
            let counter = counter.clone();
            async move { store.count_sign_in_attempt(&counter, at).await.unwrap() }
        };
        // An id: three free, then 1 s, 2 s, 4 s... after the latest; a refusal is not counted.
        for n in 1..=3 {
            assert_eq!(attempt(&agent1, NOW).await, counted(n));
        }
        assert_eq!(attempt(&agent1, NOW).await, refused(1));
        assert_eq!(attempt(&agent1, NOW + 1).await, counted(4));
        assert_eq!(attempt(&agent1, NOW + 2).await, refused(1));
        assert_eq!(attempt(&agent1, NOW + 3).await, counted(5));
        assert_eq!(attempt(&agent1, NOW + 3).await, refused(4));
        assert_eq!(store.sign_in_failures(&agent1, NOW + 3).await.unwrap(), 5);
        assert_eq!(store.sign_in_failures(&SignInCounter::AgentId(id("agent2")), NOW).await.unwrap(), 0);
        assert_eq!(attempt(&SignInCounter::AgentId(id("agent2")), NOW + 3).await, counted(1), "ids are apart");

        // They expire a window after the latest, whether or not the table deleted them.
        let expiry = NOW + 3 + SIGN_IN_WINDOW_SECONDS;
        assert_eq!(store.sign_in_failures(&agent1, expiry - 1).await.unwrap(), 5);
        assert_eq!(store.sign_in_failures(&agent1, expiry).await.unwrap(), 0);
        assert_eq!(attempt(&agent1, expiry).await, counted(1), "an expired count starts over");

        // A success takes its own attempt back, or forgets them all.
        store.forgive_sign_in_attempt(&agent1).await.unwrap();
        assert_eq!(store.sign_in_failures(&agent1, expiry).await.unwrap(), 0);
        store.forgive_sign_in_attempt(&agent1).await.unwrap();
        assert_eq!(store.sign_in_failures(&agent1, expiry).await.unwrap(), 0, "never below nothing");
        assert_eq!(attempt(&agent1, expiry).await, counted(1));
        store.clear_sign_in_failures(&agent1).await.unwrap();
        assert_eq!(store.sign_in_failures(&agent1, expiry).await.unwrap(), 0);

        // An address: twenty, then blocked until a window after the twentieth.
        let guesser = address("198.51.100.7");
        for n in 1..=20 {
            assert_eq!(attempt(&guesser, NOW + i64::from(n)).await, counted(n));
        }
        assert_eq!(attempt(&guesser, NOW + 20).await, refused(SIGN_IN_WINDOW_SECONDS));
        assert_eq!(attempt(&guesser, NOW + 20 + SIGN_IN_WINDOW_SECONDS - 1).await, refused(1));
        assert_eq!(attempt(&address("198.51.100.8"), NOW + 20).await, counted(1), "addresses are apart");
        assert_eq!(attempt(&guesser, NOW + 20 + SIGN_IN_WINDOW_SECONDS).await, counted(1));
    }

    pub async fn holds_concurrent_attempts_to_the_limit_exactly(store: &dyn AgentStore) {
        // Polled together, so the store sees the attempts interleaved: exactly as many as the
        // limit lets through are counted, each once.
        let agent1 = SignInCounter::AgentId(id("agent1"));
        let guesser = address("2001:db8::1");
        for (counter, attempts, allowed, at) in [
            (&agent1, 12, 3, NOW),
            (&guesser, 30, 20, NOW),
            // Expired but still stored: one attempt starts it over, the others count on from it.
            (&agent1, 12, 3, NOW + SIGN_IN_WINDOW_SECONDS),
        ] {
            let outcomes =
                futures::future::join_all((0..attempts).map(|_| store.count_sign_in_attempt(counter, at))).await;
            let mut counts = Vec::new();
            for outcome in outcomes {
                match outcome.unwrap() {
                    SignInAttempt::Counted { failures } => counts.push(failures),
                    SignInAttempt::Refused { retry_after } => assert!(retry_after >= 1, "{counter}"),
                }
            }
            counts.sort_unstable();
            assert_eq!(counts, (1..=allowed).collect::<Vec<_>>(), "{counter}");
            assert_eq!(store.sign_in_failures(counter, at).await.unwrap(), allowed, "{counter}");
        }
    }
}

macro_rules! agent_store_contract {
    ($make_store:expr) => {
        macro_rules! agent_case {
            ($name:ident) => {
                #[tokio::test]
                async fn $name() {
                    let store = $make_store.await;
                    $crate::store::contract::agents::$name(store.as_ref()).await;
                }
            };
        }

        agent_case!(creates_an_agent_once);
        agent_case!(lists_agents_by_id);
        agent_case!(every_change_ends_the_agents_sessions);
        agent_case!(counts_sign_in_attempts_within_their_limits);
        agent_case!(holds_concurrent_attempts_to_the_limit_exactly);
    };
}
pub(crate) use agent_store_contract;

pub mod ledger {
    use crate::domain::{CallSid, Channel, LedgerEvent};
    use crate::store::LedgerStore;

    fn call(n: u8) -> CallSid {
        super::sid(n)
    }

    fn began(at_ms: i64, party: &str, day: &str) -> LedgerEvent {
        LedgerEvent::Began {
            at_ms,
            channel: Channel::Phone,
            caller: party.to_owned(),
            party: Some(party.to_owned()),
            day: day.to_owned(),
            agent: None,
        }
    }

    const EXPIRES: i64 = super::NOW + 396 * 86_400;

    pub async fn records_each_event_once(store: &dyn LedgerStore) {
        let ended = LedgerEvent::Ended { at_ms: 9_000, run: "CF1".into() };
        assert!(store.record(&call(1), &ended, EXPIRES).await.unwrap());
        // A second delivery of the same report, even one that says it differently, writes nothing.
        let again = LedgerEvent::Ended { at_ms: 9_500, run: "CF1".into() };
        assert!(!store.record(&call(1), &again, EXPIRES).await.unwrap());
        let start = began(1_000, "+15551230001", "2027-01-15");
        assert!(store.record(&call(1), &start, EXPIRES).await.unwrap());
        // The same key under another call is another event.
        assert!(store.record(&call(2), &ended, EXPIRES).await.unwrap());
        let mut events = store.events(&call(1)).await.unwrap();
        events.sort_by_key(LedgerEvent::at_ms);
        assert_eq!(events, [start, ended]);
        assert_eq!(store.events(&call(3)).await.unwrap(), []);
    }

    pub async fn finds_the_calls_of_a_party_newest_first_in_pages(store: &dyn LedgerStore) {
        let party = "+15551230002";
        for n in 1..=5_u8 {
            let event = began(i64::from(n) * 1_000, party, "2027-01-15");
            store.record(&call(n), &event, EXPIRES).await.unwrap();
        }
        store.record(&call(9), &began(7_000, "+15559999999", "2027-01-15"), EXPIRES).await.unwrap();
        // An event of a call that has not begun puts it in no index.
        store.record(&call(8), &LedgerEvent::Ended { at_ms: 1, run: "CF".into() }, EXPIRES).await.unwrap();
        let first = store.calls_of(party, 2, None).await.unwrap();
        assert_eq!(first.calls, [call(5), call(4)]);
        let second = store.calls_of(party, 2, first.next_after.as_deref()).await.unwrap();
        assert_eq!(second.calls, [call(3), call(2)]);
        let last = store.calls_of(party, 2, second.next_after.as_deref()).await.unwrap();
        assert_eq!((last.calls, last.next_after), (vec![call(1)], None));
        assert!(store.calls_of("+15550000000", 2, None).await.unwrap().calls.is_empty());
    }

    pub async fn finds_the_calls_of_a_day_in_the_order_they_began(store: &dyn LedgerStore) {
        for (n, day) in [(1_u8, "2027-01-14"), (2, "2027-01-15"), (3, "2027-01-15"), (4, "2027-01-16")] {
            let event = began(10_000 - i64::from(n) * 1_000, "+15551230003", day);
            store.record(&call(n), &event, EXPIRES).await.unwrap();
        }
        let page = store.calls_on("2027-01-15", 1, None).await.unwrap();
        assert_eq!(page.calls, [call(3)]);
        let rest = store.calls_on("2027-01-15", 1, page.next_after.as_deref()).await.unwrap();
        assert_eq!((rest.calls, rest.next_after), (vec![call(2)], None));
    }
}

macro_rules! ledger_store_contract {
    ($make_store:expr) => {
        macro_rules! ledger_case {
            ($name:ident) => {
                #[tokio::test]
                async fn $name() {
                    let store = $make_store.await;
                    $crate::store::contract::ledger::$name(store.as_ref()).await;
                }
            };
        }

        ledger_case!(records_each_event_once);
        ledger_case!(finds_the_calls_of_a_party_newest_first_in_pages);
        ledger_case!(finds_the_calls_of_a_day_in_the_order_they_began);
    };
}
pub(crate) use ledger_store_contract;
