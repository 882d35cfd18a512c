//! The job hub's `Fleet` in Redis: one lease per watched job (SET NX PX,
//! renewed by its holder), the job's last state (kept with a TTL), and a
//! PUBLISH of each new state that followers SUBSCRIBE to on a connection of their own.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use redis::Script;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::RedisLink;
use crate::watch::{Claim, Fleet, FleetError, FleetFuture, Notice, SharedState};

/// Notices a job's poller has not taken yet; more are dropped (its next
/// claim reads the stored state anyway).
const FOLLOW_QUEUE: usize = 16;
/// Pause before connecting the subscriber again after it lost Redis.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// How often the subscriber drops the channels of jobs no longer followed.
const SWEEP: Duration = Duration::from_secs(10);
/// Longest wait for a SUBSCRIBE or UNSUBSCRIBE to be answered.
const SUBSCRIBE_LIMIT: Duration = Duration::from_secs(1);
/// What RELEASE publishes: not a state, so it never parses as one.
const RELEASED: &str = "released";

/// The stored state is "version|observed_ms|terminal(0/1)|hex of the state".
/// A terminal state is never leased again; otherwise the lease is taken when
/// free and renewed when ours. Answers {1 when ours, the stored state or nil}.
const CLAIM: &str = r"
local stored = redis.call('GET', KEYS[2])
if stored and string.match(stored, '^%d+|%d+|1|') then
  return {0, stored}
end
local holder = redis.call('GET', KEYS[1])
local mine = 0
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  mine = 1
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  mine = 1
end
return {mine, stored}
";

/// Only the holder stores. A changed state gets a version above the stored
/// one and is published; an unchanged one keeps the stored version and
/// only refreshes its time. A terminal state ends the lease. Answers the
/// version stored, or -1 when the lease is not ours.
const STORE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local version = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[2])
if stored then
  local old = tonumber(string.match(stored, '^(%d+)|'))
  if ARGV[8] == '0' or old >= version then
    version = old + tonumber(ARGV[8])
  end
end
local record = string.format('%d|%s|%s|%s', version, ARGV[3], ARGV[4], ARGV[5])
redis.call('SET', KEYS[2], record, 'PX', ARGV[6])
if ARGV[8] == '1' then
  redis.call('PUBLISH', ARGV[7], record)
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
end
return version
";

/// Gives the lease up if it is ours, and tells the followers.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
";

/// The replicas' job leases and states in Redis; one per process.
pub(crate) struct RedisFleet {
    link: RedisLink,
    /// This replica in the leases: unique per process.
    me: String,
    followers: Arc<Followers>,
    claim: Script,
    store: Script,
    release: Script,
    /// Stops the subscriber when the fleet goes.
    _subscriber: DropGuard,
}

impl RedisFleet {
    /// A fleet over `link`, with its subscriber task started.
    pub(crate) fn new(link: RedisLink) -> RedisFleet {
        let followers = Arc::new(Followers::default());
        let stop = CancellationToken::new();
        tokio::spawn(subscribe(link.clone(), followers.clone(), stop.clone()));
        RedisFleet {
            link,
            me: uuid::Uuid::new_v4().to_string(),
            followers,
            claim: Script::new(CLAIM),
            store: Script::new(STORE),
            release: Script::new(RELEASE),
            _subscriber: stop.drop_guard(),
        }
    }

    /// The job's lease, stored state and channel; `{job}` keeps them in one
    /// slot of a Redis cluster.
    fn keys(&self, job: &str) -> (String, String, String) {
        let tag = format!("{{{job}}}");
        (
            self.link.key(&["watch", &tag, "lease"]),
            self.link.key(&["watch", &tag, "state"]),
            self.link.key(&["watch", &tag]),
        )
    }
}

