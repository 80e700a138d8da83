use super::AgentId;
use crate::secret::Secret;

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
