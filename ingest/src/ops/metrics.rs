//! What an operator watches: messages by kind, refusals by reason, lines written, store
//! and broker state, and how much is held unacknowledged.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hazgate_common::prometheus::{Kind, PromText};
use hazgate_wire::Message;
use tokio::sync::Semaphore;

use crate::intake::{RejectCounter, RejectReason, Why};
use crate::quarantine::Quarantine;
use crate::write::LineCounts;

#[derive(Debug)]
pub struct Metrics {
    connected: AtomicU64,
    store_up: AtomicU64,
    messages: [AtomicU64; Message::KINDS.len()],
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
        let mut t = PromText::new("hazingest_");
        t.gauge(
            "mqtt_connected",
            "1 while connected to the broker.",
            self.connected.load(Relaxed),
        );
        t.gauge(
            "store_up",
            "0 while writes to the time-series store fail.",
            self.store_up.load(Relaxed),
        );
        t.counter(
            "readings_written_total",
            "Readings written to the store.",
            self.readings.load(Relaxed),
        );
        t.counter(
            "alarms_written_total",
            "Alarm events written to the store.",
            self.alarms.load(Relaxed),
        );
        t.counter(
            "gaps_written_total",
            "Data gaps written to the store.",
            self.gaps.load(Relaxed),
        );
        t.counter(
            "write_batches_total",
            "Write requests that succeeded.",
            self.batches.load(Relaxed),
        );
        t.counter(
            "write_failures_total",
            "Write requests that failed and were retried.",
            self.write_failures.load(Relaxed),
        );
        t.counter(
            "lines_refused_total",
            "Lines the store refused as malformed, dropped.",
            self.lines_refused.load(Relaxed),
        );
        t.gauge(
            "pending_bytes",
            "Message bytes taken from the broker, not yet written.",
            self.pending_bytes() as u64,
        );
        t.gauge(
            "last_write_ms",
            "Duration of the last successful write.",
            self.last_write_ms.load(Relaxed),
        );
        t.gauge(
            "last_ack_delay_ms",
            "From a batch's first message to its acknowledgement.",
            self.last_delay_ms.load(Relaxed),
        );
        t.labelled(
            "messages_total",
            "Messages taken, by kind.",
            Kind::Counter,
            "kind",
            Message::KINDS
                .iter()
                .zip(&self.messages)
                .map(|(kind, n)| (kind, n.load(Relaxed))),
        );
        t.labelled(
            "rejected_total",
            "Messages refused, by reason.",
            Kind::Counter,
            "reason",
            RejectReason::ALL
                .into_iter()
                .map(|reason| (reason.name(), self.rejects.count(reason))),
        );
        let q = &self.quarantine;
        t.labelled(
            "quarantined_total",
            "Records kept in the quarantine, by reason: whole refused messages, single refused readings, and records whose time cannot be trusted (clock).",
            Kind::Counter,
            "reason",
            Why::all().map(|why| (why.name(), q.count(why))),
        );
        t.gauge(
            "quarantine_bytes",
            "Bytes in the quarantine folder.",
            q.bytes(),
        );
        t.counter(
            "quarantine_dropped_files_total",
            "Quarantine files removed, oldest first, to stay under quarantine_max_size.",
            q.dropped_files(),
        );
        t.counter(
            "quarantine_dropped_records_total",
            "Records in the quarantine files removed for size.",
            q.dropped_records(),
        );
        t.counter(
            "quarantine_failures_total",
            "Writes to the quarantine that failed; their messages stay unacknowledged.",
            q.failures(),
        );
        t.finish()
    }
}
