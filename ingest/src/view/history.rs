//! Alarm history from the store, filtered by site, least level and time. Read through
//! VictoriaMetrics's export API (`/api/v1/export`), which returns raw samples with their
//! labels: each alarm event is one sample of `alarm_level_code`, with `alarm_value` and
//! `alarm_limit` at the same time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hazgate_wire::{valid_id, Level};

use crate::write::StoreClient;

/// A checked history request: every bound known before the store is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub site: Option<String>,
    /// This level and above.
    pub level: Option<Level>,
    /// ms UTC.
    pub from: i64,
    pub to: i64,
    pub limit: usize,
    /// `from` was moved up to keep the span within [`MAX_SPAN_MS`].
    pub capped: bool,
}

/// The longest span one request reads: 31 days.
pub const MAX_SPAN_MS: i64 = 31 * 24 * 3600 * 1000;
/// The most events one request returns.
pub const MAX_LIMIT: usize = 5000;
/// 9999-12-31: no later time is a time.
const LATEST_MS: i64 = 253_402_300_799_999;

impl HistoryQuery {
    /// From the URL's parameters (`site`, `level`, `from`, `to`, `limit`): a clear refusal
    /// for anything malformed or unknown, and no arithmetic that can overflow. `to`
    /// defaults to a minute from `now_ms` (the newest events carry the gateways' clocks),
    /// `from` to a day before `to`, `limit` to 500 (at most 5000); a span over 31 days is
    /// cut to the 31 days before `to`.
    pub fn parse(params: &[(String, String)], now_ms: i64) -> Result<HistoryQuery, HistoryError> {
        let bad = |m: String| Err(HistoryError::BadQuery(m));
        let (mut site, mut level, mut from, mut to, mut limit) = (None, None, None, None, None);
        let time = |name: &str, v: &str| -> Result<i64, HistoryError> {
            match v.parse::<i64>() {
                Ok(t) if (0..=LATEST_MS).contains(&t) => Ok(t),
                _ => Err(HistoryError::BadQuery(format!(
                    "`{name}` must be a time in ms since 1970 (0 ..= {LATEST_MS}), not \"{}\"",
                    v.escape_debug()
                ))),
            }
        };
        for (k, v) in params {
            match k.as_str() {
                "site" if v.is_empty() => {}
                "site" => {
                    if !valid_id(v) {
                        return bad(format!("`site`: \"{}\" is not a site id", v.escape_debug()));
                    }
                    site = Some(v.clone());
                }
                "level" if v.is_empty() => {}
                "level" => {
                    level = Some(Level::ALL.into_iter().find(|l| l.name() == v).ok_or_else(|| {
                        HistoryError::BadQuery(format!(
                            "`level` must be blue, yellow, orange or red, not \"{}\"",
                            v.escape_debug()
                        ))
                    })?)
                }
                "from" if v.is_empty() => {}
                "from" => from = Some(time("from", v)?),
                "to" if v.is_empty() => {}
                "to" => to = Some(time("to", v)?),
                "limit" if v.is_empty() => {}
                "limit" => match v.parse::<u64>() {
                    Ok(n) if n >= 1 => limit = Some(n.min(MAX_LIMIT as u64) as usize),
                    _ => {
                        return bad(format!(
                            "`limit` must be a number from 1 (at most {MAX_LIMIT} are returned), not \"{}\"",
                            v.escape_debug()
                        ))
                    }
                },
                other => {
                    return bad(format!(
                        "unknown parameter \"{}\"; use site=ID, level=blue|yellow|orange|red, from=MS, to=MS, limit=N",
                        other.escape_debug()
                    ))
                }
            }
        }
        let to = to.unwrap_or_else(|| now_ms.saturating_add(60_000).clamp(0, LATEST_MS));
        let mut from = from.unwrap_or_else(|| to.saturating_sub(DEFAULT_SPAN_MS).max(0));
        if from > to {
            return bad("`from` is after `to`".into());
        }
        let capped = to - from > MAX_SPAN_MS;
        if capped {
            from = to - MAX_SPAN_MS;
        }
        Ok(HistoryQuery {
            site,
            level,
            from,
            to,
            limit: limit.unwrap_or(500),
            capped,
        })
    }
}

/// One alarm event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub ts: i64,
    pub site: String,
    pub gateway: String,
    pub device: Option<String>,
    pub point: Option<String>,
    pub hazard_source: Option<String>,
    pub condition: String,
    pub event: String,
    pub level: Option<String>,
    pub previous: Option<String>,
    pub unit: Option<String>,
    pub label: Option<String>,
    pub value: Option<f64>,
    pub limit: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    BadQuery(String),
    #[error("the store did not answer the history query: {0}")]
    Store(String),
}

const DEFAULT_SPAN_MS: i64 = 24 * 3600 * 1000;
/// At most this many bytes of the store's answer are read for one request.
const MAX_EXPORT_BYTES: usize = 64 << 20;

#[derive(Deserialize)]
struct ExportLine {
    metric: BTreeMap<String, String>,
    values: Vec<Option<f64>>,
    timestamps: Vec<i64>,
}

