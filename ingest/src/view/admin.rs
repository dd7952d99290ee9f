//! Administration through the view's API, for `admin` users only: list users, add one,
//! disable or enable one. (Contacts and escalation policies live in the central config,
//! checked by `hazingest check`.) Every change goes to the audit log.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use crate::supervise::users::{self, Role, UserError};
use crate::supervise::{audit, Supervision};

fn admins_only(caller: &Caller) -> Option<Response> {
    (caller.user.role != Role::Admin).then(|| {
        (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "for administrators"})),
        )
            .into_response()
    })
}

fn refused(e: UserError) -> Response {
    let status = match e {
        UserError::Db(_) | UserError::Hash(_) => StatusCode::SERVICE_UNAVAILABLE,
        UserError::Unknown(_) => StatusCode::NOT_FOUND,
        UserError::Exists(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

/// `GET /api/users`.
pub async fn list(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Some(r) = admins_only(&caller) {
        return r;
    }
    match users::list(&s.db).await {
        Ok(list) => Json(json!({ "users": list })).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
pub struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    scope: String,
    password: String,
}

/// `POST /api/users` `{"name", "role", "scope", "password"}`.
pub async fn add(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<NewUser>,
) -> Response {
    if let Some(r) = admins_only(&caller) {
        return r;
    }
    let Some(role) = Role::parse(&body.role) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "role: admin, regulator or enterprise"})),
        )
            .into_response();
    };
    match users::add(&s.db, &body.name, &body.password, role, &[body.scope]).await {
        Ok(u) => {
            let _ = audit::record(
                &s.db,
                &caller.user.name,
                "user_add",
                Some(&u.name),
                Some(role.name()),
                None,
            )
            .await;
            (StatusCode::CREATED, Json(json!({ "user": u }))).into_response()
        }
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
pub struct Disabled {
    disabled: bool,
}

/// `POST /api/users/{name}/disabled` `{"disabled": true}`: a disabled user's sessions end.
pub async fn set_disabled(
    State(s): State<Arc<Supervision>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(body): Json<Disabled>,
) -> Response {
    if let Some(r) = admins_only(&caller) {
        return r;
    }
    match users::set_disabled(&s.db, &name, body.disabled).await {
        Ok(()) => {
            let action = if body.disabled {
                "user_disable"
            } else {
                "user_enable"
            };
            let _ = audit::record(&s.db, &caller.user.name, action, Some(&name), None, None).await;
            Json(json!({"user": name, "disabled": body.disabled})).into_response()
        }
        Err(e) => refused(e),
    }
}
