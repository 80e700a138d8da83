//! Storage ports. Handlers see only these traits; `dynamo` serves production and the local
//! emulator, `memory` serves handler tests and benchmarks. Both pass the same contract tests.

#[cfg(feature = "aws")]
pub mod dynamo;
/// In-memory stores with the DynamoDB ones' semantics, for tests and benchmarks only.
#[cfg(any(test, feature = "testkit"))]
pub mod memory;

use async_trait::async_trait;

use crate::domain::{
    Agent, AgentId, AgentState, AgentToken, CallSid, CallSlots, Conference, DayCounts, LedgerEvent, Line, Outcome,
    PhoneNumber, SignInAttempt, SignInCounter, SlotHolder, Ticket, TicketId,
};
use crate::domain::{Note, TicketRecord, TicketStatus};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a stored record is malformed: {0}")]
    Corrupt(String),
}

/// A record to store, only if it is still at the version it was read at (`version`; 0 for a
/// record that must not exist yet). The store writes it at the next version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Caller(Conference),
    Agent(AgentState),
    /// The caller's record goes: their call is over.
    ForgetCaller(Conference),
    /// A customer's or an address's browser-call slots.
    Slots(CallSlots),
}

/// The live state of calls and agents: each caller's place in the queue and their conference,
/// each agent's presence and call. Twilio delivers webhooks and status callbacks more than once
/// and out of order, and two functions may route at once, so every change is read, decided,
/// then committed only over what was read (`commit`); a change that lost a race is decided
/// again over what won.
#[async_trait]
pub trait CallStore: Send + Sync {
    /// Records a caller who arrived. `Ok(false)` when a live record with that id exists
    /// already, written by another delivery: that is how a webhook that Twilio retries is
    /// recognised. `Ok(true)` when this call created it, including when the record found carries
    /// this caller's own `delivery`: the write landed, its reply was lost, and the retry met it.
    async fn enqueue(&self, caller: &Conference) -> Result<bool, StoreError>;

    /// The caller's record, unless it does not exist or has expired at `now`.
    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError>;

    /// The agent's live state, if they ever had one that has not expired at `now`.
    async fn agent_state(&self, agent: &AgentId, now: i64) -> Result<Option<AgentState>, StoreError>;

    /// Applies `writes` together, each only over the version it was read at (a record that has
    /// expired at `now` counts as not there). `Ok(false)`, and nothing written, when any of them
    /// changed in between.
    async fn commit(&self, writes: &[Write], now: i64) -> Result<bool, StoreError>;

    /// Up to `limit` callers waiting in line, longest waiting first (from an index: a caller who
    /// stopped waiting a moment ago may still be among them; `commit` is what decides).
    async fn waiting(&self, limit: u32, now: i64) -> Result<Vec<Conference>, StoreError>;

    /// How many callers wait ahead of `caller`.
    async fn ahead_of(&self, caller: &Conference) -> Result<u32, StoreError>;

    /// Every agent whose presence holds at `now` (a small team: one page).
    async fn online_agents(&self, now: i64) -> Result<Vec<AgentState>, StoreError>;

    /// Up to `limit` agents who said they are available and are on no call, idle longest
    /// first; whether their lease still holds is for the caller to check.
    async fn available_agents(&self, limit: u32, now: i64) -> Result<Vec<AgentState>, StoreError>;

    /// `holder`'s browser-call slots, unless it has no record that has not expired at `now`.
    async fn call_slots(&self, holder: &SlotHolder, now: i64) -> Result<Option<CallSlots>, StoreError>;

    /// Records an agent token as it is issued. `Ok(false)`, and nothing written, when a live
    /// record with its id exists already (a collision of random ids, never a retry).
    async fn record_agent_token(&self, token: &AgentToken) -> Result<bool, StoreError>;

    /// The record of the agent token `id`, unless there is none that has not expired at `now`.
    async fn agent_token(&self, id: &str, now: i64) -> Result<Option<AgentToken>, StoreError>;

    /// How many callers wait in line at `now`, and when the longest-waiting arrived: the whole
    /// `waiting` index, which holds only the callers in line.
    async fn line(&self, now: i64) -> Result<Line, StoreError>;

    /// Every agent whose presence record has not expired at `now`, online or not (the `online`
    /// index without its lease condition; a small team: one page).
    async fn team(&self, now: i64) -> Result<Vec<AgentState>, StoreError>;

    /// Counts `outcome` of `call` in `day`'s counts, kept until `expires_at`, once per call and
    /// outcome however often it is asked (a retried webhook): `Ok(false)`, and nothing counted,
    /// when it was counted already.
    async fn count_outcome(
        &self,
        day: &str,
        call: &CallSid,
        outcome: Outcome,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// `day`'s counts; zeros for a day nothing was counted in.
    async fn day_counts(&self, day: &str) -> Result<DayCounts, StoreError>;
}

/// One page of tickets, and where the next page starts if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPage {
    pub tickets: Vec<TicketRecord>,
    /// The id of the last ticket on this page, when more tickets follow.
    pub next_after: Option<TicketId>,
}

