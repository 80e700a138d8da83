//! The behaviour every `CallStore` must have. Each implementation instantiates the suite with
//! `call_store_contract!(async { /* a fresh, empty store */ })`.

use super::CallStore;
use crate::domain::{AgentId, CALL_RECORD_TTL_SECONDS, CallSid, Conference};

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

pub fn conference(n: u8, now: i64) -> Conference {
    Conference::new(sid(n), agent("agent1"), now)
}

pub const NOW: i64 = 1_800_000_000;

pub async fn creates_a_conference_once(store: &dyn CallStore) {
    let first = conference(1, NOW);
    assert!(store.create_conference(&first).await.unwrap());
    let retry = Conference::new(sid(1), agent("agent2"), NOW + 5);
    assert!(!store.create_conference(&retry).await.unwrap(), "a retry must not create a second record");
    assert_eq!(store.conference(&sid(1), NOW + 5).await.unwrap(), Some(first));
}

pub async fn a_new_conference_has_tried_its_first_agent_only(store: &dyn CallStore) {
    let created = Conference::new(sid(1), agent("agent2"), NOW);
    assert!(store.create_conference(&created).await.unwrap());
    let stored = store.conference(&sid(1), NOW).await.unwrap().unwrap();
    assert_eq!(
        stored,
        Conference {
            id: sid(1),
            first_agent: agent("agent2"),
            tried: vec![agent("agent2")],
            joined: vec![],
            agent_calls: vec![],
            created_at: NOW,
            expires_at: NOW + CALL_RECORD_TTL_SECONDS,
            chain_moved_at: NOW,
            delivery: created.delivery.clone(),
        }
    );
}

pub async fn a_resent_creation_knows_the_conference_as_its_own(store: &dyn CallStore) {
    // The SDK sends the very same write again when its reply was lost.
    let first = conference(1, NOW);
    assert!(store.create_conference(&first).await.unwrap());
    assert!(store.create_conference(&first).await.unwrap(), "the write that landed is this delivery's own");
    // Another delivery of the webhook (Twilio's retry) is not.
    let retry = conference(1, NOW);
    assert_ne!(retry.delivery, first.delivery, "each delivery has its own");
    assert!(!store.create_conference(&retry).await.unwrap());
    assert_eq!(store.conference(&sid(1), NOW).await.unwrap(), Some(first));
}

pub async fn the_chain_remembers_when_it_moved(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.try_next_agent(&sid(1), 1, &agent("agent2"), NOW + 25).await.unwrap());
    let stored = store.conference(&sid(1), NOW + 30).await.unwrap().unwrap();
    assert_eq!((stored.created_at, stored.chain_moved_at), (NOW, NOW + 25));
    // A move refused changes nothing.
    assert!(!store.try_next_agent(&sid(1), 1, &agent("agent3"), NOW + 40).await.unwrap());
    assert_eq!(store.conference(&sid(1), NOW + 40).await.unwrap().unwrap().chain_moved_at, NOW + 25);
}

pub async fn keeps_simultaneous_conferences_apart(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.create_conference(&conference(2, NOW)).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(2), NOW).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent2"), &agent_call(2), &sid(1), NOW).await.unwrap());
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), Some(sid(2)));
    assert_eq!(store.conference_of_agent(&agent("agent2"), NOW).await.unwrap(), Some(sid(1)));
    let one = store.conference(&sid(1), NOW).await.unwrap().unwrap();
    let two = store.conference(&sid(2), NOW).await.unwrap().unwrap();
    assert_eq!((one.id, one.joined), (sid(1), vec![agent("agent2")]));
    assert_eq!((two.id, two.joined), (sid(2), vec![agent("agent1")]));
}

pub async fn an_agent_is_in_the_conference_joined_last(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.create_conference(&conference(2, NOW)).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(1), NOW).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(2), &sid(2), NOW + 60).await.unwrap());
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW + 61).await.unwrap(), Some(sid(2)));
}

pub async fn unknown_records_are_none(store: &dyn CallStore) {
    assert_eq!(store.conference(&sid(9), NOW).await.unwrap(), None);
    assert_eq!(store.conference_of_agent(&agent("agent9"), NOW).await.unwrap(), None);
    store.delete_conference(&sid(9)).await.unwrap();
    assert_eq!(store.agent_left(&sid(9), &agent_call(1)).await.unwrap(), None);
    assert_eq!(store.end_conference(&sid(9), NOW).await.unwrap(), None);
}

