use super::AgentId;

/// The agents who may take calls, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster(Vec<AgentId>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("the roster is empty")]
    Empty,
    #[error("{0:?} is not a valid agent id")]
    InvalidAgent(String),
    #[error("{0:?} is listed twice")]
    Duplicate(String),
}

impl Roster {
    /// Parses a comma-separated list such as `agent1,agent2`.
    pub fn parse(list: &str) -> Result<Self, RosterError> {
        let mut agents: Vec<AgentId> = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let agent = AgentId::parse(entry).map_err(|_| RosterError::InvalidAgent(entry.to_owned()))?;
            if agents.contains(&agent) {
                return Err(RosterError::Duplicate(entry.to_owned()));
            }
            agents.push(agent);
        }
        if agents.is_empty() {
            return Err(RosterError::Empty);
        }
        Ok(Self(agents))
    }

    /// The roster entry with this id, if there is one.
    pub fn find(&self, id: &str) -> Option<&AgentId> {
        self.0.iter().find(|agent| agent.as_str() == id)
    }

    /// The agent a new support call rings first.
    pub fn first_responder(&self) -> &AgentId {
        // parse() never builds an empty roster.
        &self.0[0]
    }

    /// The colleague `from` hands a call to when no one is named: the next agent on the roster.
    pub fn next_after(&self, from: &AgentId) -> Option<&AgentId> {
        let position = self.0.iter().position(|agent| agent == from)?;
        let next = &self.0[(position + 1) % self.0.len()];
        (next != from).then_some(next)
    }

    pub fn agents(&self) -> &[AgentId] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(roster: &Roster) -> Vec<&str> {
        roster.agents().iter().map(AgentId::as_str).collect()
    }

    #[test]
    fn parses_a_comma_separated_roster() {
        let roster = Roster::parse(" agent1, agent2 ,,agent3").map(|r| ids(&r).join(","));
        assert_eq!(roster, Ok("agent1,agent2,agent3".into()));
    }

    #[test]
    fn rejects_bad_rosters() {
        assert_eq!(Roster::parse(" , "), Err(RosterError::Empty));
        assert_eq!(Roster::parse("agent1,agent 2"), Err(RosterError::InvalidAgent("agent 2".into())));
        assert_eq!(Roster::parse("a,b,a"), Err(RosterError::Duplicate("a".into())));
    }

    #[test]
    fn picks_first_responder_and_transfer_target() -> Result<(), RosterError> {
        let roster = Roster::parse("agent1,agent2,agent3")?;
        let agent = |id: &str| AgentId::parse(id).ok();
        assert_eq!(roster.first_responder().as_str(), "agent1");
        assert_eq!(
            roster.next_after(&AgentId::parse("agent1").map_err(|_| RosterError::Empty)?),
            agent("agent2").as_ref()
        );
        assert_eq!(
            roster.next_after(&AgentId::parse("agent3").map_err(|_| RosterError::Empty)?),
            agent("agent1").as_ref()
        );
        let solo = Roster::parse("agent1")?;
        assert_eq!(solo.next_after(solo.first_responder()), None);
        Ok(())
    }
}
