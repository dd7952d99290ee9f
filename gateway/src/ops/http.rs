//! `/metrics` (Prometheus) and `/health` on the metrics address, meant for loopback, served
//! by hazgate-common's bounded server like hazingest's endpoints: at most 32 connections at
//! once (more wait in the kernel's accept queue), each closed after 5 s without a byte
//! moving or without a complete request head. A flood of connections can never take the
//! file descriptors the store and the uplink need.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hazgate_common::{prometheus, HttpLimits};
use tokio::net::{TcpListener, TcpSocket};
use tracing::info;

use crate::metrics::Metrics;

/// The bounds of the metrics server.
pub const LIMITS: HttpLimits = HttpLimits {
    max_connections: 32,
    idle_timeout: Duration::from_secs(5),
    header_timeout: Duration::from_secs(5),
};

/// Binds `addr`, then serves `/metrics` and `/health` until the task is dropped.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    rules: HealthRules,
) -> std::io::Result<()> {
    let listener = bind(addr)?;
    info!(%addr, "metrics at http://{addr}/metrics, health at /health");
    hazgate_common::serve(listener, router(metrics, rules), LIMITS).await;
    Ok(())
}

/// Listens with a backlog of 1024 rather than tokio's 128: a flood of connections past the
/// cap then waits in the kernel's accept queue (no descriptor of ours), instead of having
/// its SYNs dropped and every connect() retrying for minutes; once it closes, the queue
/// drains at once.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// GET `/metrics` and `/health`; 404 for any other path.
pub fn router(metrics: Arc<Metrics>, rules: HealthRules) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/health", get(health_json))
        .fallback(not_found)
        .with_state(Arc::new((metrics, rules)))
}

type Shared = Arc<(Arc<Metrics>, HealthRules)>;

async fn metrics_text(State(s): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        s.0.render(),
    )
}

async fn health_json(State(s): State<Shared>) -> impl IntoResponse {
    let (status, body) = health(&s.0, &s.1);
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "try /metrics or /health\n",
    )
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
pub fn health(m: &Metrics, rules: &HealthRules) -> (StatusCode, String) {
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
    problems.extend(stalled(m, rules));
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
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// What says the gateway's own loops are stuck: no poll cycle, or no pipeline flush (which
/// also waits on the store task), for too long. A restart may cure these, unlike a broker
/// outage or a failing disk, so the systemd watchdog goes by them alone.
pub fn stalled(m: &Metrics, rules: &HealthRules) -> Vec<String> {
    let now = crate::clock::mono_ms();
    let age = |at: i64| Duration::from_millis((now - at).max(0) as u64);
    let mut problems = Vec::new();
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
    problems
}
