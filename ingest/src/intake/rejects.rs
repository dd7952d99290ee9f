//! Refused messages: counted by reason, and each reason logged the first time it happens
//! from a topic, so a gateway sending garbage every second does not flood the log.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tracing::warn;

use super::{RejectReason, Rejection};

#[derive(Debug, Default)]
pub struct RejectCounter {
    counts: [AtomicU64; RejectReason::ALL.len()],
    logged: Mutex<HashSet<(RejectReason, String)>>,
}

/// At most this many (reason, topic) pairs are remembered as logged.
const MAX_LOGGED: usize = 10_000;

impl RejectCounter {
    pub fn record(&self, topic: &str, rejection: &Rejection) {
        self.counts[rejection.reason as usize].fetch_add(1, Ordering::Relaxed);
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() < MAX_LOGGED && logged.insert((rejection.reason, topic.to_string())) {
            warn!(
                reason = rejection.reason.name(),
                topic = %topic.escape_debug(),
                "refused a message: {}; further ones like it from this topic are only counted",
                rejection.detail
            );
        }
    }

    pub fn count(&self, reason: RejectReason) -> u64 {
        self.counts[reason as usize].load(Ordering::Relaxed)
    }
}
