//! What ties an agent's Access Token to the session that fetched it. Twilio tells the TwiML
//! App's Voice URL nothing about the token a browser call was placed with but its identity and
//! the parameters the token carries; so each agent token carries a fresh random id
//! (`agentSession`), and its record says whose session, at which epoch, it was issued to.
//! Signing out, a new password or disabling moves the agent's epoch on: the records of their
//! earlier tokens stop matching, and those tokens place no more calls out.

use super::AgentId;

/// The record of one agent token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentToken {
    /// 32 random hex digits: what the token passes with its calls.
    pub id: String,
    pub agent: AgentId,
    /// The agent's session epoch when the token was issued.
    pub session_epoch: i64,
    /// When the record may go: after the token itself has expired.
    pub expires_at: i64,
}

impl AgentToken {
    /// A token for `agent` in session epoch `session_epoch`, recorded until `expires_at`.
    pub fn issue(agent: AgentId, session_epoch: i64, expires_at: i64) -> Result<Self, getrandom::Error> {
        Ok(Self { id: super::random_hex(16)?, agent, session_epoch, expires_at })
    }

    /// Whether `id` has the shape of a token id (a lookup of anything else is pointless).
    pub fn is_id(id: &str) -> bool {
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_of_their_shape() {
        let agent = AgentId::parse("agent1").unwrap();
        let (a, b) = (AgentToken::issue(agent.clone(), 3, 100).unwrap(), AgentToken::issue(agent, 3, 100).unwrap());
        assert_ne!(a.id, b.id);
        assert!(AgentToken::is_id(&a.id) && AgentToken::is_id(&b.id));
        for bad in ["", "0", &"A".repeat(32), &"0".repeat(31), &"g".repeat(32), "3.AAAA"] {
            assert!(!AgentToken::is_id(bad), "{bad:?}");
        }
    }
}
