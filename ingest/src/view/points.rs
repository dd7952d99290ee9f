//! Drill-down data: a gateway's master data with the live value of every point, and the
//! trend of one point. Both are read from the time-series store, not from what this
//! instance happened to take (several instances split the telemetry): the latest values
//! with an instant query, a trend with a range query the store downsamples
//! (VictoriaMetrics' Prometheus API). InfluxDB 2.x has no such API: there the answer says
//! trends and live values are unavailable.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::Caller;
use super::View;
use crate::write::StoreClient;

#[derive(Clone)]
pub struct PointsCtx {
    pub view: Arc<View>,
    pub store: StoreClient,
}

/// The latest reading of a point as the store has it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Live {
    pub ts: i64,
    pub value: Option<f64>,
    /// 0 good, 1 uncertain, 2 bad.
    pub quality: Option<u8>,
    pub reason: Option<u8>,
    pub flags: Option<u32>,
}

fn refused(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// A Prometheus-API query answer as data, or why not.
async fn query(
    store: &StoreClient,
    path: &str,
    params: &[(&str, String)],
) -> Result<Value, Response> {
    let r = store.get(path).query(params).send().await.map_err(|e| {
        refused(
            StatusCode::BAD_GATEWAY,
            format!("the store did not answer: {e}"),
        )
    })?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(refused(
            StatusCode::NOT_IMPLEMENTED,
            "live values and trends need VictoriaMetrics' query API; with InfluxDB 2.x they are unavailable",
        ));
    }
    if !r.status().is_success() {
        return Err(refused(
            StatusCode::BAD_GATEWAY,
            format!("the store answered HTTP {}", r.status()),
        ));
    }
    r.json()
        .await
        .map_err(|e| refused(StatusCode::BAD_GATEWAY, format!("the store's answer: {e}")))
}

fn ids_ok(ids: &[&str]) -> bool {
    ids.iter().all(|i| hazgate_wire::valid_id(i))
}

#[derive(Deserialize)]
pub struct SiteQuery {
    /// `0`: master data only, no query to the store.
    live: Option<u8>,
}

/// `GET /api/site/{site}/{gateway}[?live=0]`: master data and live values.
pub async fn site(
    State(ctx): State<PointsCtx>,
    Extension(caller): Extension<Caller>,
    Path((site, gateway)): Path<(String, String)>,
    Query(q): Query<SiteQuery>,
) -> Response {
    if !ids_ok(&[&site, &gateway]) {
        return refused(StatusCode::BAD_REQUEST, "not a site and gateway id");
    }
    if !caller.user.sees(&site) {
        return refused(StatusCode::FORBIDDEN, "this site is not one you supervise");
    }
    let master = ctx.view.master_of(&site, &gateway);
    if q.live == Some(0) {
        return Json(json!({ "master": master })).into_response();
    }
    // Values go back 15 minutes: older means the point is silent, shown as such.
    let selector = format!(
        r#"last_over_time({{__name__=~"reading_(value|quality|reason|flags)",site="{site}",gateway="{gateway}"}}[15m])"#
    );
    let live = match query(&ctx.store, "/api/v1/query", &[("query", selector)]).await {
        Ok(v) => Some(merge_live(&v)),
        Err(_) => None,
    };
    Json(json!({
        "master": master,
        "live": live.map(|m| m.into_iter().map(|((d, p), l)| json!({"device": d, "point": p, "live": l})).collect::<Vec<_>>()),
        "live_available": live_available(&ctx.store).await,
    }))
    .into_response()
}

async fn live_available(store: &StoreClient) -> bool {
    query(store, "/api/v1/query", &[("query", "1".to_string())])
        .await
        .is_ok()
}

/// Instant-query results joined per point.
fn merge_live(v: &Value) -> BTreeMap<(String, String), Live> {
    let mut out: BTreeMap<(String, String), Live> = BTreeMap::new();
    for r in v["data"]["result"].as_array().into_iter().flatten() {
        let m = &r["metric"];
        let (Some(d), Some(p)) = (m["device"].as_str(), m["point"].as_str()) else {
            continue;
        };
        let ts = (r["value"][0].as_f64().unwrap_or(0.0) * 1000.0) as i64;
        let x: Option<f64> = r["value"][1].as_str().and_then(|s| s.parse().ok());
        let e = out.entry((d.to_string(), p.to_string())).or_default();
        e.ts = e.ts.max(ts);
        match m["__name__"].as_str().unwrap_or("") {
            "reading_value" => e.value = x,
            "reading_quality" => e.quality = x.map(|q| q as u8),
            "reading_reason" => e.reason = x.map(|q| q as u8),
            "reading_flags" => e.flags = x.map(|q| q as u32),
            _ => {}
        }
    }
    out
}

#[derive(Deserialize)]
pub struct TrendQuery {
    site: String,
    gateway: String,
    device: String,
    point: String,
    /// Seconds back from now: 3600 (1 h) to 2,592,000 (30 days).
    span: Option<i64>,
}

/// Points of a curve at most: the store averages over the step.
const TREND_POINTS: i64 = 600;

/// `GET /api/trend?site&gateway&device&point&span`: the point's curve, averaged by the
/// store into at most 600 steps, with its limits from the master data.
pub async fn trend(
    State(ctx): State<PointsCtx>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<TrendQuery>,
) -> Response {
    if !ids_ok(&[&q.site, &q.gateway, &q.device, &q.point]) {
        return refused(
            StatusCode::BAD_REQUEST,
            "site, gateway, device and point must be ids",
        );
    }
    if !caller.user.sees(&q.site) {
        return refused(StatusCode::FORBIDDEN, "this site is not one you supervise");
    }
    let span = q.span.unwrap_or(3600);
    if !(3600..=30 * 86_400).contains(&span) {
        return refused(
            StatusCode::BAD_REQUEST,
            "span: from 3600 s (1 h) to 2592000 s (30 days)",
        );
    }
    let step = (span / TREND_POINTS).max(1);
    let now = crate::now_ms() / 1000;
    // The store aligns evaluation times to the step: a last one a step ahead still
    // averages over what arrived just now.
    let end = now + step;
    let selector = format!(
        r#"avg_over_time(reading_value{{site="{}",gateway="{}",device="{}",point="{}"}}[{step}s])"#,
        q.site, q.gateway, q.device, q.point
    );
    let answer = match query(
        &ctx.store,
        "/api/v1/query_range",
        &[
            ("query", selector),
            ("start", (now - span).to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
            // Evaluated where asked: VictoriaMetrics otherwise shifts start and end for its
            // cache, and the newest step can miss what just arrived.
            ("nocache", "1".to_string()),
        ],
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut series: Vec<(i64, f64)> = Vec::new();
    for r in answer["data"]["result"].as_array().into_iter().flatten() {
        for pair in r["values"].as_array().into_iter().flatten() {
            let t = pair[0].as_f64().unwrap_or(0.0) as i64 * 1000;
            if let Some(v) = pair[1].as_str().and_then(|s| s.parse::<f64>().ok()) {
                series.push((t, v));
            }
        }
    }
    series.sort_by_key(|(t, _)| *t);
    let info = ctx.view.master_of(&q.site, &q.gateway).and_then(|m| {
        m.points
            .iter()
            .find(|p| *p.device == q.device && *p.point == q.point)
            .cloned()
    });
    Json(json!({
        "step": step,
        "from": (now - span) * 1000,
        "to": now * 1000,
        "times": series.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        "values": series.iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "point": info,
    }))
    .into_response()
}
