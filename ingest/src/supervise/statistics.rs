//! Data health and call-response statistics per enterprise and day: online rate (time
//! online / time), completeness (readings received / readings the poll plans promise;
//! where a gateway sends five-minute statistics, the polls they count, since report by
//! exception leaves most readings off the wire),
//! good-quality share, alarms by level, share acknowledged within the deadline and mean
//! time to acknowledge. Counted incrementally, in the background: once an hour is over
//! (and two minutes more for late data), its counts are read from the time-series store
//! and kept per site and hour, and counted again while it is among the last six (a
//! replayed backlog lands in its hour); a day is the sum of its hours, so no page view
//! rescans the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use tracing::warn;

use firmware_config::escalation::Notify;

use super::db::{Db, DbError};
use super::interruptions;
use crate::view::View;
use crate::write::StoreClient;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Late data an hour still waits for before it is counted.
const GRACE: i64 = 120_000;
/// How far back uncounted hours are caught up (after a stop).
const CATCH_UP: i64 = 48 * HOUR;
/// Hours this recent are counted again at every run: a gateway's backlog, replayed after
/// an outage, still lands in the hour it was measured in.
const RECOUNT: i64 = 6 * HOUR;
/// The acknowledgement deadline where no escalation policy gives one.
pub const DEFAULT_ACK_DEADLINE: Duration = Duration::from_secs(15 * 60);

pub fn spawn_counter(db: Db, view: Arc<View>, store: StoreClient) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(20));
        loop {
            tick.tick().await;
            if let Err(e) = count_hours(&db, &view, &store, crate::now_ms()).await {
                warn!("statistics: {e}");
            }
        }
    });
}

/// Counts every finished hour of the last two days not counted yet.
pub async fn count_hours(
    db: &Db,
    view: &View,
    store: &StoreClient,
    now: i64,
) -> Result<(), String> {
    let mut sites: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in view.snapshot() {
        sites
            .entry(g.site.to_string())
            .or_default()
            .push(g.gateway.to_string());
    }
    if sites.is_empty() {
        return Ok(());
    }
    let last = (now - GRACE).div_euclid(HOUR) * HOUR; // start of the hour after the last done
    let mut hour = last - CATCH_UP;
    while hour < last {
        let done: Vec<String> = sqlx::query("SELECT site FROM hourly_stats WHERE hour_ts = $1")
            .bind(hour)
            .fetch_all(&db.pool)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|r| r.try_get("site").ok())
            .collect();
        let recent = hour >= last - RECOUNT;
        let todo: Vec<&String> = sites
            .keys()
            .filter(|s| recent || !done.contains(s))
            .collect();
        if !todo.is_empty() {
            let at = (hour + HOUR) as f64 / 1000.0 - 0.001;
            let received = per_site(
                store,
                "sum by (site) (count_over_time(reading_quality[1h]))",
                at,
            )
            .await?;
            let good = per_site(
                store,
                "sum by (site) (count_eq_over_time(reading_quality[1h], 0))",
                at,
            )
            .await?;
            // Report by exception leaves most readings off the wire; the gateway's
            // five-minute statistics count every poll. A site that sends them is counted
            // by them.
            let polled = per_site(
                store,
                "sum by (site) (sum_over_time(stats_samples[1h]))",
                at,
            )
            .await?;
            let polled_good =
                per_site(store, "sum by (site) (sum_over_time(stats_good[1h]))", at).await?;
            let gone = interruptions::list(db, None, hour, hour + HOUR)
                .await
                .map_err(|e| e.to_string())?;
            for site in todo {
                // Hours before a site's first data are not its hours: a site new to
                // ingest is not counted as silent for the day before it was connected.
                let (got, got_good) = match polled.get(site) {
                    Some(&n) if n > 0.0 => (n, polled_good.get(site).copied().unwrap_or(0.0)),
                    _ => (
                        received.get(site).copied().unwrap_or(0.0),
                        good.get(site).copied().unwrap_or(0.0),
                    ),
                };
                if got == 0.0 {
                    let first: Option<i64> =
                        sqlx::query("SELECT MIN(hour_ts) FROM hourly_stats WHERE site = $1")
                            .bind(site)
                            .fetch_one(&db.pool)
                            .await
                            .map_err(|e| e.to_string())?
                            .try_get(0)
                            .map_err(|e| e.to_string())?;
                    if first.is_none_or(|f| hour < f) {
                        continue;
                    }
                }
                let gws = &sites[site];
                let expected: f64 = gws
                    .iter()
                    .filter_map(|g| view.master_of(site, g))
                    .map(|m| m.expected_per_hour().iter().map(|(_, n)| n).sum::<f64>())
                    .sum();
                let offline: i64 = gws
                    .iter()
                    .map(|g| {
                        gone.iter()
                            .filter(|i| &i.site == site && &i.gateway == g)
                            .map(|i| {
                                let end = i.end_ts.unwrap_or(now).min(hour + HOUR);
                                (end - i.start_ts.max(hour)).max(0)
                            })
                            .sum::<i64>()
                    })
                    .sum::<i64>()
                    / gws.len().max(1) as i64;
                sqlx::query(
                    "INSERT INTO hourly_stats (site, hour_ts, expected, received, good, online_ms, computed_ts) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site, hour_ts) DO UPDATE SET expected = excluded.expected, received = excluded.received, good = excluded.good, online_ms = excluded.online_ms, computed_ts = excluded.computed_ts",
                )
                .bind(site)
                .bind(hour)
                .bind(expected)
                .bind(got as i64)
                .bind(got_good as i64)
                .bind(HOUR - offline.min(HOUR))
                .bind(now)
                .execute(&db.pool)
                .await
                .map_err(|e| e.to_string())?;
            }
        }
        hour += HOUR;
    }
    Ok(())
}

