use super::{AgentId, CallSid};

/// How long an agent's presence holds without their dashboard renewing it: a closed laptop
/// goes offline after this and is offered no calls.
pub const PRESENCE_LEASE_SECONDS: i64 = 90;

/// What an agent says they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Available,
    Away,
}

impl Availability {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "available" => Some(Self::Available),
            "away" => Some(Self::Away),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Away => "away",
        }
    }
}

/// What an agent is, as the dashboard and the router see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Available,
    Away,
    /// Rung for a call, or in one: derived, never set by hand.
    Busy,
    /// Their dashboard has not renewed their presence for `PRESENCE_LEASE_SECONDS`.
    Offline,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Away => "away",
            Self::Busy => "busy",
            Self::Offline => "offline",
        }
    }
}

/// An agent's live state: what they said, until when it holds, and what call they are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    pub agent: AgentId,
    pub availability: Availability,
    /// When they last changed what they said.
    pub availability_since: i64,
    /// Their presence holds until then; the dashboard renews it.
    pub lease_until: i64,
    /// When they last became free to take a call, in milliseconds: the router offers the next
    /// caller to whoever has been idle longest.
    pub idle_since_ms: i64,
    /// The caller their browser rings for.
    pub ringing_for: Option<CallSid>,
    /// The caller they are on a call with.
    pub in_call: Option<CallSid>,
    /// When they started ringing or talking.
    pub busy_since: Option<i64>,
    /// When they last let an offer ring out or rejected it (they were set away then).
    pub missed_at: Option<i64>,
    /// The stored version this was read at (0: not stored yet); a write applies only over it.
    pub version: u64,
}

impl AgentState {
    /// An agent who has never said anything: offline.
    pub fn new(agent: AgentId) -> Self {
        Self {
            agent,
            availability: Availability::Away,
            availability_since: 0,
            lease_until: 0,
            idle_since_ms: 0,
            ringing_for: None,
            in_call: None,
            busy_since: None,
            missed_at: None,
            version: 0,
        }
    }

    /// They say `availability`, and their dashboard is there: the lease is renewed. Becoming
    /// available makes them idle from now, and clears the notice of a missed call.
    pub fn say(&mut self, availability: Availability, now_ms: i64) {
        let now = now_ms.div_euclid(1000);
        let was_available = self.presence(now).0 == Presence::Available;
        if availability != self.availability || self.lease_until <= now {
            self.availability_since = now;
        }
        if availability == Availability::Available {
            self.missed_at = None;
            if !was_available && self.ringing_for.is_none() && self.in_call.is_none() {
                self.idle_since_ms = now_ms;
            }
        }
        self.availability = availability;
        self.lease_until = now + PRESENCE_LEASE_SECONDS;
    }

    /// Their browser rings for `caller`.
    pub fn ring_for(&mut self, caller: &CallSid, now: i64) {
        self.ringing_for = Some(caller.clone());
        self.busy_since = Some(now);
    }

    /// The ring ended unanswered. `missed`: they let it ring out or rejected it, and are set away
    /// until they say otherwise; otherwise (the caller left first) they are free again.
    pub fn ring_ended(&mut self, missed: bool, now_ms: i64) {
        let now = now_ms.div_euclid(1000);
        self.ringing_for = None;
        self.busy_since = None;
        if missed {
            self.availability = Availability::Away;
            self.availability_since = now;
            self.missed_at = Some(now);
        } else if self.in_call.is_none() {
            self.idle_since_ms = now_ms;
        }
    }

    /// They answered and are on a call with `caller`.
    pub fn answered(&mut self, caller: &CallSid, now: i64) {
        self.ringing_for = None;
        self.in_call = Some(caller.clone());
        self.busy_since = Some(now);
    }

    /// Their call ended: free again, idle from now.
    pub fn call_ended(&mut self, now_ms: i64) {
        self.in_call = None;
        self.busy_since = None;
        self.idle_since_ms = now_ms;
    }

    /// When the stored state may go: a day's TTL after the last renewal of the lease (an agent
    /// on a call renews it from the dashboard too).
    pub fn expires_at(&self) -> i64 {
        self.lease_until + super::CALL_RECORD_TTL_SECONDS
    }

    /// Whether they belong among the agents the router looks at (their lease still to check).
    pub fn in_pool(&self) -> bool {
        self.availability == Availability::Available && self.ringing_for.is_none() && self.in_call.is_none()
    }

    /// What they are at `now`, and since when.
    pub fn presence(&self, now: i64) -> (Presence, i64) {
        if self.lease_until <= now {
            return (Presence::Offline, self.lease_until);
        }
        if self.ringing_for.is_some() || self.in_call.is_some() {
            return (Presence::Busy, self.busy_since.unwrap_or(self.availability_since));
        }
        match self.availability {
            Availability::Available => (Presence::Available, self.availability_since),
            Availability::Away => (Presence::Away, self.availability_since),
        }
    }

    /// Whether a caller may be offered to them at `now`.
    pub fn can_take_a_call(&self, now: i64) -> bool {
        self.presence(now).0 == Presence::Available
    }

    /// Their key among the agents free to take a call: the longest idle first.
    pub fn pool_key(&self) -> String {
        pool_key(self.idle_since_ms, &self.agent)
    }
}

pub fn pool_key(idle_since_ms: i64, agent: &AgentId) -> String {
    format!("{idle_since_ms:013}#{agent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(availability: Availability) -> AgentState {
        AgentState {
            agent: AgentId::parse("agent1").unwrap(),
            availability,
            availability_since: 100,
            lease_until: 200,
            idle_since_ms: 100_000,
            ringing_for: None,
            in_call: None,
            busy_since: None,
            missed_at: None,
            version: 1,
        }
    }

    #[test]
    fn presence_is_what_they_said_until_the_lease_runs_out() {
        assert_eq!(state(Availability::Available).presence(150), (Presence::Available, 100));
        assert_eq!(state(Availability::Away).presence(199), (Presence::Away, 100));
        assert_eq!(state(Availability::Available).presence(200), (Presence::Offline, 200));
        assert!(state(Availability::Available).can_take_a_call(150));
        assert!(!state(Availability::Away).can_take_a_call(150));
        assert!(!state(Availability::Available).can_take_a_call(250));
    }

    #[test]
    fn an_agent_on_a_call_is_busy_whatever_they_said() {
        let mut ringing = state(Availability::Available);
        ringing.ringing_for = CallSid::parse(&format!("CA{}", "1".repeat(32)));
        ringing.busy_since = Some(140);
        assert_eq!(ringing.presence(150), (Presence::Busy, 140));
        assert!(!ringing.can_take_a_call(150));
        let mut talking = state(Availability::Away);
        talking.in_call = ringing.ringing_for.clone();
        assert_eq!(talking.presence(150).0, Presence::Busy);
    }

    #[test]
    fn parses_only_what_an_agent_may_say() {
        assert_eq!(Availability::parse("available"), Some(Availability::Available));
        assert_eq!(Availability::parse("away"), Some(Availability::Away));
        for other in ["busy", "offline", "Available", ""] {
            assert_eq!(Availability::parse(other), None, "{other}");
        }
    }
}
