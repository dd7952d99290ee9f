//! Occurrences (raise to clear) as the gateways report them, and their 叫应记录: every
//! alarm event of a point updates its occurrence and adds to its timeline, once even if
//! the event comes twice (the timeline is keyed by the gateway's alarm seq) or late (an
//! older event never undoes a newer one).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use hazgate_wire::{AlarmEvent, EventKind, Level};

use super::db::{Backend, Db, DbError};

/// One occurrence as the supervision database holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Occurrence {
    pub site: String,
    pub gateway: String,
    pub occurrence: String,
    pub device: Option<String>,
    pub point: Option<String>,
    pub hazard_source: Option<String>,
    pub condition: String,
    /// Current level; `None` once cleared.
    pub level: Option<String>,
    pub max_level: String,
    pub label: Option<String>,
    pub unit: Option<String>,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub opened_ts: i64,
    pub last_ts: i64,
    pub cleared_ts: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_ts: Option<i64>,
    pub ack_note: Option<String>,
    pub ack_command: Option<String>,
    /// When the edge confirmed the acknowledgement (its `ack` event).
    pub confirmed_ts: Option<i64>,
    pub cleared_unacked: bool,
}

/// One entry of an occurrence's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub site: String,
    pub gateway: String,
    pub occurrence: String,
    pub ts: i64,
    pub kind: String,
    pub level: Option<String>,
    pub actor: Option<String>,
    pub detail: Option<String>,
}

const COLUMNS: &str = "site, gateway, occurrence, device, point, hazard_source, condition, level, max_level, label, unit, value, limit_value, opened_ts, last_ts, cleared_ts, acked_by, acked_ts, ack_note, ack_command, confirmed_ts, cleared_unacked";

fn occurrence(r: &AnyRow) -> Result<Occurrence, sqlx::Error> {
    Ok(Occurrence {
        site: r.try_get("site")?,
        gateway: r.try_get("gateway")?,
        occurrence: r.try_get("occurrence")?,
        device: r.try_get("device")?,
        point: r.try_get("point")?,
        hazard_source: r.try_get("hazard_source")?,
        condition: r.try_get("condition")?,
        level: r.try_get("level")?,
        max_level: r.try_get("max_level")?,
        label: r.try_get("label")?,
        unit: r.try_get("unit")?,
        value: r.try_get("value")?,
        limit: r.try_get("limit_value")?,
        opened_ts: r.try_get("opened_ts")?,
        last_ts: r.try_get("last_ts")?,
        cleared_ts: r.try_get("cleared_ts")?,
        acked_by: r.try_get("acked_by")?,
        acked_ts: r.try_get("acked_ts")?,
        ack_note: r.try_get("ack_note")?,
        ack_command: r.try_get("ack_command")?,
        confirmed_ts: r.try_get("confirmed_ts")?,
        cleared_unacked: r.try_get::<i64, _>("cleared_unacked")? != 0,
    })
}

fn log_entry(r: &AnyRow) -> Result<LogEntry, sqlx::Error> {
    Ok(LogEntry {
        site: r.try_get("site")?,
        gateway: r.try_get("gateway")?,
        occurrence: r.try_get("occurrence")?,
        ts: r.try_get("ts")?,
        kind: r.try_get("kind")?,
        level: r.try_get("level")?,
        actor: r.try_get("actor")?,
        detail: r.try_get("detail")?,
    })
}

fn parse_level(s: &str) -> Option<Level> {
    Level::ALL.into_iter().find(|l| l.name() == s)
}

fn event_name(k: EventKind) -> &'static str {
    match k {
        EventKind::Raise => "raise",
        EventKind::Escalate => "escalate",
        EventKind::Deescalate => "deescalate",
        EventKind::Clear => "clear",
        EventKind::Ack => "ack_confirmed",
    }
}