async fn per_site(
    store: &StoreClient,
    query: &str,
    at: f64,
) -> Result<BTreeMap<String, f64>, String> {
    let r = store
        .get("/api/v1/query")
        .query(&[("query", query), ("time", &at.to_string())])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!(
            "the store answered HTTP {} (statistics need VictoriaMetrics' query API)",
            r.status()
        ));
    }
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    Ok(v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let site = r["metric"]["site"].as_str()?.to_string();
            let n: f64 = r["value"][1].as_str()?.parse().ok()?;
            Some((site, n))
        })
        .collect())
}

/// One enterprise's figures for one day (in the regulator's zone).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct DayStats {
    pub site: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Hours counted so far.
    pub hours: i64,
    pub online_rate: Option<f64>,
    pub completeness: Option<f64>,
    pub good_share: Option<f64>,
    pub received: i64,
    pub expected: f64,
    pub alarms: BTreeMap<String, i64>,
    pub acked: i64,
    pub acked_in_time: Option<f64>,
    /// Mean time to acknowledge, s.
    pub mean_ack_s: Option<f64>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (a / b).min(1.0))
}

/// The acknowledgement deadline of an occurrence at `level`: when its site's policy would
/// call the second tier, else [`DEFAULT_ACK_DEADLINE`].
pub fn ack_deadline(notify: &Notify, site: &str, level: Option<hazgate_wire::Level>) -> Duration {
    level
        .and_then(|l| notify.policy(site)?.tiers.get(1)?.after(l))
        .unwrap_or(DEFAULT_ACK_DEADLINE)
}

/// The days from `from_day` (start, ms UTC, at the regulator's midnight) for `days` days.
pub async fn days(
    db: &Db,
    notify: &Notify,
    offset_minutes: i32,
    days: i64,
    now: i64,
) -> Result<Vec<DayStats>, DbError> {
    let offset = i64::from(offset_minutes) * 60_000;
    let today = (now + offset).div_euclid(DAY) * DAY - offset;
    let from = today - (days - 1) * DAY;
    let hours = sqlx::query(
        "SELECT site, hour_ts, expected, received, good, online_ms FROM hourly_stats WHERE hour_ts >= $1 ORDER BY site, hour_ts",
    )
    .bind(from)
    .fetch_all(&db.pool)
    .await?;
    let mut out: BTreeMap<(String, i64), DayStats> = BTreeMap::new();
    for r in &hours {
        let site: String = r.try_get("site")?;
        let hour: i64 = r.try_get("hour_ts")?;
        let day = from + (hour - from).div_euclid(DAY) * DAY;
        let e = out.entry((site.clone(), day)).or_insert_with(|| DayStats {
            site,
            day: crate::notify::text::local_time(day, offset_minutes)[..10].to_string(),
            ..DayStats::default()
        });
        e.hours += 1;
        e.expected += r.try_get::<f64, _>("expected")?;
        e.received += r.try_get::<i64, _>("received")?;
        let good: i64 = r.try_get("good")?;
        let online: i64 = r.try_get("online_ms")?;
        e.good_share = Some(e.good_share.unwrap_or(0.0) + good as f64);
        e.online_rate = Some(e.online_rate.unwrap_or(0.0) + online as f64);
    }
    for e in out.values_mut() {
        e.good_share = e.good_share.and_then(|g| ratio(g, e.received as f64));
        e.online_rate = e
            .online_rate
            .and_then(|o| ratio(o, (e.hours * HOUR) as f64));
        e.completeness = ratio(e.received as f64, e.expected);
    }
    let occ = sqlx::query(
        "SELECT site, max_level, opened_ts, acked_ts FROM occurrences WHERE opened_ts >= $1",
    )
    .bind(from)
    .fetch_all(&db.pool)
    .await?;
    let mut in_time: BTreeMap<(String, i64), (i64, i64, f64)> = BTreeMap::new();
    for r in &occ {
        let site: String = r.try_get("site")?;
        let opened: i64 = r.try_get("opened_ts")?;
        let level: String = r.try_get("max_level")?;
        let acked: Option<i64> = r.try_get("acked_ts")?;
        let day = from + (opened - from).div_euclid(DAY) * DAY;
        let e = out.entry((site.clone(), day)).or_insert_with(|| DayStats {
            site: site.clone(),
            day: crate::notify::text::local_time(day, offset_minutes)[..10].to_string(),
            ..DayStats::default()
        });
        *e.alarms.entry(level.clone()).or_default() += 1;
        let t = in_time.entry((site.clone(), day)).or_default();
        t.0 += 1;
        if let Some(a) = acked {
            e.acked += 1;
            let lvl = hazgate_wire::Level::ALL
                .into_iter()
                .find(|l| l.name() == level);
            let deadline = ack_deadline(notify, &site, lvl).as_millis() as i64;
            if a - opened <= deadline {
                t.1 += 1;
            }
            t.2 += (a - opened).max(0) as f64 / 1000.0;
        }
    }
    for (k, (all, ok, secs)) in in_time {
        if let Some(e) = out.get_mut(&k) {
            e.acked_in_time = ratio(ok as f64, all as f64);
            e.mean_ack_s = (e.acked > 0).then(|| secs / e.acked as f64);
        }
    }
    Ok(out.into_values().collect())
}
