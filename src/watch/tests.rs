//! The hub against a scripted source, with no VBS and tokio's paused clock:
//! one poller per key, terminal states remembered, failures, heartbeats,
//! leaving and shutdown.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

mod fleet;

/// The state that ends a scripted job.
const DONE: u32 = 9;

#[derive(Debug, thiserror::Error)]
#[error("scripted failure (transient: {transient})")]
struct Trouble {
    transient: bool,
}

/// Answers the polls of each job with the script in turn, then its last
/// answer again. `Err(true)` fails transiently, `Err(false)` for good.
struct Scripted {
    script: Vec<Result<u32, bool>>,
    polls: Mutex<HashMap<String, usize>>,
}

impl Scripted {
    fn new(script: &[Result<u32, bool>]) -> Scripted {
        Scripted {
            script: script.to_vec(),
            polls: Mutex::new(HashMap::new()),
        }
    }
}

impl JobSource for Scripted {
    type Target = String;
    type Key = String;
    type State = u32;
    type Error = Trouble;

    fn key(target: &String) -> String {
        target.clone()
    }

    fn shared_key(key: &String) -> String {
        key.clone()
    }

    fn group(_: &String) -> &str {
        ""
    }

    fn encode(state: &u32) -> Vec<u8> {
        state.to_be_bytes().to_vec()
    }