/// Records the alarm events of one write; roll-ups (no occurrence) are not occurrences.
pub async fn record(db: &Db, events: &[AlarmEvent]) -> Result<(), DbError> {
    let mut tx = db.pool.begin().await?;
    for e in events {
        let Some(occ) = e.occurrence.as_deref() else {
            continue;
        };
        let (site, gateway) = (&*e.envelope.site, &*e.envelope.gateway);
        let inserted = sqlx::query(
            "INSERT INTO occurrence_log (site, gateway, occurrence, ts, kind, level, actor, detail, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(site)
        .bind(gateway)
        .bind(occ)
        .bind(e.ts)
        .bind(event_name(e.event))
        .bind(e.level.map(|l| l.name()))
        .bind(e.ack.as_ref().map(|a| a.by.clone()))
        .bind(match &e.ack {
            Some(a) => a.note.clone(),
            None => e.label.clone(),
        })
        .bind(e.envelope.seq as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Seen before: the occurrence already holds what it says.
            continue;
        }
        let first = e.level.map_or("", |l| l.name());
        sqlx::query(
            "INSERT INTO occurrences (site, gateway, occurrence, device, point, hazard_source, condition, max_level, opened_ts, last_ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        )
        .bind(site)
        .bind(gateway)
        .bind(occ)
        .bind(e.device.as_deref())
        .bind(e.point.as_deref())
        .bind(e.hazard_source.as_deref())
        .bind(e.condition.name())
        .bind(first)
        .bind(e.ts)
        .bind(i64::MIN)
        .execute(&mut *tx)
        .await?;
        let lock = if db.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM occurrences WHERE site = $1 AND gateway = $2 AND occurrence = $3{lock}"
        ))
        .bind(site)
        .bind(gateway)
        .bind(occ)
        .fetch_one(&mut *tx)
        .await?;
        let mut o = occurrence(&row)?;
        apply(&mut o, e);
        sqlx::query(
            "UPDATE occurrences SET level = $1, max_level = $2, label = $3, unit = $4, value = $5, limit_value = $6, opened_ts = $7, last_ts = $8, cleared_ts = $9, acked_by = $10, acked_ts = $11, ack_note = $12, ack_command = $13, confirmed_ts = $14, cleared_unacked = $15 WHERE site = $16 AND gateway = $17 AND occurrence = $18",
        )
        .bind(o.level.clone())
        .bind(o.max_level.clone())
        .bind(o.label.clone())
        .bind(o.unit.clone())
        .bind(o.value)
        .bind(o.limit)
        .bind(o.opened_ts)
        .bind(o.last_ts)
        .bind(o.cleared_ts)
        .bind(o.acked_by.clone())
        .bind(o.acked_ts)
        .bind(o.ack_note.clone())
        .bind(o.ack_command.clone())
        .bind(o.confirmed_ts)
        .bind(i64::from(o.cleared_unacked))
        .bind(site)
        .bind(gateway)
        .bind(occ)
        .execute(&mut *tx)
        .await?;
        if let Some(command) = e.ack.as_ref().and_then(|a| a.command.as_deref()) {
            sqlx::query(
                "UPDATE commands SET confirmed_ts = $1 WHERE id = $2 AND confirmed_ts IS NULL",
            )
            .bind(e.ts)
            .bind(command)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// What one event does to its occurrence. Events may come late or twice: a newer state is
/// never undone by an older event, and a cleared occurrence stays cleared.
pub fn apply(o: &mut Occurrence, e: &AlarmEvent) {
    o.opened_ts = o.opened_ts.min(e.ts);
    if let Some(l) = e.level {
        if parse_level(&o.max_level).is_none_or(|m| l > m) {
            o.max_level = l.name().to_string();
        }
    }
    match e.event {
        EventKind::Raise | EventKind::Escalate | EventKind::Deescalate => {
            if o.cleared_ts.is_none() && e.ts >= o.last_ts {
                o.level = e.level.map(|l| l.name().to_string());
                o.label = e.label.clone();
                o.unit = e.unit.as_deref().map(String::from);
                o.value = e.crossed.or(e.value);
                o.limit = e.limit;
                o.last_ts = e.ts;
                // An escalation after the acknowledgement asks again (as at the edge).
                if e.event == EventKind::Escalate && o.acked_ts.is_some_and(|a| a <= e.ts) {
                    o.acked_by = None;
                    o.acked_ts = None;
                    o.ack_note = None;
                    o.ack_command = None;
                    o.confirmed_ts = None;
                }
            }
        }
        EventKind::Clear => {
            if o.cleared_ts.is_none() {
                o.cleared_ts = Some(e.ts);
                o.level = None;
                o.last_ts = o.last_ts.max(e.ts);
                o.cleared_unacked = o.acked_by.is_none() && o.confirmed_ts.is_none();
            }
        }
        EventKind::Ack => {
            if let Some(a) = &e.ack {
                o.confirmed_ts = Some(e.ts);
                o.acked_by = Some(a.by.clone());
                o.acked_ts = Some(a.at);
                o.ack_note = a.note.clone();
                o.ack_command = a.command.as_deref().map(String::from);
            }
        }
    }
}

/// Which sites a query may see: all, or those passing the user's scope.
pub type SiteFilter<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// Open occurrences (not cleared), most severe and oldest first, of the sites `visible`.
pub async fn open(db: &Db, visible: SiteFilter<'_>) -> Result<Vec<Occurrence>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM occurrences WHERE cleared_ts IS NULL ORDER BY opened_ts"
    ))
    .fetch_all(&db.pool)
    .await?;
    let mut out: Vec<Occurrence> = rows
        .iter()
        .map(occurrence)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|o| visible(&o.site))
        .collect();
    out.sort_by_key(|o| {
        std::cmp::Reverse(o.level.as_deref().and_then(parse_level).map(|l| l as u8))
    });
    Ok(out)
}

