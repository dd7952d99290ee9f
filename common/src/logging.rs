//! Logs to stderr: human-readable by default, JSON lines for log shippers. The level comes
//! from `HAZGATE_LOG` (e.g. `info`, `hazgate=debug`), the same variable for `hazgate` and
//! `hazingest`.

/// How log lines look on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Sets the process's log subscriber; `default_level` applies when `HAZGATE_LOG` is unset
/// or unreadable. A second call changes nothing.
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HAZGATE_LOG")
        .unwrap_or_else(|_| default_level.into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
