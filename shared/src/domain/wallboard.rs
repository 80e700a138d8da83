//! The wallboard's figures: the line and the team now, from the records the router reads, and
//! today's outcomes, from counters kept per day (docs/ARCHITECTURE.md, "The wallboard").

use super::{AgentState, Presence};

/// How long a day's counters, and the marks that count each call once, are kept: today's and
/// yesterday's figures, whatever the time zone, and a margin.
pub const DAY_COUNTS_TTL_SECONDS: i64 = 3 * 24 * 3600;

/// An outcome of a call that today's figures count, once per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An agent answered the caller from the line, after they waited this long.
    Answered { waited_ms: i64 },
    /// The caller hung up in line, or while an agent was rung for them.
    Abandoned,
    /// The caller's message became a ticket.
    Voicemail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered { .. } => "answered",
            Self::Abandoned => "abandoned",
            Self::Voicemail => "voicemail",
        }
    }
}

/// One day's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub answered: u64,
    /// The answered callers' waits, added up: the average is this over `answered`.
    pub answered_wait_ms: i64,
    pub abandoned: u64,
    pub voicemails: u64,
}

impl DayCounts {
    /// Counts `outcome` once more.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Answered { waited_ms } => {
                self.answered += 1;
                self.answered_wait_ms += waited_ms.max(0);
            }
            Outcome::Abandoned => self.abandoned += 1,
            Outcome::Voicemail => self.voicemails += 1,
        }
    }

    /// How long an answered caller waited on average, in seconds; none before the first.
    pub fn average_wait_seconds(&self) -> Option<f64> {
        (self.answered > 0).then(|| {
            let average_ms = self.answered_wait_ms as f64 / self.answered as f64;
            (average_ms / 100.0).round() / 10.0
        })
    }
}

/// The support line's day at `epoch_seconds`, `YYYY-MM-DD`, in `zone` (an IANA name: the zone
/// of `BUSINESS_HOURS`), or in UTC without one or for a zone the compiled-in database does not
/// know.
pub fn day_of(zone: Option<&str>, epoch_seconds: i64) -> String {
    let Ok(instant) = jiff::Timestamp::from_second(epoch_seconds) else { return String::new() };
    let zone = zone.and_then(|name| jiff::tz::TimeZone::get(name).ok()).unwrap_or(jiff::tz::TimeZone::UTC);
    zone.to_datetime(instant).date().to_string()
}

/// The callers waiting in line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Line {
    pub waiting: u32,
    /// When the caller waiting longest arrived, epoch milliseconds.
    pub longest_since_ms: Option<i64>,
}

/// How many agents are in each presence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Team {
    pub available: u32,
    pub busy: u32,
    pub away: u32,
    pub offline: u32,
}

impl Team {
    /// The team at `now`, from every agent's presence record.
    pub fn at(states: &[AgentState], now: i64) -> Self {
        let mut team = Self::default();
        for state in states {
            let count = match state.presence(now).0 {
                Presence::Available => &mut team.available,
                Presence::Busy => &mut team.busy,
                Presence::Away => &mut team.away,
                Presence::Offline => &mut team.offline,
            };
            *count += 1;
        }
        team
    }
}

/// What the wallboard shows at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Wallboard {
    pub line: Line,
    pub team: Team,
    /// The agents available now, by id: whom an agent may consult or transfer a call to.
    pub available_agents: Vec<super::AgentId>,
    /// Today, `YYYY-MM-DD` in the support line's time zone.
    pub day: String,
    pub today: DayCounts,
    pub now_ms: i64,
}

impl Wallboard {
    /// How long the caller waiting longest has waited, in whole seconds.
    pub fn longest_wait_seconds(&self) -> Option<i64> {
        self.line.longest_since_ms.map(|since| (self.now_ms - since).max(0) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2027-01-15T08:00:00Z.
    const FRIDAY_0800_UTC: i64 = 1_800_000_000;

    #[test]
    fn the_day_turns_at_midnight_in_the_support_lines_zone() {
        assert_eq!(day_of(None, FRIDAY_0800_UTC), "2027-01-15");
        // 23:30 UTC on Friday is already Saturday in Berlin, still Friday in New York.
        let late = FRIDAY_0800_UTC + 15 * 3600 + 1800;
        assert_eq!(day_of(Some("UTC"), late), "2027-01-15");
        assert_eq!(day_of(Some("Europe/Berlin"), late), "2027-01-16");
        assert_eq!(day_of(Some("America/New_York"), FRIDAY_0800_UTC - 9 * 3600), "2027-01-14");
        assert_eq!(day_of(Some("Mars/Olympus"), late), "2027-01-15", "an unknown zone is UTC");
    }

    #[test]
    fn the_average_wait_is_over_answered_calls_only() {
        let mut counts = DayCounts::default();
        assert_eq!(counts.average_wait_seconds(), None);
        counts.add(Outcome::Abandoned);
        counts.add(Outcome::Voicemail);
        assert_eq!(counts.average_wait_seconds(), None);
        counts.add(Outcome::Answered { waited_ms: 10_000 });
        counts.add(Outcome::Answered { waited_ms: 25_000 });
        assert_eq!(counts, DayCounts { answered: 2, answered_wait_ms: 35_000, abandoned: 1, voicemails: 1 });
        assert_eq!(counts.average_wait_seconds(), Some(17.5));
    }
}
