//! The view's call-response routes (预警叫应): open occurrences and their state of answer,
//! one occurrence's timeline, acknowledging one, and the record as CSV. Every route sees
//! only the sites the caller supervises.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use crate::supervise::commands::{self, AckError};
use crate::supervise::{audit, occurrences, Supervision};

fn db_error(e: impl std::fmt::Display) -> Response {
    tracing::error!("supervision database: {e}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "the supervision database is not available"})),
    )
        .into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"error": "this site is not one you supervise"})),
    )
        .into_response()
}

/// `GET /api/occurrences`: open occurrences, most severe first.
pub async fn open(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let sees = |site: &str| caller.user.sees(site);
    match occurrences::open(&s.db, &sees).await {
        Ok(list) => Json(json!({ "occurrences": list })).into_response(),
        Err(e) => db_error(e),
    }
}

/// `GET /api/occurrences/{site}/{gateway}/{occurrence}`: the occurrence and its timeline.
pub async fn one(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
    Path((site, gateway, occurrence)): Path<(String, String, String)>,
) -> Response {
    if !caller.user.sees(&site) {
        return forbidden();
    }
    let found = occurrences::get(&s.db, &site, &gateway, &occurrence).await;
    let timeline = occurrences::timeline(&s.db, &site, &gateway, &occurrence).await;
    match (found, timeline) {
        (Ok(Some(o)), Ok(t)) => Json(json!({"occurrence": o, "timeline": t})).into_response(),
        (Ok(None), _) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such alarm occurrence"})),
        )
            .into_response(),
        (Err(e), _) | (_, Err(e)) => db_error(e),
    }
}

#[derive(Deserialize, Default)]
pub struct AckBody {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/occurrences/{site}/{gateway}/{occurrence}/ack` `{"note": "..."}`.
pub async fn acknowledge(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
    Path((site, gateway, occurrence)): Path<(String, String, String)>,
    body: Option<Json<AckBody>>,
) -> Response {
    let note = body.and_then(|Json(b)| b.note);
    let done = commands::acknowledge(
        &s.db,
        &s.prefix,
        &caller.user,
        &site,
        &gateway,
        &occurrence,
        note.clone(),
    )
    .await;
    match done {
        Ok((result, outgoing)) => {
            let target = format!("{site}/{gateway}/{occurrence}");
            let _ = audit::record(
                &s.db,
                &caller.user.name,
                "acknowledge",
                Some(&target),
                note.as_deref(),
                None,
            )
            .await;
            if let Some(c) = outgoing {
                s.send(c);
            }
            Json(result).into_response()
        }
        Err(AckError::Forbidden) => forbidden(),
        Err(e @ AckError::NotFound) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response()
        }
        Err(e @ AckError::Invalid(_)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Err(AckError::Db(e)) => db_error(e),
    }
}

#[derive(Deserialize)]
pub struct InterruptionQuery {
    site: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
}

/// `GET /api/interruptions?site=...&from=...&to=...`: interruptions (断线) with their
/// start, end and duration, newest first (the last 30 days by default).
pub async fn interruptions(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<InterruptionQuery>,
) -> Response {
    if q.site
        .as_deref()
        .is_some_and(|site| !caller.user.sees(site))
    {
        return forbidden();
    }
    let to = q.to.unwrap_or(i64::MAX);
    let from = q.from.unwrap_or(crate::now_ms() - 30 * 86_400_000);
    match crate::supervise::interruptions::list(&s.db, q.site.as_deref(), from, to).await {
        Ok(list) => {
            let list: Vec<_> = list
                .into_iter()
                .filter(|i| caller.user.sees(&i.site))
                .collect();
            Json(json!({ "interruptions": list })).into_response()
        }
        Err(e) => db_error(e),
    }
}

#[derive(Deserialize)]
pub struct RecordQuery {
    site: String,
    /// ms UTC; default: 30 days back.
    from: Option<i64>,
    /// ms UTC; default: now.
    to: Option<i64>,
}

/// `GET /api/record.csv?site=...&from=...&to=...`: the 叫应记录 of one site.
pub async fn record_csv(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<RecordQuery>,
) -> Response {
    if !caller.user.sees(&q.site) {
        return forbidden();
    }
    let to = q.to.unwrap_or_else(crate::now_ms);
    let from = q.from.unwrap_or(to - 30 * 86_400_000);
    if from > to || to - from > 366 * 86_400_000 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "from must lie before to, at most a year apart"})),
        )
            .into_response();
    }
    match occurrences::export_csv(&s.db, &q.site, from, to).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"record-{}.csv\"", q.site),
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e) => db_error(e),
    }
}
