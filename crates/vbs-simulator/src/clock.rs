//! The simulator's "now": the wall clock for demos, or simulated time that
//! moves only when a test advances it, so job timelines are deterministic.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::ClockMode;

#[derive(Debug)]
pub(crate) struct Clock {
    mode: ClockMode,
    /// Where Manual time starts; unused in Auto mode.
    origin: DateTime<Utc>,
    offset: TimeDelta,
}

impl Clock {
    pub(crate) fn new(mode: ClockMode) -> Self {
        Clock {
            mode,
            origin: Utc::now(),
            offset: TimeDelta::zero(),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        let base = match self.mode {
            ClockMode::Auto => Utc::now(),
            ClockMode::Manual => self.origin,
        };
        base.checked_add_signed(self.offset).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.offset = self.offset.checked_add(&delta(by)).unwrap_or(TimeDelta::MAX);
    }
}

/// A std duration as chrono's, saturating: a timing too long to represent
/// simply never ends.
pub(crate) fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_time_moves_only_when_advanced() {
        let mut clock = Clock::new(ClockMode::Manual);
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - start, TimeDelta::milliseconds(1500));
    }

    #[test]
    fn auto_time_adds_the_offset_to_the_wall_clock() {
        let mut clock = Clock::new(ClockMode::Auto);
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() >= Utc::now() + TimeDelta::minutes(59));
    }

    #[test]
    fn huge_advances_saturate() {
        let mut clock = Clock::new(ClockMode::Manual);
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), DateTime::<Utc>::MAX_UTC);
    }
}
