//! Nothing refused vanishes: every refused message (with its topic and reason), every
//! refused reading, and every record kept out of the store because its time cannot be
//! trusted is appended here as one JSON line, written and synced before its message is
//! acknowledged. The operator reads it in the files (`[ingest] quarantine_dir`) or at the
//! view's `/api/quarantine`.
//!
//! Files are `q-{ms}-{n}.jsonl`, named so that their order is their age. The total is held
//! under `quarantine_max_size`: past it, the oldest file is removed first, and its records
//! are counted (`hazingest_quarantine_dropped_records_total`).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde_json::{json, Map, Value};
use tracing::warn;

use hazgate_wire::valid_id;

use crate::intake::{Held, RejectReason, Rejection, Why};

/// The number of distinct reasons: every refusal and `clock`.
const REASONS: usize = RejectReason::ALL.len() + 1;
/// At most this many records are returned by one read.
pub const MAX_READ: usize = 1000;
/// Texts (payloads, details) longer than this are cut in what a read returns.
const READ_TEXT: usize = 4096;

/// One line of the quarantine.
#[derive(Debug, Clone)]
pub struct Entry {
    pub why: Why,
    line: Map<String, Value>,
}

impl Entry {
    /// A whole refused message: its topic, reason and payload (as text when it is UTF-8,
    /// else as hex; cut if it would not fit one file, which is said in `payload_cut`).
    pub fn message(topic: &str, rejection: &Rejection, payload: &[u8], received: i64) -> Entry {
        let mut line = head(
            received,
            Why::Refused(rejection.reason),
            &rejection.detail,
            topic,
        );
        line.insert("kind".into(), "message".into());
        line.insert("bytes".into(), payload.len().into());
        match std::str::from_utf8(payload) {
            Ok(text) => line.insert("payload".into(), text.into()),
            Err(_) => line.insert("payload_hex".into(), hex(payload).into()),
        };
        Entry {
            why: Why::Refused(rejection.reason),
            line,
        }
    }

    /// One record of a taken message (a reading, an alarm event, a gap) held back.
    pub fn record(topic: &str, seq: u64, kind: &str, held: Held, received: i64) -> Entry {
        let mut line = head(received, held.why, &held.detail, topic);
        line.insert("seq".into(), seq.into());
        line.insert("kind".into(), kind.into());
        line.insert("record".into(), held.record);
        Entry {
            why: held.why,
            line,
        }
    }

    /// Cuts a payload that would not fit a file, so no single line breaks the bound.
    fn fit(&mut self, max_bytes: usize) {
        for key in ["payload", "payload_hex"] {
            if let Some(Value::String(s)) = self.line.get_mut(key) {
                if s.len() > max_bytes {
                    let mut cut = max_bytes;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                    self.line.insert("payload_cut".into(), true.into());
                }
            }
        }
    }
}

fn head(received: i64, why: Why, detail: &str, topic: &str) -> Map<String, Value> {
    let mut line = Map::new();
    line.insert("received".into(), received.into());
    line.insert("reason".into(), why.name().into());
    line.insert("detail".into(), detail.into());
    line.insert("topic".into(), topic.into());
    if let Some(origin) = parse_topic_any(topic) {
        line.insert("site".into(), origin.0.into());
        line.insert("gateway".into(), origin.1.into());
    }
    line
}