pub async fn changes_nothing_in_a_conference_that_is_gone(store: &dyn CallStore) {
    assert!(!store.add_agent_call(&sid(9), &agent_call(1), NOW).await.unwrap());
    assert!(!store.try_next_agent(&sid(9), 1, &agent("agent2"), NOW).await.unwrap());
    assert!(!store.abandon_conference(&sid(9), 1, NOW).await.unwrap());
    assert!(!store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(9), NOW).await.unwrap());
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), None);
    // None of them brought a record into being.
    assert_eq!(store.conference(&sid(9), NOW).await.unwrap(), None);
    assert!(store.create_conference(&conference(9, NOW)).await.unwrap());
}

pub async fn ignores_expired_records(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(1), NOW).await.unwrap());
    let expiry = NOW + CALL_RECORD_TTL_SECONDS;
    assert!(store.conference(&sid(1), expiry - 1).await.unwrap().is_some());
    assert_eq!(store.conference(&sid(1), expiry).await.unwrap(), None);
    assert_eq!(store.conference_of_agent(&agent("agent1"), expiry).await.unwrap(), None);
    // An expired record that the TTL sweeper has not removed yet does not block a new one.
    assert!(store.create_conference(&conference(1, expiry)).await.unwrap());
}

pub async fn changes_nothing_in_an_expired_conference(store: &dyn CallStore) {
    let created = conference(1, NOW);
    assert!(store.create_conference(&created).await.unwrap());
    let expiry = NOW + CALL_RECORD_TTL_SECONDS;
    assert!(!store.add_agent_call(&sid(1), &agent_call(1), expiry).await.unwrap());
    assert!(!store.try_next_agent(&sid(1), 1, &agent("agent2"), expiry).await.unwrap());
    assert!(!store.abandon_conference(&sid(1), 1, expiry).await.unwrap());
    assert!(!store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(1), expiry).await.unwrap());
    assert_eq!(store.conference(&sid(1), expiry - 1).await.unwrap(), Some(created));
    assert_eq!(store.end_conference(&sid(1), expiry).await.unwrap(), None, "expired: nothing to report");
    assert_eq!(store.conference(&sid(1), expiry - 1).await.unwrap(), None, "but it is gone");
}

pub async fn deletes_a_conference_so_a_retry_can_create_it(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    store.delete_conference(&sid(1)).await.unwrap();
    assert_eq!(store.conference(&sid(1), NOW).await.unwrap(), None);
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
}

pub async fn remembers_each_agent_call_once(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    for call in [agent_call(2), agent_call(1), agent_call(2)] {
        assert!(store.add_agent_call(&sid(1), &call, NOW).await.unwrap());
    }
    let stored = store.conference(&sid(1), NOW).await.unwrap().unwrap();
    assert_eq!(stored.agent_calls, [agent_call(1), agent_call(2)]);
}

pub async fn the_chain_moves_on_once_per_step(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.try_next_agent(&sid(1), 1, &agent("agent2"), NOW).await.unwrap());
    // A duplicate callback saw the chain where it was before: it must not move it again.
    assert!(!store.try_next_agent(&sid(1), 1, &agent("agent3"), NOW).await.unwrap());
    assert!(!store.abandon_conference(&sid(1), 1, NOW).await.unwrap());
    assert!(store.try_next_agent(&sid(1), 2, &agent("agent3"), NOW).await.unwrap());
    let stored = store.conference(&sid(1), NOW).await.unwrap().unwrap();
    assert_eq!(stored.tried, [agent("agent1"), agent("agent2"), agent("agent3")]);
    assert_eq!(stored.first_agent, agent("agent1"));
}

pub async fn the_chain_stops_once_an_agent_joins(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(1), NOW).await.unwrap());
    assert!(!store.try_next_agent(&sid(1), 1, &agent("agent2"), NOW).await.unwrap());
    assert!(!store.abandon_conference(&sid(1), 1, NOW).await.unwrap());
    let stored = store.conference(&sid(1), NOW).await.unwrap().unwrap();
    assert_eq!((stored.tried, stored.joined), (vec![agent("agent1")], vec![agent("agent1")]));
}

pub async fn abandons_a_conference_once(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.try_next_agent(&sid(1), 1, &agent("agent2"), NOW).await.unwrap());
    assert!(store.abandon_conference(&sid(1), 2, NOW).await.unwrap());
    assert_eq!(store.conference(&sid(1), NOW).await.unwrap(), None);
    assert!(!store.abandon_conference(&sid(1), 2, NOW).await.unwrap(), "only one caller apologises");
}

pub async fn records_who_joined(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    for (name, call) in [("agent2", agent_call(2)), ("agent1", agent_call(1)), ("agent2", agent_call(2))] {
        assert!(store.record_agent_joined(&agent(name), &call, &sid(1), NOW).await.unwrap());
    }
    let stored = store.conference(&sid(1), NOW).await.unwrap().unwrap();
    assert_eq!(stored.joined, [agent("agent1"), agent("agent2")]);
}

