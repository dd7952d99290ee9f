//! Interruptions (断线) of single points: a point whose values stop reaching the
//! time-series store while its gateway is online (a device gone quiet, whose readings then
//! carry no value; a broken telemetry path) is interrupted from its last value until
//! values arrive again; recorded, and raised as a
//! central alarm (condition `interruption`, naming the point) through call-response.
//! The silence allowed is `[supervision] point_silence_after`, or three poll intervals of
//! its device, or two integrity periods of a point reported by exception (both from the
//! master data), whichever is longest. A gateway that is offline is
//! one interruption of its own, not one per point.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;
use tracing::{info, warn};

use hazgate_wire::{Level, Presence};

use super::db::{Db, DbError};
use super::interruptions::{clear_central, raise_central, CentralAlarm};
use crate::view::View;
use crate::write::StoreClient;

type Key = (String, String, String, String);

pub struct PointWatch {
    db: Db,
    view: Arc<View>,
    store: StoreClient,
    silence_after: Duration,
    level: Level,
    open: std::sync::Mutex<HashSet<Key>>,
}

impl PointWatch {
    pub fn spawn(
        db: Db,
        view: Arc<View>,
        store: StoreClient,
        silence_after: Duration,
        level: Level,
    ) {
        tokio::spawn(async move {
            let me = PointWatch {
                db,
                view,
                store,
                silence_after,
                level,
                open: Default::default(),
            };
            if let Ok(rows) = sqlx::query(
                "SELECT site, gateway, device, point FROM point_interruptions WHERE end_ts IS NULL",
            )
            .fetch_all(&me.db.pool)
            .await
            {
                let mut open = me.open.lock().unwrap_or_else(|p| p.into_inner());
                for r in rows {
                    let key: Result<Key, sqlx::Error> = (|| {
                        Ok((
                            r.try_get("site")?,
                            r.try_get("gateway")?,
                            r.try_get("device")?,
                            r.try_get("point")?,
                        ))
                    })();
                    if let Ok(k) = key {
                        open.insert(k);
                    }
                }
            }
            let every =
                (me.silence_after / 4).clamp(Duration::from_secs(2), Duration::from_secs(60));
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = me.look().await {
                    warn!("point interruptions: {e}");
                }
            }
        });
    }

    async fn look(&self) -> Result<(), String> {
        let window = (self.silence_after.as_secs() * 3).max(7200);
        let r = self
            .store
            .get("/api/v1/query")
            .query(&[(
                "query",
                format!("max by (site, gateway, device, point) (tlast_over_time(reading_value[{window}s]))"),
            )])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!(
                "the store answered HTTP {} (this needs VictoriaMetrics' query API)",
                r.status()
            ));
        }
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        let now = crate::now_ms();
        let gateways = self.view.snapshot();
        for s in v["data"]["result"].as_array().into_iter().flatten() {
            let m = &s["metric"];
            let (Some(site), Some(gw), Some(dev), Some(pt)) = (
                m["site"].as_str(),
                m["gateway"].as_str(),
                m["device"].as_str(),
                m["point"].as_str(),
            ) else {
                continue;
            };
            let Some(last) = s["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()) else {
                continue;
            };
            let last = (last * 1000.0) as i64;
            let online = gateways.iter().any(|g| {
                &*g.site == site && &*g.gateway == gw && g.presence == Some(Presence::Online)
            });
            let master = self.view.master_of(site, gw);
            let poll = master
                .as_ref()
                .and_then(|mst| {
                    mst.devices
                        .iter()
                        .find(|d| &*d.id == dev)
                        .map(|d| d.poll_ms)
                })
                .unwrap_or(0) as i64;
            // A point reported by exception is quiet on the wire while it does not move:
            // only two integrity periods without a reading are silence.
            let every = master
                .as_ref()
                .and_then(|mst| {
                    mst.points
                        .iter()
                        .find(|p| &*p.device == dev && &*p.point == pt)
                        .and_then(|p| p.report_every_ms)
                })
                .unwrap_or(0) as i64;
            let allowed = (self.silence_after.as_millis() as i64)
                .max(3 * poll)
                .max(2 * every);
            let silent = now - last > allowed;
            let key: Key = (site.into(), gw.into(), dev.into(), pt.into());
            let known = self
                .open
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&key);
            match (silent && online, known, silent) {
                (true, false, _) => {
                    self.begin(&key, last).await.map_err(|e| e.to_string())?;
                    self.open
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key);
                }
                (_, true, false) => {
                    self.end(&key, last).await.map_err(|e| e.to_string())?;
                    self.open
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn begin(&self, k: &Key, start: i64) -> Result<(), DbError> {
        let occurrence =
            hazgate_wire::occurrence_id(&k.2, &k.3, hazgate_wire::Condition::CommLoss, start)
                .replacen('-', "-p", 1);
        let mut tx = self.db.pool.begin().await?;
        let new = sqlx::query(
            "INSERT INTO point_interruptions (site, gateway, device, point, start_ts, occurrence) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&k.0)
        .bind(&k.1)
        .bind(&k.2)
        .bind(&k.3)
        .bind(start)
        .bind(&occurrence)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if new == 1 {
            let alarm = CentralAlarm {
                site: &k.0,
                gateway: &k.1,
                occurrence: &occurrence,
                device: Some(&k.2),
                point: Some(&k.3),
                level: self.level,
                label: "测点数据中断 (point data stopped)",
            };
            raise_central(&mut tx, &alarm, start).await?;
            info!(site = %k.0, gateway = %k.1, device = %k.2, point = %k.3, "a point's data stopped");
        }
        tx.commit().await?;
        Ok(())
    }

    async fn end(&self, k: &Key, back: i64) -> Result<(), DbError> {
        let row = sqlx::query(
            "SELECT start_ts, occurrence FROM point_interruptions WHERE site = $1 AND gateway = $2 AND device = $3 AND point = $4 AND end_ts IS NULL",
        )
        .bind(&k.0)
        .bind(&k.1)
        .bind(&k.2)
        .bind(&k.3)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(r) = row else { return Ok(()) };
        let (start, occurrence): (i64, String) = (r.try_get("start_ts")?, r.try_get("occurrence")?);
        let end = back.max(start);
        let mut tx = self.db.pool.begin().await?;
        let closed = sqlx::query(
            "UPDATE point_interruptions SET end_ts = $1 WHERE site = $2 AND gateway = $3 AND device = $4 AND point = $5 AND start_ts = $6 AND end_ts IS NULL",
        )
        .bind(end)
        .bind(&k.0)
        .bind(&k.1)
        .bind(&k.2)
        .bind(&k.3)
        .bind(start)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed == 1 {
            clear_central(&mut tx, (&k.0, &k.1, &occurrence), start, end).await?;
            info!(site = %k.0, device = %k.2, point = %k.3, seconds = (end - start) / 1000, "a point's data are back");
        }
        tx.commit().await?;
        Ok(())
    }
}
