use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{AgentStore, CallStore, StoreError, TicketPage, TicketStore};
use crate::domain::{Agent, CALL_RECORD_TTL_SECONDS, Conference, LOGIN_LOCKOUT_SECONDS};
use crate::domain::{AgentId, CallSid, PhoneNumber, Ticket, TicketId};
use crate::secret::Secret;

/// In-memory stores with the same semantics as the DynamoDB ones, for tests and benchmarks.
/// `failing()` builds one whose every operation fails, to exercise fault paths.
#[derive(Debug, Default)]
pub struct MemoryCallStore {
    state: Mutex<State>,
    failing: bool,
    /// Every conference write lands but its reply is lost, so it is sent again, as the SDK does.
    losing_replies: bool,
}

#[derive(Debug, Default)]
struct State {
    conferences: HashMap<CallSid, Conference>,
    /// (conference, agent) → the agent's call, and when the entry expires.
    participants: HashMap<(CallSid, AgentId), (CallSid, i64)>,
    agents: HashMap<AgentId, (CallSid, i64)>,
}

impl State {
    /// The conference, if it is live at `now` and its chain stands where the caller saw it.
    fn chain_at(&mut self, id: &CallSid, tried_so_far: usize, now: i64) -> Option<&mut Conference> {
        self.conferences
            .get_mut(id)
            .filter(|c| c.expires_at > now && c.tried.len() == tried_so_far && c.joined.is_empty())
    }

    fn create_conference(&mut self, conference: &Conference) -> bool {
        match self.conferences.get(&conference.id).filter(|c| c.expires_at > conference.created_at) {
            Some(existing) => existing.delivery == conference.delivery,
            None => {
                self.conferences.insert(conference.id.clone(), conference.clone());
                true
            }
        }
    }

    /// Forgets `agent`'s current conference only if it is still `conference`.
    fn forget_agent_in(&mut self, agent: &AgentId, conference: &CallSid) {
        if self.agents.get(agent).is_some_and(|(current, _)| current == conference) {
            self.agents.remove(agent);
        }
    }
}

