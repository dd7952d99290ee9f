//! `GET /api/statistics?days=N` and `/api/statistics.csv?days=N`: data health and
//! call-response figures per enterprise and day, for the sites the caller supervises.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use firmware_config::escalation::Notify;

use super::auth::Caller;
use crate::supervise::statistics::{self, DayStats};
use crate::supervise::Supervision;

#[derive(Clone)]
pub struct StatsCtx {
    pub supervision: Arc<Supervision>,
    pub notify: Arc<Notify>,
}

#[derive(Deserialize)]
pub struct DaysQuery {
    days: Option<i64>,
}

async fn load(ctx: &StatsCtx, caller: &Caller, q: &DaysQuery) -> Result<Vec<DayStats>, Response> {
    let days = q.days.unwrap_or(7);
    if !(1..=92).contains(&days) {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "days: 1..=92"})),
        )
            .into_response());
    }
    statistics::days(
        &ctx.supervision.db,
        &ctx.notify,
        ctx.notify.utc_offset_minutes,
        days,
        crate::now_ms(),
    )
    .await
    .map(|list| {
        list.into_iter()
            .filter(|d| caller.user.sees(&d.site))
            .collect()
    })
    .map_err(|e| {
        tracing::error!("statistics: {e}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "the supervision database is not available"})),
        )
            .into_response()
    })
}

pub async fn json(
    State(ctx): State<StatsCtx>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<DaysQuery>,
) -> Response {
    match load(&ctx, &caller, &q).await {
        Ok(days) => Json(json!({ "days": days })).into_response(),
        Err(r) => r,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}", v * 100.0)).unwrap_or_default()
}

pub async fn csv(
    State(ctx): State<StatsCtx>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<DaysQuery>,
) -> Response {
    let days = match load(&ctx, &caller, &q).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut out = String::from("\u{feff}site,day,hours,online_rate_pct,completeness_pct,good_share_pct,received,expected,red,orange,yellow,blue,acknowledged,acked_in_time_pct,mean_ack_s\n");
    for d in &days {
        let n = |l: &str| d.alarms.get(l).copied().unwrap_or(0).to_string();
        out.push_str(
            &[
                d.site.clone(),
                d.day.clone(),
                d.hours.to_string(),
                pct(d.online_rate),
                pct(d.completeness),
                pct(d.good_share),
                d.received.to_string(),
                format!("{:.0}", d.expected),
                n("red"),
                n("orange"),
                n("yellow"),
                n("blue"),
                d.acked.to_string(),
                pct(d.acked_in_time),
                d.mean_ack_s.map(|s| format!("{s:.0}")).unwrap_or_default(),
            ]
            .join(","),
        );
        out.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"statistics.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}
