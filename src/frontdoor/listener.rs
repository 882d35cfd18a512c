//! The accept loop, the lanes it hands connections to, and what each
//! connection carries: a slot of the connection limit, a TLS handshake in its
//! own task with a deadline, and an idle watch that closes an unused one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::coop;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::Connected;

use crate::metrics::Metrics;

/// Longest a TLS handshake may take (shorter when the idle timeout is).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Bytes a connection reads in one poll of its task before it lets the
/// other tasks of its lane run. h2 decodes every frame it has read before it
/// hands out the first new call, and keeps each in a queue whose memory it
/// never gives back: a client opening 100 watches in one write left room for
/// 300 frames on the connection for good. Read in bursts of a few calls,
/// the calls of each burst start (and take their frames) before the next
/// is read; the frames of a small call fit in one burst.
const READ_BURST: usize = 512;
/// Bytes read per unit of tokio's task budget (128 units per poll of a
/// task), so that a burst spends the whole budget.
const READ_UNIT: usize = READ_BURST / 128;

/// One client connection's shared state: its open calls and since when it has had none.
#[derive(Debug)]
pub(crate) struct ConnState {
    open_streams: AtomicUsize,
    idle_since: Mutex<Instant>,
    close: CancellationToken,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            open_streams: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            close: CancellationToken::new(),
        }
    }

    /// A call started; the count of calls now open.
    pub(crate) fn stream_opened(&self) -> usize {
        self.open_streams.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A call ended. Wakes nobody: the idle watch runs on another thread, and
    /// a wake-up per call put a thread switch on every call's path.
    pub(crate) fn stream_closed(&self) {
        if self.open_streams.fetch_sub(1, Ordering::SeqCst) == 1
            && let Ok(mut since) = self.idle_since.lock()
        {
            *since = Instant::now();
        }
    }

    /// When the connection last became idle; now if the lock was poisoned.
    fn idle_since(&self) -> Instant {
        self.idle_since
            .lock()
            .map(|since| *since)
            .unwrap_or_else(|_| Instant::now())
    }

    /// Closes the connection once it has had no open call for `timeout`. It
    /// looks when the connection could first have been idle that long: at
    /// most once per `timeout` while calls are open, and exactly `timeout`
    /// after the last call ended.
    async fn watch_idle(self: Arc<Self>, timeout: Duration, metrics: Option<Metrics>) {
        loop {
            let look_at = if self.open_streams.load(Ordering::SeqCst) > 0 {
                Instant::now() + timeout
            } else {
                self.idle_since() + timeout
            };
            tokio::select! {
                _ = tokio::time::sleep_until(look_at) => {}
                _ = self.close.cancelled() => return,
            }
            let idle = self.open_streams.load(Ordering::SeqCst) == 0 && self.idle_since() + timeout <= Instant::now();
            if idle {
                tracing::debug!("closing a connection idle for {timeout:?}");
                if let Some(metrics) = &metrics {
                    metrics.connection_closed_idle();
                }
                self.close.cancel();
                return;
            }
        }
    }
}

/// Open connections by peer address, so a call can find its connection's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connections {
    by_peer: Arc<Mutex<HashMap<SocketAddr, Arc<ConnState>>>>,
}

impl Connections {
    pub(crate) fn get(&self, peer: SocketAddr) -> Option<Arc<ConnState>> {
        self.by_peer.lock().ok()?.get(&peer).cloned()
    }

    fn insert(&self, peer: SocketAddr, state: Arc<ConnState>) {
        if let Ok(mut map) = self.by_peer.lock() {
            map.insert(peer, state);
        }
    }

    /// Forgets `state`, unless a newer connection from the same address already took its place.
    fn remove(&self, peer: SocketAddr, state: &Arc<ConnState>) {
        if let Ok(mut map) = self.by_peer.lock()
            && map.get(&peer).is_some_and(|current| Arc::ptr_eq(current, state))
        {
            map.remove(&peer);
        }
    }
}

/// What the accept loop needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
}

/// A connection's hold on the listener: its slot of the limit, its entry
/// in `Connections`, its idle watch; all given back when it drops.
struct ConnGuard {
    peer: SocketAddr,
    state: Arc<ConnState>,
    connections: Connections,
    metrics: Option<Metrics>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.state.close.cancel();
        self.connections.remove(self.peer, &self.state);
        if let Some(metrics) = &self.metrics {
            metrics.connection_ended();
        }
    }
}

