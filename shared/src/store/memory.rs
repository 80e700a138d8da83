use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{CALL_RECORD_TTL_SECONDS, CallStore, Conference, StoreError};
use crate::domain::{AgentId, CallSid};

/// An in-memory `CallStore` with the same semantics as the DynamoDB one, for tests and
/// benchmarks. `failing()` builds one whose every operation fails, to exercise fault paths.
#[derive(Debug, Default)]
pub struct MemoryCallStore {
    state: Mutex<State>,
    failing: bool,
}

#[derive(Debug, Default)]
struct State {
    conferences: HashMap<CallSid, Conference>,
    participants: HashMap<(CallSid, AgentId), i64>,
    agents: HashMap<AgentId, (CallSid, i64)>,
}

#[derive(Debug, thiserror::Error)]
#[error("injected store failure")]
struct InjectedFailure;

impl MemoryCallStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing() -> Self {
        Self {
            failing: true,
            ..Self::default()
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        if self.failing {
            return Err(StoreError::Unavailable(Box::new(InjectedFailure)));
        }
        // A poisoned lock means a test panicked mid-write; the data is still usable.
        Ok(self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Agents recorded as participants of `conference`, for assertions in tests.
    pub fn participants(&self, conference: &CallSid) -> Vec<AgentId> {
        let Ok(state) = self.state() else {
            return Vec::new();
        };
        let mut agents: Vec<AgentId> = state
            .participants
            .keys()
            .filter(|(c, _)| c == conference)
            .map(|(_, a)| a.clone())
            .collect();
        agents.sort();
        agents
    }

    /// Every stored conference id, for assertions in tests.
    pub fn conference_ids(&self) -> Vec<CallSid> {
        let Ok(state) = self.state() else {
            return Vec::new();
        };
        let mut ids: Vec<CallSid> = state.conferences.keys().cloned().collect();
        ids.sort();
        ids
    }
}

#[async_trait]
impl CallStore for MemoryCallStore {
    async fn create_conference(&self, conference: &Conference) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let live = state
            .conferences
            .get(&conference.id)
            .is_some_and(|c| c.expires_at > conference.created_at);
        if live {
            return Ok(false);
        }
        state
            .conferences
            .insert(conference.id.clone(), conference.clone());
        Ok(true)
    }

    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        Ok(self
            .state()?
            .conferences
            .get(id)
            .filter(|c| c.expires_at > now)
            .cloned())
    }

    async fn delete_conference(&self, id: &CallSid) -> Result<(), StoreError> {
        self.state()?.conferences.remove(id);
        Ok(())
    }

    async fn record_agent_joined(
        &self,
        agent: &AgentId,
        conference: &CallSid,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state()?;
        let expires_at = now + CALL_RECORD_TTL_SECONDS;
        state
            .participants
            .insert((conference.clone(), agent.clone()), expires_at);
        state
            .agents
            .insert(agent.clone(), (conference.clone(), expires_at));
        Ok(())
    }

    async fn conference_of_agent(
        &self,
        agent: &AgentId,
        now: i64,
    ) -> Result<Option<CallSid>, StoreError> {
        Ok(self
            .state()?
            .agents
            .get(agent)
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(c, _)| c.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    contract::call_store_contract!(async {
        Box::new(MemoryCallStore::new()) as Box<dyn CallStore>
    });

    #[tokio::test]
    async fn a_failing_store_fails_every_operation() {
        let store = MemoryCallStore::failing();
        let sid = CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap();
        assert!(store.conference(&sid, 0).await.is_err());
        assert!(store.delete_conference(&sid).await.is_err());
    }
}
