//! Users and what they may see. `admin` manages everything; a `regulator` sees every
//! enterprise under its jurisdiction (administrative-division code prefixes, e.g. `4201`
//! for Wuhan); an `enterprise` user sees its own sites. Passwords are kept as argon2id
//! hashes, never as text.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;
use sqlx::Row;

use super::db::{Db, DbError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Regulator,
    Enterprise,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "regulator" => Some(Role::Regulator),
            "enterprise" => Some(Role::Enterprise),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Regulator => "regulator",
            Role::Enterprise => "enterprise",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Regulator: division-code prefixes; enterprise: site ids.
    pub scope: Vec<String>,
    pub disabled: bool,
}

impl User {
    /// Whether this user may see (and answer for) a site.
    pub fn sees(&self, site: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Enterprise => self.scope.iter().any(|s| s == site),
            Role::Regulator => {
                division(site).is_some_and(|d| self.scope.iter().any(|p| d.starts_with(p.as_str())))
            }
        }
    }
}

/// The administrative-division code in an enterprise code (`HB-420100-0001` → `420100`):
/// its first run of six digits. Until the gateways send master data with the code, the
/// enterprise code is where it is read from.
pub fn division(site: &str) -> Option<&str> {
    let bytes = site.as_bytes();
    let mut start = None;
    for (i, b) in bytes.iter().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) if i - s >= 6 => return Some(&site[s..s + 6]),
            (false, Some(_)) => start = None,
            _ => {}
        }
    }
    start
        .filter(|&s| bytes.len() - s >= 6)
        .map(|s| &site[s..s + 6])
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("\"{0}\" is not a user name; use 1 to 64 letters, digits, '_', '-' or '.'")]
    Name(String),
    #[error("a password needs at least 10 characters")]
    WeakPassword,
    #[error("a {role} needs a scope: {what}")]
    Scope {
        role: &'static str,
        what: &'static str,
    },
    #[error("user \"{0}\" exists already")]
    Exists(String),
    #[error("no user \"{0}\"")]
    Unknown(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        UserError::Db(DbError::Query(e))
    }
}

pub const MIN_PASSWORD: usize = 10;

fn hash(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

fn checked_scope(role: Role, scope: &[String]) -> Result<Vec<String>, UserError> {
    let scope: Vec<String> = scope
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    match role {
        Role::Admin => Ok(Vec::new()),
        Role::Regulator
            if scope.is_empty()
                || scope
                    .iter()
                    .any(|p| p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Err(UserError::Scope {
                role: "regulator",
                what: "administrative-division code prefixes of up to 6 digits, e.g. 4201",
            })
        }
        Role::Enterprise
            if scope.is_empty() || scope.iter().any(|s| !hazgate_wire::valid_id(s)) =>
        {
            Err(UserError::Scope {
                role: "enterprise",
                what: "the ids of its sites, e.g. HB-420100-0001",
            })
        }
        _ => Ok(scope),
    }
}

pub async fn add(
    db: &Db,
    name: &str,
    password: &str,
    role: Role,
    scope: &[String],
) -> Result<User, UserError> {
    if !hazgate_wire::valid_id(name) {
        return Err(UserError::Name(name.to_string()));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(UserError::WeakPassword);
    }
    let scope = checked_scope(role, scope)?;
    let hashed = hash(password)?;
    let done = sqlx::query(
        "INSERT INTO users (name, password_hash, role, scope, created_ts) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(hashed)
    .bind(role.name())
    .bind(scope.join(","))
    .bind(crate::now_ms())
    .execute(&db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(UserError::Exists(name.to_string()));
    }
    Ok(User {
        name: name.to_string(),
        role,
        scope,
        disabled: false,
    })
}

pub async fn set_password(db: &Db, name: &str, password: &str) -> Result<(), UserError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(UserError::WeakPassword);
    }
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
        .bind(hash(password)?)
        .bind(name)
        .execute(&db.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(UserError::Unknown(name.to_string()));
    }
    // Every session of the user ends with the old password.
    sqlx::query("DELETE FROM sessions WHERE user_name = $1")
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(())
}

fn user(r: &sqlx::any::AnyRow) -> Result<Option<User>, sqlx::Error> {
    let role: String = r.try_get("role")?;
    let scope: String = r.try_get("scope")?;
    Ok(Role::parse(&role).map(|role| User {
        name: r.try_get("name").unwrap_or_default(),
        role,
        scope: scope
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        disabled: r.try_get::<i64, _>("disabled").unwrap_or(0) != 0,
    }))
}

