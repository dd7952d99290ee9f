//! Interruptions (断线): a gateway whose last will says offline, or that has been silent
//! past the threshold, is interrupted from the last status heard until its next birth.
//! Each interruption is recorded with its start, end and duration, and is an equipment
//! alarm of the central side (condition `interruption`) that goes through call-response
//! like any other: escalated while nobody answers, cleared when the gateway returns.
//! Every instance watches; the record is keyed by the last status's time, which all of
//! them received, so there is one interruption however many instances saw it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use tracing::{info, warn};

use hazgate_wire::{Level, Presence};

use super::db::{Db, DbError};
use crate::view::{GatewayView, View};

/// How often presence is looked at.
const TICK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Interruption {
    pub site: String,
    pub gateway: String,
    /// Set for a point whose data stopped; absent for the whole gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    pub start_ts: i64,
    pub end_ts: Option<i64>,
    /// `end - start` once ended, ms.
    pub duration_ms: Option<i64>,
    pub cause: String,
    pub occurrence: String,
}

pub struct Watch {
    db: Db,
    view: Arc<View>,
    silence_after: Duration,
    level: Level,
    open: std::sync::Mutex<HashSet<(String, String)>>,
}

impl Watch {
    pub fn spawn(db: Db, view: Arc<View>, silence_after: Duration, level: Level) {
        tokio::spawn(async move {
            let me = Watch {
                db,
                view,
                silence_after,
                level,
                open: Default::default(),
            };
            if let Ok(list) = list(&me.db, None, 0, i64::MAX).await {
                let mut open = me.open.lock().unwrap_or_else(|p| p.into_inner());
                for i in list.into_iter().filter(|i| i.end_ts.is_none()) {
                    open.insert((i.site, i.gateway));
                }
            }
            let mut tick = tokio::time::interval(TICK);
            loop {
                tick.tick().await;
                for g in me.view.snapshot() {
                    if let Err(e) = me.look(&g).await {
                        warn!(site = %g.site, gateway = %g.gateway, "interruptions: {e}");
                    }
                }
            }
        });
    }

