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
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check a central config and say what it means.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, "info");
    let (Command::Run { config } | Command::Check { config }) = &cli.command;
    let central = match firmware_config::central::load_central(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Check { .. } => {
            println!(
                "ok: broker {}:{} (prefix \"{}\", group \"{}\"), store {} (bucket \"{}\"), quarantine {} (at most {} bytes), view {}, metrics {}",
                central.mqtt.broker.host,
                central.mqtt.broker.port,
                central.mqtt.prefix,
                central.ingest.group,
                central.store.url,
                central.store.bucket,
                central.ingest.quarantine_dir.display(),
                central.ingest.quarantine_max_size,
                central.web.map_or("off".into(), |a| format!("http://{a}/")),
                central.metrics.map_or("off".into(), |a| format!("http://{a}/metrics")),
            );
            ExitCode::SUCCESS
        }
        Command::Run { .. } => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(hazingest::run::run(central)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hazingest: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
