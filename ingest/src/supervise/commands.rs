//! Acknowledgements given centrally travel to the gateway as commands on its `command`
//! topic, and stay pending until the gateway's `ack` event confirms them. The gateway's
//! session is clean, so a command sent while it is away is lost at the broker: every
//! pending command of an open occurrence is sent again at the gateway's birth, and every
//! minute until confirmed. Applying one twice is harmless at the edge.

use serde::Serialize;
use sqlx::Row;

use hazgate_wire::{command_topic, Action, Command, CommandKind, VERSION};

use super::db::{Db, DbError};
use super::occurrences;
use super::users::User;

/// The condition of the alarms the central side raises itself.
pub const CENTRAL_CONDITION: &str = "interruption";

/// A command to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AckResult {
    /// Sent to the gateway; confirmed when its `ack` event arrives.
    Sent { command: String },
    /// Somebody answered already.
    Already { by: String },
    /// It cleared before anybody answered: the acknowledgement is recorded, nothing is
    /// sent (there is nothing left at the edge).
    AfterClear,
    /// An alarm of the central side (an interruption): recorded, complete.
    Recorded,
}

#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("no such alarm occurrence")]
    NotFound,
    #[error("this alarm belongs to a site you do not supervise")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for AckError {
    fn from(e: sqlx::Error) -> Self {
        AckError::Db(DbError::Query(e))
    }
}

/// The id of a new command.
fn command_id() -> String {
    let bytes: [u8; 8] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("c-{hex}")
}

/// `user` acknowledges an occurrence, with an optional note.
#[allow(clippy::too_many_arguments)]
pub async fn acknowledge(
    db: &Db,
    prefix: &str,
    user: &User,
    site: &str,
    gateway: &str,
    occurrence: &str,
    note: Option<String>,
) -> Result<(AckResult, Option<Outgoing>), AckError> {
    let Some(o) = occurrences::get(db, site, gateway, occurrence).await? else {
        return Err(AckError::NotFound);
    };
    if !user.sees(site) {
        return Err(AckError::Forbidden);
    }
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let now = crate::now_ms();
    let ack = hazgate_wire::Acknowledgement {
        by: user.name.clone(),
        at: now,
        note: note.clone(),
        command: None,
    };
    hazgate_wire::validate::acknowledgement(&ack).map_err(|e| AckError::Invalid(e.to_string()))?;
    if let Some(by) = o.acked_by {
        return Ok((AckResult::Already { by }, None));
    }
    let cleared = o.cleared_ts.is_some();
    // An alarm of the central side (an interruption) has nothing at the edge to tell:
    // its acknowledgement is complete once recorded.
    let central = o.condition == CENTRAL_CONDITION;
    let id = command_id();
    let command = Command {
        v: VERSION,
        kind: CommandKind::Command,
        site: site.into(),
        gateway: gateway.into(),
        id: id.as_str().into(),
        ts: now,
        by: user.name.clone(),
        action: Action::Ack {
            occurrence: occurrence.into(),
            note: note.clone(),
        },
    };
    let payload = serde_json::to_vec(&command).map_err(|e| AckError::Invalid(e.to_string()))?;
    let mut tx = db.pool.begin().await?;
    // Only the first acknowledgement counts when two people answer at once.
    let taken = sqlx::query(
        "UPDATE occurrences SET acked_by = $1, acked_ts = $2, ack_note = $3, ack_command = $4, confirmed_ts = $5 WHERE site = $6 AND gateway = $7 AND occurrence = $8 AND acked_by IS NULL",
    )
    .bind(&user.name)
    .bind(now)
    .bind(note.clone())
    .bind((!cleared && !central).then(|| id.clone()))
    .bind((central && !cleared).then_some(now))
    .bind(site)
    .bind(gateway)
    .bind(occurrence)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if taken == 0 {
        tx.rollback().await?;
        let by = occurrences::get(db, site, gateway, occurrence)
            .await?
            .and_then(|o| o.acked_by)
            .unwrap_or_default();
        return Ok((AckResult::Already { by }, None));
    }
    sqlx::query(
        "INSERT INTO occurrence_log (site, gateway, occurrence, ts, kind, level, actor, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(site)
    .bind(gateway)
    .bind(occurrence)
    .bind(now)
    .bind(if cleared {
        "ack_after_clear"
    } else if central {
        "ack_confirmed"
    } else {
        "ack_requested"
    })
    .bind(o.level.clone())
    .bind(&user.name)
    .bind(note)
    .execute(&mut *tx)
    .await?;
    if cleared {
        tx.commit().await?;
        return Ok((AckResult::AfterClear, None));
    }
    if central {
        tx.commit().await?;
        return Ok((AckResult::Recorded, None));
    }
    sqlx::query(
        "INSERT INTO commands (id, site, gateway, occurrence, payload, created_ts, sent_ts) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(site)
    .bind(gateway)
    .bind(occurrence)
    .bind(String::from_utf8_lossy(&payload).into_owned())
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        AckResult::Sent { command: id },
        Some(Outgoing {
            topic: command_topic(prefix, site, gateway),
            payload,
        }),
    ))
}

/// Pending commands of open occurrences, of one gateway (at its birth) or of all that
/// were last sent before `sent_before` (the periodic resend).
pub async fn pending(
    db: &Db,
    prefix: &str,
    gateway: Option<(&str, &str)>,
    sent_before: i64,
) -> Result<Vec<Outgoing>, DbError> {
    let rows = sqlx::query(
        "SELECT c.id, c.site, c.gateway, c.payload FROM commands c JOIN occurrences o ON o.site = c.site AND o.gateway = c.gateway AND o.occurrence = c.occurrence WHERE c.confirmed_ts IS NULL AND o.cleared_ts IS NULL AND o.confirmed_ts IS NULL AND c.sent_ts < $1 ORDER BY c.created_ts",
    )
    .bind(sent_before)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let (site, gw): (String, String) = (r.try_get("site")?, r.try_get("gateway")?);
        if gateway.is_some_and(|(s, g)| s != site || g != gw) {
            continue;
        }
        let id: String = r.try_get("id")?;
        sqlx::query("UPDATE commands SET sent_ts = $1 WHERE id = $2")
            .bind(crate::now_ms())
            .bind(&id)
            .execute(&db.pool)
            .await?;
        let payload: String = r.try_get("payload")?;
        out.push(Outgoing {
            topic: command_topic(prefix, &site, &gw),
            payload: payload.into_bytes(),
        });
    }
    Ok(out)
}
