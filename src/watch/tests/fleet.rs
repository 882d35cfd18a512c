//! Hubs of several replicas sharing one fake fleet (leases, stored states and
//! notices in memory, with expiry on tokio's paused clock) and one upstream
//! whose job moves on with time: one poller per job for the whole fleet,
//! hand-over when the holder leaves or dies, fallback while the fleet is down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use tokio::sync::mpsc;
use tokio::time::Instant as Clock;

use super::super::*;
use super::{DONE, Trouble, until};

/// The job's state at each time since the upstream started, in order; the
/// last is `DONE`.
const STEPS: [(u64, u32); 4] = [(0, 1), (500, 2), (1_000, 3), (2_000, DONE)];

/// One upstream for every replica: the state of any job is a function of
/// the time, and every poll is counted.
#[derive(Clone)]
struct Upstream {
    start: Clock,
    polls: Arc<AtomicUsize>,
}

impl Upstream {
    fn new() -> Upstream {
        Upstream {
            start: Clock::now(),
            polls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn polls(&self) -> usize {
        self.polls.load(Ordering::Relaxed)
    }
}

impl JobSource for Upstream {
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

    async fn poll(&self, _: &String) -> Result<u32, Trouble> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let elapsed = self.start.elapsed();
        let state = STEPS
            .iter()
            .take_while(|(at, _)| elapsed >= Duration::from_millis(*at))
            .last()
            .map_or(STEPS[0].1, |(_, state)| *state);
        Ok(state)
    }

    fn encode(state: &u32) -> Vec<u8> {
        state.to_be_bytes().to_vec()
    }

    fn decode(bytes: &[u8]) -> Option<u32> {
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    fn is_terminal(state: &u32) -> bool {
        *state == DONE
    }

    fn classify(_: &Trouble) -> Failure {
        Failure::Transient { retry_after: None }
    }

    fn describe(_: &Trouble) -> String {
        "trouble".into()
    }
}

/// What the fake keeps, as the Redis scripts do.
#[derive(Default)]
struct Data {
    leases: HashMap<String, (String, Clock)>,
    states: HashMap<String, (SharedState, Clock)>,
    followers: HashMap<String, Vec<mpsc::Sender<Notice>>>,
}

/// The shared store of the fake fleet; `down` makes every call fail.
#[derive(Default)]
struct FakeRedis {
    data: Mutex<Data>,
    down: AtomicBool,
}

impl FakeRedis {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }
}

/// One replica's view of the fake store; `cut` parts this replica alone
/// from it (a replica that died keeps no connection).
struct FakeFleet {
    redis: Arc<FakeRedis>,
    me: String,
    cut: AtomicBool,
}

impl FakeFleet {
    fn data(&self) -> Result<MutexGuard<'_, Data>, FleetError> {
        if self.redis.down.load(Ordering::Relaxed) || self.cut.load(Ordering::Relaxed) {
            return Err(FleetError("down".into()));
        }
        Ok(self.redis.data.lock().expect("not poisoned"))
    }
}

fn publish(data: &mut Data, job: &str, notice: Notice) {
    for sender in data.followers.get(job).into_iter().flatten() {
        let _ = sender.try_send(notice.clone());
    }
}

impl Fleet for FakeFleet {
    fn claim<'a>(&'a self, job: &'a str, lease: Duration) -> FleetFuture<'a, Claim> {
        Box::pin(async move {
            let mut data = self.data()?;
            let now = Clock::now();
            data.leases.retain(|_, (_, until)| *until > now);
            data.states.retain(|_, (_, until)| *until > now);
            let stored = data.states.get(job).map(|(state, _)| state.clone());
            if stored.as_ref().is_some_and(|s| s.terminal) {
                return Ok(Claim { holder: false, stored });
            }
            let holder = match data.leases.get(job) {
                Some((holder, _)) => *holder == self.me,
                None => true,
            };
            if holder {
                data.leases.insert(job.to_string(), (self.me.clone(), now + lease));
            }
            Ok(Claim { holder, stored })
        })
    }

