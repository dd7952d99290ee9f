//! Writes batches to an InfluxDB v2 write API (InfluxDB 2.x, or VictoriaMetrics) with the
//! influxdb2 client, and acknowledges their messages only after the store said yes. A store
//! that is down or refuses our credentials is retried with backoff for as long as it
//! takes: the broker holds everything meanwhile. A batch the store calls malformed is split
//! until the bad lines are found; only those are dropped, counted and logged.

use std::time::Duration;

use bytes::Bytes;
use influxdb2::api::write::TimestampPrecision;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use firmware_config::central::TimeSeriesStore;
use hazgate_common::{read_secret, Backoff, SecretError};

use super::Batch;
use crate::ops::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("store settings: {0}")]
    Settings(String),
    /// The store token could not be read (says from where).
    #[error("store settings: {0}")]
    Token(#[from] SecretError),
    /// Worth retrying: the store is down, slow, or refuses our token or bucket.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store calls the lines malformed (HTTP 400, 413 or 422).
    #[error("store refused the lines: HTTP {status}: {text}")]
    BadData { status: u16, text: String },
}

/// The connection to the time-series store, for writes (and history queries).
#[derive(Debug, Clone)]
pub struct StoreClient {
    client: influxdb2::Client,
    org: String,
    bucket: String,
    /// For the read side (history), which the write client does not cover.
    http: reqwest::Client,
    base: reqwest::Url,
    token: Option<String>,
}

impl StoreClient {
    pub fn new(cfg: &TimeSeriesStore) -> Result<Self, WriteError> {
        // influxdb2's builder panics on a bad URL; ours is checked here first.
        let base = reqwest::Url::parse(&cfg.url)
            .map_err(|e| WriteError::Settings(format!("store.url \"{}\": {e}", cfg.url)))?;
        let token = match &cfg.token {
            Some(secret) => read_secret(secret, "store token")?,
            None => String::new(),
        };
        let builder = || {
            reqwest::Client::builder()
                .timeout(cfg.timeout)
                .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
        };
        let client = influxdb2::ClientBuilder::with_builder(
            builder(),
            cfg.url.clone(),
            cfg.org.clone(),
            token.clone(),
        )
        .build()
        .map_err(|e| WriteError::Settings(e.to_string()))?;
        let http = builder()
            .build()
            .map_err(|e| WriteError::Settings(e.to_string()))?;
        Ok(Self {
            client,
            org: cfg.org.clone(),
            bucket: cfg.bucket.clone(),
            http,
            base,
            token: (!token.is_empty()).then_some(token),
        })
    }

    /// A read request to the store, with the token if there is one.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let mut url = self.base.clone();
        url.set_path(path);
        let request = self.http.get(url);
        match &self.token {
            Some(t) => request.header("Authorization", format!("Token {t}")),
            None => request,
        }
    }

    pub async fn write(&self, body: Bytes) -> Result<(), WriteError> {
        use influxdb2::RequestError;
        match self
            .client
            .write_line_protocol_with_precision(
                &self.org,
                &self.bucket,
                body,
                TimestampPrecision::Milliseconds,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(RequestError::Http { status, text })
                if matches!(status.as_u16(), 400 | 413 | 422) =>
            {
                Err(WriteError::BadData {
                    status: status.as_u16(),
                    text: text.chars().take(300).collect(),
                })
            }
            Err(RequestError::Http { status, text }) => Err(WriteError::Unavailable(format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ))),
            Err(e) => Err(WriteError::Unavailable(e.to_string())),
        }
    }
}

