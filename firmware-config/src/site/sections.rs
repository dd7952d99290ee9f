//! The site-wide sections of a site file: `[uplink]` (broker, TLS, secrets) and `[store]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::*;
use super::raw::*;
use crate::error::Diagnostics;

/// Resolves an `[uplink]`-shaped section (`[mqtt]` on the central side); `section` names
/// it in errors.
pub(crate) fn resolve_uplink(
    u: &RawUplink,
    section: &str,
    default_client_id: String,
    base: &Path,
    diag: &mut Diagnostics,
) -> Option<Uplink> {
    let broker = match parse_broker(u.broker.get_ref()) {
        Ok(b) => b,
        Err(msg) => {
            diag.error(Some(u.broker.span()), format!("{section}.broker"), msg);
            return None;
        }
    };
    let prefix = match &u.prefix {
        Some(p)
            if !p.get_ref().is_empty()
                && !p.get_ref().contains(['+', '#'])
                && !p.get_ref().starts_with('/')
                && !p.get_ref().ends_with('/') =>
        {
            p.get_ref().clone()
        }
        Some(p) => {
            diag.error(
                Some(p.span()),
                format!("{section}.prefix"),
                "a topic prefix must not be empty, contain '+' or '#', or start or end with '/'",
            );
            String::new()
        }
        None => "hazard".to_string(),
    };
    let password = match (&u.password_file, &u.password_env) {
        (Some(_), Some(e)) => {
            diag.error(
                Some(e.span()),
                format!("{section}.password_env"),
                "give `password_file` or `password_env`, not both",
            );
            None
        }
        (Some(f), None) => {
            let path = base.join(f.get_ref());
            readable(&path, f.span(), &format!("{section}.password_file"), diag);
            Some(Secret::File(path))
        }
        (None, Some(e)) => Some(Secret::Env(e.get_ref().clone())),
        (None, None) => None,
    };
    if u.client_cert.is_some() != u.client_key.is_some() {
        diag.error(
            Some(u.broker.span()),
            format!("{section}.client_cert"),
            "a client certificate needs its key (`client_key`), and a key its certificate",
        );
    }
    let file = |f: &Option<toml::Spanned<PathBuf>>, field: &str, diag: &mut Diagnostics| {
        f.as_ref().map(|f| {
            let path = base.join(f.get_ref());
            readable(&path, f.span(), &format!("{section}.{field}"), diag);
            path
        })
    };
    let ca_file = file(&u.ca_file, "ca_file", diag);
    let client_cert = file(&u.client_cert, "client_cert", diag);
    let client_key = file(&u.client_key, "client_key", diag);
    // MQTT counts keep-alive in whole seconds, at most 65535; under a second the client
    // cannot even be set up.
    let keep_alive = bounded(
        &u.keep_alive,
        Duration::from_secs(1)..=Duration::from_secs(65535),
        format!("{section}.keep_alive"),
        "use 1s ..= 65535s (MQTT counts whole seconds); e.g. \"30s\"",
        diag,
    );
    let health_interval = bounded(
        &u.health_interval,
        Duration::from_secs(10)..=Duration::from_secs(600),
        format!("{section}.health_interval"),
        "use 10s ..= 10min: the central side takes a gateway for silent after two intervals without a message",
        diag,
    );
    Some(Uplink {
        broker,
        prefix,
        client_id: u.client_id.clone().unwrap_or(default_client_id),
        username: u.username.clone(),
        password,
        ca_file,
        client_cert,
        client_key,
        keep_alive,
        encoding: match u.compress.as_ref().map(|c| *c.get_ref()) {
            Some(super::raw::RawCompress::None) => hazgate_wire::payload::Encoding::Json,
            Some(super::raw::RawCompress::Zstd) | None => hazgate_wire::payload::Encoding::Zstd,
        },
        health_interval,
    })
}

/// An interval within `range`; 30 s when absent, or (with an error naming `field`) when
/// outside it.
fn bounded(
    v: &Option<toml::Spanned<crate::serde_types::Interval>>,
    range: std::ops::RangeInclusive<Duration>,
    field: String,
    advice: &str,
    diag: &mut Diagnostics,
) -> Duration {
    const DEFAULT: Duration = Duration::from_secs(30);
    match v {
        Some(x) if !range.contains(&x.get_ref().0) => {
            diag.error(Some(x.span()), field, advice);
            DEFAULT
        }
        Some(x) => x.get_ref().0,
        None => DEFAULT,
    }
}

/// A file the service reads at run time (a CA, a key, a password) must be readable now:
/// `check` refuses what would only fail at the first connection.
fn readable(path: &Path, span: std::ops::Range<usize>, field: &str, diag: &mut Diagnostics) {
    if let Err(e) = std::fs::File::open(path) {
        diag.error(
            Some(span),
            field,
            format!("cannot read {}: {e}", path.display()),
        );
    }
}

/// "mqtt://host:1883" or "mqtts://host:8883"; the port defaults by scheme.
pub fn parse_broker(url: &str) -> Result<Broker, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(format!(
            "\"{url}\" is not a broker address; write mqtt://host:1883 or mqtts://host:8883"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("\"{p}\" is not a port in \"{url}\""))?,
        ),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("\"{url}\" has no host; write mqtt://host:1883"));
    }
    Ok(Broker {
        tls,
        host: host.to_string(),
        port,
    })
}

pub(super) fn resolve_store(
    s: Option<&RawStore>,
    base: &Path,
    diag: &mut Diagnostics,
) -> StoreConfig {
    let dir = s
        .and_then(|s| s.dir.as_ref())
        .map(|d| base.join(d))
        .unwrap_or_else(|| PathBuf::from("/var/lib/hazgate"));
    let max_size = s.and_then(|s| s.max_size.as_ref()).map(|m| {
        if m.get_ref().0 < 1 << 20 {
            diag.error(
                Some(m.span()),
                "store.max_size",
                "under 1MiB cannot hold even a short outage; use e.g. \"1GiB\"",
            );
        }
        m.get_ref().0
    });
    let sync_interval = s.and_then(|s| s.sync_interval.as_ref()).map(|i| {
        let v = i.get_ref().0;
        if !(Duration::from_millis(10)..=Duration::from_secs(10)).contains(&v) {
            diag.error(
                Some(i.span()),
                "store.sync_interval",
                "use 10ms ..= 10s: longer risks losing that much on power loss",
            );
        }
        v
    });
    let min_free = s.and_then(|s| s.min_free.as_ref()).map(|m| m.get_ref().0);
    StoreConfig {
        dir,
        max_size: max_size.unwrap_or(1 << 30),
        min_free: min_free.unwrap_or(64 << 20),
        sync_interval: sync_interval.unwrap_or(Duration::from_secs(1)),
    }
}

/// A listen address such as "127.0.0.1:9464".
pub(crate) fn resolve_listen(
    listen: &toml::Spanned<String>,
    field: &str,
    diag: &mut Diagnostics,
) -> Option<std::net::SocketAddr> {
    match listen.get_ref().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            diag.error(
                Some(listen.span()),
                field,
                format!(
                    "\"{}\" is not an address; write e.g. \"127.0.0.1:9464\"",
                    listen.get_ref()
                ),
            );
            None
        }
    }
}

pub(super) fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}
