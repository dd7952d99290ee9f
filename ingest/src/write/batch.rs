//! Gathers pending messages into one write: it goes out when it holds `lines` lines, or
//! `interval` after its first message arrived, whichever comes first.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::LineCounts;
use crate::subscribe::{AckToken, Pending};

#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub lines: usize,
    pub interval: Duration,
}

/// One write request's worth, and the messages it releases once written.
#[derive(Debug)]
pub struct Batch {
    pub body: Bytes,
    pub counts: LineCounts,
    /// Alarm events, for the supervision database.
    pub events: Vec<hazgate_wire::AlarmEvent>,
    pub acks: Vec<AckToken>,
    pub permits: Vec<OwnedSemaphorePermit>,
    /// When its first message arrived.
    pub since: Instant,
}

/// Runs until `input` closes; flushes what it holds, then closes `output`.
pub async fn run_batcher(
    mut input: mpsc::Receiver<Pending>,
    output: mpsc::Sender<Batch>,
    limits: BatchLimits,
) {
    while let Some(first) = input.recv().await {
        let since = Instant::now();
        let deadline = since + limits.interval;
        let mut body = Vec::with_capacity(first.lines.len() * 2);
        let mut counts = LineCounts::default();
        let mut acks = Vec::new();
        let mut permits = Vec::new();
        let mut events = Vec::new();
        let mut next = Some(first);
        loop {
            if let Some(mut p) = next.take() {
                body.extend_from_slice(&p.lines);
                events.append(&mut p.events);
                counts.add(p.counts);
                acks.push(p.ack);
                permits.push(p.permit);
            }
            if counts.lines() as usize >= limits.lines {
                break;
            }
            match tokio::time::timeout_at(deadline, input.recv()).await {
                Ok(Some(p)) => next = Some(p),
                Ok(None) | Err(_) => break,
            }
        }
        let batch = Batch {
            body: Bytes::from(body),
            counts,
            events,
            acks,
            permits,
            since,
        };
        if output.send(batch).await.is_err() {
            return;
        }
    }
}