    fn decode(bytes: &[u8]) -> Option<u32> {
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    async fn poll(&self, target: &String) -> Result<u32, Trouble> {
        let index = {
            let mut polls = self.polls.lock().expect("not poisoned");
            let count = polls.entry(target.clone()).or_default();
            *count += 1;
            (*count - 1).min(self.script.len() - 1)
        };
        self.script[index].map_err(|transient| Trouble { transient })
    }

    fn is_terminal(state: &u32) -> bool {
        *state == DONE
    }

    fn classify(error: &Trouble) -> Failure {
        match error.transient {
            true => Failure::Transient { retry_after: None },
            false => Failure::Permanent,
        }
    }

    fn describe(error: &Trouble) -> String {
        format!("trouble, transient: {}", error.transient)
    }
}

fn hub(script: &[Result<u32, bool>]) -> JobHub<Scripted> {
    JobHub::new(Scripted::new(script), WatchConfig::for_testing())
}

/// The states a watcher is told until it ends; panics on anything else.
async fn states(watcher: &mut Watcher<Scripted>) -> Vec<u32> {
    let mut seen = Vec::new();
    while let Some(event) = watcher.next().await {
        match event {
            Ok(Event::Job(state)) => seen.push(*state.job),
            other => panic!("unexpected {other:?}"),
        }
    }
    seen
}

async fn until<S: JobSource>(hub: &JobHub<S>, done: impl Fn(HubStats) -> bool) {
    while !done(hub.stats()) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn watchers_of_one_job_share_its_poller_and_end_with_its_terminal_state() {
    let hub = hub(&[Ok(1), Ok(1), Ok(2), Ok(DONE)]);
    let mut first = hub.watch("job".into()).expect("watch");
    let mut second = hub.wait("job".into()).expect("wait");
    let mut other = hub.wait("other job".into()).expect("wait");
    let stats = hub.stats();
    assert_eq!((stats.active_pollers, stats.active_watchers), (2, 3));

    let (first, second, other) = tokio::join!(states(&mut first), states(&mut second), states(&mut other));
    assert_eq!(first, [1, 2, DONE], "one message per change");
    assert_eq!(second, [1, 2, DONE]);
    assert_eq!(other, [1, 2, DONE]);
    until(&hub, |s| s.active_pollers == 0).await;
    assert_eq!(hub.stats().polls_total, 8, "four polls per job, whatever its watchers");
    assert_eq!(hub.stats().remembered_terminal, 2);

    let mut late = hub.watch("job".into()).expect("watch");
    assert_eq!(states(&mut late).await, [DONE]);
    assert_eq!(hub.stats().polls_total, 8, "the remembered state answered");
}

#[tokio::test(start_paused = true)]
async fn a_remembered_state_is_forgotten_after_its_ttl() {
    let hub = hub(&[Ok(DONE)]);
    assert_eq!(states(&mut hub.wait("job".into()).expect("wait")).await, [DONE]);
    until(&hub, |s| s.remembered_terminal == 1).await;
    tokio::time::sleep(WatchConfig::for_testing().terminal_ttl).await;
    until(&hub, |s| s.remembered_terminal == 0).await;
    assert_eq!(states(&mut hub.wait("job".into()).expect("wait")).await, [DONE]);
    assert_eq!(hub.stats().polls_total, 2, "a new poller read it again");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_ends_every_watcher_after_the_last_good_state() {
    let hub = hub(&[Err(true), Ok(1), Err(false)]);
    let mut watcher = hub.wait("job".into()).expect("wait");
    let Some(Ok(Event::Job(state))) = watcher.next().await else {
        panic!("the first good state")
    };
    assert_eq!(*state.job, 1);
    match watcher.next().await {
        Some(Err(WatchError::Upstream(error))) => assert!(!error.transient),
        other => panic!("unexpected {other:?}"),
    }
    assert!(watcher.next().await.is_none());
    until(&hub, |s| s.active_pollers == 0).await;
    assert_eq!(hub.stats().poll_failures_total, 2);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_say_how_stale_the_state_is_and_why() {
    let hub = hub(&[Ok(1), Err(true)]);
    let mut watcher = hub.watch("job".into()).expect("watch");
    assert!(matches!(watcher.next().await, Some(Ok(Event::Job(_)))));
    let Some(Ok(Event::Heartbeat(beat))) = watcher.next().await else {
        panic!("a heartbeat")
    };
    assert!(beat.last_observed_at.is_some());
    assert!(beat.consecutive_failures >= 1, "{beat:?}");
    assert_eq!(beat.last_error.as_deref(), Some("trouble, transient: true"));
    assert_eq!(beat.coordination, Coordination::Alone, "no fleet");
    assert!(watcher.last_failure().is_some());
    assert_eq!(watcher.latest().map(|state| *state.job), Some(1));
}

#[tokio::test(start_paused = true)]
async fn the_last_watcher_leaving_stops_the_poller_and_forgets_the_job() {
    let hub = hub(&[Ok(1)]);
    let mut watcher = hub.watch("job".into()).expect("watch");
    assert!(matches!(watcher.next().await, Some(Ok(Event::Job(_)))));
    drop(watcher);
    until(&hub, |s| s.active_pollers == 0 && s.active_watchers == 0).await;
    let polls = hub.stats().polls_total;

    let mut again = hub.watch("job".into()).expect("watch");
    assert!(matches!(again.next().await, Some(Ok(Event::Job(_)))));
    assert!(hub.stats().polls_total > polls, "a new poller read the job");
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_every_watch_and_refuses_new_ones() {
    let hub = hub(&[Ok(1)]);
    let mut watcher = hub.watch("job".into()).expect("watch");
    assert!(matches!(watcher.next().await, Some(Ok(Event::Job(_)))));
    hub.shutdown();
    assert!(matches!(watcher.next().await, Some(Err(WatchError::ShuttingDown))));
    assert!(matches!(hub.watch("job".into()), Err(WatchError::ShuttingDown)));
    until(&hub, |s| s.active_pollers == 0).await;
}

#[test]
fn failure_texts_are_cut_short_on_a_character_boundary() {
    assert_eq!(shortened("HTTP 503 (VBS.0001)".into()), "HTTP 503 (VBS.0001)");
    let cut = shortened("é".repeat(100));
    assert!(cut.len() <= SHORT_ERROR_LIMIT && cut.len() >= SHORT_ERROR_LIMIT - 1);
    assert!(cut.chars().all(|c| c == 'é'));
}
