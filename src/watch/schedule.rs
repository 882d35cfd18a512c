//! When a job's poller polls next: pure functions of the last pause, what the
//! last poll saw and the settings, so the timing is tested without a clock.

use std::time::Duration;

use tokio::time::Instant;

use super::WatchConfig;

/// What the last poll saw, as far as the schedule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollOutcome {
    /// The source answered with the job's state, changed or not.
    Answered,
    /// The poll failed in a way that may pass.
    FailedTransiently {
        /// How long the source asked to wait, if it did.
        retry_after: Option<Duration>,
    },
}

/// How often each job of a group is polled when `pollers` jobs share the
/// group's poll rate: every `poll_initial` while that stays within the rate,
/// less often (all jobs alike) when it would not.
pub(crate) fn pace(pollers: usize, config: &WatchConfig) -> Duration {
    match config.poll_rate {
        Some(rate) => config
            .poll_initial
            .max(Duration::from_secs_f64(pollers.max(1) as f64 / rate)),
        None => config.poll_initial,
    }
}

/// The pause before the next poll, jitter aside. A job that answers is
/// polled again after one `pace`, changed or not, so a watcher learns of
/// its end within about one pace. A failing job backs off from there up to
/// `poll_max`, honouring a source's Retry-After up to `poll_max`, so one long
/// answer cannot leave watchers without news for longer than that.
pub(crate) fn next_pause(previous: Duration, outcome: PollOutcome, pace: Duration, config: &WatchConfig) -> Duration {
    match outcome {
        PollOutcome::Answered => pace,
        PollOutcome::FailedTransiently { retry_after } => {
            let backoff = previous.mul_f64(config.poll_backoff).min(config.poll_max);
            backoff
                .max(retry_after.unwrap_or_default().min(config.poll_max))
                .max(pace)
        }
    }
}

/// When a new job is first polled: at once while jobs are polled every
/// `poll_initial` (the watcher wants the state now); when the group's rate
/// is the limit, at the next free place of the group's queue of first polls,
/// one `1 / poll_rate` after the other. Later polls follow one pace after the
/// first, so jobs watched all at once stay spread evenly over the pace
/// instead of crowding its start. Returns the wait and the queue's next free place.
pub(crate) fn first_poll(
    now: Instant,
    next_free: Instant,
    pace: Duration,
    config: &WatchConfig,
) -> (Duration, Instant) {
    match config.poll_rate {
        Some(rate) if pace > config.poll_initial => {
            let at = next_free.max(now);
            (at - now, at + Duration::from_secs_f64(1.0 / rate))
        }
        _ => (Duration::ZERO, next_free),
    }
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

    fn limited(rate: f64) -> WatchConfig {
        WatchConfig {
            poll_rate: Some(rate),
            ..config()
        }
    }

    #[test]
    fn few_jobs_are_each_polled_every_initial_pause() {
        assert_eq!(pace(1, &config()), secs(1));
        assert_eq!(pace(100_000, &config()), secs(1), "no rate: no limit");
        assert_eq!(pace(1, &limited(5.0)), secs(1));
        assert_eq!(pace(5, &limited(5.0)), secs(1));
    }

    #[test]
    fn many_jobs_share_the_rate_alike() {
        assert_eq!(pace(10, &limited(5.0)), secs(2));
        assert_eq!(pace(1_000, &limited(5.0)), secs(200));
        assert_eq!(pace(10_000, &limited(5.0)), secs(2_000));
        // Whatever the number of jobs, their polls together stay within the rate.
        for jobs in [1, 7, 10, 999, 10_000] {
            let per_second = jobs as f64 / pace(jobs, &limited(5.0)).as_secs_f64();
            assert!(per_second <= 5.0 + 1e-9, "{jobs}: {per_second}");
        }
    }

    #[test]
    fn an_answer_keeps_the_pace_changed_or_not() {
        assert_eq!(next_pause(secs(10), PollOutcome::Answered, secs(1), &config()), secs(1));
        assert_eq!(next_pause(secs(1), PollOutcome::Answered, secs(4), &config()), secs(4));
    }

    #[test]
    fn failures_back_off_up_to_the_maximum() {
        assert_eq!(next_pause(secs(1), transient(None), secs(1), &config()), ms(1500));
        assert_eq!(next_pause(secs(9), transient(None), secs(1), &config()), secs(10));
        let mut pause = secs(1);
        for _ in 0..20 {
            pause = next_pause(pause, transient(None), secs(1), &config());
        }
        assert_eq!(pause, config().poll_max);
        // Never sooner than the pace, even when that is past the maximum.
        assert_eq!(next_pause(secs(30), transient(None), secs(30), &config()), secs(30));
    }

    #[test]
    fn a_backoff_of_one_keeps_the_pause() {
        let config = WatchConfig {
            poll_backoff: 1.0,
            ..config()
        };
        assert_eq!(next_pause(secs(1), transient(None), secs(1), &config), secs(1));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_maximum() {
        let after = |previous, retry_after| next_pause(previous, transient(retry_after), secs(1), &config());
        assert_eq!(after(secs(1), Some(secs(5))), secs(5));
        assert_eq!(after(secs(1), Some(secs(60))), secs(10));
        // A shorter Retry-After than the grown pause does not hurry the poller.
        assert_eq!(after(secs(2), Some(secs(1))), secs(3));
        assert_eq!(after(secs(1), Some(Duration::ZERO)), ms(1500));
    }

    #[test]
    fn a_first_poll_waits_only_when_the_rate_is_the_limit() {
        let now = Instant::now();
        assert_eq!(first_poll(now, now, secs(1), &config()), (Duration::ZERO, now));
        assert_eq!(first_poll(now, now, secs(1), &limited(5.0)), (Duration::ZERO, now));
    }

    #[test]
    fn first_polls_of_a_crowd_are_spread_evenly_over_the_rate() {
        let now = Instant::now();
        let mut next = now;
        let mut waits = Vec::new();
        for _ in 0..1_000 {
            let (wait, after) = first_poll(now, next, secs(200), &limited(5.0));
            waits.push(wait);
            next = after;
        }
        assert_eq!(waits[0], Duration::ZERO);
        assert_eq!(waits[1], ms(200));
        assert_eq!(waits[999], ms(199_800));
        // A queue place in the past is no reason to poll early or late.
        let later = now + secs(500);
        assert_eq!(first_poll(later, next, secs(200), &limited(5.0)).0, Duration::ZERO);
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
