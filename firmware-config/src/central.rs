//! The central side's config (`hazingest run -c central.toml`): where to subscribe, where to
//! write, and where the regulator view and metrics answer. Parsed once into typed values,
//! with the same located errors as a site file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

use crate::error::{ConfigErrors, Diagnostics, SourceText};
use crate::serde_types::{ByteSize, Interval};
use crate::site::raw::{RawMetrics, RawUplink};
use crate::site::sections::{resolve_listen, resolve_uplink};
use crate::site::{Secret, Uplink};

#[derive(Debug, Clone)]
pub struct CentralConfig {
    /// The broker, in the same shape as a gateway's `[uplink]`.
    pub mqtt: Uplink,
    pub ingest: IngestSettings,
    pub store: TimeSeriesStore,
    /// Where the regulator view answers, and how.
    pub web: Option<WebSettings>,
    /// The supervision database: occurrences, acknowledgements, users, audit.
    pub supervision: SupervisionSettings,
    /// Who is told of unanswered alarms, how and when (预警叫应).
    pub notify: crate::escalation::Notify,
    /// Where `/metrics` and `/health` answer.
    pub metrics: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebSettings {
    pub listen: SocketAddr,
    /// Session cookies carry `Secure`: set it when the view is served over TLS (a reverse
    /// proxy in front), so a browser never sends the cookie in clear.
    pub cookie_secure: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SupervisionSettings {
    /// `sqlite:///path/file.db` (created if missing) or `postgres://user@host/db`.
    pub database: String,
    /// The database password, for PostgreSQL; never written into the URL in the config.
    pub password: Option<Secret>,
    /// A gateway heard from for this long is interrupted (断线) even without its will.
    pub silence_after: std::time::Duration,
    /// The level of an interruption's alarm.
    pub interruption_level: hazgate_wire::Level,
    /// A point without data this long (or three of its polls, if longer) while its
    /// gateway is online is interrupted.
    pub point_silence_after: std::time::Duration,
}

/// The supervision database unless `[supervision] database` says otherwise.
pub const DEFAULT_SUPERVISION_DB: &str = "sqlite:///var/lib/hazingest/supervision.db";

#[derive(Debug, Clone, PartialEq)]
pub struct IngestSettings {
    /// Shared subscription group: instances with the same group split the messages.
    pub group: String,
    /// Larger messages are refused unread.
    pub max_message_size: usize,
    /// Message bytes taken from the broker and not yet written; past it, ingest stops
    /// reading and the broker holds the rest.
    pub max_pending: usize,
    /// Where refused messages and records kept out of the store are written, as JSON lines.
    pub quarantine_dir: PathBuf,
    /// Bytes the quarantine may hold; past it, its oldest file is removed (and counted).
    pub quarantine_max_size: u64,
}

/// The quarantine's folder unless `[ingest] quarantine_dir` says otherwise.
pub const DEFAULT_QUARANTINE_DIR: &str = "/var/lib/hazingest/quarantine";

/// An InfluxDB v2 write API: InfluxDB 2.x or VictoriaMetrics.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeriesStore {
    /// e.g. "http://127.0.0.1:8428"; checked to be http(s) with a host.
    pub url: String,
    pub org: String,
    pub bucket: String,
    pub token: Option<Secret>,
    /// A write goes out when it holds this many lines, or `batch_interval` after its first.
    pub batch_lines: usize,
    pub batch_interval: Duration,
    /// One write request's limit; a slower answer counts as a failure and is retried.
    pub timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCentral {
    mqtt: RawUplink,
    ingest: Option<RawIngest>,
    store: RawTimeSeriesStore,
    web: Option<RawWeb>,
    metrics: Option<RawMetrics>,
    supervision: Option<RawSupervision>,
    notify: Option<crate::escalation::RawNotify>,
    #[serde(default, rename = "contact")]
    contacts: Vec<crate::escalation::RawContact>,
    #[serde(default, rename = "escalation")]
    escalations: Vec<crate::escalation::RawPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Spanned<String>,
    #[serde(default)]
    cookie_secure: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervision {
    database: Option<Spanned<String>>,
    silence_after: Option<Spanned<Interval>>,
    point_silence_after: Option<Spanned<Interval>>,
    interruption_level: Option<hazgate_wire::Level>,
    password_file: Option<PathBuf>,
    password_env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    group: Option<Spanned<String>>,
    max_message_size: Option<Spanned<ByteSize>>,
    max_pending: Option<Spanned<ByteSize>>,
    quarantine_dir: Option<PathBuf>,
    quarantine_max_size: Option<Spanned<ByteSize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeSeriesStore {
    url: Spanned<String>,
    org: Option<String>,
    bucket: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<Spanned<String>>,
    batch_lines: Option<Spanned<i64>>,
    batch_interval: Option<Spanned<Interval>>,
    timeout: Option<Spanned<Interval>>,
}

pub fn load_central(path: &Path) -> Result<CentralConfig, ConfigErrors> {
    parse_central(&SourceText::read(path)?)
}

pub fn parse_central(source: &SourceText) -> Result<CentralConfig, ConfigErrors> {
    let raw: RawCentral = toml::from_str(&source.text).map_err(|e| {
        let mut error = source.toml_error(&e);
        if error.message.starts_with("unknown field `password`")
            || error.message.starts_with("unknown field `token`")
        {
            error.message.push_str(
                "; a secret is never written into the config: use a `_file` or `_env` setting",
            );
        }
        ConfigErrors(vec![error])
    })?;
    let mut diag = Diagnostics::new(source);
    let base = source.path.parent().unwrap_or(Path::new(".")).to_path_buf();

    let ingest = resolve_ingest(raw.ingest.as_ref(), &base, &mut diag);
    // Stable across restarts, so the broker's persistent session (and what it holds while
    // this instance is down) is found again; two instances on one host set their own.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let default_client_id = if host.is_empty() {
        "hazingest".to_string()
    } else {
        format!("hazingest-{host}")
    };
    let mqtt = resolve_uplink(&raw.mqtt, "mqtt", default_client_id, &base, &mut diag);
    if let Some(c) = &raw.mqtt.compress {
        diag.error(
            Some(c.span()),
            "mqtt.compress",
            "is a gateway setting ([uplink] compress); hazingest reads both plain and compressed payloads",
        );
    }
    if let Some(h) = &raw.mqtt.health_interval {
        diag.error(
            Some(h.span()),
            "mqtt.health_interval",
            "is a gateway setting ([uplink] health_interval)",
        );
    }
    let store = resolve_store(&raw.store, &base, &mut diag);
    let web = raw.web.as_ref().and_then(|w| {
        resolve_listen(&w.listen, "web.listen", &mut diag).map(|listen| WebSettings {
            listen,
            cookie_secure: w.cookie_secure,
        })
    });
    let supervision = resolve_supervision(raw.supervision.as_ref(), &base, &mut diag);
    let notify = crate::escalation::resolve(
        raw.notify.as_ref(),
        &raw.contacts,
        &raw.escalations,
        &base,
        &mut diag,
    );
    let metrics = raw
        .metrics
        .as_ref()
        .and_then(|m| resolve_listen(&m.listen, "metrics.listen", &mut diag));
    match mqtt {
        Some(mqtt) => diag.finish(CentralConfig {
            mqtt,
            ingest,
            store,
            web,
            metrics,
            supervision,
            notify,
        }),
        None => Err(ConfigErrors(diag.errors)),
    }
}

fn resolve_supervision(
    raw: Option<&RawSupervision>,
    base: &Path,
    diag: &mut Diagnostics,
) -> SupervisionSettings {
    let database = match raw.and_then(|r| r.database.as_ref()) {
        Some(d) => {
            let url = d.get_ref();
            let known = ["sqlite://", "postgres://", "postgresql://"]
                .iter()
                .any(|p| url.starts_with(p));
            if !known {
                diag.error(
                    Some(d.span()),
                    "supervision.database",
                    "use \"sqlite:///path/file.db\" or \"postgres://user@host/database\"",
                );
            }
            let userinfo = url
                .split_once("://")
                .and_then(|(_, rest)| rest.split('/').next())
                .and_then(|authority| authority.rsplit_once('@'))
                .map(|(userinfo, _)| userinfo);
            if userinfo.is_some_and(|u| u.contains(':')) {
                diag.error(
                    Some(d.span()),
                    "supervision.database",
                    "a password is never written into the config: use `password_file` or `password_env`",
                );
            }
            // A relative SQLite path is relative to the config file, like the others.
            match url.strip_prefix("sqlite://") {
                Some(path) if !path.starts_with('/') => {
                    format!("sqlite://{}", base.join(path).display())
                }
                _ => url.clone(),
            }
        }
        None => DEFAULT_SUPERVISION_DB.to_string(),
    };
    let password = match (
        raw.and_then(|r| r.password_file.as_ref()),
        raw.and_then(|r| r.password_env.as_ref()),
    ) {
        (Some(_), Some(e)) => {
            diag.error(
                Some(e.span()),
                "supervision.password_env",
                "give `password_file` or `password_env`, not both",
            );
            None
        }
        (Some(f), None) => Some(Secret::File(base.join(f))),
        (None, Some(e)) => Some(Secret::Env(e.get_ref().clone())),
        (None, None) => None,
    };
    // A silence shorter than 10 s would be noise; longer than a day, no watch at all.
    let mut silence = |v: Option<&Spanned<Interval>>, field: &str, default: u64| {
        let range = std::time::Duration::from_secs(10)..=std::time::Duration::from_secs(86_400);
        match v {
            Some(s) if range.contains(&s.get_ref().0) => s.get_ref().0,
            Some(s) => {
                diag.error(Some(s.span()), field, "use 10s ..= 24h");
                std::time::Duration::from_secs(default)
            }
            None => std::time::Duration::from_secs(default),
        }
    };
    let silence_after = silence(
        raw.and_then(|r| r.silence_after.as_ref()),
        "supervision.silence_after",
        120,
    );
    let point_silence_after = silence(
        raw.and_then(|r| r.point_silence_after.as_ref()),
        "supervision.point_silence_after",
        300,
    );
    SupervisionSettings {
        database,
        password,
        silence_after,
        point_silence_after,
        interruption_level: raw
            .and_then(|r| r.interruption_level)
            .unwrap_or(hazgate_wire::Level::Yellow),
    }
}

fn resolve_ingest(raw: Option<&RawIngest>, base: &Path, diag: &mut Diagnostics) -> IngestSettings {
    let group = match raw.and_then(|r| r.group.as_ref()) {
        Some(g) if hazgate_wire::valid_id(g.get_ref()) => g.get_ref().clone(),
        Some(g) => {
            diag.error(
                Some(g.span()),
                "ingest.group",
                format!(
                    "\"{}\" cannot name a shared subscription group; {}",
                    g.get_ref(),
                    hazgate_wire::ID_RULE
                ),
            );
            String::new()
        }
        None => "hazingest".to_string(),
    };
    let mut size =
        |v: Option<&Spanned<ByteSize>>, field: &str, min: u64, max: u64, default: u64| match v {
            Some(s) if (min..=max).contains(&s.get_ref().0) => s.get_ref().0 as usize,
            Some(s) => {
                diag.error(
                    Some(s.span()),
                    field,
                    format!("use {}KiB ..= {}MiB", min >> 10, max >> 20),
                );
                default as usize
            }
            None => default as usize,
        };
    let max_message_size = size(
        raw.and_then(|r| r.max_message_size.as_ref()),
        "ingest.max_message_size",
        1 << 10,
        256 << 20,
        1 << 20,
    );
    let max_pending = size(
        raw.and_then(|r| r.max_pending.as_ref()),
        "ingest.max_pending",
        1 << 20,
        2048 << 20,
        64 << 20,
    );
    let quarantine_max_size = size(
        raw.and_then(|r| r.quarantine_max_size.as_ref()),
        "ingest.quarantine_max_size",
        1 << 20,
        64 << 30,
        256 << 20,
    ) as u64;
    if max_pending < max_message_size {
        diag.error(
            raw.and_then(|r| r.max_pending.as_ref()).map(|s| s.span()),
            "ingest.max_pending",
            "must hold at least one message of `max_message_size`",
        );
    }
    // Relative to the config file, like `token_file`.
    let quarantine_dir = match raw.and_then(|r| r.quarantine_dir.as_ref()) {
        Some(d) => base.join(d),
        None => PathBuf::from(DEFAULT_QUARANTINE_DIR),
    };
    IngestSettings {
        group,
        max_message_size,
        max_pending,
        quarantine_dir,
        quarantine_max_size,
    }
}

fn resolve_store(raw: &RawTimeSeriesStore, base: &Path, diag: &mut Diagnostics) -> TimeSeriesStore {
    let url = raw.url.get_ref().trim_end_matches('/').to_string();
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    // The client puts its own path (/api/v2/write) on the address; a path given here would
    // be dropped without a word, so it is refused.
    if !matches!(host, Some(h) if !h.is_empty() && !h.starts_with(['/', ':']) && !h.contains(['/', '?', '#']))
    {
        diag.error(
            Some(raw.url.span()),
            "store.url",
            format!(
                "\"{}\" is not the address of an InfluxDB v2 API; write scheme, host and port only, e.g. \"http://127.0.0.1:8428\" (VictoriaMetrics) or \"http://127.0.0.1:8086\" (InfluxDB)",
                raw.url.get_ref()
            ),
        );
    }
    let token = match (&raw.token_file, &raw.token_env) {
        (Some(_), Some(e)) => {
            diag.error(
                Some(e.span()),
                "store.token_env",
                "give `token_file` or `token_env`, not both",
            );
            None
        }
        (Some(f), None) => Some(Secret::File(base.join(f))),
        (None, Some(e)) => Some(Secret::Env(e.get_ref().clone())),
        (None, None) => None,
    };
    let batch_lines = match &raw.batch_lines {
        Some(n) if (1..=1_000_000).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            diag.error(Some(n.span()), "store.batch_lines", "use 1 ..= 1000000");
            10_000
        }
        None => 10_000,
    };
    let mut interval = |v: &Option<Spanned<Interval>>, field: &str, range: (u64, u64), default| {
        let range = Duration::from_millis(range.0)..=Duration::from_millis(range.1);
        match v {
            Some(i) if range.contains(&i.get_ref().0) => i.get_ref().0,
            Some(i) => {
                diag.error(
                    Some(i.span()),
                    field,
                    format!(
                        "use {} ..= {}",
                        crate::quantity::format_duration(*range.start()),
                        crate::quantity::format_duration(*range.end())
                    ),
                );
                default
            }
            None => default,
        }
    };
    let batch_interval = interval(
        &raw.batch_interval,
        "store.batch_interval",
        (1, 10_000),
        Duration::from_millis(200),
    );
    let timeout = interval(
        &raw.timeout,
        "store.timeout",
        (100, 300_000),
        Duration::from_secs(10),
    );
    TimeSeriesStore {
        url,
        org: raw.org.clone().unwrap_or_else(|| "hazard".into()),
        bucket: raw.bucket.clone().unwrap_or_else(|| "hazard".into()),
        token,
        batch_lines,
        batch_interval,
        timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CentralConfig, ConfigErrors> {
        parse_central(&SourceText::new("/etc/hazingest/central.toml", text))
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = parse(
            "[mqtt]\nbroker = \"mqtt://127.0.0.1:1883\"\n[store]\nurl = \"http://127.0.0.1:8428/\"\n",
        )
        .unwrap();
        assert_eq!(c.mqtt.prefix, "hazard");
        assert_eq!(c.ingest.group, "hazingest");
        assert_eq!(c.ingest.max_message_size, 1 << 20);
        assert_eq!(
            c.ingest.quarantine_dir,
            PathBuf::from("/var/lib/hazingest/quarantine")
        );
        assert_eq!(c.ingest.quarantine_max_size, 256 << 20);
        assert_eq!(c.store.url, "http://127.0.0.1:8428");
        assert_eq!(c.store.batch_interval, Duration::from_millis(200));
        assert!(c.web.is_none());
    }

    #[test]
    fn every_error_is_located() {
        let e = parse(
            "[mqtt]\nbroker = \"tcp://x\"\n[ingest]\ngroup = \"a/b\"\n[store]\nurl = \"http://h:8428/insert/0\"\nbatch_lines = 0\n[web]\nlisten = \"everywhere\"\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "central.toml:2: mqtt.broker",
            "central.toml:4: ingest.group",
            "central.toml:6: store.url",
            "central.toml:7: store.batch_lines",
            "central.toml:9: web.listen",
        ] {
            assert!(e.contains(want), "{want} missing in:\n{e}");
        }
    }

    #[test]
    fn quarantine_settings() {
        let c = parse(
            "[mqtt]\nbroker = \"mqtt://h\"\n[ingest]\nquarantine_dir = \"q\"\nquarantine_max_size = \"2MiB\"\n[store]\nurl = \"http://h\"\n",
        )
        .unwrap();
        assert_eq!(c.ingest.quarantine_dir, PathBuf::from("/etc/hazingest/q"));
        assert_eq!(c.ingest.quarantine_max_size, 2 << 20);
        let e = parse(
            "[mqtt]\nbroker = \"mqtt://h\"\n[ingest]\nquarantine_max_size = \"1KiB\"\n[store]\nurl = \"http://h\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("central.toml:4: ingest.quarantine_max_size"),
            "{e}"
        );
    }

    #[test]
    fn secrets_stay_out_of_the_file() {
        let e =
            parse("[mqtt]\nbroker = \"mqtt://h\"\n[store]\nurl = \"http://h\"\ntoken = \"x\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("token_file"), "{e}");
    }
}
