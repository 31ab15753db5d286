//! `/healthz` (alive), `/readyz` (spool writable, backlog within its limit) and `/metrics`
//! (Prometheus), served by a deliberately tiny HTTP/1.1 responder: GET only, bounded request
//! size and time, one response per connection.

use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Binds the listener (so a taken port is an error at start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, spool_dir: PathBuf) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let metrics = metrics.clone();
        let spool_dir = spool_dir.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), answer(stream, &metrics, &spool_dir))
                    .await;
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    spool_dir: &std::path::Path,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == buf.len() {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request too large\n",
            )
            .await;
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        )
        .await;
    }
    match path.split('?').next().unwrap_or("") {
        "/healthz" => respond(&mut stream, "200 OK", "text/plain", "ok\n").await,
        "/readyz" => {
            let writable = std::fs::metadata(spool_dir)
                .is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
            match (writable, metrics.ready()) {
                (true, Ok(())) => respond(&mut stream, "200 OK", "text/plain", "ready\n").await,
                (false, _) => {
                    respond(
                        &mut stream,
                        "503 Service Unavailable",
                        "text/plain",
                        "spool directory is not writable\n",
                    )
                    .await
                }
                (_, Err(why)) => {
                    respond(
                        &mut stream,
                        "503 Service Unavailable",
                        "text/plain",
                        &format!("{why}\n"),
                    )
                    .await
                }
            }
        }
        "/metrics" => {
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4",
                &metrics.render(),
            )
            .await
        }
        _ => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "try /healthz, /readyz or /metrics\n",
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