/// Open occurrences nobody has acknowledged: what escalation looks at.
pub async fn unanswered(db: &Db) -> Result<Vec<Occurrence>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM occurrences WHERE cleared_ts IS NULL AND acked_by IS NULL AND level IS NOT NULL"
    ))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(occurrence).collect::<Result<_, _>>()?)
}

/// One occurrence, if there is one.
pub async fn get(
    db: &Db,
    site: &str,
    gateway: &str,
    occ: &str,
) -> Result<Option<Occurrence>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM occurrences WHERE site = $1 AND gateway = $2 AND occurrence = $3"
    ))
    .bind(site)
    .bind(gateway)
    .bind(occ)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.as_ref().map(occurrence).transpose()?)
}

/// The timeline of one occurrence, oldest first.
pub async fn timeline(
    db: &Db,
    site: &str,
    gateway: &str,
    occ: &str,
) -> Result<Vec<LogEntry>, DbError> {
    let rows = sqlx::query(
        "SELECT site, gateway, occurrence, ts, kind, level, actor, detail FROM occurrence_log WHERE site = $1 AND gateway = $2 AND occurrence = $3 ORDER BY ts, kind",
    )
    .bind(site)
    .bind(gateway)
    .bind(occ)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(log_entry).collect::<Result<_, _>>()?)
}

/// Adds an entry the central side makes (an acknowledgement asked for, a note, a
/// notification).
#[allow(clippy::too_many_arguments)]
pub async fn log(
    db: &Db,
    site: &str,
    gateway: &str,
    occ: &str,
    ts: i64,
    kind: &str,
    actor: Option<&str>,
    detail: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO occurrence_log (site, gateway, occurrence, ts, kind, actor, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(site)
    .bind(gateway)
    .bind(occ)
    .bind(ts)
    .bind(kind)
    .bind(actor)
    .bind(detail)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The 叫应记录 of one site over a period as CSV (UTF-8 with a BOM, so spreadsheet
/// programs read the Chinese right): one line per timeline entry.
pub async fn export_csv(db: &Db, site: &str, from: i64, to: i64) -> Result<String, DbError> {
    let rows = sqlx::query(
        "SELECT l.site, l.gateway, l.occurrence, l.ts, l.kind, l.level, l.actor, l.detail, o.device, o.point, o.condition FROM occurrence_log l LEFT JOIN occurrences o ON o.site = l.site AND o.gateway = l.gateway AND o.occurrence = l.occurrence WHERE l.site = $1 AND l.ts >= $2 AND l.ts < $3 ORDER BY l.ts",
    )
    .bind(site)
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await?;
    let mut out = String::from(
        "\u{feff}site,gateway,occurrence,device,point,condition,time_ms,event,level,by,detail\n",
    );
    for r in &rows {
        let text = |c: &str| {
            r.try_get::<Option<String>, _>(c)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let ts: i64 = r.try_get("ts")?;
        let fields = [
            text("site"),
            text("gateway"),
            text("occurrence"),
            text("device"),
            text("point"),
            text("condition"),
            ts.to_string(),
            text("kind"),
            text("level"),
            text("actor"),
            text("detail"),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// A CSV field, quoted when it holds a separator, quote or line break; a leading `=`,
/// `+`, `-` or `@` is defused so a spreadsheet never runs it as a formula.
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@']) {
        format!("'{f}")
    } else {
        f.to_string()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

#[cfg(test)]
mod tests;
