//! The store's cost on this machine, and the alternative it was chosen over: the segment
//! log of `hazgate::store` against redb (an embedded B-tree database) doing the same work.
//! Telemetry: 50 KB records (a message of ~500 readings), synced once per second or after
//! every record, acknowledged one sync interval later (deleted). Alarms: small records,
//! durable before the call returns (fdatasync / a durable commit each). Bytes written per
//! reading are the bytes the process sent to the block layer (/proc/self/io), ledger,
//! metadata and page rounding included.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use hazgate::store::{Lane, Store, StoreOptions};
use redb::{Database, TableDefinition};

use crate::report::{machine, Table};

const TELEMETRY: usize = 50_000;
const READINGS_PER_RECORD: f64 = 500.0;
const ALARM: usize = 300;
const RUN: Duration = Duration::from_secs(3);
/// Caps the bytes a run writes, so a fast disk is not filled for nothing.
const MAX_RECORDS: u64 = 6_000;
const ALARMS: usize = 500;
const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("records");

#[derive(Clone, Copy)]
enum Sync {
    EverySecond,
    EachRecord,
}

#[derive(Default)]
struct Measure {
    records: u64,
    payload_bytes: u64,
    secs: f64,
    written: Option<u64>,
    latencies: Vec<Duration>,
}

/// Bytes this process has caused to be sent to storage.
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

fn delta(before: Option<u64>) -> Option<u64> {
    Some(written_bytes()?.saturating_sub(before?))
}

/// The uplink's side, simulated: what was synced one interval ago has been acknowledged.
trait Engine {
    fn append(&mut self, lane: Lane, id: u64, payload: &[u8]) -> Result<()>;
    fn sync(&mut self) -> Result<()>;
    fn ack_upto(&mut self, lane: Lane, id: u64) -> Result<()>;
}

struct Log {
    store: Store,
    acked: u64,
}

impl Engine for Log {
    fn append(&mut self, lane: Lane, id: u64, payload: &[u8]) -> Result<()> {
        let got = self.store.append(lane, 1, id, 0, 0, payload)?;
        anyhow::ensure!(got == id, "store gave id {got}, expected {id}");
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        Ok(self.store.sync()?)
    }
    fn ack_upto(&mut self, lane: Lane, id: u64) -> Result<()> {
        for i in self.acked + 1..=id {
            self.store.ack(lane, i);
        }
        self.acked = self.acked.max(id);
        Ok(())
    }
}

/// redb as the store would use it: one table keyed by id; records of an interval in one
/// durable commit; acknowledged records deleted in the next one.
struct Redb {
    /// Before `db`: a write transaction must end before its database is dropped.
    txn: Option<redb::WriteTransaction>,
    db: Database,
    acked: u64,
    sync_each: bool,
}

impl Redb {
    fn txn(&mut self) -> Result<&mut redb::WriteTransaction> {
        Ok(match &mut self.txn {
            Some(t) => t,
            slot => slot.insert(self.db.begin_write()?),
        })
    }
}

