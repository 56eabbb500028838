//! The card's notion of time, injectable so deterministic cards give byte-identical transcripts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the card reads the time from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The host's wall clock.
    System,
    /// Always this many seconds after the Unix epoch.
    Fixed(u64),
}

impl Clock {
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Fixed(seconds) => UNIX_EPOCH + Duration::from_secs(*seconds),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
