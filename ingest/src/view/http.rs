//! Routes of the regulator view: the page and its assets, the current overview, a live
//! event stream (server-sent events) and alarm history.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::assets::{APP_JS, INDEX_HTML, STYLE_CSS};
use super::history::{alarm_history, HistoryError, HistoryQuery};
use super::View;
use crate::quarantine::{Quarantine, MAX_READ};
use crate::write::StoreClient;

#[derive(Clone)]
struct Ctx {
    view: Arc<View>,
    store: StoreClient,
    quarantine: Arc<Quarantine>,
}

pub fn router(view: Arc<View>, store: StoreClient, quarantine: Arc<Quarantine>) -> Router {
    let asset = |kind: &'static str, body: &'static str| {
        get(move || async move { ([(header::CONTENT_TYPE, kind)], body) })
    };
    Router::new()
        .route("/", asset("text/html; charset=utf-8", INDEX_HTML))
        .route("/app.js", asset("text/javascript; charset=utf-8", APP_JS))
        .route("/style.css", asset("text/css; charset=utf-8", STYLE_CSS))
        .route("/api/overview", get(overview))
        .route("/api/events", get(events))
        .route("/api/history", get(history))
        .route("/api/quarantine", get(quarantined))
        .with_state(Ctx {
            view,
            store,
            quarantine,
        })
}

#[derive(serde::Deserialize)]
struct QuarantineQuery {
    limit: Option<String>,
}

/// The newest quarantined records first: `?limit=N` (default 100, at most 1000).
async fn quarantined(
    State(ctx): State<Ctx>,
    Query(q): Query<QuarantineQuery>,
) -> impl IntoResponse {
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=MAX_READ).contains(&n) => n,
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": format!("limit: use 1..={MAX_READ}")})),
            )
        }
    };
    let q = ctx.quarantine.clone();
    match tokio::task::spawn_blocking(move || q.recent(limit)).await {
        Ok(Ok(records)) => (
            StatusCode::OK,
            Json(serde_json::json!({ "records": records })),
        ),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"error": format!("cannot read the quarantine: {e}")})),
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"error": "cannot read the quarantine"})),
        ),
    }
}

async fn overview(State(ctx): State<Ctx>) -> impl IntoResponse {
    Json(ctx.view.snapshot())
}

async fn history(
    State(ctx): State<Ctx>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> impl IntoResponse {
    let Ok(Query(q)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                serde_json::json!({"error": "use site=ID, level=blue|yellow|orange|red, from=MS, to=MS, limit=N"}),
            ),
        );
    };
    match alarm_history(&ctx.store, &q).await {
        Ok(entries) => (
            StatusCode::OK,
            Json(serde_json::json!({ "events": entries })),
        ),
        Err(e @ HistoryError::BadQuery(_)) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": e.to_string()})),
        ),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(serde_json::json!({"error": e.to_string()})),
        ),
    }
}

/// First the whole overview, then every change; a client too slow to keep up gets a fresh
/// overview instead of the changes it missed.
async fn events(State(ctx): State<Ctx>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = ctx.view.subscribe();
    let view = ctx.view.clone();
    let stream = stream::unfold((rx, view, true), |(mut rx, view, first)| async move {
        if first {
            let event = json_event("overview", &view.snapshot());
            return Some((Ok(event), (rx, view, false)));
        }
        let event = match rx.recv().await {
            Ok(change) => json_event("change", &change),
            Err(RecvError::Lagged(_)) => json_event("overview", &view.snapshot()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, view, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}
