//! The ledger: the small state that is not in the segments (acknowledged watermark, next
//! ids, highest seq per topic, pending data gaps, counters). Replaced atomically (write a
//! temporary file, fsync, rename, fsync the folder) and checksummed; a missing or damaged
//! ledger only means starting from the oldest record present: resending, never losing.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::segment::sync_dir;
use super::Gap;

const MAGIC: &[u8; 4] = b"HGL1";
pub const FILE: &str = "ledger";
const TEMP: &str = "ledger.tmp";

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneLedger {
    pub next_id: u64,
    pub watermark: u64,
    pub evicted_records_total: u64,
    pub evicted_bytes_total: u64,
    pub corrupt_records_total: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Alarm, telemetry.
    pub lanes: [LaneLedger; 2],
    pub max_seq_by_topic: BTreeMap<u8, u64>,
    pub gaps: Vec<Gap>,
    /// Records evicted while awaiting the broker's acknowledgement (unconfirmed gaps
    /// unless it comes).
    #[serde(default)]
    pub awaiting: Vec<Gap>,
}

/// How the ledger was found on start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerState {
    Loaded,
    Missing,
    /// Present but unreadable or failing its checksum; ignored.
    Corrupt,
}

/// Reads the ledger; any problem with its bytes is `Corrupt`, never an error.
pub fn load(dir: &Path) -> (Ledger, LedgerState) {
    let bytes = match fs::read(dir.join(FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (Ledger::default(), LedgerState::Missing)
        }
        Err(_) => return (Ledger::default(), LedgerState::Corrupt),
    };
    match decode(&bytes) {
        Some(l) => (l, LedgerState::Loaded),
        None => (Ledger::default(), LedgerState::Corrupt),
    }
}

fn decode(bytes: &[u8]) -> Option<Ledger> {
    let body = bytes.get(12..)?;
    if bytes.get(..4)? != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
    if body.len() != len || crc32fast::hash(body) != crc {
        return None;
    }
    serde_json::from_slice(body).ok()
}

fn encode(l: &Ledger) -> Vec<u8> {
    // Serializing plain integers, maps and vectors cannot fail.
    let body = serde_json::to_vec(l).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Replaces the ledger atomically.
pub fn save(dir: &Path, l: &Ledger) -> Result<(), StoreError> {
    let tmp = dir.join(TEMP);
    let mut f = File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
    f.write_all(&encode(l))
        .and_then(|()| f.sync_all())
        .map_err(StoreError::io("write to", &tmp))?;
    drop(f);
    let dest = dir.join(FILE);
    fs::rename(&tmp, &dest).map_err(StoreError::io("replace", &dest))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).1, LedgerState::Missing);
        let mut l = Ledger::default();
        l.lanes[1].watermark = 7;
        l.max_seq_by_topic.insert(3, 99);
        save(dir.path(), &l).unwrap();
        assert_eq!(load(dir.path()), (l.clone(), LedgerState::Loaded));
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(load(dir.path()).1, LedgerState::Corrupt);
        fs::write(&path, b"").unwrap();
        assert_eq!(load(dir.path()).1, LedgerState::Corrupt);
    }
}
