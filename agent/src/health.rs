//! `/healthz` (alive), `/readyz` (spool writable, backlog within its limit) and `/metrics`
//! (Prometheus), served by hyper's HTTP/1.1 server: GET and HEAD only, one request per
//! connection, request headers within 8 KiB, a whole exchange within [`EXCHANGE_TIMEOUT`].
//! At most [`MAX_CONNECTIONS`] connections get [`HEADER_TIMEOUT`] to send their request; when
//! those are taken (a slowloris), up to [`MAX_OVERFLOW`] more get [`OVERFLOW_HEADER_TIMEOUT`]
//! (a probe sends its request at once, an idle connection is gone within a second), and the
//! rest are closed at once. Idle connections therefore cost a bounded number of file
//! descriptors for a bounded time and never stop the probes for long.

use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections beyond [`MAX_CONNECTIONS`] served with the short header timeout.
pub const MAX_OVERFLOW: usize = 512;
/// Time a connection beyond [`MAX_CONNECTIONS`] has to send its request headers.
pub const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Time a whole exchange may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the listener (so a taken port is an error at start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, spool_dir: PathBuf) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let overflow = Arc::new(tokio::sync::Semaphore::new(MAX_OVERFLOW));
    let spool_dir = Arc::new(spool_dir);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or a transient error: back off, never spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (slot, header_timeout) = match slots.clone().try_acquire_owned() {
            Ok(s) => (s, HEADER_TIMEOUT),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(s) => (s, OVERFLOW_HEADER_TIMEOUT),
                Err(_) => {
                    drop(stream);
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        let spool_dir = spool_dir.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = answer(&req, &metrics, &spool_dir);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(8192)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, conn).await;
            drop(slot);
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn answer<B>(
    req: &Request<B>,
    metrics: &Metrics,
    spool_dir: &std::path::Path,
) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "GET only\n".into());
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/readyz" => {
            let writable = std::fs::metadata(spool_dir)
                .is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
            match (writable, metrics.ready()) {
                (true, Ok(())) => text(StatusCode::OK, PLAIN, "ready\n".into()),
                (false, _) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    "spool directory is not writable\n".into(),
                ),
                (_, Err(why)) => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{why}\n")),
            }
        }
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "try /healthz, /readyz or /metrics\n".into(),
        ),
    }
}