impl Fleet for RedisFleet {
    fn claim<'a>(&'a self, job: &'a str, lease: Duration) -> FleetFuture<'a, Claim> {
        Box::pin(async move {
            let (lease_key, state_key, _) = self.keys(job);
            let ms = millis(lease).to_string();
            let (mine, stored): (i64, Option<String>) = self
                .link
                .script(&self.claim, &[&lease_key, &state_key], &[&self.me, &ms])
                .await
                .map_err(|e| FleetError(e.to_string()))?;
            Ok(Claim {
                holder: mine == 1,
                stored: stored.as_deref().and_then(|record| parse(record, job)),
            })
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
            let (lease_key, state_key, channel) = self.keys(job);
            let args = [
                self.me.clone(),
                state.version.to_string(),
                state.observed_ms.to_string(),
                flag(state.terminal).to_string(),
                hex::encode(&state.state),
                millis(keep).to_string(),
                channel,
                flag(changed).to_string(),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let version: i64 = self
                .link
                .script(&self.store, &[&lease_key, &state_key], &args)
                .await
                .map_err(|e| FleetError(e.to_string()))?;
            Ok(u64::try_from(version).ok())
        })
    }

    fn release<'a>(&'a self, job: &'a str) -> FleetFuture<'a, ()> {
        Box::pin(async move {
            let (lease_key, _, channel) = self.keys(job);
            let _: i64 = self
                .link
                .script(&self.release, &[&lease_key], &[&self.me, &channel, RELEASED])
                .await
                .map_err(|e| FleetError(e.to_string()))?;
            Ok(())
        })
    }

    fn follow(&self, job: &str) -> mpsc::Receiver<Notice> {
        let (_, _, channel) = self.keys(job);
        self.followers.follow(channel)
    }
}

fn flag(value: bool) -> u8 {
    u8::from(value)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A stored or published state; None (and a warning) when it does not read.
fn parse(record: &str, job: &str) -> Option<SharedState> {
    let parsed = (|| {
        let mut fields = record.splitn(4, '|');
        let version = fields.next()?.parse().ok()?;
        let observed_ms = fields.next()?.parse().ok()?;
        let terminal = fields.next()? == "1";
        let state = hex::decode(fields.next()?).ok()?;
        Some(SharedState {
            version,
            observed_ms,
            terminal,
            state,
        })
    })();
    if parsed.is_none() {
        tracing::warn!(job, "a job state in Redis does not read; ignored");
    }
    parsed
}

/// The pollers following each channel, and a nudge for the subscriber when
/// that set changes.
#[derive(Default)]
struct Followers {
    channels: Mutex<HashMap<String, Vec<mpsc::Sender<Notice>>>>,
    changed: Notify,
}

impl Followers {
    fn channels(&self) -> MutexGuard<'_, HashMap<String, Vec<mpsc::Sender<Notice>>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn follow(&self, channel: String) -> mpsc::Receiver<Notice> {
        let (sender, receiver) = mpsc::channel(FOLLOW_QUEUE);
        self.channels().entry(channel).or_default().push(sender);
        self.changed.notify_one();
        receiver
    }

    /// The channels someone still follows; forgets the others.
    fn wanted(&self) -> HashSet<String> {
        let mut channels = self.channels();
        channels.retain(|_, senders| {
            senders.retain(|sender| !sender.is_closed());
            !senders.is_empty()
        });
        channels.keys().cloned().collect()
    }

    fn dispatch(&self, channel: &str, payload: &[u8]) {
        let notice = if payload == RELEASED.as_bytes() {
            Notice::Released
        } else {
            let Some(shared) = std::str::from_utf8(payload).ok().and_then(|p| parse(p, channel)) else {
                return;
            };
            Notice::Published(shared)
        };
        if let Some(senders) = self.channels().get(channel) {
            for sender in senders {
                // A full queue only means that poller reads the stored state at its next claim.
                let _ = sender.try_send(notice.clone());
            }
        }
    }
}

/// The subscriber: one connection of its own, subscribed to the channels
/// of the jobs followed here, connected again (and subscribed again) after
/// Redis was lost. Between, the pollers' claims read the stored states.
async fn subscribe(link: RedisLink, followers: Arc<Followers>, stop: CancellationToken) {
    loop {
        if let Ok(pubsub) = link.pubsub().await {
            let (mut sink, mut stream) = pubsub.split();
            if relay(&mut sink, &mut stream, &followers, &stop).await.is_break() {
                return;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
        }
    }
}

/// Passes messages on and keeps the subscriptions in step with what is
/// followed, until the connection fails (Continue) or the fleet goes (Break).
async fn relay(
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    followers: &Followers,
    stop: &CancellationToken,
) -> std::ops::ControlFlow<()> {
    use std::ops::ControlFlow;
    let mut subscribed = HashSet::new();
    let mut sweep = tokio::time::interval(SWEEP);
    loop {
        // A new follower nudges at once; followers that left are noticed at
        // the next nudge or sweep (their channels then go quiet anyway).
        tokio::select! {
            () = stop.cancelled() => return ControlFlow::Break(()),
            () = followers.changed.notified() => {}
            _ = sweep.tick() => {}
            message = stream.next() => {
                match message {
                    Some(message) => followers.dispatch(message.get_channel_name(), message.get_payload_bytes()),
                    None => return ControlFlow::Continue(()),
                }
                continue;
            }
        }
        if !resubscribe(sink, &mut subscribed, followers.wanted()).await {
            return ControlFlow::Continue(());
        }
    }
}

/// Subscribes to the channels newly `wanted` and leaves the others; false
/// when Redis did not answer in time.
async fn resubscribe(sink: &mut PubSubSink, subscribed: &mut HashSet<String>, wanted: HashSet<String>) -> bool {
    let new: Vec<&String> = wanted.difference(subscribed).collect();
    let old: Vec<&String> = subscribed.difference(&wanted).collect();
    if !new.is_empty()
        && !matches!(
            tokio::time::timeout(SUBSCRIBE_LIMIT, sink.subscribe(&new)).await,
            Ok(Ok(()))
        )
    {
        return false;
    }
    if !old.is_empty()
        && !matches!(
            tokio::time::timeout(SUBSCRIBE_LIMIT, sink.unsubscribe(&old)).await,
            Ok(Ok(()))
        )
    {
        return false;
    }
    *subscribed = wanted;
    true
}
