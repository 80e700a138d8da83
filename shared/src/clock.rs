//! The time, kept apart from `app` so that what `app` builds (the secrets cache) can read it.

/// The time, as a port so tests can move it (record expiry, ticket order).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }
}