/// How long a stopping ingest keeps trying to write what it holds; what is left then stays
/// unacknowledged, and the broker sends it again.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Writes batches until `input` closes, then says so on `drained`.
pub async fn run_writer(
    mut input: mpsc::Receiver<Batch>,
    store: StoreClient,
    supervision: Option<std::sync::Arc<crate::supervise::Supervision>>,
    metrics: std::sync::Arc<Metrics>,
    stop: watch::Receiver<bool>,
    drained: watch::Sender<bool>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut down_since: Option<Instant> = None;
    let mut stop_at: Option<Instant> = None;
    while let Some(batch) = input.recv().await {
        let started = Instant::now();
        let written = loop {
            match write_splitting(&store, batch.body.clone(), &metrics).await {
                Ok(()) => break true,
                Err(e) => {
                    metrics.write_failed();
                    if down_since.is_none() {
                        error!(
                            "{e}; holding {} lines and retrying, nothing is acknowledged meanwhile",
                            batch.counts.lines()
                        );
                        down_since = Some(Instant::now());
                        metrics.set_store_up(false);
                    }
                    if *stop.borrow() {
                        let at = *stop_at.get_or_insert_with(|| Instant::now() + STOP_GRACE);
                        if Instant::now() >= at {
                            break false;
                        }
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        };
        if !written {
            warn!("stopping with the store still unavailable; the broker keeps the unwritten messages for the next start");
            break;
        }
        // Occurrences too, before the messages are acknowledged.
        if let Some(s) = &supervision {
            if !record_occurrences(s, &batch.events, &stop).await {
                warn!("stopping with the supervision database unavailable; the broker keeps the messages for the next start");
                break;
            }
        }
        if let Some(since) = down_since.take() {
            info!("store back after {:.1} s", since.elapsed().as_secs_f64());
            metrics.set_store_up(true);
        }
        backoff.reset();
        metrics.written(batch.counts, started.elapsed(), batch.since.elapsed());
        for ack in batch.acks {
            ack.ack();
        }
        drop(batch.permits);
    }
    let _ = drained.send(true);
}

/// Records alarm events in the supervision database, retrying while it is unavailable;
/// `false` if ingest stops first.
async fn record_occurrences(
    s: &crate::supervise::Supervision,
    events: &[hazgate_wire::AlarmEvent],
    stop: &watch::Receiver<bool>,
) -> bool {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut stop_at: Option<Instant> = None;
    let mut failing = false;
    loop {
        match s.record(events).await {
            Ok(()) => {
                if failing {
                    info!("supervision database back");
                }
                return true;
            }
            Err(e) => {
                if !failing {
                    error!("{e}; retrying, nothing is acknowledged meanwhile");
                    failing = true;
                }
                if *stop.borrow() {
                    let at = *stop_at.get_or_insert_with(|| Instant::now() + STOP_GRACE);
                    if Instant::now() >= at {
                        return false;
                    }
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// One write, and if the store calls it malformed, halves of it until each bad line is
/// alone; those are dropped and counted.
async fn write_splitting(
    store: &StoreClient,
    body: Bytes,
    metrics: &Metrics,
) -> Result<(), WriteError> {
    let mut todo = vec![body];
    while let Some(chunk) = todo.pop() {
        if chunk.is_empty() {
            continue;
        }
        match store.write(chunk.clone()).await {
            Ok(()) => {}
            Err(WriteError::BadData { status, text }) => {
                let lines = chunk.iter().filter(|&&b| b == b'\n').count();
                if lines <= 1 {
                    metrics.line_refused();
                    warn!(
                        "the store refused a line (HTTP {status}: {text}); dropped: {}",
                        String::from_utf8_lossy(&chunk).trim_end()
                    );
                    continue;
                }
                let (a, b) = split_half(&chunk);
                todo.push(b);
                todo.push(a);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Splits at the line end nearest the middle.
fn split_half(chunk: &Bytes) -> (Bytes, Bytes) {
    let middle = chunk.len() / 2;
    let cut = chunk[middle..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| middle + i + 1)
        .filter(|&c| c < chunk.len())
        .or_else(|| {
            chunk[..middle]
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| i + 1)
        })
        .unwrap_or(chunk.len());
    (chunk.slice(..cut), chunk.slice(cut..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_split_at_line_ends() {
        let b = Bytes::from_static(b"a 1\nbb 2\nccc 3\n");
        let (x, y) = split_half(&b);
        assert_eq!((&x[..], &y[..]), (&b"a 1\nbb 2\n"[..], &b"ccc 3\n"[..]));
        let (x, y) = split_half(&Bytes::from_static(b"a 1\nb 2\n"));
        assert_eq!((&x[..], &y[..]), (&b"a 1\n"[..], &b"b 2\n"[..]));
    }
}