/// A client connection as tonic serves it: the stream (TCP or TLS) and its
/// hold on the listener, given back when hyper drops it. Reads fail once the
/// idle watch closes it, which ends the connection. That close sends no HTTP/2
/// GOAWAY: tonic keeps each hyper connection inside its serve loop and calls
/// `graceful_shutdown` only at server shutdown or `max_connection_age`.
pub(crate) struct Conn<IO> {
    io: IO,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    _guard: ConnGuard,
}

impl<IO: Connected> Connected for Conn<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    /// At most `READ_BURST` bytes per poll of the connection's task: each
    /// read is capped at that and spends task budget by its size, and with
    /// the budget spent tokio has the task yield before it reads again.
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle")));
        }
        let turn = std::task::ready!(coop::poll_proceed(cx));
        let room = READ_BURST.min(buf.remaining());
        let mut burst = ReadBuf::new(buf.initialize_unfilled_to(room));
        let polled = Pin::new(&mut this.io).poll_read(cx, &mut burst);
        let read = burst.filled().len();
        buf.advance(read);
        if polled.is_ready() {
            turn.made_progress();
            spend_budget(read / READ_UNIT, cx);
        }
        polled
    }
}

/// Spends up to `units` of the task's budget; stops once it is spent, which
/// also arranges the task's next poll.
fn spend_budget(units: usize, cx: &mut Context<'_>) {
    for _ in 0..units {
        match coop::poll_proceed(cx) {
            Poll::Ready(turn) => turn.made_progress(),
            Poll::Pending => return,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    /// False on purpose: h2 then copies frames under 1 KiB into its write
    /// buffer and sends many in one write, where with vectored writes it
    /// sends each frame of 256 bytes or more (every job state) with a
    /// `writev` of its own. A fan-out of one job change to 100 watchers of a
    /// connection was 100 system calls; now it is one.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// An accepted socket and its hold on the listener, on its way to the lane
/// (runtime) that serves it.
pub(crate) struct Accepted {
    socket: std::net::TcpStream,
    /// Also names the peer and carries the connection's state.
    guard: ConnGuard,
}

/// Accepts on `listener` until a lane stops taking connections; each accepted
/// socket gets TCP_NODELAY and a slot of the limit (or is closed at once),
/// then goes to the next lane in turn.
pub(crate) fn accept(
    listener: TcpListener,
    limits: Limits,
    connections: Connections,
    metrics: Option<Metrics>,
    lanes: Vec<mpsc::Sender<Accepted>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        let any_lane_closed = futures_util::future::select_all(lanes.iter().map(|lane| Box::pin(lane.closed())));
        tokio::pin!(any_lane_closed);
        for next in (0..lanes.len()).cycle() {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = &mut any_lane_closed => return,
            };
            let (socket, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "connection refused: --max-connections reached");
                if let Some(metrics) = &metrics {
                    metrics.connection_refused("max_connections");
                }
                drop(socket);
                continue;
            };
            // Without TCP_NODELAY a stream's small messages wait for the
            // client's delayed ACK (~40 ms).
            let _ = socket.set_nodelay(true);
            // Leaves this runtime's reactor; the lane registers it with its own.
            let socket = match socket.into_std() {
                Ok(socket) => socket,
                Err(error) => {
                    tracing::warn!(%peer, %error, "cannot hand an accepted connection on");
                    continue;
                }
            };
            let state = Arc::new(ConnState::new());
            connections.insert(peer, state.clone());
            if let Some(metrics) = &metrics {
                metrics.connection_started();
            }
            let guard = ConnGuard {
                peer,
                state: state.clone(),
                connections: connections.clone(),
                metrics: metrics.clone(),
                _slot: slot,
            };
            tokio::spawn(state.watch_idle(limits.idle_timeout, metrics.clone()));
            let accepted = Accepted { socket, guard };
            if lanes[next].send(accepted).await.is_err() {
                return;
            }
        }
    });
}

