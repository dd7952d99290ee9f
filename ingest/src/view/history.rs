//! Alarm history from the store, filtered by site, least level and time. Read through
//! VictoriaMetrics's export API (`/api/v1/export`), which returns raw samples with their
//! labels: each alarm event is one sample of `alarm_level_code`, with `alarm_value` and
//! `alarm_limit` at the same time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hazgate_wire::{valid_id, Level};

use crate::write::StoreClient;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryQuery {
    pub site: Option<String>,
    /// This level and above.
    pub level: Option<Level>,
    /// ms UTC; default a day before `to`.
    pub from: Option<i64>,
    /// ms UTC; default a minute from now (the newest events carry the gateways' clocks).
    pub to: Option<i64>,
    pub limit: Option<usize>,
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
const MAX_LIMIT: usize = 5000;

#[derive(Deserialize)]
struct ExportLine {
    metric: BTreeMap<String, String>,
    values: Vec<Option<f64>>,
    timestamps: Vec<i64>,
}

pub async fn alarm_history(
    store: &StoreClient,
    q: &HistoryQuery,
) -> Result<Vec<HistoryEntry>, HistoryError> {
    let to = q.to.unwrap_or_else(|| crate::now_ms() + 60_000);
    let from = q.from.unwrap_or(to - DEFAULT_SPAN_MS);
    if from > to {
        return Err(HistoryError::BadQuery("`from` is after `to`".into()));
    }
    let limit = q.limit.unwrap_or(500).clamp(1, MAX_LIMIT);
    let mut selector = String::from(r#"{__name__=~"alarm_(level_code|value|limit)""#);
    if let Some(site) = &q.site {
        if !valid_id(site) {
            return Err(HistoryError::BadQuery(format!(
                "\"{}\" is not a site id",
                site.escape_debug()
            )));
        }
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
    let response = store
        .get("/api/v1/export")
        .query(&[
            ("match[]", selector.as_str()),
            ("start", &(from as f64 / 1000.0).to_string()),
            ("end", &(to as f64 / 1000.0).to_string()),
        ])
        .send()
        .await
        .map_err(|e| HistoryError::Store(e.to_string()))?;
    if !response.status().is_success() {
        return Err(HistoryError::Store(format!("HTTP {}", response.status())));
    }
    let text = response
        .text()
        .await
        .map_err(|e| HistoryError::Store(e.to_string()))?;
    Ok(merge(&text, limit))
}

/// Joins the three series of each event by labels and time; newest first.
fn merge(export: &str, limit: usize) -> Vec<HistoryEntry> {
    let mut events: BTreeMap<(i64, Vec<(String, String)>), HistoryEntry> = BTreeMap::new();
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(mut series) = serde_json::from_str::<ExportLine>(line) else {
            continue;
        };
        let name = series.metric.remove("__name__").unwrap_or_default();
        let labels: Vec<(String, String)> = series.metric.clone().into_iter().collect();
        let get = |k: &str| series.metric.get(k).cloned();
        for (value, ts) in series.values.iter().zip(&series.timestamps) {
            let entry = events
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
    events.into_values().rev().take(limit).collect()
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
}
