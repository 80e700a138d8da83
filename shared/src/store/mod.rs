//! Storage ports. Handlers see only these traits; `dynamo` serves production and the local
//! emulator, `memory` serves handler tests. Both pass the same contract tests.

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;

use crate::domain::{AgentId, CallSid};

/// Call records live at most this long; DynamoDB's TTL removes them (late), reads ignore them
/// as soon as they expire.
pub const CALL_RECORD_TTL_SECONDS: i64 = 12 * 3600;

/// A support conference, named after the CallSid of the customer's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub id: CallSid,
    /// The agent dialed when the customer arrived. Any other agent who joins is a transfer target.
    pub first_agent: AgentId,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a stored record is malformed: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait CallStore: Send + Sync {
    /// Stores a new conference. `Ok(false)` when a live conference with that id exists already,
    /// which is how a webhook that Twilio retries is recognised.
    async fn create_conference(&self, conference: &Conference) -> Result<bool, StoreError>;

    /// The conference, unless it does not exist or has expired at `now`.
    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError>;

    /// Forgets a conference whose first agent could not be dialed, so a retry can try again.
    async fn delete_conference(&self, id: &CallSid) -> Result<(), StoreError>;

    /// Records that `agent` has joined `conference`: the conference's participant entry and the
    /// agent's current conference, together.
    async fn record_agent_joined(
        &self,
        agent: &AgentId,
        conference: &CallSid,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The conference `agent` most recently joined, unless that record has expired at `now`.
    async fn conference_of_agent(
        &self,
        agent: &AgentId,
        now: i64,
    ) -> Result<Option<CallSid>, StoreError>;
}

#[cfg(test)]
pub(crate) mod contract;
