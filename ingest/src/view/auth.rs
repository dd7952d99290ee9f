//! Who is asking, for every route of the view: a session cookie (from a login) or an API
//! token (`Authorization: Bearer hzt_...`). Nothing but the login page, the login itself,
//! the stylesheet and `/health` answers without one: a page is redirected to the login,
//! an API call gets 401. A request that changes something (any method but GET and HEAD)
//! on a session must carry its CSRF token in `X-CSRF-Token`; an API token needs none, as
//! no browser sends it by itself.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::supervise::sessions::{self, COOKIE, SESSION_LIFETIME};
use crate::supervise::users::User;
use crate::supervise::{audit, users, Supervision};

/// The caller of a request, once known.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// The session's CSRF token; `None` for an API token.
    pub csrf: Option<String>,
}

#[derive(Clone)]
pub struct AuthState {
    pub supervision: Arc<Supervision>,
    pub cookie_secure: bool,
    /// The regulator's time zone, minutes east of UTC, for the page.
    pub utc_offset_minutes: i32,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

fn unauthorized(path: &str) -> Response {
    if path.starts_with("/api/") {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "log in first (POST /api/login), or send an API token"})),
        )
            .into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!("supervision database: {e}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "the supervision database is not available"})),
    )
        .into_response()
}

/// The middleware: finds the caller or refuses the request.
pub async fn require(State(auth): State<AuthState>, mut request: Request, next: Next) -> Response {
    let db = &auth.supervision.db;
    let path = request.uri().path().to_string();
    let headers = request.headers();
    let caller = if let Some(token) = bearer(headers) {
        match sessions::api_user(db, &token).await {
            Ok(Some(user)) => Caller { user, csrf: None },
            Ok(None) => return unauthorized(&path),
            Err(e) => return server_error(e),
        }
    } else if let Some(token) = cookie_token(headers) {
        match sessions::find(db, &token).await {
            Ok(Some(s)) => Caller {
                user: s.user,
                csrf: Some(s.csrf),
            },
            Ok(None) => return unauthorized(&path),
            Err(e) => return server_error(e),
        }
    } else {
        return unauthorized(&path);
    };
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if let (true, Some(csrf)) = (changes, &caller.csrf) {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if sent != Some(csrf.as_str()) {
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "missing or wrong CSRF token (X-CSRF-Token)"})),
            )
                .into_response();
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[derive(Deserialize)]
pub struct Login {
    name: String,
    password: String,
}

/// `POST /api/login` `{"name", "password"}`: a session cookie and its CSRF token.
pub async fn login(
    State(auth): State<AuthState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> Response {
    let s = &auth.supervision;
    let from = Some(addr.ip());
    if let Some(wait) = s.logins.blocked(from, &body.name) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
            Json(json!({"error": "too many failed logins; wait and try again"})),
        )
            .into_response();
    }
    let user = match users::verify(&s.db, &body.name, &body.password).await {
        Ok(u) => u,
        Err(e) => return server_error(e),
    };
    let Some(user) = user else {
        s.logins.failed(from, &body.name);
        let _ = audit::record(&s.db, &body.name, "login_failed", None, None, from).await;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "wrong name or password"})),
        )
            .into_response();
    };
    let session = match sessions::open(&s.db, user).await {
        Ok(session) => session,
        Err(e) => return server_error(e),
    };
    let _ = audit::record(&s.db, &session.user.name, "login", None, None, from).await;
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        session.token,
        SESSION_LIFETIME.as_secs(),
        if auth.cookie_secure { "; Secure" } else { "" }
    );
    let mut response = Json(json!({
        "user": session.user.name,
        "role": session.user.role,
        "csrf": session.csrf,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /api/logout`: the session ends.
pub async fn logout(State(auth): State<AuthState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie_token(&headers) {
        if let Err(e) = sessions::close(&auth.supervision.db, &token).await {
            return server_error(e);
        }
    }
    let mut response = Json(json!({"ok": true})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "hazingest_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    response
}

/// `GET /api/session`: who is logged in, and the CSRF token for the page's requests.
pub async fn session(
    State(auth): State<AuthState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    Json(json!({
        "user": caller.user.name,
        "role": caller.user.role,
        "scope": caller.user.scope,
        "csrf": caller.csrf,
        "utc_offset_minutes": auth.utc_offset_minutes,
    }))
    .into_response()
}