/// Site and gateway of a topic whatever its prefix: `.../{site}/{gateway}/{kind}`.
fn parse_topic_any(topic: &str) -> Option<(String, String)> {
    let mut levels = topic.rsplitn(4, '/');
    let (_kind, gateway, site) = (levels.next()?, levels.next()?, levels.next()?);
    levels.next()?;
    (valid_id(site) && valid_id(gateway)).then(|| (site.to_string(), gateway.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug)]
struct Files {
    /// Oldest first, with their sizes; the last one is written to.
    files: VecDeque<(PathBuf, u64)>,
    total: u64,
    current: Option<File>,
    next: u64,
}

#[derive(Debug)]
pub struct Quarantine {
    dir: PathBuf,
    max_size: u64,
    file_max: u64,
    files: Mutex<Files>,
    counts: [AtomicU64; REASONS],
    dropped_files: AtomicU64,
    dropped_records: AtomicU64,
    failures: AtomicU64,
}

impl Quarantine {
    /// Opens (creating) the folder; what earlier runs left there counts towards the bound.
    pub fn open(dir: &Path, max_size: u64) -> io::Result<Quarantine> {
        std::fs::create_dir_all(dir)?;
        let mut files: Vec<(PathBuf, u64)> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter(|e| is_ours(&e.path()))
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
            .collect();
        files.sort();
        let total = files.iter().map(|f| f.1).sum();
        Ok(Quarantine {
            dir: dir.to_path_buf(),
            max_size,
            // Several files, so removing the oldest frees only a part.
            file_max: (max_size / 8).clamp(64 << 10, 32 << 20),
            files: Mutex::new(Files {
                files: files.into(),
                total,
                current: None,
                next: 0,
            }),
            counts: Default::default(),
            dropped_files: AtomicU64::new(0),
            dropped_records: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends the entries and syncs them to disk: only then may their message be
    /// acknowledged. Blocking file I/O: call it off the async threads.
    pub fn put(&self, entries: Vec<Entry>) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        let mut reasons = Vec::with_capacity(entries.len());
        for mut e in entries {
            e.fit((self.file_max / 2) as usize);
            serde_json::to_writer(&mut buf, &e.line).map_err(io::Error::other)?;
            buf.push(b'\n');
            reasons.push(e.why);
        }
        let result = self.append(&buf);
        match &result {
            Ok(()) => {
                for why in reasons {
                    self.counts[why.index()].fetch_add(1, Relaxed);
                }
            }
            Err(e) => {
                self.failures.fetch_add(1, Relaxed);
                warn!(
                    "cannot write to the quarantine in {}: {e}; the message stays unacknowledged",
                    self.dir.display()
                );
            }
        }
        result
    }

    fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut f = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let len = buf.len() as u64;
        let current_size = f.files.back().map_or(0, |c| c.1);
        if f.current.is_none() || current_size + len > self.file_max {
            self.rotate(&mut f)?;
        }
        // Oldest first, never the one being written.
        while f.total + len > self.max_size && f.files.len() > 1 {
            let (path, size) = f.files.pop_front().expect("more than one file");
            let records = count_lines(&path).unwrap_or(0);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    f.files.push_front((path, size));
                    return Err(e);
                }
            }
            f.total -= size;
            self.dropped_files.fetch_add(1, Relaxed);
            self.dropped_records.fetch_add(records, Relaxed);
            warn!(
                "quarantine full ({} bytes): removed its oldest file {} with {records} records",
                self.max_size,
                path.display()
            );
        }
        let file = f.current.as_mut().expect("rotated");
        file.write_all(buf)?;
        file.sync_data()?;
        f.total += len;
        if let Some(c) = f.files.back_mut() {
            c.1 += len;
        }
        Ok(())
    }

    fn rotate(&self, f: &mut Files) -> io::Result<()> {
        let name = format!("q-{:020}-{:06}.jsonl", crate::now_ms().max(0), f.next);
        f.next += 1;
        let path = self.dir.join(name);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // The new name must survive a power cut, or its records vanish with it.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        f.current = Some(file);
        f.files.push_back((path, 0));
        Ok(())
    }

    /// The newest records first, at most `limit` (and [`MAX_READ`]); long texts cut.
    pub fn recent(&self, limit: usize) -> io::Result<Vec<Value>> {
        let want = limit.min(MAX_READ);
        let paths: Vec<PathBuf> = {
            let f = self.files.lock().unwrap_or_else(|e| e.into_inner());
            f.files.iter().rev().map(|(p, _)| p.clone()).collect()
        };
        let mut out = Vec::new();
        for path in paths {
            if out.len() >= want {
                break;
            }
            let lines = match last_lines(&path, want - out.len()) {
                Ok(l) => l,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in lines {
                // A line being written at this moment may be incomplete: skipped.
                if let Ok(Value::Object(mut record)) = serde_json::from_slice::<Value>(&line) {
                    cut_texts(&mut record);
                    out.push(Value::Object(record));
                }
            }
        }
        Ok(out)
    }

    pub fn count(&self, why: Why) -> u64 {
        self.counts[why.index()].load(Relaxed)
    }

    pub fn dropped_files(&self) -> u64 {
        self.dropped_files.load(Relaxed)
    }

    pub fn dropped_records(&self) -> u64 {
        self.dropped_records.load(Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

fn is_ours(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("q-") && n.ends_with(".jsonl"))
}

fn cut_texts(record: &mut Map<String, Value>) {
    for key in ["payload", "payload_hex", "detail"] {
        if let Some(Value::String(s)) = record.get_mut(key) {
            if s.len() > READ_TEXT {
                let mut cut = READ_TEXT;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                record.insert("cut".into(), json!(true));
            }
        }
    }
}

fn count_lines(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            return Ok(n);
        }
        n += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// The last `want` lines of a file, newest first, read backwards in chunks.
fn last_lines(path: &Path, want: usize) -> io::Result<Vec<Vec<u8>>> {
    const CHUNK: u64 = 64 << 10;
    let mut f = File::open(path)?;
    let mut pos = f.metadata()?.len();
    let mut carry: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut first = true;
    while out.len() < want {
        if pos == 0 {
            if !carry.is_empty() {
                out.push(std::mem::take(&mut carry));
            }
            break;
        }
        let n = CHUNK.min(pos);
        pos -= n;
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0u8; n as usize];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&carry);
        carry = chunk;
        if first {
            if carry.last() == Some(&b'\n') {
                carry.pop();
            }
            first = false;
        }
        while out.len() < want {
            let Some(i) = carry.iter().rposition(|&b| b == b'\n') else {
                break;
            };
            out.push(carry[i + 1..].to_vec());
            carry.truncate(i);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection() -> Rejection {
        Rejection {
            reason: RejectReason::NotJson,
            detail: "expected value".into(),
        }
    }

    fn held(i: usize) -> Held {
        Held {
            why: Why::Clock,
            detail: format!("reading {i}"),
            record: json!({"device": "D", "point": "P", "ts": i}),
        }
    }

    #[test]
    fn records_come_back_newest_first() {
        let dir = tempdir();
        let q = Quarantine::open(&dir, 1 << 20).unwrap();
        q.put(vec![Entry::message(
            "hazard/S-1/gw-1/telemetry",
            &rejection(),
            b"\xff{",
            7,
        )])
        .unwrap();
        q.put(
            (0..3)
                .map(|i| Entry::record("hazard/S-1/gw-1/telemetry", 9, "reading", held(i), 8))
                .collect(),
        )
        .unwrap();
        let got = q.recent(10).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0]["record"]["ts"], 2);
        assert_eq!(got[0]["reason"], "clock");
        assert_eq!(got[0]["site"], "S-1");
        assert_eq!(got[0]["seq"], 9);
        assert_eq!(got[3]["reason"], "not_json");
        assert_eq!(got[3]["payload_hex"], "ff7b");
        assert_eq!(q.recent(2).unwrap().len(), 2);
        assert_eq!(q.count(Why::Clock), 3);
        assert_eq!(q.count(Why::Refused(RejectReason::NotJson)), 1);
        // A new instance finds them.
        drop(q);
        let q = Quarantine::open(&dir, 1 << 20).unwrap();
        assert_eq!(q.recent(100).unwrap().len(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stays_bounded_removing_the_oldest_file_first() {
        let dir = tempdir();
        let max = 1 << 20;
        let q = Quarantine::open(&dir, max).unwrap();
        let payload = vec![b'x'; 10_000];
        for i in 0..400 {
            let mut r = rejection();
            r.detail = format!("message {i}");
            q.put(vec![Entry::message("t", &r, &payload, i)]).unwrap();
            assert!(q.bytes() <= max);
        }
        let on_disk: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= max, "{on_disk}");
        assert!(q.dropped_files() > 0);
        let kept = q.recent(MAX_READ).unwrap().len() as u64;
        assert_eq!(kept + q.dropped_records(), 400);
        // The newest is kept, and read texts are cut.
        let newest = &q.recent(1).unwrap()[0];
        assert_eq!(newest["detail"], "message 399");
        assert_eq!(newest["payload"].as_str().unwrap().len(), READ_TEXT);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_huge_payload_is_cut_to_fit() {
        let dir = tempdir();
        let q = Quarantine::open(&dir, 1 << 20).unwrap();
        q.put(vec![Entry::message(
            "t",
            &rejection(),
            &vec![b'y'; 3 << 20],
            1,
        )])
        .unwrap();
        assert!(q.bytes() <= 1 << 20);
        let got = q.recent(1).unwrap();
        assert_eq!(got[0]["bytes"], 3 << 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hazingest-q-{}-{}",
            std::process::id(),
            N.fetch_add(1, Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
