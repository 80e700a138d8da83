use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{AgentStore, CallStore, NoteAppended, StoreError, TicketPage, TicketStore, Write};
use crate::domain::{Agent, AgentState, CallerState, Conference, SIGN_IN_WINDOW_SECONDS, SignInAttempt, SignInCounter};
use crate::domain::{AgentId, AgentToken, CallSid, CallSlots, PhoneNumber, SlotHolder, Ticket, TicketId};
use crate::domain::{DayCounts, Line, Outcome};
use crate::domain::{MAX_NOTES, Note, TicketRecord, TicketStatus, name_key};
use crate::secret::Secret;

/// In-memory stores with the same semantics as the DynamoDB ones, for tests and benchmarks.
/// `failing()` builds one whose every operation fails, to exercise fault paths.
#[derive(Debug, Default)]
pub struct MemoryCallStore {
    state: Mutex<Calls>,
    failing: bool,
    /// Down from some moment on (`go_down`): every operation fails after it.
    down: std::sync::atomic::AtomicBool,
    /// Every caller's arrival lands but its reply is lost, so it is sent again, as the SDK does.
    losing_replies: bool,
    /// Counting an outcome fails; everything else works.
    failing_counts: bool,
    /// The next commit lands but its reply is lost: the SDK sends the transaction again, and
    /// that finds the versions it was made over gone, so the caller is told it failed.
    lose_next_commit_reply: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Calls {
    callers: HashMap<CallSid, Conference>,
    /// An agent's state, and when the record expires.
    agents: HashMap<AgentId, (AgentState, i64)>,
    slots: HashMap<SlotHolder, CallSlots>,
    agent_tokens: HashMap<String, AgentToken>,
    day_counts: HashMap<String, DayCounts>,
    /// The outcomes counted, by outcome and call.
    counted: std::collections::HashSet<(&'static str, CallSid)>,
}

impl Calls {
    fn live_caller(&self, id: &CallSid, now: i64) -> Option<&Conference> {
        self.callers.get(id).filter(|caller| caller.expires_at > now)
    }

    fn live_agent(&self, agent: &AgentId, now: i64) -> Option<&AgentState> {
        self.agents.get(agent).filter(|(_, expires_at)| *expires_at > now).map(|(state, _)| state)
    }

    fn live_slots(&self, holder: &SlotHolder, now: i64) -> Option<&CallSlots> {
        self.slots.get(holder).filter(|slots| slots.expires_at > now)
    }

    fn enqueue(&mut self, caller: &Conference) -> bool {
        match self.live_caller(&caller.id, caller.created_at) {
            Some(existing) => existing.delivery == caller.delivery,
            None => {
                self.callers.insert(caller.id.clone(), Conference { version: 1, ..caller.clone() });
                true
            }
        }
    }

    /// Whether `write` is over the version stored now; an expired record is no record.
    fn holds(&self, write: &Write, now: i64) -> bool {
        let stored = match write {
            Write::Caller(caller) | Write::ForgetCaller(caller) => self.live_caller(&caller.id, now).map(|c| c.version),
            Write::Agent(state) => self.live_agent(&state.agent, now).map(|a| a.version),
            Write::Slots(slots) => self.live_slots(&slots.holder, now).map(|s| s.version),
        };
        let expected = match write {
            Write::Caller(caller) | Write::ForgetCaller(caller) => caller.version,
            Write::Agent(state) => state.version,
            Write::Slots(slots) => slots.version,
        };
        stored.unwrap_or(0) == expected
    }

    fn apply(&mut self, write: &Write) {
        match write {
            Write::Caller(caller) => {
                self.callers.insert(caller.id.clone(), Conference { version: caller.version + 1, ..caller.clone() });
            }
            Write::ForgetCaller(caller) => {
                self.callers.remove(&caller.id);
            }
            Write::Agent(state) => {
                let stored = AgentState { version: state.version + 1, ..state.clone() };
                let expires_at = stored.expires_at();
                self.agents.insert(state.agent.clone(), (stored, expires_at));
            }
            Write::Slots(slots) => {
                self.slots.insert(slots.holder.clone(), CallSlots { version: slots.version + 1, ..slots.clone() });
            }
        }
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

    /// A store whose callers' arrivals land but lose their reply, so each is sent a second
    /// time, as the AWS SDK retries a write whose answer never came.
    pub fn losing_replies() -> Self {
        Self { losing_replies: true, ..Self::default() }
    }

    /// A store that cannot count the wallboard's outcomes, and does everything else.
    pub fn failing_counts() -> Self {
        Self { failing_counts: true, ..Self::default() }
    }

    /// From now on every operation fails, as when DynamoDB goes down in the middle of a call.
    pub fn go_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Loses the reply to the next commit, which lands all the same (see the field).
    pub fn lose_next_commit_reply(&self) {
        self.lose_next_commit_reply.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn state(&self) -> Result<MutexGuard<'_, Calls>, StoreError> {
        if self.failing || self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable(Box::new(InjectedFailure)));
        }
        // A poisoned lock means a test panicked mid-write; the data is still usable.
        Ok(self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Every stored caller's id, for assertions in tests.
    pub fn conference_ids(&self) -> Vec<CallSid> {
        let Ok(state) = self.state() else {
            return Vec::new();
        };
        let mut ids: Vec<CallSid> = state.callers.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The agents in a caller's call, for assertions in tests.
    pub fn participants(&self, conference: &CallSid) -> Vec<AgentId> {
        let Ok(state) = self.state() else {
            return Vec::new();
        };
        state.callers.get(conference).map(|caller| caller.joined.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl CallStore for MemoryCallStore {
    async fn enqueue(&self, caller: &Conference) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let created = state.enqueue(caller);
        if self.losing_replies {
            return Ok(state.enqueue(caller));
        }
        Ok(created)
    }

    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        Ok(self.state()?.live_caller(id, now).cloned())
    }

    async fn agent_state(&self, agent: &AgentId, now: i64) -> Result<Option<AgentState>, StoreError> {
        Ok(self.state()?.live_agent(agent, now).cloned())
    }

    async fn commit(&self, writes: &[Write], now: i64) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if !writes.iter().all(|write| state.holds(write, now)) {
            return Ok(false);
        }
        for write in writes {
            state.apply(write);
        }
        Ok(!self.lose_next_commit_reply.swap(false, std::sync::atomic::Ordering::SeqCst))
    }

    async fn waiting(&self, limit: u32, now: i64) -> Result<Vec<Conference>, StoreError> {
        let state = self.state()?;
        let mut waiting: Vec<&Conference> = state
            .callers
            .values()
            .filter(|caller| caller.state == CallerState::Waiting && caller.expires_at > now)
            .collect();
        waiting.sort_by_key(|caller| caller.queue_key());
        Ok(waiting.into_iter().take(limit as usize).cloned().collect())
    }

    async fn ahead_of(&self, caller: &Conference) -> Result<u32, StoreError> {
        let state = self.state()?;
        let key = caller.queue_key();
        let ahead = state
            .callers
            .values()
            .filter(|other| other.state == CallerState::Waiting && other.queue_key() < key)
            .count();
        Ok(u32::try_from(ahead).unwrap_or(u32::MAX))
    }

    async fn online_agents(&self, now: i64) -> Result<Vec<AgentState>, StoreError> {
        let state = self.state()?;
        let mut online: Vec<AgentState> =
            state.agents.values().map(|(agent, _)| agent).filter(|agent| agent.lease_until > now).cloned().collect();
        online.sort_by_key(|agent| agent.lease_until);
        Ok(online)
    }

    async fn available_agents(&self, limit: u32, now: i64) -> Result<Vec<AgentState>, StoreError> {
        let state = self.state()?;
        let mut pool: Vec<&AgentState> = state
            .agents
            .values()
            .filter(|(agent, expires_at)| agent.in_pool() && *expires_at > now)
            .map(|(agent, _)| agent)
            .collect();
        pool.sort_by_key(|agent| agent.pool_key());
        Ok(pool.into_iter().take(limit as usize).cloned().collect())
    }

    async fn call_slots(&self, holder: &SlotHolder, now: i64) -> Result<Option<CallSlots>, StoreError> {
        Ok(self.state()?.live_slots(holder, now).cloned())
    }

    async fn record_agent_token(&self, token: &AgentToken) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if state.agent_tokens.contains_key(&token.id) {
            return Ok(false);
        }
        state.agent_tokens.insert(token.id.clone(), token.clone());
        Ok(true)
    }

    async fn agent_token(&self, id: &str, now: i64) -> Result<Option<AgentToken>, StoreError> {
        Ok(self.state()?.agent_tokens.get(id).filter(|token| token.expires_at > now).cloned())
    }

    async fn line(&self, now: i64) -> Result<Line, StoreError> {
        let state = self.state()?;
        let waiting: Vec<&Conference> = state
            .callers
            .values()
            .filter(|caller| caller.state == CallerState::Waiting && caller.expires_at > now)
            .collect();
        Ok(Line {
            waiting: u32::try_from(waiting.len()).unwrap_or(u32::MAX),
            longest_since_ms: waiting.iter().min_by_key(|caller| caller.queue_key()).map(|c| c.arrived_at_ms),
        })
    }

    async fn team(&self, now: i64) -> Result<Vec<AgentState>, StoreError> {
        let state = self.state()?;
        let mut team: Vec<AgentState> =
            state.agents.values().filter(|(_, expires_at)| *expires_at > now).map(|(agent, _)| agent.clone()).collect();
        team.sort_by_key(|agent| agent.lease_until);
        Ok(team)
    }

    async fn count_outcome(
        &self,
        day: &str,
        call: &CallSid,
        outcome: Outcome,
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        if self.failing_counts {
            return Err(StoreError::Unavailable(Box::new(InjectedFailure)));
        }
        let mut state = self.state()?;
        if !state.counted.insert((outcome.as_str(), call.clone())) {
            return Ok(false);
        }
        state.day_counts.entry(day.to_owned()).or_default().add(outcome);
        Ok(true)
    }

    async fn day_counts(&self, day: &str) -> Result<DayCounts, StoreError> {
        Ok(self.state()?.day_counts.get(day).copied().unwrap_or_default())
    }
}

#[derive(Debug, Default)]
pub struct MemoryTicketStore {
    tickets: Mutex<std::collections::BTreeMap<TicketId, TicketRecord>>,
    failing: bool,
}

impl MemoryTicketStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing() -> Self {
        Self { failing: true, ..Self::default() }
    }

    fn tickets(&self) -> Result<MutexGuard<'_, std::collections::BTreeMap<TicketId, TicketRecord>>, StoreError> {
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

    /// Stores `record` as it is (a ticket with a status and notes already), for tests.
    pub fn insert_record(&self, record: TicketRecord) {
        if let Ok(mut tickets) = self.tickets() {
            tickets.insert(record.ticket.id.clone(), record);
        }
    }
}

/// `limit` records from `records` after the one with id `after`, and the cursor past them.
fn ticket_page<'a>(
    records: impl Iterator<Item = &'a TicketRecord>,
    limit: u32,
    after: Option<&TicketId>,
) -> TicketPage {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut records = records.peekable();
    if let Some(after) = after {
        while records.next_if(|record| record.ticket.id != *after).is_some() {}
        records.next();
    }
    let page: Vec<TicketRecord> = records.by_ref().take(limit).cloned().collect();
    let more = records.next().is_some();
    let next_after = if more { page.last().map(|t| t.ticket.id.clone()) } else { None };
    TicketPage { tickets: page, next_after }
}

#[async_trait]
impl TicketStore for MemoryTicketStore {
    async fn create_ticket(&self, ticket: &Ticket) -> Result<bool, StoreError> {
        let mut tickets = self.tickets()?;
        if let Some(existing) = tickets.get(&ticket.id) {
            return Ok(existing.ticket == *ticket);
        }
        tickets.insert(ticket.id.clone(), TicketRecord::new(ticket.clone()));
        Ok(true)
    }

