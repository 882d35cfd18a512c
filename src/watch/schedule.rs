//! When a job's poller polls next: pure functions of the last pause, what the
//! last poll saw and the settings, so the timing is tested without a clock.

use std::time::Duration;

use super::WatchConfig;

/// What the last poll saw, as far as the schedule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollOutcome {
    /// The job changed (or this was the first poll).
    Changed,
    /// The job is as it was.
    Unchanged,
    /// The poll failed in a way that may pass.
    FailedTransiently {
        /// How long the source asked to wait, if it did.
        retry_after: Option<Duration>,
    },
}

/// The pause before the next poll, jitter aside. A change starts over at
/// `poll_initial`, since a job that moved tends to move again soon; a quiet
/// or failing job is polled less and less often, down to once per
/// `poll_max`. A source's Retry-After is honoured up to `poll_max`, so one
/// long answer cannot leave watchers without news for longer than that.
pub(crate) fn next_pause(previous: Duration, outcome: PollOutcome, config: &WatchConfig) -> Duration {
    match outcome {
        PollOutcome::Changed => config.poll_initial,
        PollOutcome::Unchanged => grown(previous, config),
        PollOutcome::FailedTransiently { retry_after } => {
            grown(previous, config).max(retry_after.unwrap_or_default().min(config.poll_max))
        }
    }
}

fn grown(pause: Duration, config: &WatchConfig) -> Duration {
    pause.mul_f64(config.poll_backoff).min(config.poll_max)
}

/// `pause` spread by +-`jitter` (a fraction), so the pollers of jobs started
/// together do not poll in lockstep. `random` is uniform in [0, 1): 0 gives
/// the shortest pause, 0.5 `pause` itself.
pub(crate) fn jittered(pause: Duration, jitter: f64, random: f64) -> Duration {
    pause.mul_f64(1.0 + jitter * (2.0 * random - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// poll_initial 1 s, poll_max 10 s, poll_backoff 1.5.
    fn config() -> WatchConfig {
        WatchConfig::default()
    }

    fn transient(retry_after: Option<Duration>) -> PollOutcome {
        PollOutcome::FailedTransiently { retry_after }
    }

    #[test]
    fn a_change_starts_over_at_the_initial_pause() {
        assert_eq!(next_pause(secs(10), PollOutcome::Changed, &config()), secs(1));
        assert_eq!(next_pause(secs(1), PollOutcome::Changed, &config()), secs(1));
    }

    #[test]
    fn no_change_grows_the_pause_up_to_the_maximum() {
        assert_eq!(next_pause(secs(1), PollOutcome::Unchanged, &config()), ms(1500));
        assert_eq!(next_pause(secs(8), PollOutcome::Unchanged, &config()), secs(10));
        assert_eq!(next_pause(secs(10), PollOutcome::Unchanged, &config()), secs(10));
        let mut pause = config().poll_initial;
        for _ in 0..20 {
            pause = next_pause(pause, PollOutcome::Unchanged, &config());
        }
        assert_eq!(pause, config().poll_max);
    }

    #[test]
    fn a_backoff_of_one_keeps_the_pause() {
        let config = WatchConfig {
            poll_backoff: 1.0,
            ..config()
        };
        assert_eq!(next_pause(secs(1), PollOutcome::Unchanged, &config), secs(1));
        assert_eq!(next_pause(secs(1), transient(None), &config), secs(1));
    }

    #[test]
    fn a_transient_failure_grows_the_pause_like_no_change() {
        assert_eq!(next_pause(secs(1), transient(None), &config()), ms(1500));
        assert_eq!(next_pause(secs(9), transient(None), &config()), secs(10));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_maximum() {
        assert_eq!(next_pause(secs(1), transient(Some(secs(5))), &config()), secs(5));
        assert_eq!(next_pause(secs(1), transient(Some(secs(60))), &config()), secs(10));
        // A shorter Retry-After than the grown pause does not hurry the poller.
        assert_eq!(next_pause(secs(2), transient(Some(secs(1))), &config()), secs(3));
        assert_eq!(
            next_pause(secs(1), transient(Some(Duration::ZERO)), &config()),
            ms(1500)
        );
    }

    #[test]
    fn jitter_spreads_the_pause_evenly_around_it() {
        assert_eq!(jittered(secs(10), 0.25, 0.0), ms(7500));
        assert_eq!(jittered(secs(10), 0.25, 0.5), secs(10));
        assert_eq!(jittered(secs(10), 0.25, 0.75), ms(11_250));
        assert_eq!(jittered(secs(10), 0.0, 0.9), secs(10));
        // +-10% of 10 s stays within 9 to 11 s whatever the random number.
        let longest = jittered(secs(10), 0.1, 1.0 - f64::EPSILON);
        assert!(longest > ms(10_999) && longest <= secs(11), "{longest:?}");
        let shortest = jittered(secs(10), 0.1, 0.0);
        assert!(shortest >= ms(8_999) && shortest <= secs(9), "{shortest:?}");
    }
}
