//! Counters and gauges of the daemon, shared by its tasks and rendered for Prometheus.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use hazgate_common::prometheus::{Kind, PromText};
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
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut t = PromText::new("hazgate_");
        t.counter("polls_total", "Device poll cycles run.", get(&self.polls));
        t.counter("readings_total", "Readings acquired.", get(&self.readings));
        t.counter(
            "poll_overruns_total",
            "Poll cycles skipped because the previous one overran.",
            get(&self.overruns),
        );
        t.counter(
            "poll_backoffs_total",
            "Cycles not polled while an unreachable device is backed off.",
            get(&self.backoffs),
        );
        t.counter(
            "mqtt_published_total",
            "Messages handed to the broker.",
            get(&self.published),
        );
        t.counter(
            "mqtt_acked_total",
            "Messages acknowledged by the broker (PUBACK).",
            get(&self.acked),
        );
        t.gauge(
            "mqtt_inflight",
            "Messages sent and not yet acknowledged.",
            get(&self.inflight),
        );
        t.counter(
            "mqtt_reconnects_total",
            "Connections to the broker after the first.",
            get(&self.reconnects),
        );
        t.gauge(
            "mqtt_connected",
            "1 while connected to the broker.",
            get(&self.connected),
        );
        t.gauge(
            "mqtt_rtt_milliseconds",
            "Latest publish-to-PUBACK time.",
            get(&self.broker_rtt_ms),
        );
        t.gauge(
            "store_depth_telemetry",
            "Telemetry messages not yet acknowledged.",
            get(&self.store_depth_telemetry),
        );
        t.gauge(
            "store_depth_alarm",
            "Alarm-lane messages not yet acknowledged.",
            get(&self.store_depth_alarm),
        );
        t.gauge(
            "store_bytes",
            "Bytes the store holds on disk.",
            get(&self.store_bytes),
        );
        t.gauge(
            "store_oldest_unsent_age_milliseconds",
            "Age of the oldest unacknowledged data.",
            get(&self.store_oldest_unsent_age_ms),
        );
        t.counter(
            "store_evicted_total",
            "Telemetry messages dropped because the store was full.",
            get(&self.store_evicted),
        );
        t.counter(
            "store_errors_total",
            "Store operations that failed (disk full, I/O errors).",
            get(&self.store_errors),
        );
        t.gauge(
            "store_failed",
            "1 while the store cannot write and records are held in memory.",
            get(&self.store_failed),
        );
        t.gauge(
            "held_records",
            "Records held in memory because the disk refused them.",
            get(&self.held_records),
        );
        t.counter(
            "too_large_total",
            "Records too large to store or publish, skipped.",
            get(&self.too_large),
        );
        t.counter(
            "alarms_dropped_total",
            "Alarm-lane records dropped because memory for held records ran out.",
            get(&self.alarms_dropped),
        );
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        t.labelled(
            "poll_errors_total",
            "Failed reads by reason.",
            Kind::Counter,
            "reason",
            errors,
        );
        t.histogram(
            "request_seconds",
            "Modbus request latency.",
            LATENCY_BUCKETS
                .iter()
                .zip(&self.latency_buckets)
                .map(|(bound, n)| (*bound, get(n))),
            get(&self.latency_count),
            get(&self.latency_sum_us) as f64 / 1e6,
        );
        t.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dashboards, bench/ and tests/e2e read these lines: their text must not drift.
    #[test]
    fn errors_by_reason_and_latency_read_as_before() {
        let m = Metrics::default();
        m.polls.store(7, Ordering::Relaxed);
        m.poll_error(Reason::Timeout);
        m.poll_error(Reason::Timeout);
        m.poll_error(Reason::Crc);
        for s in [0.003, 0.07, 3.0] {
            m.request_latency(s);
        }
        let page = m.render();
        assert!(page.starts_with(
            "# HELP hazgate_polls_total Device poll cycles run.\n\
             # TYPE hazgate_polls_total counter\nhazgate_polls_total 7\n"
        ));
        assert!(page.ends_with(
            "hazgate_alarms_dropped_total 0\n\
             # HELP hazgate_poll_errors_total Failed reads by reason.\n\
             # TYPE hazgate_poll_errors_total counter\n\
             hazgate_poll_errors_total{reason=\"crc\"} 1\n\
             hazgate_poll_errors_total{reason=\"timeout\"} 2\n\
             # HELP hazgate_request_seconds Modbus request latency.\n\
             # TYPE hazgate_request_seconds histogram\n\
             hazgate_request_seconds_bucket{le=\"0.005\"} 1\n\
             hazgate_request_seconds_bucket{le=\"0.01\"} 1\n\
             hazgate_request_seconds_bucket{le=\"0.025\"} 1\n\
             hazgate_request_seconds_bucket{le=\"0.05\"} 1\n\
             hazgate_request_seconds_bucket{le=\"0.1\"} 2\n\
             hazgate_request_seconds_bucket{le=\"0.25\"} 2\n\
             hazgate_request_seconds_bucket{le=\"0.5\"} 2\n\
             hazgate_request_seconds_bucket{le=\"1\"} 2\n\
             hazgate_request_seconds_bucket{le=\"+Inf\"} 3\n\
             hazgate_request_seconds_sum 3.073\n\
             hazgate_request_seconds_count 3\n"
        ));
    }
}