    async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        Ok(self.tickets()?.get(id).map(|record| record.ticket.clone()))
    }

    async fn list_tickets(
        &self,
        status: TicketStatus,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError> {
        let tickets = self.tickets()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut older =
            tickets.values().rev().filter(|t| t.status == status && after.is_none_or(|after| t.ticket.id < *after));
        let page: Vec<TicketRecord> = older.by_ref().take(limit).cloned().collect();
        let more = older.next().is_some();
        let next_after = if more { page.last().map(|t| t.ticket.id.clone()) } else { None };
        Ok(TicketPage { tickets: page, next_after })
    }

    async fn has_ticket_for(&self, phone_number: &PhoneNumber) -> Result<bool, StoreError> {
        Ok(self.tickets()?.values().any(|t| t.ticket.phone_number.as_ref() == Some(phone_number)))
    }

    async fn ticket_record(&self, id: &TicketId) -> Result<Option<TicketRecord>, StoreError> {
        Ok(self.tickets()?.get(id).cloned())
    }

    async fn change_status(&self, read: &TicketRecord, next: &TicketRecord) -> Result<bool, StoreError> {
        let mut tickets = self.tickets()?;
        let Some(stored) = tickets.get_mut(&read.ticket.id) else { return Ok(false) };
        if stored.revision != read.revision {
            return Ok(false);
        }
        stored.status = next.status;
        stored.history.clone_from(&next.history);
        stored.revision = next.revision;
        Ok(true)
    }

    async fn append_note(&self, id: &TicketId, note: &Note) -> Result<NoteAppended, StoreError> {
        let mut tickets = self.tickets()?;
        let Some(stored) = tickets.get_mut(id) else { return Ok(NoteAppended::NoSuchTicket) };
        if stored.has_note(&note.id) {
            return Ok(NoteAppended::AlreadyThere);
        }
        if stored.notes.len() >= MAX_NOTES {
            return Ok(NoteAppended::Full);
        }
        stored.notes.push(note.clone());
        Ok(NoteAppended::Appended)
    }

    async fn tickets_for_number(
        &self,
        phone_number: &PhoneNumber,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError> {
        let tickets = self.tickets()?;
        let matching = tickets.values().rev().filter(|t| t.ticket.phone_number.as_ref() == Some(phone_number));
        Ok(ticket_page(matching, limit, after))
    }

    async fn tickets_named(
        &self,
        prefix: &str,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError> {
        let tickets = self.tickets()?;
        let mut matching: Vec<&TicketRecord> =
            tickets.values().filter(|t| name_key(&t.ticket.name).starts_with(prefix)).collect();
        matching
            .sort_by(|a, b| (name_key(&a.ticket.name), &a.ticket.id).cmp(&(name_key(&b.ticket.name), &b.ticket.id)));
        Ok(ticket_page(matching.into_iter(), limit, after))
    }
}

#[derive(Debug, Default)]
pub struct MemoryAgentStore {
    state: Mutex<Agents>,
    failing: bool,
}

#[derive(Debug, Default)]
struct Agents {
    agents: std::collections::BTreeMap<AgentId, Agent>,
    /// Sign-in counter → its failures, the latest, and when they expire.
    sign_in_counts: HashMap<SignInCounter, (u32, i64, i64)>,
}

impl MemoryAgentStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing() -> Self {
        Self { failing: true, ..Self::default() }
    }

    fn state(&self) -> Result<MutexGuard<'_, Agents>, StoreError> {
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

    async fn count_sign_in_attempt(&self, counter: &SignInCounter, now: i64) -> Result<SignInAttempt, StoreError> {
        let mut state = self.state()?;
        let expires_at = now + SIGN_IN_WINDOW_SECONDS;
        let entry = state.sign_in_counts.entry(counter.clone()).or_insert((0, now, expires_at));
        if entry.2 <= now {
            *entry = (0, now, expires_at);
        }
        if let Err(retry_after) = counter.limit().check(entry.0, entry.1, now) {
            return Ok(SignInAttempt::Refused { retry_after });
        }
        *entry = (entry.0 + 1, now, expires_at);
        Ok(SignInAttempt::Counted { failures: entry.0 })
    }

    async fn forgive_sign_in_attempt(&self, counter: &SignInCounter) -> Result<(), StoreError> {
        if let Some(entry) = self.state()?.sign_in_counts.get_mut(counter) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn clear_sign_in_failures(&self, counter: &SignInCounter) -> Result<(), StoreError> {
        self.state()?.sign_in_counts.remove(counter);
        Ok(())
    }

    async fn sign_in_failures(&self, counter: &SignInCounter, now: i64) -> Result<u32, StoreError> {
        let state = self.state()?;
        Ok(state.sign_in_counts.get(counter).filter(|(_, _, expires_at)| *expires_at > now).map_or(0, |(n, _, _)| *n))
    }
}

/// Each call's ledger events, by key.
type LedgerCalls = HashMap<CallSid, std::collections::BTreeMap<String, crate::domain::LedgerEvent>>;

/// The ledger in memory. `set_failing` makes every operation fail from then on (or work
/// again), so a test can show a retried report recording its event once.
#[derive(Debug, Default)]
pub struct MemoryLedgerStore {
    /// Each call's events by key, and the index entries of the calls that began.
    calls: Mutex<LedgerCalls>,
    failing: std::sync::atomic::AtomicBool,
    /// How many events were written (not refused as recorded already), for the writes per call.
    writes: std::sync::atomic::AtomicU64,
}

impl MemoryLedgerStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing() -> Self {
        let store = Self::default();
        store.set_failing(true);
        store
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many events were written.
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn calls(&self) -> Result<MutexGuard<'_, LedgerCalls>, StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable(Box::new(InjectedFailure)));
        }
        Ok(self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The index entries (`started_key`, call) of the calls whose beginning matches `matches`.
    fn index(&self, matches: impl Fn(&Option<String>, &str) -> bool) -> Result<Vec<(String, CallSid)>, StoreError> {
        let calls = self.calls()?;
        let mut entries: Vec<(String, CallSid)> = calls
            .iter()
            .filter_map(|(call, events)| match events.get("began") {
                Some(crate::domain::LedgerEvent::Began { at_ms, party, day, .. }) if matches(party, day) => {
                    Some((crate::domain::started_key(*at_ms, call), call.clone()))
                }
                _ => None,
            })
            .collect();
        entries.sort();
        Ok(entries)
    }
}

fn ledger_page(entries: Vec<(String, CallSid)>, limit: u32) -> super::LedgerPage {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = entries.len() > limit;
    let entries: Vec<_> = entries.into_iter().take(limit).collect();
    let next_after = if more { entries.last().map(|(key, _)| key.clone()) } else { None };
    super::LedgerPage { calls: entries.into_iter().map(|(_, call)| call).collect(), next_after }
}

#[async_trait]
impl super::LedgerStore for MemoryLedgerStore {
    async fn record(
        &self,
        call: &CallSid,
        event: &crate::domain::LedgerEvent,
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut calls = self.calls()?;
        let events = calls.entry(call.clone()).or_default();
        if events.contains_key(&event.key()) {
            return Ok(false);
        }
        events.insert(event.key(), event.clone());
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(true)
    }

    async fn events(&self, call: &CallSid) -> Result<Vec<crate::domain::LedgerEvent>, StoreError> {
        Ok(self.calls()?.get(call).map(|events| events.values().cloned().collect()).unwrap_or_default())
    }

    async fn calls_of(&self, party: &str, limit: u32, before: Option<&str>) -> Result<super::LedgerPage, StoreError> {
        let mut entries = self.index(|of, _| of.as_deref() == Some(party))?;
        entries.retain(|(key, _)| before.is_none_or(|before| key.as_str() < before));
        entries.reverse();
        Ok(ledger_page(entries, limit))
    }

    async fn calls_on(&self, day: &str, limit: u32, after: Option<&str>) -> Result<super::LedgerPage, StoreError> {
        let mut entries = self.index(|_, on| on == day)?;
        entries.retain(|(key, _)| after.is_none_or(|after| key.as_str() > after));
        Ok(ledger_page(entries, limit))
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

    mod ledger {
        use super::*;
        contract::ledger_store_contract!(async {
            Box::new(MemoryLedgerStore::new()) as Box<dyn crate::store::LedgerStore>
        });
    }

    #[tokio::test]
    async fn a_failing_store_fails_every_operation() {
        let store = MemoryCallStore::failing();
        let caller = contract::caller(1, contract::NOW);
        let agent = AgentId::parse("agent1").unwrap();
        assert!(store.enqueue(&caller).await.is_err());
        assert!(store.conference(&caller.id, 0).await.is_err());
        assert!(store.agent_state(&agent, 0).await.is_err());
        assert!(store.commit(&[Write::Caller(caller.clone())], 0).await.is_err());
        assert!(store.waiting(10, 0).await.is_err());
        assert!(store.ahead_of(&caller).await.is_err());
        assert!(store.available_agents(10, 0).await.is_err());
        assert!(store.online_agents(0).await.is_err());
        assert!(store.line(0).await.is_err());
        assert!(store.team(0).await.is_err());
        assert!(store.count_outcome("2027-01-15", &caller.id, crate::domain::Outcome::Abandoned, 0).await.is_err());
        assert!(store.day_counts("2027-01-15").await.is_err());
    }
}
