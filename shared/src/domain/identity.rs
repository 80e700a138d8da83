use std::fmt;

/// Twilio's rule for Voice SDK identities: letters, digits and `_`, 1 to 121 characters.
fn is_voice_identity(input: &str) -> bool {
    (1..=121).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid identity")]
pub struct InvalidIdentity;

/// An agent's Voice identity. Parsing checks only the shape; whether the agent is on the roster
/// is the roster's decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(String);

impl AgentId {
    pub fn parse(input: &str) -> Result<Self, InvalidIdentity> {
        if is_voice_identity(input) && !input.starts_with(Identity::CUSTOMER_PREFIX) {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidIdentity)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is on the browser end of a Voice SDK call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Agent(AgentId),
    Customer(String),
}

impl Identity {
    pub const CUSTOMER_PREFIX: &'static str = "customer_";

    /// A fresh customer identity, `customer_` and 16 random hex digits.
    pub fn new_customer() -> Result<Self, getrandom::Error> {
        Ok(Self::Customer(format!("{}{}", Self::CUSTOMER_PREFIX, super::random_hex(8)?)))
    }

    /// Parses a bare identity as the Voice SDK registers it.
    pub fn parse(input: &str) -> Result<Self, InvalidIdentity> {
        if !is_voice_identity(input) {
            return Err(InvalidIdentity);
        }
        if input.starts_with(Self::CUSTOMER_PREFIX) {
            Ok(Self::Customer(input.to_owned()))
        } else {
            Ok(Self::Agent(AgentId(input.to_owned())))
        }
    }

    /// Parses Twilio's `From` of a browser call, `client:<identity>`.
    pub fn from_client_address(address: &str) -> Result<Self, InvalidIdentity> {
        address.strip_prefix("client:").ok_or(InvalidIdentity).and_then(Self::parse)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Agent(agent) => agent.as_str(),
            Self::Customer(customer) => customer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_follow_twilio_identity_rules() {
        assert!(AgentId::parse("agent1").is_ok());
        assert!(AgentId::parse(&"a".repeat(121)).is_ok());
        for bad in ["", "agent 1", "agent-1", "ägent", "customer_abc", &"a".repeat(122)] {
            assert_eq!(AgentId::parse(bad), Err(InvalidIdentity), "{bad:?}");
        }
    }

    #[test]
    fn customer_identities_are_fresh_and_valid() {
        let (Ok(Identity::Customer(a)), Ok(Identity::Customer(b))) =
            (Identity::new_customer(), Identity::new_customer())
        else {
            panic!("new_customer must give customer identities");
        };
        assert_ne!(a, b);
        assert_eq!(a.len(), "customer_".len() + 16);
        assert_eq!(Identity::parse(&a), Ok(Identity::Customer(a.clone())));
    }

    #[test]
    fn parses_client_addresses() {
        assert_eq!(Identity::from_client_address("client:agent1"), Ok(Identity::Agent(AgentId("agent1".into()))));
        assert_eq!(
            Identity::from_client_address("client:customer_ab12"),
            Ok(Identity::Customer("customer_ab12".into()))
        );
        for bad in ["agent1", "client:", "client:a b", "+15551234567", "sip:agent1@x"] {
            assert_eq!(Identity::from_client_address(bad), Err(InvalidIdentity), "{bad:?}");
        }
    }
}