    fn store<'a>(
        &'a self,
        job: &'a str,
        state: &'a SharedState,
        changed: bool,
        keep: Duration,
    ) -> FleetFuture<'a, Option<u64>> {
        Box::pin(async move {
            let mut data = self.data()?;
            let now = Clock::now();
            if data
                .leases
                .get(job)
                .is_none_or(|(holder, until)| *holder != self.me || *until <= now)
            {
                return Ok(None);
            }
            let mut stored = state.clone();
            if let Some((old, _)) = data.states.get(job)
                && (!changed || old.version >= stored.version)
            {
                stored.version = old.version + u64::from(changed);
            }
            data.states.insert(job.to_string(), (stored.clone(), now + keep));
            if state.terminal {
                data.leases.remove(job);
            }
            let version = stored.version;
            if changed {
                publish(&mut data, job, Notice::Published(stored));
            }
            Ok(Some(version))
        })
    }

    fn release<'a>(&'a self, job: &'a str) -> FleetFuture<'a, ()> {
        Box::pin(async move {
            let mut data = self.data()?;
            if data.leases.get(job).is_some_and(|(holder, _)| *holder == self.me) {
                data.leases.remove(job);
                publish(&mut data, job, Notice::Released);
            }
            Ok(())
        })
    }

    fn follow(&self, job: &str) -> mpsc::Receiver<Notice> {
        let (sender, receiver) = mpsc::channel(16);
        let mut data = self.redis.data.lock().expect("not poisoned");
        data.followers.entry(job.to_string()).or_default().push(sender);
        receiver
    }
}

/// Replicas of one gateway over one fake store and one upstream.
struct World {
    upstream: Upstream,
    redis: Arc<FakeRedis>,
}

struct Replica {
    hub: JobHub<Upstream>,
    fleet: Arc<FakeFleet>,
}

impl World {
    fn new() -> World {
        World {
            upstream: Upstream::new(),
            redis: Arc::new(FakeRedis::default()),
        }
    }

    fn replica(&self, name: &str) -> Replica {
        let fleet = Arc::new(FakeFleet {
            redis: self.redis.clone(),
            me: name.to_string(),
            cut: AtomicBool::new(false),
        });
        let config = WatchConfig {
            heartbeat: Duration::from_millis(100),
            ..WatchConfig::for_testing()
        };
        Replica {
            hub: JobHub::shared(self.upstream.clone(), config, fleet.clone()),
            fleet,
        }
    }
}

impl Replica {
    /// The replica dies: it keeps its lease (no release reaches the store)
    /// and its watchers end.
    fn crash(&self) {
        self.fleet.cut.store(true, Ordering::Relaxed);
        self.hub.shutdown();
    }
}

/// What one watcher saw until its watch ended.
#[derive(Debug, Default)]
struct Seen {
    states: Vec<u32>,
    coordination: Vec<Coordination>,
    ended_with: Option<String>,
}

async fn watch_to_the_end(mut watcher: Watcher<Upstream>) -> Seen {
    let mut seen = Seen::default();
    while let Some(event) = watcher.next().await {
        match event {
            Ok(Event::Job(state)) => seen.states.push(*state.job),
            Ok(Event::Heartbeat(beat)) => {
                if seen.coordination.last() != Some(&beat.coordination) {
                    seen.coordination.push(beat.coordination);
                }
            }
            Err(error) => seen.ended_with = Some(error.to_string()),
        }
    }
    seen
}

/// Each state once, in the job's order, ending with the terminal one.
fn assert_in_order_to_the_end(seen: &Seen) {
    assert_eq!(seen.states.last(), Some(&DONE), "{seen:?}");
    assert!(
        seen.states.windows(2).all(|w| w[0] < w[1]),
        "a repeated or older state: {seen:?}"
    );
    assert_eq!(seen.ended_with, None);
}

fn spawn_watchers(replica: &Replica, count: usize) -> Vec<tokio::task::JoinHandle<Seen>> {
    (0..count)
        .map(|_| tokio::spawn(watch_to_the_end(replica.hub.watch("job".into()).expect("watch"))))
        .collect()
}

async fn all(watchers: Vec<tokio::task::JoinHandle<Seen>>) -> Vec<Seen> {
    let mut seen = Vec::new();
    for watcher in watchers {
        seen.push(watcher.await.expect("watcher task"));
    }
    seen
}

/// Paces in the job's 2 s at 20 ms, jitter of 10% and a little slack aside.
const PACES_IN_JOB: usize = 2_000 / 20;

