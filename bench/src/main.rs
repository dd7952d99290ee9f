//! `hazgate-bench`: runs the benchmarks, prints a table, writes BENCHMARKS.md.

mod alarm;
mod alarm_latency;
mod escalation;
mod ingest;
mod poll_throughput;
mod process;
mod report;
mod store;
mod uplink;
mod view;
mod wire_bytes;

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
    /// End to end through mosquitto: throughput, backlog drain, footprint, idle CPU.
    Uplink,
    /// The per-point alarm state machine: evaluations per second on one core.
    Alarm,
    /// Central ingest into victoria-metrics: readings per second, CPU, peak RSS.
    Ingest,
    /// Call-response: from an alarm to its first notification, under load.
    Escalation,
    /// The regulator view at 500 enterprises and 50,000 points; a 30-day trend.
    View,
    /// Bytes on the wire per polled value over a simulated day of the examples.
    Bytes,
    /// All of the above.
    All,
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
    let which = cli.command.unwrap_or(Bench::All);
    if let Bench::RawResponder { port } = which {
        return tokio::runtime::Runtime::new()?.block_on(poll_throughput::raw_responder(port));
    }
    let all = matches!(which, Bench::All);
    let mut sections = Vec::new();
    if all || matches!(which, Bench::Poll) {
        anyhow::ensure!(
            hazsim.exists(),
            "{} is missing: run scripts/bench, which builds it",
            hazsim.display()
        );
        sections.push(("poll-throughput", poll_throughput::run(&hazsim, &exe)?));
    }
    if all || matches!(which, Bench::Store) {
        sections.push(("store", store::run()?));
    }
    if all || matches!(which, Bench::Uplink) {
        for table in uplink::run(&root)? {
            sections.push(("uplink", table));
        }
    }
    if all || matches!(which, Bench::Alarm) {
        sections.push(("alarm", alarm::run()?));
        sections.push(("alarm-latency", alarm_latency::run()?));
    }
    if all || matches!(which, Bench::Ingest) {
        sections.push(("ingest", ingest::run()?));
    }
    if all || matches!(which, Bench::Escalation) {
        sections.push(("escalation", escalation::run()?));
    }
    if all || matches!(which, Bench::View) {
        sections.push(("view", view::run()?));
    }
    if all || matches!(which, Bench::Bytes) {
        sections.push(("wire-bytes", wire_bytes::run(&root)?));
    }
    for (key, table) in &sections {
        table.print();
        report::write_section(&root.join("BENCHMARKS.md"), key, table)?;
    }
    println!("\nwritten to BENCHMARKS.md");
    Ok(())
}
