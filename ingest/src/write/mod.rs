//! The store side: messages become line protocol (`line`), lines gather into batches by
//! size and time (`batch`), and batches go to the InfluxDB v2 write API with retries
//! (`writer`); only then are their messages acknowledged to the broker.

mod batch;
pub mod line;
mod writer;

pub use batch::{run_batcher, Batch, BatchLimits};
pub use writer::{run_writer, StoreClient, WriteError};

/// What a message or batch holds, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineCounts {
    pub readings: u64,
    pub alarms: u64,
    pub gaps: u64,
    pub stats: u64,
}

impl LineCounts {
    pub fn add(&mut self, other: LineCounts) {
        self.readings += other.readings;
        self.alarms += other.alarms;
        self.gaps += other.gaps;
        self.stats += other.stats;
    }

    pub fn lines(&self) -> u64 {
        self.readings + self.alarms + self.gaps
    }
}
