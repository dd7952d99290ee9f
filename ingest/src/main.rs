//! The `hazingest` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use hazgate_common::{init_logging, LogFormat};

#[derive(Parser)]
#[command(
    name = "hazingest",
    version,
    about = "Central ingest of hazgate: MQTT to InfluxDB or VictoriaMetrics, and the regulator view"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Subscribe, write to the store, and serve the regulator view until stopped.
    Run {
        /// The central config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check a central config and say what it means.
    Check {
        /// The central config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Users of the view: add one (the first admin), change a password, list them, or
    /// give one an API token. Passwords are read from standard input, one line.
    User {
        /// The central config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user; the password is read from standard input.
    Add {
        /// The login name.
        #[arg(long)]
        name: String,
        /// admin, regulator or enterprise.
        #[arg(long)]
        role: String,
        /// Regulator: division-code prefixes (4201,4203); enterprise: site ids.
        #[arg(long, default_value = "")]
        scope: String,
    },
    /// Set a user's password (read from standard input); their sessions end.
    Passwd {
        /// The login name.
        #[arg(long)]
        name: String,
    },
    /// List the users.
    List,
    /// Make an API token for a machine client acting as this user (printed once).
    Token {
        /// The user the token acts as.
        #[arg(long)]
        name: String,
        /// A label saying what the token is for.
        #[arg(long, default_value = "api")]
        label: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, "info");
    let (Command::Run { config } | Command::Check { config } | Command::User { config, .. }) =
        &cli.command;
    let central = match firmware_config::central::load_central(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return hazgate_common::exit::refused();
        }
    };
    match cli.command {
        Command::User { action, .. } => user_command(&central, action),
        Command::Check { .. } => {
            println!(
                "ok: broker {}:{} (prefix \"{}\", group \"{}\"), store {} (bucket \"{}\"), quarantine {} (at most {} bytes), view {}, metrics {}, supervision database {}",
                central.mqtt.broker.host,
                central.mqtt.broker.port,
                central.mqtt.prefix,
                central.ingest.group,
                central.store.url,
                central.store.bucket,
                central.ingest.quarantine_dir.display(),
                central.ingest.quarantine_max_size,
                central.web.as_ref().map_or("off".into(), |w| format!("http://{}/", w.listen)),
                central.metrics.map_or("off".into(), |a| format!("http://{a}/metrics")),
                hazingest::supervise::db::redact(&central.supervision.database),
            );
            ExitCode::SUCCESS
        }
        Command::Run { .. } => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    return hazgate_common::exit::fault();
                }
            };
            match runtime.block_on(hazingest::run::run(central)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hazingest: {e:#}");
                    hazgate_common::exit::fault()
                }
            }
        }
    }
}

/// `hazingest user ...`: runs against the supervision database of the config.
fn user_command(central: &firmware_config::central::CentralConfig, action: UserAction) -> ExitCode {
    use hazingest::supervise::{db::Db, sessions, users};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return hazgate_common::exit::fault();
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        let (supervision, _) =
            hazingest::supervise::Supervision::open(&central.supervision, &central.mqtt.prefix)
                .await?;
        let db: &Db = &supervision.db;
        let read_password = || -> anyhow::Result<String> {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Ok(line.trim_end_matches(['\n', '\r']).to_string())
        };
        match action {
            UserAction::Add { name, role, scope } => {
                let role = users::Role::parse(&role).ok_or_else(|| {
                    anyhow::anyhow!("\"{role}\" is not a role; use admin, regulator or enterprise")
                })?;
                let password = read_password()?;
                let u = users::add(db, &name, &password, role, &[scope]).await?;
                hazingest::supervise::audit::record(
                    db,
                    "cli",
                    "user_add",
                    Some(&name),
                    Some(u.role.name()),
                    None,
                )
                .await?;
                println!(
                    "added {} ({}{})",
                    u.name,
                    u.role.name(),
                    if u.scope.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", u.scope.join(","))
                    }
                );
            }
            UserAction::Passwd { name } => {
                let password = read_password()?;
                users::set_password(db, &name, &password).await?;
                hazingest::supervise::audit::record(
                    db,
                    "cli",
                    "user_passwd",
                    Some(&name),
                    None,
                    None,
                )
                .await?;
                println!("password of {name} changed; their sessions ended");
            }
            UserAction::List => {
                for u in users::list(db).await? {
                    println!(
                        "{}\t{}\t{}{}",
                        u.name,
                        u.role.name(),
                        u.scope.join(","),
                        if u.disabled { "\tdisabled" } else { "" }
                    );
                }
            }
            UserAction::Token { name, label } => {
                if users::find(db, &name).await?.is_none() {
                    anyhow::bail!("no user \"{name}\"");
                }
                let token = sessions::add_api_token(db, &name, &label).await?;
                hazingest::supervise::audit::record(
                    db,
                    "cli",
                    "token_add",
                    Some(&name),
                    Some(&label),
                    None,
                )
                .await?;
                println!("{token}");
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hazingest user: {e:#}");
            hazgate_common::exit::fault()
        }
    }
}
