//! `hazgate-bench`: runs the benchmarks, prints a table, writes BENCHMARKS.md.

mod poll_throughput;
mod report;
mod store;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hazgate-bench",
    about = "Benchmarks of hazgate; figures go to BENCHMARKS.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Bench>,
}

#[derive(Subcommand)]
enum Bench {
    /// Modbus TCP reading throughput against hazsim, beside the loopback ceiling.
    Poll,
    /// The store (segment log) against redb: telemetry throughput, alarm latency.
    Store,
    /// (internal) the minimal responder the ceiling is measured with.
    #[command(hide = true)]
    RawResponder {
        #[arg(long)]
        port: u16,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("binary folder")?.to_path_buf();
    let hazsim = bin_dir.join("hazsim");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match cli.command {
        Some(Bench::RawResponder { port }) => {
            tokio::runtime::Runtime::new()?.block_on(poll_throughput::raw_responder(port))
        }
        Some(Bench::Store) => {
            let table = store::run()?;
            table.print();
            report::write_section(&root.join("BENCHMARKS.md"), "store", &table)?;
            println!("\nwritten to BENCHMARKS.md");
            Ok(())
        }
        Some(Bench::Poll) | None => {
            anyhow::ensure!(
                hazsim.exists(),
                "{} is missing: run scripts/bench, which builds it",
                hazsim.display()
            );
            let table = poll_throughput::run(&hazsim, &exe)?;
            table.print();
            report::write_section(&root.join("BENCHMARKS.md"), "poll-throughput", &table)?;
            println!("\nwritten to BENCHMARKS.md");
            Ok(())
        }
    }
}
