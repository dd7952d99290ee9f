//! A minimal HTTP/1.1 responder for `/metrics` (Prometheus) and `/health`, meant for a
//! loopback address: no framework, nothing but GET, one answer per connection.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// Largest request head read; anything longer is refused.
const MAX_REQUEST: usize = 8192;

pub async fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    info!(%addr, "metrics at http://{addr}/metrics, health at /health");
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!("metrics endpoint: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_REQUEST];
            let mut len = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    let n = stream.read(&mut buf[len..]).await?;
                    if n == 0 {
                        break;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                std::io::Result::Ok(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let target = head.split_whitespace().nth(1).unwrap_or("");
            let (status, kind, body) = match (head.starts_with("GET "), target) {
                (true, "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                (true, "/health") => health(&metrics),
                (true, _) => (
                    "404 Not Found",
                    "text/plain",
                    "try /metrics or /health\n".to_string(),
                ),
                (false, _) => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "GET only\n".to_string(),
                ),
            };
            let response = format!("HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Healthy while polling runs; the body says what an operator checks first.
fn health(m: &Metrics) -> (&'static str, &'static str, String) {
    let body = format!(
        "{{\"status\":\"ok\",\"polls\":{},\"connected\":{},\"store_depth\":{},\"oldest_unsent_age_ms\":{}}}\n",
        m.polls.load(Ordering::Relaxed),
        m.connected.load(Ordering::Relaxed) == 1,
        m.store_depth_telemetry.load(Ordering::Relaxed) + m.store_depth_alarm.load(Ordering::Relaxed),
        m.store_oldest_unsent_age_ms.load(Ordering::Relaxed)
    );
    ("200 OK", "application/json", body)
}
