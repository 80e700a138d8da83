//! Storage ports. Handlers see only these traits; `dynamo` serves production and the local
//! emulator, `memory` serves handler tests and benchmarks. Both pass the same contract tests.

pub mod dynamo;
/// In-memory stores with the DynamoDB ones' semantics, for tests and benchmarks only.
#[cfg(any(test, feature = "testkit"))]
pub mod memory;

use async_trait::async_trait;

use crate::domain::{Agent, AgentId, CallSid, Conference, PhoneNumber, Ticket, TicketId};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a stored record is malformed: {0}")]
    Corrupt(String),
}

/// Twilio delivers webhooks and status callbacks more than once and out of order, so every
/// change here is conditional or idempotent: a repeated call changes nothing, and a `bool`
/// result tells the one caller that made the change apart from the others.
#[async_trait]
pub trait CallStore: Send + Sync {
    /// Stores a new conference. `Ok(false)` when a live conference with that id exists already,
    /// written by another delivery: that is how a webhook that Twilio retries is recognised.
    /// `Ok(true)` when this call created it, including when the record found carries this
    /// conference's own `delivery`: the write landed, its reply was lost, and the retry met it.
    async fn create_conference(&self, conference: &Conference) -> Result<bool, StoreError>;

    /// The conference, unless it does not exist or has expired at `now`.
    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError>;

    /// Forgets a conference whose first agent could not be dialed, so a retry can try again.
    async fn delete_conference(&self, id: &CallSid) -> Result<(), StoreError>;

    /// Remembers a call placed to an agent for this conference. `Ok(false)`, and nothing is
    /// stored, when the conference is gone or expired: the call should then be canceled.
    async fn add_agent_call(&self, id: &CallSid, call: &CallSid, now: i64) -> Result<bool, StoreError>;

    /// Moves the first-responder chain on to `next` (and `chain_moved_at` to `now`), only if it
    /// still stands where the caller saw it: the conference is live at `now`, `tried` has
    /// `tried_so_far` entries and nobody has joined. `Ok(true)` for the one caller whose change it was; a duplicate callback gets
    /// `Ok(false)` and must not dial.
    async fn try_next_agent(
        &self,
        id: &CallSid,
        tried_so_far: usize,
        next: &AgentId,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Forgets a conference whose chain has run out of agents, under the same conditions as
    /// `try_next_agent`. `Ok(true)` for the one caller who removed it, and so must tell the
    /// customer.
    async fn abandon_conference(&self, id: &CallSid, tried_so_far: usize, now: i64) -> Result<bool, StoreError>;

    /// Records that `agent`, on its call `call`, has joined `conference`: the conference's
    /// participant entry, the agent's current conference, and `joined` on the conference,
    /// together. `Ok(false)`, and nothing is recorded, when the conference is gone or expired.
    async fn record_agent_joined(
        &self,
        agent: &AgentId,
        call: &CallSid,
        conference: &CallSid,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The conference `agent` most recently joined, unless that record has expired at `now`
    /// or the agent has left it since.
    async fn conference_of_agent(&self, agent: &AgentId, now: i64) -> Result<Option<CallSid>, StoreError>;

    /// The participant on `call` left `conference`. If it is an agent, that agent is no longer
    /// in a call, unless they are in another conference by now. Returns the agent, if any.
    async fn agent_left(&self, conference: &CallSid, call: &CallSid) -> Result<Option<AgentId>, StoreError>;

    /// The conference is over: forgets its record, its participants, and the current
    /// conference of every agent that still points to it (an agent in a newer call keeps
    /// theirs). Returns the record as it was, unless it was already gone or expired at `now`.
    async fn end_conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError>;
}

/// One page of tickets, newest first, and where the next page starts if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    /// The id of the last ticket on this page, when older tickets exist.
    pub next_after: Option<TicketId>,
}

#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Stores a new ticket; returns only once it is durably stored.
    async fn create_ticket(&self, ticket: &Ticket) -> Result<(), StoreError>;

    /// Up to `limit` tickets, newest first, starting after `after` (exclusive).
    async fn list_tickets(&self, limit: u32, after: Option<&TicketId>) -> Result<TicketPage, StoreError>;

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

    /// Failed sign-ins for `id` that have not expired at `now`. Counted for ids that do not
    /// exist too, so the answer never tells an attacker which ids do.
    async fn login_failures(&self, id: &AgentId, now: i64) -> Result<u32, StoreError>;

    /// Counts one more failure; they expire `LOGIN_LOCKOUT_SECONDS` after the latest. Returns
    /// the count.
    async fn record_login_failure(&self, id: &AgentId, now: i64) -> Result<u32, StoreError>;

    async fn clear_login_failures(&self, id: &AgentId) -> Result<(), StoreError>;
}

#[cfg(test)]
pub(crate) mod contract;
