//! A minimal HTTP/1.1 responder for `/metrics` (Prometheus) and `/health`, meant for a
//! loopback address: no framework, nothing but GET, one answer per connection. At most
//! [`MAX_CONNECTIONS`] at once, each given [`IDLE`] to send its request: a flood of
//! connections is turned away at the door and can never take the file descriptors the
//! store and the uplink need.

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
/// Connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a connection may take to send its request, and to take the answer.
const IDLE: Duration = Duration::from_secs(5);

pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    rules: HealthRules,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    info!(%addr, "metrics at http://{addr}/metrics, health at /health");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                warn!("metrics endpoint: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let metrics = metrics.clone();
        let rules = rules.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut buf = vec![0u8; MAX_REQUEST];
            let mut len = 0;
            let read = tokio::time::timeout(IDLE, async {
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
                (true, "/health") => health(&metrics, &rules),
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
            let _ = tokio::time::timeout(IDLE, stream.write_all(response.as_bytes())).await;
        });
    }
}

/// When `/health` says the gateway is not well.
#[derive(Debug, Clone)]
pub struct HealthRules {
    /// The broker unreachable for longer than this.
    pub broker_grace: Duration,
    /// No poll cycle delivered readings for longer than this (only with devices).
    pub poll_stall: Option<Duration>,
    /// The pipeline has not flushed telemetry for longer than this.
    pub flush_stall: Duration,
    pub has_uplink: bool,
}

impl HealthRules {
    pub fn for_site(site: &firmware_config::SiteConfig) -> HealthRules {
        let slowest = site
            .devices
            .iter()
            .map(|d| d.poll.max(d.timeout) + d.timeout)
            .max();
        HealthRules {
            // Two keep-alive periods: the broker would have dropped us by then too.
            broker_grace: site.uplink.as_ref().map_or(Duration::from_secs(60), |u| {
                (u.keep_alive * 2).max(Duration::from_secs(10))
            }),
            // Backoff retries a silent device at least every minute; a whole minute more
            // without any readings means the poll loop itself is stuck.
            poll_stall: slowest.map(|s| (s * 3).max(Duration::from_secs(120))),
            flush_stall: (site.store.sync_interval * 10).max(Duration::from_secs(10)),
            has_uplink: site.uplink.is_some(),
        }
    }
}

/// 200 while all is well, 503 with the reasons when the broker has been unreachable past
/// its grace, the store cannot write, or polling or the pipeline has stalled.
pub fn health(m: &Metrics, rules: &HealthRules) -> (&'static str, &'static str, String) {
    let now = crate::clock::mono_ms();
    let age = |at: i64| Duration::from_millis((now - at).max(0) as u64);
    let mut problems = Vec::new();
    let since = m.disconnected_since_mono_ms.load(Ordering::Relaxed);
    if rules.has_uplink && since != 0 && age(since) > rules.broker_grace {
        problems.push(format!("broker unreachable for {}s", age(since).as_secs()));
    }
    if m.store_failed.load(Ordering::Relaxed) == 1 {
        problems.push("store cannot write; records held in memory".to_string());
    }
    let boot = m.started_mono_ms.load(Ordering::Relaxed);
    if let Some(stall) = rules.poll_stall {
        let last = m.last_poll_mono_ms.load(Ordering::Relaxed);
        let last = if last == 0 { boot } else { last };
        if age(last) > stall {
            problems.push(format!("no poll cycle for {}s", age(last).as_secs()));
        }
    }
    let flush = m.last_flush_mono_ms.load(Ordering::Relaxed);
    let flush = if flush == 0 { boot } else { flush };
    if age(flush) > rules.flush_stall {
        problems.push(format!("no telemetry flush for {}s", age(flush).as_secs()));
    }
    let problems_json = serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into());
    let body = format!(
        "{{\"status\":\"{}\",\"problems\":{problems_json},\"polls\":{},\"connected\":{},\"store_failed\":{},\"store_depth\":{},\"held\":{},\"oldest_unsent_age_ms\":{}}}\n",
        if problems.is_empty() { "ok" } else { "degraded" },
        m.polls.load(Ordering::Relaxed),
        m.connected.load(Ordering::Relaxed) == 1,
        m.store_failed.load(Ordering::Relaxed) == 1,
        m.store_depth_telemetry.load(Ordering::Relaxed) + m.store_depth_alarm.load(Ordering::Relaxed),
        m.held_records.load(Ordering::Relaxed),
        m.store_oldest_unsent_age_ms.load(Ordering::Relaxed)
    );
    let status = if problems.is_empty() {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    (status, "application/json", body)
}
