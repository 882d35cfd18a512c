//! The gRPC listener behind the front door: TLS (reloaded when its files
//! change, mutual when a client CA is given) and the connection limits
//! (streams per connection, connections, idle time).

use std::future::Future;

use bytes::Bytes;
use http::{Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tower::layer::util::{Identity, Stack};
use tower::{Layer, Service};

use super::listener::{Connections, Limits, incoming};
use super::streams::StreamLayer;
use super::tls::{TlsError, TlsServer};
use crate::config::FrontDoorConfig;
use crate::metrics::Metrics;

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

    /// Serves `router` on `listener` (TLS only, when configured) until `shutdown` completes.
    pub(crate) async fn serve<L, ResBody>(
        self,
        router: Router<L>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error>
    where
        L: Layer<Routes>,
        L::Service: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
        <L::Service as Service<Request<Body>>>::Future: Send,
        <L::Service as Service<Request<Body>>>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limits = Limits {
            max_connections: self.config.max_connections,
            idle_timeout: self.config.idle_timeout,
        };
        match self.tls {
            Some(tls) => {
                let reloader = tls.spawn_reloader(self.config.tls_reload_interval, self.metrics.clone());
                // The acceptor of the moment, so a reloaded client CA applies to new connections.
                let handshake = move |socket: TcpStream| tls.acceptor().accept(socket);
                let incoming = incoming(listener, limits, self.connections, self.metrics, handshake);
                let served = router.serve_with_incoming_shutdown(incoming, shutdown).await;
                reloader.abort();
                served
            }
            None => {
                let handshake = |socket: TcpStream| std::future::ready(Ok(socket));
                let incoming = incoming(listener, limits, self.connections, self.metrics, handshake);
                router.serve_with_incoming_shutdown(incoming, shutdown).await
            }
        }
    }
}