/// The events of a checked query, newest first, and whether the store had more than were
/// read: the export is read as it streams and no further once `limit` events (or 64 MiB)
/// are in, so one request never loads a month of alarms into memory.
pub async fn alarm_history(
    store: &StoreClient,
    q: &HistoryQuery,
) -> Result<(Vec<HistoryEntry>, bool), HistoryError> {
    let mut selector = String::from(r#"{__name__=~"alarm_(level_code|value|limit)""#);
    if let Some(site) = &q.site {
        selector.push_str(&format!(r#",site="{site}""#));
    }
    if let Some(least) = q.level {
        let names: Vec<&str> = Level::ALL
            .iter()
            .filter(|l| **l >= least)
            .map(|l| l.name())
            .collect();
        selector.push_str(&format!(r#",level=~"{}""#, names.join("|")));
    }
    selector.push('}');
    let mut response = store
        .get("/api/v1/export")
        .query(&[
            ("match[]", selector.as_str()),
            ("start", &(q.from as f64 / 1000.0).to_string()),
            ("end", &(q.to as f64 / 1000.0).to_string()),
        ])
        .send()
        .await
        .map_err(|e| HistoryError::Store(e.to_string()))?;
    if !response.status().is_success() {
        return Err(HistoryError::Store(format!("HTTP {}", response.status())));
    }
    let mut merger = Merger::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut read = 0usize;
    let mut more = false;
    loop {
        if merger.events() >= q.limit || read >= MAX_EXPORT_BYTES {
            more = true;
            break;
        }
        let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HistoryError::Store(e.to_string()))?
        else {
            break;
        };
        read += chunk.len();
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(i) = pending[start..].iter().position(|&b| b == b'\n') {
            merger.line(&pending[start..start + i]);
            start += i + 1;
        }
        pending.drain(..start);
    }
    if !more && !pending.is_empty() {
        merger.line(&pending);
    }
    Ok((merger.newest(q.limit), more))
}

/// Joins the three series of each event by labels and time.
#[derive(Default)]
struct Merger {
    events: BTreeMap<(i64, Vec<(String, String)>), HistoryEntry>,
}

impl Merger {
    fn events(&self) -> usize {
        self.events.len()
    }

    fn line(&mut self, line: &[u8]) {
        let Ok(mut series) = serde_json::from_slice::<ExportLine>(line) else {
            return;
        };
        let name = series.metric.remove("__name__").unwrap_or_default();
        let labels: Vec<(String, String)> = series.metric.clone().into_iter().collect();
        let get = |k: &str| series.metric.get(k).cloned();
        for (value, ts) in series.values.iter().zip(&series.timestamps) {
            let entry = self
                .events
                .entry((*ts, labels.clone()))
                .or_insert_with(|| HistoryEntry {
                    ts: *ts,
                    site: get("site").unwrap_or_default(),
                    gateway: get("gateway").unwrap_or_default(),
                    device: get("device"),
                    point: get("point"),
                    hazard_source: get("hazard_source"),
                    condition: get("condition").unwrap_or_default(),
                    event: get("event").unwrap_or_default(),
                    level: get("level"),
                    previous: get("previous"),
                    unit: get("unit"),
                    label: get("label"),
                    value: None,
                    limit: None,
                });
            match name.as_str() {
                "alarm_value" => entry.value = *value,
                "alarm_limit" => entry.limit = *value,
                _ => {}
            }
        }
    }

    /// Newest first.
    fn newest(self, limit: usize) -> Vec<HistoryEntry> {
        self.events.into_values().rev().take(limit).collect()
    }
}

/// The whole of an export at once (tests).
#[cfg(test)]
fn merge(export: &str, limit: usize) -> Vec<HistoryEntry> {
    let mut m = Merger::default();
    for line in export.lines() {
        m.line(line.as_bytes());
    }
    m.newest(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_join_into_events() {
        let export = r#"{"metric":{"__name__":"alarm_level_code","site":"S","gateway":"G","device":"D","point":"P","condition":"limit","event":"raise","level":"red"},"values":[4],"timestamps":[1000]}
{"metric":{"__name__":"alarm_value","site":"S","gateway":"G","device":"D","point":"P","condition":"limit","event":"raise","level":"red"},"values":[52.5],"timestamps":[1000]}
{"metric":{"__name__":"alarm_level_code","site":"S","gateway":"G","device":"D","point":"P","condition":"limit","event":"clear"},"values":[0],"timestamps":[2000]}
not json
"#;
        let events = merge(export, 10);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event, "clear");
        assert_eq!(events[1].level.as_deref(), Some("red"));
        assert_eq!(events[1].value, Some(52.5));
        assert_eq!(merge(export, 1).len(), 1);
    }

    fn parse(q: &str) -> Result<HistoryQuery, HistoryError> {
        let params: Vec<(String, String)> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        HistoryQuery::parse(&params, 1_800_000_000_000)
    }

    #[test]
    fn queries_are_checked_and_bounded() {
        let q = parse("").unwrap();
        assert_eq!(q.to, 1_800_000_060_000);
        assert_eq!(q.to - q.from, DEFAULT_SPAN_MS);
        assert_eq!(q.limit, 500);
        for bad in [
            "to=-9223372036854775808",
            "from=-1",
            "to=9223372036854775807",
            "from=x",
            "limit=0",
            "limit=-5",
            "limit=lots",
            "level=purple",
            "site=a%20b",
            "site=a b",
            "from=2000&to=1000",
            "colour=red",
        ] {
            assert!(
                matches!(parse(bad), Err(HistoryError::BadQuery(_))),
                "{bad}"
            );
        }
        let q = parse("from=0&to=253402300799999&limit=99999999999999999999").unwrap_err();
        assert!(q.to_string().contains("limit"), "{q}");
        let q = parse("from=0&to=253402300799999&limit=100000").unwrap();
        assert_eq!(q.limit, MAX_LIMIT);
        assert!(q.capped);
        assert_eq!(q.to - q.from, MAX_SPAN_MS);
        let q = parse("from=0&to=1000&level=orange&site=S-1").unwrap();
        assert_eq!((q.from, q.to, q.capped), (0, 1000, false));
        assert_eq!(q.level, Some(Level::Orange));
    }
}
