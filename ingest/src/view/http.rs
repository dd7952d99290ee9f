//! Routes of the regulator view: the login, the page and its assets, the current
//! overview, a live event stream (server-sent events), alarm history, and call-response
//! (occurrences, acknowledgements, the record). Everything but the login page, the login
//! and `/health` needs a caller (`auth`), and shows only the sites the caller supervises.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Semaphore;

use super::admin;
use super::assets::{APP_JS, I18N_JS, INDEX_HTML, LOGIN_HTML, STYLE_CSS, UPLOT_CSS, UPLOT_JS};
use super::auth::{self, AuthState, Caller};
use super::callresponse;
use super::history::{alarm_history, HistoryError, HistoryQuery};
use super::points;
use super::statistics;
use super::View;
use crate::quarantine::{Quarantine, MAX_READ};
use crate::supervise::users::Role;
use crate::supervise::Supervision;
use crate::write::StoreClient;

#[derive(Clone)]
struct Ctx {
    view: Arc<View>,
    store: StoreClient,
    quarantine: Arc<Quarantine>,
    /// One per open event stream.
    streams: Arc<Semaphore>,
}

/// A page, script or style built into the binary.
fn asset<S: Clone + Send + Sync + 'static>(
    kind: &'static str,
    body: &'static str,
) -> axum::routing::MethodRouter<S> {
    get(move || async move { ([(header::CONTENT_TYPE, kind)], body) })
}

/// Event streams (`/api/events`) open at once; beyond, 503.
pub const MAX_EVENT_STREAMS: usize = 64;

pub fn router(
    view: Arc<View>,
    store: StoreClient,
    quarantine: Arc<Quarantine>,
    supervision: Arc<Supervision>,
    cookie_secure: bool,
    notify: Arc<firmware_config::escalation::Notify>,
) -> Router {
    let utc_offset_minutes = notify.utc_offset_minutes;
    let auth = AuthState {
        supervision: supervision.clone(),
        cookie_secure,
        utc_offset_minutes,
    };
    let public: Router = Router::<AuthState>::new()
        .route("/login", asset("text/html; charset=utf-8", LOGIN_HTML))
        .route("/style.css", asset("text/css; charset=utf-8", STYLE_CSS))
        .route("/health", get(|| async { "ok\n" }))
        .route("/api/login", post(auth::login))
        .route(
            "/api/session",
            get(auth::session).route_layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                auth::require,
            )),
        )
        .route("/api/logout", post(auth::logout))
        .with_state(auth.clone());
    let stats_routes: Router = Router::<statistics::StatsCtx>::new()
        .route("/api/statistics", get(statistics::json))
        .route("/api/statistics.csv", get(statistics::csv))
        .with_state(statistics::StatsCtx {
            supervision: supervision.clone(),
            notify,
        });
    let points_routes: Router = Router::<points::PointsCtx>::new()
        .route("/api/site/{site}/{gateway}", get(points::site))
        .route("/api/trend", get(points::trend))
        .with_state(points::PointsCtx {
            view: view.clone(),
            store: store.clone(),
        });
    let view_routes: Router = Router::<Ctx>::new()
        .route("/", asset("text/html; charset=utf-8", INDEX_HTML))
        .route("/app.js", asset("text/javascript; charset=utf-8", APP_JS))
        .route("/i18n.js", asset("text/javascript; charset=utf-8", I18N_JS))
        .route(
            "/vendor/uPlot.iife.min.js",
            asset("text/javascript; charset=utf-8", UPLOT_JS),
        )
        .route(
            "/vendor/uPlot.min.css",
            asset("text/css; charset=utf-8", UPLOT_CSS),
        )
        .route("/api/overview", get(overview))
        .route("/api/events", get(events))
        .route("/api/history", get(history))
        .route("/api/quarantine", get(quarantined))
        .with_state(Ctx {
            view,
            store,
            quarantine,
            streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
        });
    let callresponse_routes: Router = Router::<Arc<Supervision>>::new()
        .route("/api/occurrences", get(callresponse::open))
        .route(
            "/api/occurrences/{site}/{gateway}/{occurrence}",
            get(callresponse::one),
        )
        .route(
            "/api/occurrences/{site}/{gateway}/{occurrence}/ack",
            post(callresponse::acknowledge),
        )
        .route("/api/record.csv", get(callresponse::record_csv))
        .route("/api/interruptions", get(callresponse::interruptions))
        .route("/api/users", get(admin::list).post(admin::add))
        .route("/api/users/{name}/disabled", post(admin::set_disabled))
        .with_state(supervision);
    let protected = view_routes
        .merge(points_routes)
        .merge(stats_routes)
        .merge(callresponse_routes)
        .route_layer(axum::middleware::from_fn_with_state(auth, auth::require));
    public.merge(protected)
}

#[derive(serde::Deserialize)]
struct QuarantineQuery {
    limit: Option<String>,
}

/// The newest quarantined records first: `?limit=N` (default 100, at most 1000).
async fn quarantined(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<QuarantineQuery>,
) -> impl IntoResponse {
    // Refused messages may come from any site, or from none: administrators only.
    if caller.user.role != Role::Admin {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({"error": "the quarantine is for administrators"})),
        );
    }
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

async fn overview(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
) -> impl IntoResponse {
    Json(visible(&ctx.view, &caller))
}

/// The gateways of the sites the caller supervises.
fn visible(view: &View, caller: &Caller) -> Vec<super::GatewayView> {
    view.snapshot()
        .into_iter()
        .filter(|g| caller.user.sees(&g.site))
        .collect()
}

async fn history(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<Vec<(String, String)>>,
) -> impl IntoResponse {
    let q = match HistoryQuery::parse(&params, crate::now_ms()) {
        Ok(q) => q,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": e.to_string()})),
            )
        }
    };
    match alarm_history(&ctx.store, &q).await {
        Ok((entries, more)) => {
            let entries: Vec<_> = entries
                .into_iter()
                .filter(|e| caller.user.sees(&e.site))
                .collect();
            (
                StatusCode::OK,
                Json(serde_json::json!({
                    "events": entries,
                    "from": q.from,
                    "to": q.to,
                    "limit": q.limit,
                    // The span asked for was longer than 31 days: `from` says where it starts.
                    "span_capped": q.capped,
                    // The store holds more events in the span than were read.
                    "more": more,
                })),
            )
        }
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
/// overview instead of the changes it missed. At most [`MAX_EVENT_STREAMS`] at once.
async fn events(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
) -> axum::response::Response {
    let Ok(slot) = ctx.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "10")],
            Json(serde_json::json!({"error": format!("{MAX_EVENT_STREAMS} live event streams are open already; try again later")})),
        )
            .into_response();
    };
    let rx = ctx.view.subscribe();
    let view = ctx.view.clone();
    // The slot lives in the stream, so it is given back when the client goes.
    let stream = stream::unfold(
        (rx, view, true, slot, caller),
        |(mut rx, view, first, slot, caller)| async move {
            if first {
                let event = json_event("overview", &visible(&view, &caller));
                return Some((Ok::<_, Infallible>(event), (rx, view, false, slot, caller)));
            }
            let event = loop {
                match rx.recv().await {
                    Ok(change) if caller.user.sees(change.site()) => {
                        break json_event("change", &change)
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        break json_event("overview", &visible(&view, &caller))
                    }
                    Err(RecvError::Closed) => return None,
                }
            };
            Some((Ok(event), (rx, view, false, slot, caller)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}
