//! How hard sign-in pushes back on failures. Two counters hold every attempt that gets as far
//! as a password check: one per agent id (whether or not the agent exists) and one per source
//! address. An attempt is counted *before* its password is checked and refused (`429`) while its
//! counter's wait since the latest counted attempt has not passed, so concurrent guesses are
//! held to the limits exactly; a success takes its count back.
//!
//! - Per agent id, a delay that grows: the first `free` failures cost nothing, then each one
//!   makes the id wait twice as long (1 s, 2 s, 4 s … at most 60 s) from it. An attempt refused
//!   during the wait is not counted and does not move the wait, so an agent retrying early is
//!   not punished; a failure never makes the real agent wait more than `max_wait` after it.
//! - Per source address, a block: after `free` failures within the window, every sign-in from
//!   that address is refused until the window has passed since its latest failure.
//!
//! Failures are forgotten `SIGN_IN_WINDOW_SECONDS` after the latest one (the table's TTL).

use std::fmt;

use super::{AgentId, SourceAddress};

/// Failures are forgotten this long after the latest one.
pub const SIGN_IN_WINDOW_SECONDS: i64 = 15 * 60;

/// The limits of one kind of counter: no wait for the first `free` failures, then a wait that
/// starts at `first_wait` seconds and doubles with every further failure, up to `max_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimit {
    pub free: u32,
    pub first_wait: i64,
    pub max_wait: i64,
}

/// Per agent id: slows a guesser down, never keeps the agent out for more than a minute after
/// any one failure.
pub const AGENT_ID_LIMIT: SignInLimit = SignInLimit { free: 3, first_wait: 1, max_wait: 60 };

/// Per source address: blocks it for the rest of the window after 20 failures.
pub const SOURCE_ADDRESS_LIMIT: SignInLimit =
    SignInLimit { free: 20, first_wait: SIGN_IN_WINDOW_SECONDS, max_wait: SIGN_IN_WINDOW_SECONDS };

impl SignInLimit {
    /// Seconds the counter must wait after its latest failure once it holds `failures`.
    pub fn wait_after(&self, failures: u32) -> i64 {
        let Some(beyond) = failures.checked_sub(self.free) else { return 0 };
        // 2^beyond overflows long before it matters: past the cap it is the cap.
        let doubled = 1_i64.checked_shl(beyond).and_then(|factor| self.first_wait.checked_mul(factor));
        doubled.map_or(self.max_wait, |wait| wait.min(self.max_wait))
    }

    /// Whether one more attempt may be counted now, given the counter's `failures` and its
    /// latest failure at `last_failure_at`; else how many seconds are left (at least 1).
    pub fn check(&self, failures: u32, last_failure_at: i64, now: i64) -> Result<(), i64> {
        let ready_at = last_failure_at.saturating_add(self.wait_after(failures));
        if now >= ready_at { Ok(()) } else { Err((ready_at - now).max(1)) }
    }

    /// The distinct waits, as (from this many failures, wait): `wait_after(n)` is the wait of
    /// the last step whose count is at most `n`, and 0 before the first. The steps end at the
    /// first that reaches `max_wait`, so a store can spell the limit out in a condition.
    pub fn steps(&self) -> Vec<(u32, i64)> {
        let mut steps = Vec::new();
        let mut failures = self.free;
        loop {
            let wait = self.wait_after(failures);
            steps.push((failures, wait));
            if wait >= self.max_wait {
                return steps;
            }
            failures += 1;
        }
    }
}

/// What a sign-in attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignInCounter {
    /// An agent id, whether or not such an agent exists: the answer never tells.
    AgentId(AgentId),
    /// The address the request came from (API Gateway's `sourceIp`); an IPv6 address by its
    /// /64, which one subscriber commonly has whole.
    Address(SourceAddress),
}

impl SignInCounter {
    pub fn limit(&self) -> SignInLimit {
        match self {
            Self::AgentId(_) => AGENT_ID_LIMIT,
            Self::Address(_) => SOURCE_ADDRESS_LIMIT,
        }
    }
}

impl fmt::Display for SignInCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AgentId(id) => write!(f, "agent id {id}"),
            Self::Address(address) => write!(f, "address {address}"),
        }
    }
}

/// What counting an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInAttempt {
    /// Counted: the password may be checked. The counter's failures, this attempt included.
    Counted { failures: u32 },
    /// Not counted: refused for this many more seconds.
    Refused { retry_after: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_id_waits_longer_after_each_failure_up_to_a_minute() {
        let waits: Vec<i64> = (0..=12).map(|n| AGENT_ID_LIMIT.wait_after(n)).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(AGENT_ID_LIMIT.wait_after(u32::MAX), 60);
        assert_eq!(AGENT_ID_LIMIT.steps(), [(3, 1), (4, 2), (5, 4), (6, 8), (7, 16), (8, 32), (9, 60)]);
    }

    #[test]
    fn an_address_is_blocked_for_the_window_after_twenty_failures() {
        assert_eq!(SOURCE_ADDRESS_LIMIT.wait_after(19), 0);
        assert_eq!(SOURCE_ADDRESS_LIMIT.wait_after(20), SIGN_IN_WINDOW_SECONDS);
        assert_eq!(SOURCE_ADDRESS_LIMIT.wait_after(1000), SIGN_IN_WINDOW_SECONDS);
        assert_eq!(SOURCE_ADDRESS_LIMIT.steps(), [(20, SIGN_IN_WINDOW_SECONDS)]);
    }

    #[test]
    fn check_says_how_long_is_left() {
        assert_eq!(AGENT_ID_LIMIT.check(2, 100, 100), Ok(()));
        assert_eq!(AGENT_ID_LIMIT.check(5, 100, 101), Err(3));
        assert_eq!(AGENT_ID_LIMIT.check(5, 100, 104), Ok(()));
        assert_eq!(SOURCE_ADDRESS_LIMIT.check(20, 100, 100 + SIGN_IN_WINDOW_SECONDS - 1), Err(1));
    }
}
