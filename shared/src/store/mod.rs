//! Storage ports. Handlers see only these traits; `dynamo` serves production and the local
//! emulator, `memory` serves handler tests. Both pass the same contract tests.

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;

use crate::domain::{AgentId, CallSid, PhoneNumber, Ticket, TicketId};
use crate::secret::Secret;

/// Call records live at most this long; DynamoDB's TTL removes them (late), reads ignore them
/// as soon as they expire.
pub const CALL_RECORD_TTL_SECONDS: i64 = 12 * 3600;

/// A support conference, named after the CallSid of the customer's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub id: CallSid,
    /// The agent dialed when the customer arrived.
    pub first_agent: AgentId,
    /// The first-responder chain: the agents rung one after another until one answers, in
    /// order, `first_agent` first. The last one is ringing now, or answered.
    pub tried: Vec<AgentId>,
    /// The agents who answered and joined, sorted. The chain goes on only while it is empty.
    pub joined: Vec<AgentId>,
    /// Every call Warmline placed to an agent for this conference, sorted, so that a call that
    /// still rings can be canceled when the conference ends.
    pub agent_calls: Vec<CallSid>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the chain last moved on (the record was created, or the next agent was rung). An
    /// agent rings for a bounded time, so a chain that has not moved for much longer, with
    /// nobody joined, has lost the report that would have moved it.
    pub chain_moved_at: i64,
    /// Unique to the webhook delivery that created the record. When the reply to that write is
    /// lost and the SDK sends it again, the retry finds this value and knows the record as its
    /// own, rather than mistaking it for the trace of another delivery.
    pub delivery: String,
}

impl Conference {
    /// A conference whose first agent is about to be dialed, created by a delivery of its own.
    pub fn new(id: CallSid, first_agent: AgentId, now: i64) -> Self {
        Self {
            id,
            tried: vec![first_agent.clone()],
            first_agent,
            joined: Vec::new(),
            agent_calls: Vec::new(),
            created_at: now,
            expires_at: now + CALL_RECORD_TTL_SECONDS,
            chain_moved_at: now,
            delivery: delivery_nonce(),
        }
    }
}

/// A value that no other delivery's write carries: 128 random bits.
fn delivery_nonce() -> String {
    crate::domain::random_hex(16).unwrap_or_else(|_| {
        // Never seen on Lambda; the time and a per-process counter still tell deliveries apart.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("t{nanos:x}-{:x}-{count:x}", std::process::id())
    })
}

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

/// An agent who may sign in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub display_name: String,
    /// An argon2id PHC string; kept out of logs like a secret.
    pub password_hash: Secret,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// A session names the epoch it was issued in; bumping it ends every session the agent
    /// has (signing out, a new password, disabling).
    pub session_epoch: i64,
}

impl Agent {
    pub fn new(id: AgentId, display_name: impl Into<String>, password_hash: Secret, now: i64) -> Self {
        Self {
            id,
            display_name: display_name.into(),
            password_hash,
            created_at: now,
            disabled_at: None,
            session_epoch: 0,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// After this many failed sign-ins for one agent id, sign-in for that id is refused...
pub const LOGIN_FAILURE_LIMIT: u32 = 5;
/// ...until this long after the last failure; the record expires then.
pub const LOGIN_LOCKOUT_SECONDS: i64 = 15 * 60;

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