/// Disables or enables a user; a disabled user's sessions end at once.
pub async fn set_disabled(db: &Db, name: &str, disabled: bool) -> Result<(), UserError> {
    let done = sqlx::query("UPDATE users SET disabled = $1 WHERE name = $2")
        .bind(i64::from(disabled))
        .bind(name)
        .execute(&db.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(UserError::Unknown(name.to_string()));
    }
    if disabled {
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

pub async fn list(db: &Db) -> Result<Vec<User>, UserError> {
    let rows = sqlx::query("SELECT name, role, scope, disabled FROM users ORDER BY name")
        .fetch_all(&db.pool)
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.extend(user(r)?);
    }
    Ok(out)
}

pub async fn find(db: &Db, name: &str) -> Result<Option<User>, UserError> {
    let row = sqlx::query("SELECT name, role, scope, disabled FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => user(&r)?,
        None => None,
    })
}

/// The user, if the password is theirs and they are not disabled. Takes as long for an
/// unknown name as for a wrong password, so names cannot be probed by timing.
pub async fn verify(db: &Db, name: &str, password: &str) -> Result<Option<User>, UserError> {
    let row =
        sqlx::query("SELECT name, role, scope, disabled, password_hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&db.pool)
            .await?;
    let stored: Option<String> = row.as_ref().and_then(|r| r.try_get("password_hash").ok());
    let candidate = password.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        // A hash for unknown names: the same work either way.
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let stored = stored.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| hash("no user has this password").unwrap_or_default())
                .clone()
        });
        PasswordHash::new(&stored).is_ok_and(|h| {
            Argon2::default()
                .verify_password(candidate.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    if !ok {
        return Ok(None);
    }
    let Some(r) = row else { return Ok(None) };
    Ok(user(&r)?.filter(|u| !u.disabled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisions_come_from_the_enterprise_code() {
        assert_eq!(division("HB-420100-0001"), Some("420100"));
        assert_eq!(division("420300-7"), Some("420300"));
        assert_eq!(division("T-1"), None);
        assert_eq!(division("X-12345-1234567"), Some("123456"));
    }

    #[test]
    fn who_sees_which_site() {
        let u = |role, scope: &[&str]| User {
            name: "u".into(),
            role,
            scope: scope.iter().map(|s| s.to_string()).collect(),
            disabled: false,
        };
        let wuhan = u(Role::Regulator, &["4201"]);
        let plant = u(Role::Enterprise, &["HB-420100-0001"]);
        let admin = u(Role::Admin, &[]);
        for (who, site, sees) in [
            (&wuhan, "HB-420100-0001", true),
            (&wuhan, "HB-420300-0007", false),
            (&wuhan, "T-1", false),
            (&plant, "HB-420100-0001", true),
            (&plant, "HB-420100-0002", false),
            (&admin, "anything", true),
        ] {
            assert_eq!(who.sees(site), sees, "{who:?} {site}");
        }
    }

    #[tokio::test]
    async fn add_verify_and_change_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        add(
            &db,
            "zhang",
            "correct horse",
            Role::Enterprise,
            &["HB-420100-0001".into()],
        )
        .await
        .unwrap();
        assert!(matches!(
            add(&db, "zhang", "correct horse", Role::Admin, &[]).await,
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            add(&db, "li", "short", Role::Admin, &[]).await,
            Err(UserError::WeakPassword)
        ));
        assert!(matches!(
            add(
                &db,
                "li",
                "long enough pw",
                Role::Regulator,
                &["Wuhan".into()]
            )
            .await,
            Err(UserError::Scope { .. })
        ));
        assert!(verify(&db, "zhang", "correct horse")
            .await
            .unwrap()
            .is_some());
        assert!(verify(&db, "zhang", "wrong horse").await.unwrap().is_none());
        assert!(verify(&db, "nobody", "correct horse")
            .await
            .unwrap()
            .is_none());
        set_password(&db, "zhang", "battery staple").await.unwrap();
        assert!(verify(&db, "zhang", "correct horse")
            .await
            .unwrap()
            .is_none());
        assert!(verify(&db, "zhang", "battery staple")
            .await
            .unwrap()
            .is_some());
        let stored: String = sqlx::query("SELECT password_hash FROM users")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .get(0);
        assert!(stored.starts_with("$argon2id$") && !stored.contains("battery"));
    }
}