fn insert_sorted<T: Ord>(items: &mut Vec<T>, item: T) {
    if let Err(position) = items.binary_search(&item) {
        items.insert(position, item);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("injected store failure")]
struct InjectedFailure;

impl MemoryCallStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing() -> Self {
        Self { failing: true, ..Self::default() }
    }

    /// A store whose conference creations land but lose their reply, so each is sent a second
    /// time, as the AWS SDK retries a write whose answer never came.
    pub fn losing_replies() -> Self {
        Self { losing_replies: true, ..Self::default() }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        if self.failing {
            return Err(StoreError::Unavailable(Box::new(InjectedFailure)));
        }
        // A poisoned lock means a test panicked mid-write; the data is still usable.
        Ok(self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Agents recorded as participants of `conference`, for assertions in tests.
    pub fn participants(&self, conference: &CallSid) -> Vec<AgentId> {
        let Ok(state) = self.state() else {
            return Vec::new();
        };
        let mut agents: Vec<AgentId> =
            state.participants.keys().filter(|(c, _)| c == conference).map(|(_, a)| a.clone()).collect();
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
        let mut created = state.create_conference(conference);
        if self.losing_replies {
            created = state.create_conference(conference);
        }
        Ok(created)
    }

    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        Ok(self.state()?.conferences.get(id).filter(|c| c.expires_at > now).cloned())
    }

    async fn delete_conference(&self, id: &CallSid) -> Result<(), StoreError> {
        self.state()?.conferences.remove(id);
        Ok(())
    }

    async fn add_agent_call(&self, id: &CallSid, call: &CallSid, now: i64) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(conference) = state.conferences.get_mut(id).filter(|c| c.expires_at > now) else {
            return Ok(false);
        };
        insert_sorted(&mut conference.agent_calls, call.clone());
        Ok(true)
    }

    async fn try_next_agent(
        &self,
        id: &CallSid,
        tried_so_far: usize,
        next: &AgentId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(conference) = state.chain_at(id, tried_so_far, now) else {
            return Ok(false);
        };
        conference.tried.push(next.clone());
        conference.chain_moved_at = now;
        Ok(true)
    }

    async fn abandon_conference(&self, id: &CallSid, tried_so_far: usize, now: i64) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if state.chain_at(id, tried_so_far, now).is_none() {
            return Ok(false);
        }
        state.conferences.remove(id);
        Ok(true)
    }

    async fn record_agent_joined(
        &self,
        agent: &AgentId,
        call: &CallSid,
        conference: &CallSid,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(record) = state.conferences.get_mut(conference).filter(|c| c.expires_at > now) else {
            return Ok(false);
        };
        insert_sorted(&mut record.joined, agent.clone());
        let expires_at = now + CALL_RECORD_TTL_SECONDS;
        state.participants.insert((conference.clone(), agent.clone()), (call.clone(), expires_at));
        state.agents.insert(agent.clone(), (conference.clone(), expires_at));
        Ok(true)
    }

    async fn conference_of_agent(&self, agent: &AgentId, now: i64) -> Result<Option<CallSid>, StoreError> {
        Ok(self.state()?.agents.get(agent).filter(|(_, expires_at)| *expires_at > now).map(|(c, _)| c.clone()))
    }

    async fn agent_left(&self, conference: &CallSid, call: &CallSid) -> Result<Option<AgentId>, StoreError> {
        let mut state = self.state()?;
        let agent = state
            .participants
            .iter()
            .find(|((c, _), (agent_call, _))| c == conference && agent_call == call)
            .map(|((_, agent), _)| agent.clone());
        if let Some(agent) = &agent {
            state.forget_agent_in(agent, conference);
        }
        Ok(agent)
    }

    async fn end_conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        let mut state = self.state()?;
        let record = state.conferences.remove(id).filter(|c| c.expires_at > now);
        let agents: Vec<AgentId> = state.participants.keys().filter(|(c, _)| c == id).map(|(_, a)| a.clone()).collect();
        for agent in agents {
            state.forget_agent_in(&agent, id);
            state.participants.remove(&(id.clone(), agent));
        }
        Ok(record)
    }
}

#[derive(Debug, Default)]
pub struct MemoryTicketStore {
    tickets: Mutex<std::collections::BTreeMap<TicketId, Ticket>>,
    failing: bool,
}

