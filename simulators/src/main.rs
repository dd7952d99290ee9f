//! The `hazsim` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hazsim",
    version,
    about = "Simulated Modbus field devices for hazgate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every device of a site config over its bus (TCP, RTU on a pty, RTU over TCP).
    Serve {
        /// The site config.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// A scenario file; may be given more than once.
        #[arg(long)]
        scenario: Vec<PathBuf>,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Loopback address for the JSON control socket, e.g. 127.0.0.1:15999.
        #[arg(long)]
        control: Option<SocketAddr>,
    },
    /// Send one JSON command to a running hazsim and print the reply.
    Ctl {
        /// The address given to `serve --control`.
        #[arg(long)]
        control: SocketAddr,
        /// The command, e.g. '{"device":"GD-101","point":"CH1","set":30.0}'.
        command: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The same log variable as hazgate and hazingest.
    hazgate_common::init_logging(hazgate_common::LogFormat::Text, "info");
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hazsim: {e:#}");
            // A refused site, scenario or flag is 2; a port taken or a device that cannot
            // open is a fault, 1: the exit codes of all three binaries.
            let refused = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<hazsim::SimError>(),
                    Some(hazsim::SimError::Config(_) | hazsim::SimError::ControlNotLoopback(_))
                )
            });
            if refused {
                hazgate_common::exit::refused()
            } else {
                hazgate_common::exit::fault()
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve {
            config,
            scenario,
            speed,
            control,
        } => {
            runtime.block_on(hazsim::run(hazsim::Options {
                site: config,
                scenarios: scenario,
                speed,
                control,
                stop: None,
                quiet: false,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ctl { control, command } => {
            let reply = runtime
                .block_on(hazsim::control::send(control, &command))
                .with_context(|| format!("control socket {control}"))?;
            println!("{reply}");
            let ok = serde_json::from_str::<serde_json::Value>(&reply)
                .ok()
                .and_then(|v| v["ok"].as_bool())
                == Some(true);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                hazgate_common::exit::fault()
            })
        }
    }
}