/// What became of a note to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteAppended {
    Appended,
    /// A note with its id is on the ticket already (a retried request): nothing written.
    AlreadyThere,
    /// The ticket holds `MAX_NOTES` notes: nothing written.
    Full,
    NoSuchTicket,
}

#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Stores a new ticket; returns only once it is durably stored. `Ok(false)`, and nothing
    /// written, when another ticket with that id exists already: a ticket is never overwritten.
    /// `Ok(true)` when the one there is this very ticket (a write resent after its reply was
    /// lost, or a retried callback).
    async fn create_ticket(&self, ticket: &Ticket) -> Result<bool, StoreError>;

    /// The ticket with this id.
    async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError>;

    /// Up to `limit` tickets with `status`, newest first, starting after `after` (exclusive).
    async fn list_tickets(
        &self,
        status: TicketStatus,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError>;

    /// The ticket with this id, with its status and notes.
    async fn ticket_record(&self, id: &TicketId) -> Result<Option<TicketRecord>, StoreError>;

    /// Stores `next` (a status change decided on `read`), only if the ticket's status has not
    /// changed since `read`: `Ok(false)`, and nothing written, when it has.
    async fn change_status(&self, read: &TicketRecord, next: &TicketRecord) -> Result<bool, StoreError>;

    /// Appends `note` to the ticket `id`, once per note id, up to `MAX_NOTES`.
    async fn append_note(&self, id: &TicketId, note: &Note) -> Result<NoteAppended, StoreError>;

    /// Up to `limit` of the tickets with this number, starting after `after` (in the store's
    /// order for the number; each page newest first).
    async fn tickets_for_number(
        &self,
        phone_number: &PhoneNumber,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError>;

    /// Up to `limit` tickets whose `name_key` starts with `prefix`, in name order, starting
    /// after the ticket `after`.
    async fn tickets_named(&self, prefix: &str, limit: u32, after: Option<&TicketId>)
    -> Result<TicketPage, StoreError>;

    /// Whether some ticket carries this phone number: the only numbers agents may call.
    async fn has_ticket_for(&self, phone_number: &PhoneNumber) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Stores a new agent; `Ok(false)` when one with that id exists already.
    async fn create_agent(&self, agent: &Agent) -> Result<bool, StoreError>;

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError>;

    /// Every agent, by id.
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError>;

    /// Replaces the password and ends the agent's sessions; `Ok(false)` for an unknown agent.
    async fn set_password(&self, id: &AgentId, password_hash: &Secret) -> Result<bool, StoreError>;

    /// Disables (`Some(now)`) or re-enables (`None`) the agent and ends their sessions;
    /// `Ok(false)` for an unknown agent.
    async fn set_disabled(&self, id: &AgentId, disabled_at: Option<i64>) -> Result<bool, StoreError>;

    /// Ends every session the agent has (signing out).
    async fn end_sessions(&self, id: &AgentId) -> Result<(), StoreError>;

    /// Counts a sign-in attempt against `counter` at `now` if its limit lets one through
    /// (`SignInLimit::check` over the failures it holds), in one atomic step, so that concurrent
    /// attempts are held to the limit exactly; a refused attempt is not counted. Counts that
    /// have expired (`SIGN_IN_WINDOW_SECONDS` after the latest, whether or not the table
    /// deleted them) start over.
    async fn count_sign_in_attempt(&self, counter: &SignInCounter, now: i64) -> Result<SignInAttempt, StoreError>;

    /// Takes back one counted attempt (one that succeeded).
    async fn forgive_sign_in_attempt(&self, counter: &SignInCounter) -> Result<(), StoreError>;

    /// Forgets every failure counted against `counter`.
    async fn clear_sign_in_failures(&self, counter: &SignInCounter) -> Result<(), StoreError>;

    /// The failures counted against `counter` that have not expired at `now`.
    async fn sign_in_failures(&self, counter: &SignInCounter, now: i64) -> Result<u32, StoreError>;
}

/// One page of a ledger index: the calls, and where the next page starts if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPage {
    pub calls: Vec<CallSid>,
    /// The index position (`domain::started_key`) of the last call on this page, when more follow.
    pub next_after: Option<String>,
}

/// The call ledger: append-only, one item per event of a call, each written once however
/// often it is delivered. Calls are found by the party who called (or was called) and by day.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Records `event` of `call`, kept until `expires_at`. `Ok(false)`, and nothing written,
    /// when an event with its key (`LedgerEvent::key`) is recorded for the call already.
    async fn record(&self, call: &CallSid, event: &LedgerEvent, expires_at: i64) -> Result<bool, StoreError>;

    /// Every event recorded for `call`, in no particular order.
    async fn events(&self, call: &CallSid) -> Result<Vec<LedgerEvent>, StoreError>;

    /// Up to `limit` calls whose `party` (caller's number or identity, or the number an agent
    /// called) is `party`, newest first, starting below the index position `before`.
    async fn calls_of(&self, party: &str, limit: u32, before: Option<&str>) -> Result<LedgerPage, StoreError>;

    /// Up to `limit` calls that began on `day`, in the order they began, starting above the
    /// index position `after`.
    async fn calls_on(&self, day: &str, limit: u32, after: Option<&str>) -> Result<LedgerPage, StoreError>;
}

#[cfg(test)]
pub(crate) mod contract;