/// The connections of one lane, served on the runtime this is called on:
/// each accepted socket is registered with it and gets its `handshake` in a
/// task of its own, with a deadline, so a slow client never holds up the rest.
pub(crate) fn lane<IO, H, F>(
    mut accepted: mpsc::Receiver<Accepted>,
    limits: &Limits,
    metrics: Option<Metrics>,
    handshake: H,
) -> ReceiverStream<Result<Conn<IO>, Infallible>>
where
    IO: Send + 'static,
    H: Fn(TcpStream) -> F + Send + 'static,
    F: Future<Output = io::Result<IO>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(64);
    let deadline = HANDSHAKE_TIMEOUT.min(limits.idle_timeout);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = accepted.recv() => next,
                _ = sender.closed() => return,
            };
            let Some(Accepted { socket, guard }) = next else {
                return;
            };
            let peer = guard.peer;
            let socket = match TcpStream::from_std(socket) {
                Ok(socket) => socket,
                Err(error) => {
                    tracing::warn!(%peer, %error, "cannot serve an accepted connection");
                    continue;
                }
            };
            let handshaking = handshake(socket);
            let sender = sender.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let close = guard.state.close.clone();
                let io = tokio::select! {
                    io = tokio::time::timeout(deadline, handshaking) => io,
                    _ = close.cancelled() => return,
                };
                match io {
                    Ok(Ok(io)) => {
                        let conn = Conn {
                            io,
                            closed: Box::pin(close.cancelled_owned()),
                            _guard: guard,
                        };
                        let _ = sender.send(Ok(conn)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        if let Some(metrics) = &metrics {
                            metrics.connection_refused("handshake");
                        }
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        if let Some(metrics) = &metrics {
                            metrics.connection_refused("handshake_timeout");
                        }
                    }
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// Lets the idle watch run up to the clock's present.
    async fn advance(by: Duration) {
        tokio::time::advance(by).await;
        tokio::task::yield_now().await;
    }

    fn watched() -> Arc<ConnState> {
        let state = Arc::new(ConnState::new());
        tokio::spawn(state.clone().watch_idle(TIMEOUT, None));
        state
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_calls_closes_after_the_timeout() {
        let state = watched();
        advance(TIMEOUT - Duration::from_millis(1)).await;
        assert!(!state.close.is_cancelled());
        advance(Duration::from_millis(1)).await;
        assert!(state.close.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_call_keeps_it_however_long_it_lasts() {
        let state = watched();
        state.stream_opened();
        advance(TIMEOUT * 5).await;
        assert!(!state.close.is_cancelled(), "a call is open");
        state.stream_closed();
        // Exactly one timeout after the last call ended, wherever the watch was sleeping.
        advance(TIMEOUT - Duration::from_millis(1)).await;
        assert!(!state.close.is_cancelled());
        advance(Duration::from_millis(1)).await;
        assert!(state.close.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn each_call_starts_the_idle_time_anew() {
        let state = watched();
        for _ in 0..5 {
            advance(TIMEOUT / 2).await;
            state.stream_opened();
            state.stream_closed();
        }
        advance(TIMEOUT - Duration::from_millis(1)).await;
        assert!(
            !state.close.is_cancelled(),
            "the last call ended less than a timeout ago"
        );
        advance(Duration::from_millis(1)).await;
        assert!(state.close.is_cancelled());
    }

    /// Counts the wake-ups a poll asks for.
    struct Wakes(AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn conn<IO>(io: IO) -> Conn<IO> {
        let state = Arc::new(ConnState::new());
        let slot = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        Conn {
            io,
            closed: Box::pin(state.close.clone().cancelled_owned()),
            _guard: ConnGuard {
                peer: "127.0.0.1:1".parse().unwrap(),
                state,
                connections: Connections::default(),
                metrics: None,
                _slot: slot,
            },
        }
    }

    #[tokio::test]
    async fn a_connection_reads_one_burst_per_poll_of_its_task() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        client.write_all(&[7; 10_000]).await.unwrap();
        let mut conn = conn(server).await;
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut storage = vec![0; 16 * 1024];
        let (mut reads, mut yields) = (Vec::new(), 0);
        while reads.iter().sum::<usize>() < 10_000 {
            let mut buf = ReadBuf::new(&mut storage);
            match Pin::new(&mut conn).poll_read(&mut cx, &mut buf) {
                Poll::Ready(result) => {
                    result.unwrap();
                    reads.push(buf.filled().len());
                }
                Poll::Pending => {
                    yields += 1;
                    // The next poll of this test's task brings a new budget.
                    tokio::task::yield_now().await;
                    assert!(wakes.0.load(Ordering::SeqCst) >= yields, "a yield wakes its task again");
                }
            }
        }
        let bursts = 10_000usize.div_ceil(READ_BURST);
        let mut expected = vec![READ_BURST; bursts - 1];
        expected.push(10_000 - (bursts - 1) * READ_BURST);
        assert_eq!(reads, expected, "one full burst per poll, then the rest");
        assert_eq!(yields, bursts - 1);
    }
}
