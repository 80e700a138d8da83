//! The behaviour every `CallStore` must have. Each implementation instantiates the suite with
//! `call_store_contract!(async { /* a fresh, empty store */ })`.

use super::{CALL_RECORD_TTL_SECONDS, CallStore, Conference};
use crate::domain::{AgentId, CallSid};

pub fn sid(n: u8) -> CallSid {
    CallSid::parse(&format!("CA{n:032x}")).unwrap()
}

pub fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

pub fn conference(n: u8, now: i64) -> Conference {
    Conference {
        id: sid(n),
        first_agent: agent("agent1"),
        created_at: now,
        expires_at: now + CALL_RECORD_TTL_SECONDS,
    }
}

pub const NOW: i64 = 1_800_000_000;

pub async fn creates_a_conference_once(store: &dyn CallStore) {
    let first = conference(1, NOW);
    assert!(store.create_conference(&first).await.unwrap());
    let retry = Conference {
        first_agent: agent("agent2"),
        ..conference(1, NOW + 5)
    };
    assert!(
        !store.create_conference(&retry).await.unwrap(),
        "a retry must not create a second record"
    );
    assert_eq!(
        store.conference(&sid(1), NOW + 5).await.unwrap(),
        Some(first)
    );
}

pub async fn keeps_simultaneous_conferences_apart(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    assert!(store.create_conference(&conference(2, NOW)).await.unwrap());
    store
        .record_agent_joined(&agent("agent1"), &sid(2), NOW)
        .await
        .unwrap();
    store
        .record_agent_joined(&agent("agent2"), &sid(1), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .conference_of_agent(&agent("agent1"), NOW)
            .await
            .unwrap(),
        Some(sid(2))
    );
    assert_eq!(
        store
            .conference_of_agent(&agent("agent2"), NOW)
            .await
            .unwrap(),
        Some(sid(1))
    );
    assert_eq!(
        store.conference(&sid(1), NOW).await.unwrap().map(|c| c.id),
        Some(sid(1))
    );
    assert_eq!(
        store.conference(&sid(2), NOW).await.unwrap().map(|c| c.id),
        Some(sid(2))
    );
}

pub async fn an_agent_is_in_the_conference_joined_last(store: &dyn CallStore) {
    store
        .record_agent_joined(&agent("agent1"), &sid(1), NOW)
        .await
        .unwrap();
    store
        .record_agent_joined(&agent("agent1"), &sid(2), NOW + 60)
        .await
        .unwrap();
    assert_eq!(
        store
            .conference_of_agent(&agent("agent1"), NOW + 61)
            .await
            .unwrap(),
        Some(sid(2))
    );
}

pub async fn unknown_records_are_none(store: &dyn CallStore) {
    assert_eq!(store.conference(&sid(9), NOW).await.unwrap(), None);
    assert_eq!(
        store
            .conference_of_agent(&agent("agent9"), NOW)
            .await
            .unwrap(),
        None
    );
    store.delete_conference(&sid(9)).await.unwrap();
}

pub async fn ignores_expired_records(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    store
        .record_agent_joined(&agent("agent1"), &sid(1), NOW)
        .await
        .unwrap();
    let expiry = NOW + CALL_RECORD_TTL_SECONDS;
    assert!(
        store
            .conference(&sid(1), expiry - 1)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.conference(&sid(1), expiry).await.unwrap(), None);
    assert_eq!(
        store
            .conference_of_agent(&agent("agent1"), expiry)
            .await
            .unwrap(),
        None
    );
    // An expired record that the TTL sweeper has not removed yet does not block a new one.
    assert!(
        store
            .create_conference(&conference(1, expiry))
            .await
            .unwrap()
    );
}

pub async fn deletes_a_conference_so_a_retry_can_create_it(store: &dyn CallStore) {
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
    store.delete_conference(&sid(1)).await.unwrap();
    assert_eq!(store.conference(&sid(1), NOW).await.unwrap(), None);
    assert!(store.create_conference(&conference(1, NOW)).await.unwrap());
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
            case!(keeps_simultaneous_conferences_apart);
            case!(an_agent_is_in_the_conference_joined_last);
            case!(unknown_records_are_none);
            case!(ignores_expired_records);
            case!(deletes_a_conference_so_a_retry_can_create_it);
        }
    };
}
pub(crate) use call_store_contract;