#[tokio::test(start_paused = true)]
async fn replicas_share_one_poller_per_job() {
    let world = World::new();
    let replicas: Vec<Replica> = ["a", "b", "c"].iter().map(|name| world.replica(name)).collect();
    let watchers: Vec<_> = replicas
        .iter()
        .flat_map(|replica| spawn_watchers(replica, 10))
        .collect();
    for seen in all(watchers).await {
        assert_in_order_to_the_end(&seen);
        assert!(!seen.coordination.contains(&Coordination::LocalFallback), "{seen:?}");
    }
    let polls = world.upstream.polls();
    assert!(polls <= PACES_IN_JOB * 12 / 10, "{polls} polls for three replicas");
    let pollers = replicas.iter().filter(|r| r.hub.stats().polls_total > 0).count();
    assert_eq!(pollers, 1, "one replica held the lease the whole job");
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ended_elsewhere_is_answered_from_the_fleet() {
    let world = World::new();
    let first = world.replica("a");
    assert_in_order_to_the_end(&all(spawn_watchers(&first, 1)).await[0]);
    let polls = world.upstream.polls();

    let late = world.replica("b");
    let seen = &all(spawn_watchers(&late, 1)).await[0];
    assert_eq!(seen.states, [DONE]);
    assert_eq!(world.upstream.polls(), polls, "no upstream call");
    assert_eq!(late.hub.stats().polls_total, 0);
}

#[tokio::test(start_paused = true)]
async fn when_the_holder_dies_a_follower_takes_over_within_a_few_paces() {
    let world = World::new();
    let a = world.replica("a");
    let watchers_a = spawn_watchers(&a, 2);
    // a claims first: it holds the lease.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = world.replica("b");
    let watchers_b = spawn_watchers(&b, 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(a.hub.stats().polls_total > 0 && b.hub.stats().polls_total == 0);

    a.crash();
    let crashed_at = Clock::now();
    for seen in all(watchers_a).await {
        assert_eq!(seen.ended_with.as_deref(), Some("the gateway is shutting down"));
    }
    until(&b.hub, |s| s.polls_total > 0).await;
    let taken_over_in = crashed_at.elapsed();
    // The lease lasts three paces; the next claim after it takes it.
    assert!(taken_over_in <= Duration::from_millis(20 * 5), "{taken_over_in:?}");
    for seen in all(watchers_b).await {
        assert_in_order_to_the_end(&seen);
    }
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_watchers_leave_hands_the_job_over_at_once() {
    let world = World::new();
    let a = world.replica("a");
    let watchers_a = spawn_watchers(&a, 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = world.replica("b");
    let watchers_b = spawn_watchers(&b, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.hub.stats().polls_total, 0);

    for watcher in watchers_a {
        watcher.abort();
    }
    let left_at = Clock::now();
    until(&b.hub, |s| s.polls_total > 0).await;
    assert!(left_at.elapsed() < Duration::from_millis(20), "{:?}", left_at.elapsed());
    until(&a.hub, |s| s.active_pollers == 0).await;
    assert_in_order_to_the_end(&all(watchers_b).await[0]);
}

#[tokio::test(start_paused = true)]
async fn while_the_fleet_is_down_each_replica_polls_alone_then_shares_again() {
    let world = World::new();
    let a = world.replica("a");
    let b = world.replica("b");
    let watchers: Vec<_> = [&a, &b].iter().flat_map(|replica| spawn_watchers(replica, 2)).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.hub.stats().local_fallback + b.hub.stats().local_fallback, 0);

    world.redis.set_down(true);
    until(&a.hub, |s| s.local_fallback == 1).await;
    until(&b.hub, |s| s.local_fallback == 1).await;
    let polls = world.upstream.polls();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let alone = world.upstream.polls() - polls;
    assert!(alone >= 2 * 400 / 20 * 8 / 10, "both replicas poll: {alone}");

    world.redis.set_down(false);
    until(&a.hub, |s| s.local_fallback == 0).await;
    until(&b.hub, |s| s.local_fallback == 0).await;
    let polls = world.upstream.polls();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let shared = world.upstream.polls() - polls;
    assert!(shared <= 400 / 20 * 12 / 10, "one replica polls again: {shared}");

    let watchers = all(watchers).await;
    until(&a.hub, |s| s.active_pollers == 0 && s.local_fallback == 0).await;
    for seen in watchers {
        assert_in_order_to_the_end(&seen);
        assert_eq!(
            seen.coordination,
            [Coordination::Shared, Coordination::LocalFallback, Coordination::Shared],
            "heartbeats tell"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_state_older_than_the_one_in_hand_is_never_taken() {
    let world = World::new();
    let a = world.replica("a");
    let watchers = spawn_watchers(&a, 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A stale copy of an early state, as a store that lost its data and a
    // late publisher could bring back.
    let stale = SharedState {
        version: 1,
        observed_ms: 0,
        terminal: false,
        state: Upstream::encode(&1),
    };
    publish(
        &mut world.redis.data.lock().expect("not poisoned"),
        "job",
        Notice::Published(stale),
    );
    assert_in_order_to_the_end(&all(watchers).await[0]);
}
