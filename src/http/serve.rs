//! Accepting connections, below tower: what no middleware can do because it happens before
//! there is a request. HTTP/1.1 through hyper's own connection builder, with
//!
//! - hyper's header-read timeout (`DEFERRAL_HEADER_TIMEOUT`): a client that sends its request
//!   head slowly, or nothing at all, or sits idle on a kept-alive connection, is disconnected.
//!   `axum::serve` sets no timer, so hyper's timeout never runs there;
//! - a cap on open connections (`DEFERRAL_MAX_CONNECTIONS`): at the cap nothing more is accepted
//!   until a connection closes, and further clients wait in the kernel's listen backlog;
//! - a cap on the request head's size ([`MAX_HEAD_BYTES`]; larger heads get 431).
//!
//! HTTP/2 is not offered (neither was it before): Stripe and browsers speak HTTP/1.1 to a
//! plain-HTTP server, and a proxy in front terminates HTTP/2 itself.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::Limits;

/// The largest request head (request line and headers) read; hyper answers 431 beyond it.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish.
///
/// Each request carries `ConnectInfo<SocketAddr>` (the peer), as
/// `into_make_service_with_connect_info` would give it.
pub async fn serve(listener: TcpListener, router: Router, limits: &Limits, shutdown: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let open = Arc::new(Semaphore::new(limits.max_connections as usize));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; if it were, there would be nothing left to serve
            },
            () = shutdown.cancelled() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Without TCP_NODELAY multi-part responses wait ~40 ms on kept-alive connections.
        let _ = tcp.set_nodelay(true);
        let service = router.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Per-connection errors (the peer left before it was accepted) are skipped; others (out of file
/// descriptors) are waited out, as `axum::serve` does, instead of spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        tracing::error!(error = %e, "cannot accept connections; retrying in 1s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