impl Engine for Redb {
    fn append(&mut self, lane: Lane, id: u64, payload: &[u8]) -> Result<()> {
        {
            let mut t = self.txn()?.open_table(TABLE)?;
            t.insert(id, payload)?;
        }
        if self.sync_each || lane == Lane::Alarm {
            self.sync()?;
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        if let Some(t) = self.txn.take() {
            t.commit()?;
        }
        Ok(())
    }
    fn ack_upto(&mut self, _lane: Lane, id: u64) -> Result<()> {
        if id > self.acked {
            let from = self.acked + 1;
            let mut t = self.txn()?.open_table(TABLE)?;
            t.retain_in(from..=id, |_, _| false)?;
            drop(t);
            self.acked = id;
        }
        Ok(())
    }
}

fn telemetry(engine: &mut dyn Engine, sync: Sync) -> Result<Measure> {
    let payload: Vec<u8> = (0..TELEMETRY).map(|i| (i % 251) as u8).collect();
    let before = written_bytes();
    let start = Instant::now();
    let mut last_sync = start;
    let (mut id, mut synced_before) = (0u64, 0u64);
    while start.elapsed() < RUN && id < MAX_RECORDS {
        id += 1;
        engine.append(Lane::Telemetry, id, &payload)?;
        let due = match sync {
            Sync::EachRecord => true,
            Sync::EverySecond => last_sync.elapsed() >= Duration::from_secs(1),
        };
        if due {
            engine.sync()?;
            engine.ack_upto(Lane::Telemetry, synced_before)?;
            synced_before = id;
            last_sync = Instant::now();
        }
    }
    engine.sync()?;
    Ok(Measure {
        records: id,
        payload_bytes: id * TELEMETRY as u64,
        secs: start.elapsed().as_secs_f64(),
        written: delta(before),
        latencies: Vec::new(),
    })
}

fn alarms(engine: &mut dyn Engine) -> Result<Measure> {
    let payload = vec![0x41u8; ALARM];
    let before = written_bytes();
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(ALARMS);
    for id in 1..=ALARMS as u64 {
        let t = Instant::now();
        engine.append(Lane::Alarm, id, &payload)?;
        latencies.push(t.elapsed());
        if id % 50 == 0 {
            engine.ack_upto(Lane::Alarm, id - 25)?;
        }
    }
    engine.sync()?;
    latencies.sort();
    Ok(Measure {
        records: ALARMS as u64,
        payload_bytes: (ALARMS * ALARM) as u64,
        secs: start.elapsed().as_secs_f64(),
        written: delta(before),
        latencies,
    })
}

fn open_log(dir: &Path) -> Result<Log> {
    let (store, _) = Store::open(StoreOptions::new(dir, 1 << 30))?;
    Ok(Log { store, acked: 0 })
}

fn open_redb(dir: &Path, sync_each: bool) -> Result<Redb> {
    std::fs::create_dir_all(dir)?;
    let db = Database::create(dir.join("store.redb"))?;
    Ok(Redb {
        db,
        txn: None,
        acked: 0,
        sync_each,
    })
}

fn pct(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    format!("{:.2} ms", sorted[i].as_secs_f64() * 1e3)
}

fn row(engine: &str, workload: &str, m: &Measure, readings: f64) -> Vec<String> {
    vec![
        engine.into(),
        workload.into(),
        format!("{:.0}", m.records as f64 / m.secs),
        format!("{:.1}", m.payload_bytes as f64 / m.secs / 1e6),
        pct(&m.latencies, 0.50),
        pct(&m.latencies, 0.99),
        m.written
            .map(|w| format!("{:.1}", w as f64 / (m.records as f64 * readings)))
            .unwrap_or_else(|| "n/a".into()),
    ]
}

pub fn run() -> Result<Table> {
    let root = tempfile::Builder::new()
        .prefix("hazgate-bench-store")
        .tempdir()?;
    let d = |name: &str| root.path().join(name);
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    for (name, sync) in [
        ("telemetry 50 KB, sync every 1 s", Sync::EverySecond),
        ("telemetry 50 KB, sync every record", Sync::EachRecord),
    ] {
        let tag = matches!(sync, Sync::EachRecord) as u8;
        let m = telemetry(&mut open_log(&d(&format!("log-t{tag}")))?, sync)?;
        rows.push(row("segment log", name, &m, READINGS_PER_RECORD));
        let r = telemetry(&mut open_redb(&d(&format!("redb-t{tag}")), tag == 1)?, sync)?;
        rows.push(row("redb", name, &r, READINGS_PER_RECORD));
        figures.push((name, m.records as f64 / m.secs, r.records as f64 / r.secs));
    }
    let name = "alarm 300 B, durable per record";
    let m = alarms(&mut open_log(&d("log-a"))?)?;
    rows.push(row("segment log", name, &m, 1.0));
    let r = alarms(&mut open_redb(&d("redb-a"), true)?)?;
    rows.push(row("redb", name, &r, 1.0));
    figures.push((name, m.records as f64 / m.secs, r.records as f64 / r.secs));

    let mut notes = vec![
        format!(
            "{}s or {MAX_RECORDS} records per telemetry run, {ALARMS} alarms; records acknowledged (deleted) one sync interval after they are synced. {} (the files in {}).",
            RUN.as_secs(),
            machine(),
            std::env::temp_dir().display()
        ),
        "Bytes written per reading: telemetry per reading (500 per record), alarms per record; from /proc/self/io write_bytes (block-layer writes caused by the process, so filesystem journal writes of the kernel are not in it).".into(),
    ];
    notes.push("Sync after every 50 KB record is not how telemetry is stored (DESIGN.md: synced every second, no sync per reading); it is shown for scale. There each fdatasync of the log also commits the segment's new size, which is the likely reason redb, writing into pages it has already allocated, does better in that row only.".into());
    for (name, log, redb) in figures {
        notes.push(format!(
            "{name}: segment log {:.1}x the records/s of redb.",
            log / redb
        ));
    }
    Ok(Table {
        title: "Store: segment log vs redb".into(),
        header: vec![
            "engine".into(),
            "workload".into(),
            "records/s".into(),
            "MB/s".into(),
            "p50".into(),
            "p99".into(),
            "bytes written / reading".into(),
        ],
        rows,
        notes,
    })
}
