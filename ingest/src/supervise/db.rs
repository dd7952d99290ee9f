//! The supervision database: occurrences and their 叫应记录, users, sessions, commands and
//! the audit log. SQLite in a file by default (one instance, nothing to install);
//! PostgreSQL when several instances share the work. One portable dialect through sqlx's
//! `Any` driver: times are BIGINT milliseconds, flags 0/1, placeholders `$1, $2, ...`
//! in order. Migrations are SQL files in `ingest/migrations/`, applied once each, in
//! order, at start.

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Row;

/// The migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "supervision",
        include_str!("../../migrations/001_supervision.sql"),
    ),
    (
        2,
        "escalation",
        include_str!("../../migrations/002_escalation.sql"),
    ),
    (
        3,
        "interruptions",
        include_str!("../../migrations/003_interruptions.sql"),
    ),
    (
        4,
        "statistics",
        include_str!("../../migrations/004_statistics.sql"),
    ),
    (
        5,
        "point_interruptions",
        include_str!("../../migrations/005_point_interruptions.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the supervision database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("supervision database migration {version} ({name}) failed: {source}")]
    Migrate {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("supervision database: {0}")]
    Query(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// Opens (a SQLite file is created if missing) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let connect_url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let shown = redact(url);
        let pool = AnyPoolOptions::new()
            // SQLite takes one writer at a time; a few connections are enough for reads.
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&connect_url)
            .await
            .map_err(|source| DbError::Open {
                url: shown.clone(),
                source,
            })?;
        let db = Db { pool, backend };
        if backend == Backend::Sqlite {
            // Readers do not wait for the writer; survives a crash like the default.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&db.pool)
                .await
                .map_err(|source| DbError::Open {
                    url: shown.clone(),
                    source,
                })?;
        }
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // Several instances may start at once: one migrates, the others wait.
            sqlx::query("SELECT pg_advisory_xact_lock(7230401)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            for statement in statements(sql) {
                sqlx::query(&statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| DbError::Migrate {
                        version: *version,
                        name,
                        source,
                    })?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, $2, $3)",
            )
            .bind(*version)
            .bind(*name)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
            tracing::info!(version, name, "supervision database migrated");
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The statements of a migration file: comment lines dropped, split at `;`.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// A database URL fit for a log: any password replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_statements() {
        let s = statements(MIGRATIONS[0].2);
        assert!(s.iter().any(|x| x.starts_with("CREATE TABLE occurrences")));
        assert!(s.iter().all(|x| !x.contains("--")), "{s:#?}");
    }

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact("postgres://hz:secret@127.0.0.1:5432/sup"),
            "postgres://hz:***@127.0.0.1:5432/sup"
        );
        assert_eq!(redact("sqlite:///var/lib/x.db"), "sqlite:///var/lib/x.db");
    }

    #[tokio::test]
    async fn a_new_database_is_migrated_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let db = Db::open(&url).await.unwrap();
        drop(db);
        let db = Db::open(&url).await.unwrap();
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, MIGRATIONS.len() as i64);
    }
}
