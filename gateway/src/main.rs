//! The `hazgate` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use hazgate::commands;
use hazgate::ops::{init_logging, LogFormat};

#[derive(Parser)]
#[command(
    name = "hazgate",
    version,
    about = "Edge gateway for hazardous-chemical plants, mines and tailings dams"
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
    /// Run the gateway: poll forever, keep every reading on disk, publish to MQTT.
    Run {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a site config and print its poll plan and line budget.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Read every point once and print one JSON line per reading.
    Poll {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only this device.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
    },
    /// Show it all in one process: simulated devices playing a gas leak and a rising
    /// tailings pond, two gateways, an embedded MQTT broker, and the live values.
    #[cfg(feature = "demo")]
    Demo {
        /// Port of the embedded MQTT broker on 127.0.0.1.
        #[arg(long, default_value_t = 1883)]
        port: u16,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 4.0)]
        speed: f64,
        /// Stop by itself after this long, e.g. 60s or 5min; otherwise at Ctrl-C.
        #[arg(long = "for", value_name = "DURATION", value_parser = firmware_config::quantity::parse_duration)]
        duration: Option<std::time::Duration>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon reports what it does; the one-shot tools only what goes wrong.
    let level = match cli.command {
        Command::Run { .. } => "info",
        #[cfg(feature = "demo")]
        Command::Demo { .. } => hazgate::demo::LOG_FILTER,
        _ => "warn",
    };
    init_logging(cli.log_format, level);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hazgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates an arena of its own, up to eight per core; with
/// the runtime's worker and blocking threads each holding freed memory in its own arena,
/// the resident size of a long-running gateway grows far past what it uses. Two arenas
/// keep contention low on an edge box's few cores and memory close to what is live.
fn fewer_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator (it locks internally);
    // called before the runtime starts its threads, so it bounds all their arenas.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { config } => {
            fewer_malloc_arenas();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(hazgate::daemon::run_until_signalled(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            let site = commands::load(&config)?;
            let report = commands::check::report(&site);
            print!("{}", report.text);
            for w in &report.warnings {
                println!("warning: {w}");
            }
            println!("ok: {} is valid", config.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Poll { config, device } => {
            let site = commands::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let summary = runtime.block_on(commands::poll::run(
                &site,
                device.as_deref(),
                &mut std::io::stdout().lock(),
            ))?;
            eprintln!(
                "poll: {} good, {} uncertain, {} bad",
                summary.good, summary.uncertain, summary.bad
            );
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            port,
            speed,
            duration,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(hazgate::demo::run(hazgate::demo::Options {
                port,
                speed,
                duration,
            }))?;
            // The embedded broker has no stop call: its threads end with the process.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            Ok(ExitCode::SUCCESS)
        }
    }
}
