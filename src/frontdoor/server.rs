//! The gRPC listener behind the front door: TLS (reloaded when its files
//! change, mutual when a client CA is given) and the connection limits
//! (streams per connection, connections, idle time).

use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::Connected;
use tonic::transport::server::Router;
use tower::layer::util::{Identity, Stack};
use tower::{Layer, Service};

use super::FrontDoorConfig;
use super::listener::{Connections, Limits, accept, lane};
use super::streams::StreamLayer;
use super::tls::{TlsError, TlsServer};
use crate::metrics::Metrics;

/// Accepted connections waiting for their lane; the accept loop pauses beyond.
const LANE_QUEUE: usize = 64;

/// The listener's TLS and connection limits, ready to serve.
pub(crate) struct Listener {
    config: FrontDoorConfig,
    tls: Option<TlsServer>,
    connections: Connections,
    metrics: Option<Metrics>,
}

impl Listener {
    /// Loads the TLS files (if any) of `config`.
    pub(crate) fn new(config: &FrontDoorConfig, metrics: Option<Metrics>) -> Result<Listener, TlsError> {
        let tls = config.tls.as_ref().map(TlsServer::load).transpose()?;
        Ok(Listener {
            config: config.clone(),
            tls,
            connections: Connections::default(),
            metrics,
        })
    }

    /// A tonic server builder that advertises the stream limit and tracks the
    /// calls open on each connection.
    pub(crate) fn server(&self) -> Server<Stack<StreamLayer, Identity>> {
        Server::builder()
            .max_concurrent_streams(self.config.max_streams_per_connection)
            .layer(StreamLayer {
                connections: self.connections.clone(),
                max_streams: self.config.max_streams_per_connection as usize,
                metrics: self.metrics.clone(),
            })
    }

    /// Serves `router` on `listener` (TLS only, when configured) until
    /// `shutdown` completes: on `serve_threads` threads of their own, or on
    /// this runtime when that is 0.
    pub(crate) async fn serve<L, ResBody>(
        self,
        router: Router<L>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError>
    where
        L: Layer<Routes> + Clone + Send + 'static,
        L::Service: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
        <L::Service as Service<Request<Body>>>::Future: Send,
        <L::Service as Service<Request<Body>>>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let lanes = Lanes {
            limits: Limits {
                max_connections: self.config.max_connections,
                idle_timeout: self.config.idle_timeout,
            },
            connections: self.connections,
            metrics: self.metrics,
            threads: self.config.serve_threads,
        };
        match self.tls {
            Some(tls) => {
                let reloader = tls.spawn_reloader(self.config.tls_reload_interval, lanes.metrics.clone());
                // The acceptor of the moment, so a reloaded client CA applies to new connections.
                let handshake = move |socket: TcpStream| tls.acceptor().accept(socket);
                let served = lanes.serve(router, listener, shutdown, handshake).await;
                reloader.abort();
                served
            }
            None => {
                let handshake = |socket: TcpStream| std::future::ready(Ok(socket));
                lanes.serve(router, listener, shutdown, handshake).await
            }
        }
    }
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// tonic's server failed.
    #[error(transparent)]
    Grpc(#[from] tonic::transport::Error),
    /// A serving thread or its runtime could not be started.
    #[error("cannot start a serving thread: {0}")]
    Thread(std::io::Error),
    /// A serving thread ended without an answer (it panicked).
    #[error("a serving thread stopped unexpectedly")]
    ThreadLost,
}

/// The accept loop and the lanes it hands connections to, round robin.
struct Lanes {
    limits: Limits,
    connections: Connections,
    metrics: Option<Metrics>,
    /// 0: one lane on this runtime.
    threads: usize,
}

impl Lanes {
    async fn serve<L, ResBody, IO, H, F>(
        self,
        router: Router<L>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        handshake: H,
    ) -> Result<(), ServeError>
    where
        L: Layer<Routes> + Clone + Send + 'static,
        L::Service: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
        <L::Service as Service<Request<Body>>>::Future: Send,
        <L::Service as Service<Request<Body>>>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
        H: Fn(TcpStream) -> F + Clone + Send + 'static,
        F: Future<Output = std::io::Result<IO>> + Send + 'static,
    {
        if self.threads == 0 {
            let (to_lane, accepted) = mpsc::channel(LANE_QUEUE);
            accept(
                listener,
                self.limits.clone(),
                self.connections,
                self.metrics.clone(),
                vec![to_lane],
            );
            let incoming = lane(accepted, &self.limits, self.metrics, handshake);
            return Ok(router.serve_with_incoming_shutdown(incoming, shutdown).await?);
        }
        let stop = CancellationToken::new();
        let mut to_lanes = Vec::with_capacity(self.threads);
        let mut finished = FuturesUnordered::new();
        for index in 0..self.threads {
            let (to_lane, accepted) = mpsc::channel(LANE_QUEUE);
            to_lanes.push(to_lane);
            let (done, answer) = oneshot::channel();
            finished.push(answer);
            let (router, stopped, limits) = (router.clone(), stop.clone(), self.limits.clone());
            let (metrics, handshake) = (self.metrics.clone(), handshake.clone());
            let thread = std::thread::Builder::new().name(format!("vbs-serve-{index}"));
            let spawned = thread.spawn(move || {
                let served = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime.block_on(async move {
                        let incoming = lane(accepted, &limits, metrics, handshake);
                        Ok(router
                            .serve_with_incoming_shutdown(incoming, stopped.cancelled_owned())
                            .await?)
                    }),
                    Err(error) => Err(ServeError::Thread(error)),
                };
                let _ = done.send(served);
            });
            if let Err(error) = spawned {
                stop.cancel();
                return Err(ServeError::Thread(error));
            }
        }
        accept(listener, self.limits, self.connections, self.metrics, to_lanes);
        // Until shutdown, or until a thread stops on its own (then all stop).
        let mut outcome = Ok(());
        tokio::select! {
            () = shutdown => {}
            Some(early) = finished.next() => outcome = thread_outcome(early).and(Err(ServeError::ThreadLost)),
        }
        stop.cancel();
        while let Some(answer) = finished.next().await {
            outcome = outcome.and(thread_outcome(answer));
        }
        outcome
    }
}

fn thread_outcome(answer: Result<Result<(), ServeError>, oneshot::error::RecvError>) -> Result<(), ServeError> {
    answer.unwrap_or(Err(ServeError::ThreadLost))
}

/// Where cores come from when --serve-threads is not given.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
