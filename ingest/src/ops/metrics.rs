//! What an operator watches: messages by kind, refusals by reason, lines written, store
//! and broker state, and how much is held unacknowledged.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hazgate_wire::Message;
use tokio::sync::Semaphore;

use crate::intake::{RejectCounter, RejectReason, Why};
use crate::quarantine::Quarantine;
use crate::write::LineCounts;

#[derive(Debug)]
pub struct Metrics {
    connected: AtomicU64,
    store_up: AtomicU64,
    messages: [AtomicU64; 5],
    readings: AtomicU64,
    alarms: AtomicU64,
    gaps: AtomicU64,
    batches: AtomicU64,
    write_failures: AtomicU64,
    lines_refused: AtomicU64,
    last_write_ms: AtomicU64,
    /// Time from a batch's first message to its acknowledgement.
    last_delay_ms: AtomicU64,
    rejects: Arc<RejectCounter>,
    quarantine: Arc<Quarantine>,
    pending_limit: Arc<Semaphore>,
    max_pending: usize,
}

impl Metrics {
    pub fn new(
        rejects: Arc<RejectCounter>,
        quarantine: Arc<Quarantine>,
        pending_limit: Arc<Semaphore>,
        max_pending: usize,
    ) -> Self {
        Self {
            connected: AtomicU64::new(0),
            store_up: AtomicU64::new(1),
            messages: Default::default(),
            readings: AtomicU64::new(0),
            alarms: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            lines_refused: AtomicU64::new(0),
            last_write_ms: AtomicU64::new(0),
            last_delay_ms: AtomicU64::new(0),
            rejects,
            quarantine,
            pending_limit,
            max_pending,
        }
    }

    pub fn set_connected(&self, up: bool) {
        self.connected.store(up as u64, Relaxed);
    }

    pub fn set_store_up(&self, up: bool) {
        self.store_up.store(up as u64, Relaxed);
    }

    pub fn count_message(&self, m: &Message) {
        self.messages[m.kind_index()].fetch_add(1, Relaxed);
    }

    pub fn written(&self, c: LineCounts, took: Duration, delay: Duration) {
        self.readings.fetch_add(c.readings, Relaxed);
        self.alarms.fetch_add(c.alarms, Relaxed);
        self.gaps.fetch_add(c.gaps, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.last_write_ms.store(took.as_millis() as u64, Relaxed);
        self.last_delay_ms.store(delay.as_millis() as u64, Relaxed);
    }

    pub fn write_failed(&self) {
        self.write_failures.fetch_add(1, Relaxed);
    }

    pub fn line_refused(&self) {
        self.lines_refused.fetch_add(1, Relaxed);
    }

    pub fn readings_written(&self) -> u64 {
        self.readings.load(Relaxed)
    }

    pub fn pending_bytes(&self) -> usize {
        self.max_pending
            .saturating_sub(self.pending_limit.available_permits())
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Relaxed) == 1
    }

    pub fn store_up(&self) -> bool {
        self.store_up.load(Relaxed) == 1
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(o, "# HELP hazingest_{name} {help}\n# TYPE hazingest_{name} {kind}\nhazingest_{name} {value}");
        };
        gauge(
            "mqtt_connected",
            "1 while connected to the broker.",
            "gauge",
            self.connected.load(Relaxed),
        );
        gauge(
            "store_up",
            "0 while writes to the time-series store fail.",
            "gauge",
            self.store_up.load(Relaxed),
        );
        gauge(
            "readings_written_total",
            "Readings written to the store.",
            "counter",
            self.readings.load(Relaxed),
        );
        gauge(
            "alarms_written_total",
            "Alarm events written to the store.",
            "counter",
            self.alarms.load(Relaxed),
        );
        gauge(
            "gaps_written_total",
            "Data gaps written to the store.",
            "counter",
            self.gaps.load(Relaxed),
        );
        gauge(
            "write_batches_total",
            "Write requests that succeeded.",
            "counter",
            self.batches.load(Relaxed),
        );
        gauge(
            "write_failures_total",
            "Write requests that failed and were retried.",
            "counter",
            self.write_failures.load(Relaxed),
        );
        gauge(
            "lines_refused_total",
            "Lines the store refused as malformed, dropped.",
            "counter",
            self.lines_refused.load(Relaxed),
        );
        gauge(
            "pending_bytes",
            "Message bytes taken from the broker, not yet written.",
            "gauge",
            self.pending_bytes() as u64,
        );
        gauge(
            "last_write_ms",
            "Duration of the last successful write.",
            "gauge",
            self.last_write_ms.load(Relaxed),
        );
        gauge(
            "last_ack_delay_ms",
            "From a batch's first message to its acknowledgement.",
            "gauge",
            self.last_delay_ms.load(Relaxed),
        );
        let _ = writeln!(o, "# HELP hazingest_messages_total Messages taken, by kind.\n# TYPE hazingest_messages_total counter");
        for (kind, n) in Message::KINDS.iter().zip(&self.messages) {
            let _ = writeln!(
                o,
                "hazingest_messages_total{{kind=\"{kind}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(o, "# HELP hazingest_rejected_total Messages refused, by reason.\n# TYPE hazingest_rejected_total counter");
        for reason in RejectReason::ALL {
            let _ = writeln!(
                o,
                "hazingest_rejected_total{{reason=\"{}\"}} {}",
                reason.name(),
                self.rejects.count(reason)
            );
        }
        let q = &self.quarantine;
        let _ = writeln!(o, "# HELP hazingest_quarantined_total Records kept in the quarantine, by reason: whole refused messages, single refused readings, and records whose time cannot be trusted (clock).\n# TYPE hazingest_quarantined_total counter");
        for why in Why::all() {
            let _ = writeln!(
                o,
                "hazingest_quarantined_total{{reason=\"{}\"}} {}",
                why.name(),
                q.count(why)
            );
        }
        let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(o, "# HELP hazingest_{name} {help}\n# TYPE hazingest_{name} {kind}\nhazingest_{name} {value}");
        };
        gauge(
            "quarantine_bytes",
            "Bytes in the quarantine folder.",
            "gauge",
            q.bytes(),
        );
        gauge(
            "quarantine_dropped_files_total",
            "Quarantine files removed, oldest first, to stay under quarantine_max_size.",
            "counter",
            q.dropped_files(),
        );
        gauge(
            "quarantine_dropped_records_total",
            "Records in the quarantine files removed for size.",
            "counter",
            q.dropped_records(),
        );
        gauge(
            "quarantine_failures_total",
            "Writes to the quarantine that failed; their messages stay unacknowledged.",
            "counter",
            q.failures(),
        );
        o
    }
}