    async fn look(&self, g: &GatewayView) -> Result<(), DbError> {
        let Some(status_ts) = g.status_ts else {
            return Ok(());
        };
        let key = (g.site.to_string(), g.gateway.to_string());
        // A gateway that sends its health rarely (a metered link) is silent only after two
        // of its intervals.
        let allowed =
            (self.silence_after.as_millis() as i64).max(2 * g.health_every_ms.unwrap_or(0) as i64);
        let silent = crate::now_ms() - g.last_seen > allowed;
        let known = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key);
        let cause = match (g.presence, silent) {
            (Some(Presence::Offline), _) => Some("offline"),
            (_, true) => Some("silent"),
            _ => None,
        };
        match (cause, known) {
            (Some(cause), false) => {
                self.begin(g, status_ts, cause).await?;
                self.open
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key);
            }
            (None, true) if g.presence == Some(Presence::Online) => {
                self.end(g, status_ts).await?;
                self.open
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
            }
            _ => {}
        }
        Ok(())
    }

    async fn begin(&self, g: &GatewayView, start: i64, cause: &str) -> Result<(), DbError> {
        let occurrence = format!("int-{start}");
        let mut tx = self.db.pool.begin().await?;
        let new = sqlx::query(
            "INSERT INTO interruptions (site, gateway, start_ts, cause, occurrence) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&*g.site)
        .bind(&*g.gateway)
        .bind(start)
        .bind(cause)
        .bind(&occurrence)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if new == 1 {
            let label = if cause == "offline" {
                "网关离线 (gateway offline)"
            } else {
                "网关无数据 (gateway silent)"
            };
            let alarm = CentralAlarm {
                site: &g.site,
                gateway: &g.gateway,
                occurrence: &occurrence,
                device: None,
                point: None,
                level: self.level,
                label,
            };
            raise_central(&mut tx, &alarm, start).await?;
            info!(site = %g.site, gateway = %g.gateway, cause, "interruption began");
        }
        tx.commit().await?;
        Ok(())
    }

    async fn end(&self, g: &GatewayView, end: i64) -> Result<(), DbError> {
        let row = sqlx::query(
            "SELECT start_ts, occurrence FROM interruptions WHERE site = $1 AND gateway = $2 AND end_ts IS NULL",
        )
        .bind(&*g.site)
        .bind(&*g.gateway)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(r) = row else { return Ok(()) };
        let (start, occurrence): (i64, String) = (r.try_get("start_ts")?, r.try_get("occurrence")?);
        let end = end.max(start);
        let mut tx = self.db.pool.begin().await?;
        let closed = sqlx::query(
            "UPDATE interruptions SET end_ts = $1 WHERE site = $2 AND gateway = $3 AND start_ts = $4 AND end_ts IS NULL",
        )
        .bind(end)
        .bind(&*g.site)
        .bind(&*g.gateway)
        .bind(start)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed == 1 {
            clear_central(&mut tx, (&g.site, &g.gateway, &occurrence), start, end).await?;
            info!(site = %g.site, gateway = %g.gateway, seconds = (end - start) / 1000, "interruption ended");
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A central alarm (an interruption) as the occurrence that carries it.
pub(super) struct CentralAlarm<'a> {
    pub site: &'a str,
    pub gateway: &'a str,
    pub occurrence: &'a str,
    pub device: Option<&'a str>,
    pub point: Option<&'a str>,
    pub level: Level,
    pub label: &'a str,
}

/// Opens the occurrence of a central alarm at `start`, with its first timeline entry.
pub(super) async fn raise_central(
    conn: &mut sqlx::AnyConnection,
    a: &CentralAlarm<'_>,
    start: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO occurrences (site, gateway, occurrence, device, point, condition, level, max_level, label, opened_ts, last_ts) VALUES ($1, $2, $3, $4, $5, 'interruption', $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(a.site)
    .bind(a.gateway)
    .bind(a.occurrence)
    .bind(a.device)
    .bind(a.point)
    .bind(a.level.name())
    .bind(a.level.name())
    .bind(a.label)
    .bind(start)
    .bind(start)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO occurrence_log (site, gateway, occurrence, ts, kind, level, detail) VALUES ($1, $2, $3, $4, 'raise', $5, $6)",
    )
    .bind(a.site)
    .bind(a.gateway)
    .bind(a.occurrence)
    .bind(start)
    .bind(a.level.name())
    .bind(a.label)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Clears the occurrence of a central alarm at `end`, noting how long it lasted.
pub(super) async fn clear_central(
    conn: &mut sqlx::AnyConnection,
    (site, gateway, occurrence): (&str, &str, &str),
    start: i64,
    end: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE occurrences SET cleared_ts = $1, level = NULL, last_ts = $2, cleared_unacked = CASE WHEN acked_by IS NULL THEN 1 ELSE 0 END WHERE site = $3 AND gateway = $4 AND occurrence = $5 AND cleared_ts IS NULL",
    )
    .bind(end)
    .bind(end)
    .bind(site)
    .bind(gateway)
    .bind(occurrence)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO occurrence_log (site, gateway, occurrence, ts, kind, detail) VALUES ($1, $2, $3, $4, 'clear', $5)",
    )
    .bind(site)
    .bind(gateway)
    .bind(occurrence)
    .bind(end)
    .bind(format!("{} s", (end - start) / 1000))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Interruptions of a site (or all) that overlap `[from, to)`, newest first.
pub async fn list(
    db: &Db,
    site: Option<&str>,
    from: i64,
    to: i64,
) -> Result<Vec<Interruption>, DbError> {
    let rows = sqlx::query(
        "SELECT site, gateway, start_ts, end_ts, cause, occurrence FROM interruptions WHERE start_ts < $1 AND (end_ts IS NULL OR end_ts >= $2) ORDER BY start_ts DESC",
    )
    .bind(to)
    .bind(from)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let s: String = r.try_get("site")?;
        if site.is_some_and(|x| x != s) {
            continue;
        }
        let start: i64 = r.try_get("start_ts")?;
        let end: Option<i64> = r.try_get("end_ts")?;
        out.push(Interruption {
            device: None,
            point: None,
            site: s,
            gateway: r.try_get("gateway")?,
            start_ts: start,
            end_ts: end,
            duration_ms: end.map(|e| e - start),
            cause: r.try_get("cause")?,
            occurrence: r.try_get("occurrence")?,
        });
    }
    let rows = sqlx::query(
        "SELECT site, gateway, device, point, start_ts, end_ts, occurrence FROM point_interruptions WHERE start_ts < $1 AND (end_ts IS NULL OR end_ts >= $2)",
    )
    .bind(to)
    .bind(from)
    .fetch_all(&db.pool)
    .await?;
    for r in &rows {
        let s: String = r.try_get("site")?;
        if site.is_some_and(|x| x != s) {
            continue;
        }
        let start: i64 = r.try_get("start_ts")?;
        let end: Option<i64> = r.try_get("end_ts")?;
        out.push(Interruption {
            site: s,
            gateway: r.try_get("gateway")?,
            device: Some(r.try_get("device")?),
            point: Some(r.try_get("point")?),
            start_ts: start,
            end_ts: end,
            duration_ms: end.map(|e| e - start),
            cause: "point_silent".into(),
            occurrence: r.try_get("occurrence")?,
        });
    }
    out.sort_by_key(|i| std::cmp::Reverse(i.start_ts));
    Ok(out)
}
