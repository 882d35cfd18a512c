//! The tower layer that tells each connection how many calls it has open (so
//! the idle watch knows when it is idle) and counts connections that reach
//! the HTTP/2 stream limit.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::listener::{ConnState, Connections};
use crate::metrics::Metrics;

/// Marks each call open on its connection from its arrival to the end of its response.
#[derive(Debug, Clone)]
pub(crate) struct StreamLayer {
    pub(crate) connections: Connections,
    pub(crate) max_streams: usize,
    pub(crate) metrics: Option<Metrics>,
}

impl<S> Layer<S> for StreamLayer {
    type Service = StreamService<S>;

    fn layer(&self, inner: S) -> StreamService<S> {
        StreamService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StreamService<S> {
    inner: S,
    layer: StreamLayer,
}

/// The peer of the connection a call came on, plaintext or TLS.
fn peer<B>(request: &Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .map(|info| info.get_ref())
        .or_else(|| extensions.get::<TcpConnectInfo>())
        .and_then(TcpConnectInfo::remote_addr)
}

/// One open call; dropping it closes the call on its connection.
struct OpenStream(Arc<ConnState>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StreamService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<StreamBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let open = peer(&request)
            .and_then(|peer| self.layer.connections.get(peer))
            .map(|state| {
                if state.stream_opened() >= self.layer.max_streams
                    && let Some(metrics) = &self.layer.metrics
                {
                    metrics.streams_at_limit();
                }
                OpenStream(state)
            });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| StreamBody { inner, _open: open }))
        })
    }
}

/// A response body that keeps its call open on the connection until it ends.
pub(crate) struct StreamBody<B> {
    inner: B,
    _open: Option<OpenStream>,
}

impl<B: Body + Unpin> Body for StreamBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