impl MemoryTicketStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing() -> Self {
        Self { failing: true, ..Self::default() }
    }

    fn tickets(&self) -> Result<MutexGuard<'_, std::collections::BTreeMap<TicketId, Ticket>>, StoreError> {
        if self.failing {
            return Err(StoreError::Unavailable(Box::new(InjectedFailure)));
        }
        Ok(self.tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// How many tickets are stored, for assertions in tests.
    pub fn len(&self) -> usize {
        self.tickets().map_or(0, |tickets| tickets.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl TicketStore for MemoryTicketStore {
    async fn create_ticket(&self, ticket: &Ticket) -> Result<(), StoreError> {
        self.tickets()?.insert(ticket.id.clone(), ticket.clone());
        Ok(())
    }

    async fn list_tickets(&self, limit: u32, after: Option<&TicketId>) -> Result<TicketPage, StoreError> {
        let tickets = self.tickets()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut older = tickets.values().rev().filter(|t| after.is_none_or(|after| t.id < *after));
        let page: Vec<Ticket> = older.by_ref().take(limit).cloned().collect();
        let more = older.next().is_some();
        let next_after = if more { page.last().map(|t| t.id.clone()) } else { None };
        Ok(TicketPage { tickets: page, next_after })
    }

    async fn has_ticket_for(&self, phone_number: &PhoneNumber) -> Result<bool, StoreError> {
        Ok(self.tickets()?.values().any(|t| t.phone_number == *phone_number))
    }
}

#[derive(Debug, Default)]
pub struct MemoryAgentStore {
    state: Mutex<AgentState>,
    failing: bool,
}

#[derive(Debug, Default)]
struct AgentState {
    agents: std::collections::BTreeMap<AgentId, Agent>,
    /// Agent id → failed sign-ins and when they expire.
    login_failures: HashMap<AgentId, (u32, i64)>,
}

impl MemoryAgentStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing() -> Self {
        Self { failing: true, ..Self::default() }
    }

    fn state(&self) -> Result<MutexGuard<'_, AgentState>, StoreError> {
        if self.failing {
            return Err(StoreError::Unavailable(Box::new(InjectedFailure)));
        }
        Ok(self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn change(&self, id: &AgentId, change: impl FnOnce(&mut Agent)) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(agent) = state.agents.get_mut(id) else { return Ok(false) };
        change(agent);
        agent.session_epoch += 1;
        Ok(true)
    }
}

#[async_trait]
impl AgentStore for MemoryAgentStore {
    async fn create_agent(&self, agent: &Agent) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if state.agents.contains_key(&agent.id) {
            return Ok(false);
        }
        state.agents.insert(agent.id.clone(), agent.clone());
        Ok(true)
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(self.state()?.agents.get(id).cloned())
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        Ok(self.state()?.agents.values().cloned().collect())
    }

    async fn set_password(&self, id: &AgentId, password_hash: &Secret) -> Result<bool, StoreError> {
        self.change(id, |agent| agent.password_hash = password_hash.clone())
    }

    async fn set_disabled(&self, id: &AgentId, disabled_at: Option<i64>) -> Result<bool, StoreError> {
        self.change(id, |agent| agent.disabled_at = disabled_at)
    }

    async fn end_sessions(&self, id: &AgentId) -> Result<(), StoreError> {
        self.change(id, |_| ()).map(|_| ())
    }

    async fn login_failures(&self, id: &AgentId, now: i64) -> Result<u32, StoreError> {
        let state = self.state()?;
        Ok(state.login_failures.get(id).filter(|(_, expires_at)| *expires_at > now).map_or(0, |(count, _)| *count))
    }

    async fn record_login_failure(&self, id: &AgentId, now: i64) -> Result<u32, StoreError> {
        let mut state = self.state()?;
        let entry = state.login_failures.entry(id.clone()).or_insert((0, now));
        if entry.1 <= now {
            entry.0 = 0;
        }
        *entry = (entry.0 + 1, now + LOGIN_LOCKOUT_SECONDS);
        Ok(entry.0)
    }

    async fn clear_login_failures(&self, id: &AgentId) -> Result<(), StoreError> {
        self.state()?.login_failures.remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    mod agents {
        use super::*;
        contract::agent_store_contract!(async { Box::new(MemoryAgentStore::new()) as Box<dyn AgentStore> });
    }

    mod tickets {
        use super::*;
        contract::ticket_store_contract!(async { Box::new(MemoryTicketStore::new()) as Box<dyn TicketStore> });
    }

    contract::call_store_contract!(async { Box::new(MemoryCallStore::new()) as Box<dyn CallStore> });

    #[tokio::test]
    async fn a_failing_store_fails_every_operation() {
        let store = MemoryCallStore::failing();
        let sid = CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap();
        let agent = AgentId::parse("agent1").unwrap();
        assert!(store.conference(&sid, 0).await.is_err());
        assert!(store.delete_conference(&sid).await.is_err());
        assert!(store.add_agent_call(&sid, &sid, 0).await.is_err());
        assert!(store.try_next_agent(&sid, 1, &agent, 0).await.is_err());
        assert!(store.abandon_conference(&sid, 1, 0).await.is_err());
        assert!(store.record_agent_joined(&agent, &sid, &sid, 0).await.is_err());
        assert!(store.agent_left(&sid, &sid).await.is_err());
        assert!(store.end_conference(&sid, 0).await.is_err());
    }
}