pub async fn an_agent_who_left_is_in_no_call(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(1), NOW).await.unwrap());
    // The customer's own call leaving is no agent's.
    assert_eq!(store.agent_left(&sid(1), &sid(1)).await.unwrap(), None);
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), Some(sid(1)));
    assert_eq!(store.agent_left(&sid(1), &agent_call(1)).await.unwrap(), Some(agent("agent1")));
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), None);
    // Again, as a duplicate callback would: no harm.
    assert_eq!(store.agent_left(&sid(1), &agent_call(1)).await.unwrap(), Some(agent("agent1")));
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW).await.unwrap(), None);
}

pub async fn leaving_an_old_conference_keeps_the_newer_one(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.create_conference(&conference(2, NOW)).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(1), NOW).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(2), &sid(2), NOW + 60).await.unwrap());
    // The first call's leave arrives late.
    assert_eq!(store.agent_left(&sid(1), &agent_call(1)).await.unwrap(), Some(agent("agent1")));
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW + 61).await.unwrap(), Some(sid(2)));
}

pub async fn ending_a_conference_forgets_everything_about_it(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.create_conference(&conference(2, NOW)).await.unwrap());
    assert!(store.add_agent_call(&sid(1), &agent_call(1), NOW).await.unwrap());
    assert!(store.add_agent_call(&sid(1), &agent_call(2), NOW).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent1"), &agent_call(1), &sid(1), NOW).await.unwrap());
    assert!(store.record_agent_joined(&agent("agent2"), &agent_call(2), &sid(1), NOW).await.unwrap());
    // agent2 has moved on to another customer already.
    assert!(store.record_agent_joined(&agent("agent2"), &agent_call(3), &sid(2), NOW + 1).await.unwrap());

    let ended = store.end_conference(&sid(1), NOW + 2).await.unwrap().unwrap();
    assert_eq!(ended.agent_calls, [agent_call(1), agent_call(2)]);
    assert_eq!(ended.joined, [agent("agent1"), agent("agent2")]);
    assert_eq!(store.conference(&sid(1), NOW + 2).await.unwrap(), None);
    assert_eq!(store.conference_of_agent(&agent("agent1"), NOW + 2).await.unwrap(), None);
    assert_eq!(store.conference_of_agent(&agent("agent2"), NOW + 2).await.unwrap(), Some(sid(2)));
    assert_eq!(store.agent_left(&sid(1), &agent_call(1)).await.unwrap(), None, "its participants are gone");
    assert!(store.conference(&sid(2), NOW + 2).await.unwrap().is_some());

    // Twilio sends conference-end twice, or a leave after the end: nothing left to change.
    assert_eq!(store.end_conference(&sid(1), NOW + 3).await.unwrap(), None);
    assert_eq!(store.conference_of_agent(&agent("agent2"), NOW + 3).await.unwrap(), Some(sid(2)));
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

            case!(creates_a_conference_once);
            case!(a_new_conference_has_tried_its_first_agent_only);
            case!(a_resent_creation_knows_the_conference_as_its_own);
            case!(the_chain_remembers_when_it_moved);
            case!(keeps_simultaneous_conferences_apart);
            case!(an_agent_is_in_the_conference_joined_last);
            case!(unknown_records_are_none);
            case!(changes_nothing_in_a_conference_that_is_gone);
            case!(ignores_expired_records);
            case!(changes_nothing_in_an_expired_conference);
            case!(deletes_a_conference_so_a_retry_can_create_it);
            case!(remembers_each_agent_call_once);
            case!(the_chain_moves_on_once_per_step);
            case!(the_chain_stops_once_an_agent_joins);
            case!(abandons_a_conference_once);
            case!(records_who_joined);
            case!(an_agent_who_left_is_in_no_call);
            case!(leaving_an_old_conference_keeps_the_newer_one);
            case!(ending_a_conference_forgets_everything_about_it);
        }
    };
}
pub(crate) use call_store_contract;

pub mod tickets {
    use crate::domain::{PhoneNumber, Ticket, TicketId};
    use crate::store::TicketStore;

    pub fn ticket(n: u8) -> Ticket {
        Ticket {
            // Fixed ids, ordered by n, so a fixture compares equal to itself.
            id: TicketId::parse(&format!("01J{n:023}")).unwrap(),
            name: format!("Customer {n}"),
            phone_number: PhoneNumber::parse(&format!("+1555000{n:04}")).unwrap(),
            description: format!("Problem {n}: the mallet's head came off & \"won't\" go back <on>."),
            created_at: "2027-01-15T08:00:00Z".into(),
        }
    }

