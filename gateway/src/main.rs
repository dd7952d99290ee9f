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
        /// The site config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a site config and print its poll plan and line budget.
    Check {
        /// The site config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Also connect to the broker (TLS and credentials included) and read every device
        /// once, and say what answered.
        #[arg(long)]
        connect: bool,
    },
    /// Read every point once and print one JSON line per reading.
    Poll {
        /// The site config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only this device.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
    },
    /// Find which Modbus unit ids answer on a bus, and which read functions each accepts.
    Scan {
        #[command(flatten)]
        bus: commands::target::BusArgs,
        /// Unit ids to try, e.g. 1-247 or 5.
        #[arg(long, default_value = "1-247", value_parser = commands::scan::parse_units)]
        units: std::ops::RangeInclusive<u8>,
        /// How long to wait for each unit's reply, e.g. 100ms.
        #[arg(long, default_value = "200ms", value_parser = firmware_config::quantity::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Read a register range once and show it raw and in every decoding side by side.
    Read {
        #[command(flatten)]
        bus: commands::target::BusArgs,
        /// Modbus unit (slave) id.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=255))]
        unit: u8,
        /// holding, input, coil or discrete.
        #[arg(long, default_value = "holding", value_parser = parse_kind)]
        kind: firmware_config::RegisterKind,
        /// First address, counted from 0 as on the wire.
        #[arg(long)]
        address: u16,
        /// Registers (at most 125) or bits (at most 2000) to read.
        #[arg(long, default_value_t = 10)]
        count: u16,
        /// How long to wait for the reply.
        #[arg(long, default_value = "1s", value_parser = firmware_config::quantity::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Show it all in one process: simulated devices playing a gas leak and a rising
    /// tailings pond, two gateways, an embedded MQTT broker, and the live values.
    #[cfg(feature = "demo")]
    Demo {
        /// Port of the embedded MQTT broker on 127.0.0.1 (default: a free one, shown on
        /// screen).
        #[arg(long)]
        port: Option<u16>,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 4.0)]
        speed: f64,
        /// Stop by itself after this long, e.g. 60s or 5min; otherwise at Ctrl-C.
        #[arg(long = "for", value_name = "DURATION", value_parser = firmware_config::quantity::parse_duration)]
        duration: Option<std::time::Duration>,
    },
}

fn parse_kind(s: &str) -> Result<firmware_config::RegisterKind, String> {
    use firmware_config::RegisterKind::*;
    [Holding, Input, Coil, Discrete]
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| format!("\"{s}\" is not a register kind: holding, input, coil or discrete"))
}

/// The one-shot tools end quietly when what reads their output stops (`hazgate check |
/// head -1`), as other command-line tools do, instead of failing on the closed pipe.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        quiet_on_closed_pipe();
    }
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
            hazgate_common::exit::for_error(e.as_ref())
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
        Command::Check { config, connect } => {
            let site = commands::load(&config)?;
            let report = commands::check::report(&site);
            print!("{}", report.text);
            for w in &report.warnings {
                println!("warning: {w}");
            }
            println!("ok: {} is valid", config.display());
            if !connect {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("connecting to the broker and reading every device once...");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let found = runtime.block_on(commands::check::connect(&site));
            print!("{}", found.text);
            Ok(if found.all_answered {
                ExitCode::SUCCESS
            } else {
                hazgate_common::exit::fault()
            })
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
            // Nothing read well: a script checking the cabinet must see a failure.
            if summary.good + summary.uncertain == 0 {
                return Ok(hazgate_common::exit::fault());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            bus,
            units,
            timeout,
        } => {
            let link = bus.link()?;
            eprintln!(
                "scanning {} for unit ids {}-{} ({} ms each)",
                link.describe(),
                units.start(),
                units.end(),
                timeout.as_millis()
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut last = std::time::Instant::now();
            let found = runtime.block_on(commands::scan::scan(
                link,
                units,
                timeout,
                |done, total, found| {
                    // Progress once a second: a full RTU scan takes a minute.
                    if last.elapsed() >= std::time::Duration::from_secs(1) || done == total {
                        eprintln!("{done}/{total} tried, {found} answered");
                        last = std::time::Instant::now();
                    }
                },
            ))?;
            print!("{}", commands::scan::render(&found));
            Ok(if found.is_empty() {
                hazgate_common::exit::fault()
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Read {
            bus,
            unit,
            kind,
            address,
            count,
            timeout,
        } => {
            let max = if kind.is_bit() { 2000 } else { 125 };
            if count == 0 || count > max || address as u32 + count as u32 > 65_536 {
                return Err(commands::refused(format!(
                    "--count {count} from --address {address}: a {} read takes 1 to {max} and must end at 65535",
                    kind.name()
                )));
            }
            let link = bus.link()?;
            let what = format!(
                "{}, unit {unit}, {} {address}..{}",
                link.describe(),
                kind.name(),
                address as u32 + count as u32 - 1
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            match runtime.block_on(commands::read::read(
                link, unit, kind, address, count, timeout,
            )) {
                Ok(response) => {
                    println!("{what}\n");
                    print!("{}", commands::read::render(kind, address, &response));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("hazgate: {what}: {e}");
                    Ok(hazgate_common::exit::fault())
                }
            }
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
