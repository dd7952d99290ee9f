//! The audit log: logins (and failed ones), acknowledgements, user changes. Who, what, on
//! what, from where, when.

use super::db::{Db, DbError};

pub async fn record(
    db: &Db,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: Option<&str>,
    remote: Option<std::net::IpAddr>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit (ts, actor, action, target, detail, remote) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::now_ms())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(remote.map(|r| r.to_string()))
    .execute(&db.pool)
    .await?;
    Ok(())
}
