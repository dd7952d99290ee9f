//! Counters and gauges of the daemon, shared by its tasks and rendered for Prometheus.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use hazgate_wire::Reason;

/// Request latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    pub polls: AtomicU64,
    pub readings: AtomicU64,
    pub overruns: AtomicU64,
    pub backoffs: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    pub published: AtomicU64,
    pub acked: AtomicU64,
    pub inflight: AtomicU64,
    pub reconnects: AtomicU64,
    pub connected: AtomicU64,
    pub broker_rtt_ms: AtomicU64,
    pub store_depth_telemetry: AtomicU64,
    pub store_depth_alarm: AtomicU64,
    pub store_bytes: AtomicU64,
    pub store_oldest_unsent_age_ms: AtomicU64,
    pub store_evicted: AtomicU64,
    pub store_errors: AtomicU64,
    /// 1 while the store cannot write (records held in memory).
    pub store_failed: AtomicU64,
    /// Records held in memory because the disk refused them.
    pub held_records: AtomicU64,
    /// Records too large to store or send, skipped (reported once each).
    pub too_large: AtomicU64,
    /// Alarm-lane records dropped because memory for held records ran out.
    pub alarms_dropped: AtomicU64,
    /// Monotonic ms of the last poll cycle that delivered readings (0: none yet).
    pub last_poll_mono_ms: AtomicI64,
    /// Monotonic ms of the last telemetry flush of the pipeline.
    pub last_flush_mono_ms: AtomicI64,
    /// Monotonic ms since when the broker is unreachable (0: connected, or never tried).
    pub disconnected_since_mono_ms: AtomicI64,
    /// Monotonic ms when the daemon started.
    pub started_mono_ms: AtomicI64,
}

impl Metrics {
    pub fn poll_error(&self, reason: Reason) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason.as_str())
            .or_default() += 1;
    }

    pub fn poll_errors(&self) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    pub fn request_latency(&self, seconds: f64) {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(s, "# HELP hazgate_{name} {help}\n# TYPE hazgate_{name} {kind}\nhazgate_{name} {value}");
        };
        metric(
            "polls_total",
            "counter",
            "Device poll cycles run.",
            get(&self.polls),
        );
        metric(
            "readings_total",
            "counter",
            "Readings acquired.",
            get(&self.readings),
        );
        metric(
            "poll_overruns_total",
            "counter",
            "Poll cycles skipped because the previous one overran.",
            get(&self.overruns),
        );
        metric(
            "poll_backoffs_total",
            "counter",
            "Cycles not polled while an unreachable device is backed off.",
            get(&self.backoffs),
        );
        metric(
            "mqtt_published_total",
            "counter",
            "Messages handed to the broker.",
            get(&self.published),
        );
        metric(
            "mqtt_acked_total",
            "counter",
            "Messages acknowledged by the broker (PUBACK).",
            get(&self.acked),
        );
        metric(
            "mqtt_inflight",
            "gauge",
            "Messages sent and not yet acknowledged.",
            get(&self.inflight),
        );
        metric(
            "mqtt_reconnects_total",
            "counter",
            "Connections to the broker after the first.",
            get(&self.reconnects),
        );
        metric(
            "mqtt_connected",
            "gauge",
            "1 while connected to the broker.",
            get(&self.connected),
        );
        metric(
            "mqtt_rtt_milliseconds",
            "gauge",
            "Latest publish-to-PUBACK time.",
            get(&self.broker_rtt_ms),
        );
        metric(
            "store_depth_telemetry",
            "gauge",
            "Telemetry messages not yet acknowledged.",
            get(&self.store_depth_telemetry),
        );
        metric(
            "store_depth_alarm",
            "gauge",
            "Alarm-lane messages not yet acknowledged.",
            get(&self.store_depth_alarm),
        );
        metric(
            "store_bytes",
            "gauge",
            "Bytes the store holds on disk.",
            get(&self.store_bytes),
        );
        metric(
            "store_oldest_unsent_age_milliseconds",
            "gauge",
            "Age of the oldest unacknowledged data.",
            get(&self.store_oldest_unsent_age_ms),
        );
        metric(
            "store_evicted_total",
            "counter",
            "Telemetry messages dropped because the store was full.",
            get(&self.store_evicted),
        );
        metric(
            "store_errors_total",
            "counter",
            "Store operations that failed (disk full, I/O errors).",
            get(&self.store_errors),
        );
        metric(
            "store_failed",
            "gauge",
            "1 while the store cannot write and records are held in memory.",
            get(&self.store_failed),
        );
        metric(
            "held_records",
            "gauge",
            "Records held in memory because the disk refused them.",
            get(&self.held_records),
        );
        metric(
            "too_large_total",
            "counter",
            "Records too large to store or publish, skipped.",
            get(&self.too_large),
        );
        metric(
            "alarms_dropped_total",
            "counter",
            "Alarm-lane records dropped because memory for held records ran out.",
            get(&self.alarms_dropped),
        );
        let _ = writeln!(s, "# HELP hazgate_poll_errors_total Failed reads by reason.\n# TYPE hazgate_poll_errors_total counter");
        for (reason, n) in self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(s, "hazgate_poll_errors_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(s, "# HELP hazgate_request_seconds Modbus request latency.\n# TYPE hazgate_request_seconds histogram");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "hazgate_request_seconds_bucket{{le=\"{bound}\"}} {}",
                get(&self.latency_buckets[i])
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(s, "hazgate_request_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "hazgate_request_seconds_sum {}",
            get(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(s, "hazgate_request_seconds_count {count}");
        s
    }
}
