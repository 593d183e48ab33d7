//! Serving HTTP/1 connections with a header-read timeout.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never fires: a client
//! that trickles its request headers a byte at a time (slowloris) holds a connection, a task
//! and a file descriptor for as long as it likes. This loop serves the same router with the
//! timeout set ([`ServiceConfig::header_read_timeout`](crate::config::ServiceConfig)), hands
//! each request its peer address (`ConnectInfo`) as `axum::serve` does, and on shutdown lets
//! requests in progress finish.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;

/// Serves `app` on every connection `listener` accepts until `shutdown` completes, then waits
/// for the requests in progress.
pub(crate) async fn serve<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    L: Listener<Addr = SocketAddr>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            // A connection ending in an error (reset, timeout) concerns only its client.
            let _ = connection.await;
        });
    }
    graceful.shutdown().await;
}