    fn ids(tickets: &[Ticket]) -> Vec<TicketId> {
        tickets.iter().map(|t| t.id.clone()).collect()
    }

    pub async fn stores_and_returns_tickets_unchanged(store: &dyn TicketStore) {
        store.create_ticket(&ticket(1)).await.unwrap();
        let page = store.list_tickets(10, None).await.unwrap();
        assert_eq!(page.tickets, [ticket(1)]);
        assert_eq!(page.next_after, None);
    }

    pub async fn lists_newest_first_in_pages(store: &dyn TicketStore) {
        // Stored out of order: the order comes from the ids, not from insertion.
        for n in [3, 1, 5, 2, 4] {
            store.create_ticket(&ticket(n)).await.unwrap();
        }
        let first = store.list_tickets(2, None).await.unwrap();
        assert_eq!(ids(&first.tickets), ids(&[ticket(5), ticket(4)]));
        assert_eq!(first.next_after, Some(ticket(4).id));
        let second = store.list_tickets(2, first.next_after.as_ref()).await.unwrap();
        assert_eq!(ids(&second.tickets), ids(&[ticket(3), ticket(2)]));
        let last = store.list_tickets(2, second.next_after.as_ref()).await.unwrap();
        assert_eq!(ids(&last.tickets), ids(&[ticket(1)]));
        assert_eq!(last.next_after, None, "no cursor past the oldest ticket");
        let exact = store.list_tickets(5, None).await.unwrap();
        assert_eq!((exact.tickets.len(), exact.next_after), (5, None));
    }

    pub async fn an_empty_store_lists_nothing(store: &dyn TicketStore) {
        let page = store.list_tickets(20, None).await.unwrap();
        assert_eq!((page.tickets.len(), page.next_after), (0, None));
    }

    pub async fn finds_tickets_by_phone_number(store: &dyn TicketStore) {
        store.create_ticket(&ticket(1)).await.unwrap();
        store.create_ticket(&ticket(2)).await.unwrap();
        assert!(store.has_ticket_for(&ticket(2).phone_number).await.unwrap());
        assert!(!store.has_ticket_for(&PhoneNumber::parse("+15559999999").unwrap()).await.unwrap());
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
    };
}
pub(crate) use ticket_store_contract;

pub mod agents {
    use crate::domain::AgentId;
    use crate::domain::{Agent, LOGIN_LOCKOUT_SECONDS};
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
        // Failed sign-ins live in the same table and must not show up as agents.
        store.record_login_failure(&id("agent1"), NOW).await.unwrap();
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

    pub async fn counts_failed_sign_ins_until_they_expire(store: &dyn AgentStore) {
        let agent1 = id("agent1");
        assert_eq!(store.login_failures(&agent1, NOW).await.unwrap(), 0);
        for n in 1..=3 {
            assert_eq!(store.record_login_failure(&agent1, NOW + i64::from(n)).await.unwrap(), n);
        }
        assert_eq!(store.login_failures(&agent1, NOW + 3).await.unwrap(), 3);
        assert_eq!(store.login_failures(&id("agent2"), NOW + 3).await.unwrap(), 0);
        // They expire a lockout period after the latest, whether or not the table deleted them.
        let expiry = NOW + 3 + LOGIN_LOCKOUT_SECONDS;
        assert_eq!(store.login_failures(&agent1, expiry - 1).await.unwrap(), 3);
        assert_eq!(store.login_failures(&agent1, expiry).await.unwrap(), 0);
        assert_eq!(store.record_login_failure(&agent1, expiry).await.unwrap(), 1, "an expired count starts over");

        store.clear_login_failures(&agent1).await.unwrap();
        assert_eq!(store.login_failures(&agent1, expiry).await.unwrap(), 0);
    }

    pub async fn counts_concurrent_failures_exactly(store: &dyn AgentStore) {
        let agent1 = id("agent1");
        // Polled together, so the store sees the writes interleaved.
        let attempts = futures::future::join_all((0..8).map(|_| store.record_login_failure(&agent1, NOW))).await;
        let mut counts: Vec<u32> = attempts.into_iter().map(Result::unwrap).collect();
        counts.sort_unstable();
        assert_eq!(counts, (1..=8).collect::<Vec<_>>(), "each failure counted once");
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
        agent_case!(counts_failed_sign_ins_until_they_expire);
        agent_case!(counts_concurrent_failures_exactly);
    };
}
pub(crate) use agent_store_contract;
