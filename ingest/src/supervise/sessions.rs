//! Who is asking: a session (an HttpOnly cookie, with a CSRF token for every request that
//! changes something) after a login, or an API token for machine clients. Tokens are 256
//! random bits; the database keeps only their SHA-256. Failed logins are limited per
//! remote address and per user name.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::db::{Db, DbError};
use super::users::{self, User};

/// How long a session lasts from its login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
pub const COOKIE: &str = "hazingest_session";

/// A new random token, as hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A logged-in session: the cookie's token and the CSRF token the page sends back.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub user: User,
}

pub async fn open(db: &Db, user: User) -> Result<Session, DbError> {
    let (token, csrf) = (new_token(), new_token());
    let now = crate::now_ms();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_name, csrf, created_ts, expires_ts) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest(&token))
    .bind(&user.name)
    .bind(&csrf)
    .bind(now)
    .bind(now + SESSION_LIFETIME.as_millis() as i64)
    .execute(&db.pool)
    .await?;
    // Expired sessions go now and then, here.
    sqlx::query("DELETE FROM sessions WHERE expires_ts < $1")
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(Session { token, csrf, user })
}

/// The session of a cookie token, if it is valid and its user still allowed in.
pub async fn find(db: &Db, token: &str) -> Result<Option<Session>, DbError> {
    let row = sqlx::query("SELECT user_name, csrf, expires_ts FROM sessions WHERE token_hash = $1")
        .bind(digest(token))
        .fetch_optional(&db.pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let expires: i64 = r.try_get("expires_ts")?;
    if expires < crate::now_ms() {
        return Ok(None);
    }
    let name: String = r.try_get("user_name")?;
    let csrf: String = r.try_get("csrf")?;
    let user = users::find(db, &name).await.map_err(|e| match e {
        users::UserError::Db(d) => d,
        other => DbError::Query(sqlx::Error::Protocol(other.to_string())),
    })?;
    Ok(user.filter(|u| !u.disabled).map(|user| Session {
        token: token.to_string(),
        csrf,
        user,
    }))
}

pub async fn close(db: &Db, token: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(digest(token))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A new API token for `user` (shown once; only its hash is kept).
pub async fn add_api_token(db: &Db, user: &str, label: &str) -> Result<String, DbError> {
    let token = format!("hzt_{}", new_token());
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, user_name, label, created_ts) VALUES ($1, $2, $3, $4)",
    )
    .bind(digest(&token))
    .bind(user)
    .bind(label)
    .bind(crate::now_ms())
    .execute(&db.pool)
    .await?;
    Ok(token)
}

/// The user of an API token.
pub async fn api_user(db: &Db, token: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query("SELECT user_name FROM api_tokens WHERE token_hash = $1")
        .bind(digest(token))
        .fetch_optional(&db.pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let name: String = r.try_get("user_name")?;
    let user = users::find(db, &name).await.ok().flatten();
    Ok(user.filter(|u| !u.disabled))
}

/// Failed logins: at most [`LoginLimiter::MAX_FAILURES`] per remote address and per user
/// name within [`LoginLimiter::WINDOW`]; then logins from there, or as that name, wait.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub const MAX_FAILURES: usize = 5;
    pub const WINDOW: Duration = Duration::from_secs(300);

    fn keys(remote: Option<IpAddr>, name: &str) -> [String; 2] {
        [
            format!("ip:{}", remote.map_or("?".into(), |r| r.to_string())),
            format!("user:{name}"),
        ]
    }

    /// How long to wait before trying again, if too many tries failed.
    pub fn blocked(&self, remote: Option<IpAddr>, name: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, v| {
            v.retain(|t| now.duration_since(*t) < Self::WINDOW);
            !v.is_empty()
        });
        Self::keys(remote, name)
            .iter()
            .filter_map(|k| map.get(k))
            .filter(|v| v.len() >= Self::MAX_FAILURES)
            .filter_map(|v| v.first())
            .map(|first| Self::WINDOW.saturating_sub(now.duration_since(*first)))
            .max()
    }

    pub fn failed(&self, remote: Option<IpAddr>, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of names cannot grow it without end.
        if map.len() > 100_000 {
            map.clear();
        }
        for k in Self::keys(remote, name) {
            map.entry(k).or_default().push(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::users::Role;

    #[tokio::test]
    async fn sessions_and_tokens_are_kept_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        let u = users::add(&db, "zhang", "correct horse", Role::Admin, &[])
            .await
            .unwrap();
        let s = open(&db, u).await.unwrap();
        assert_eq!(
            find(&db, &s.token).await.unwrap().unwrap().user.name,
            "zhang"
        );
        assert!(find(&db, "forged").await.unwrap().is_none());
        let stored: String = sqlx::query("SELECT token_hash FROM sessions")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .get(0);
        assert_ne!(stored, s.token);
        close(&db, &s.token).await.unwrap();
        assert!(find(&db, &s.token).await.unwrap().is_none());
        let t = add_api_token(&db, "zhang", "ci").await.unwrap();
        assert_eq!(api_user(&db, &t).await.unwrap().unwrap().name, "zhang");
    }

    #[test]
    fn the_sixth_failure_waits() {
        let l = LoginLimiter::default();
        let ip = Some("10.0.0.1".parse().unwrap());
        for _ in 0..LoginLimiter::MAX_FAILURES {
            assert!(l.blocked(ip, "zhang").is_none());
            l.failed(ip, "zhang");
        }
        assert!(l.blocked(ip, "zhang").is_some());
        assert!(l.blocked(ip, "li").is_some(), "the same address");
        assert!(
            l.blocked(Some("10.0.0.2".parse().unwrap()), "zhang")
                .is_some(),
            "the same name"
        );
        assert!(l.blocked(Some("10.0.0.2".parse().unwrap()), "li").is_none());
    }
}
