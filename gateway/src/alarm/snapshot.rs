//! The alarm state kept on disk beside the store, so a restart mid-alarm neither clears
//! nor raises anything that did not change. Written atomically after every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use hazgate_wire::Level;

use super::point::PointState;

const FILE: &str = "alarms.json";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// By `device/point`.
    pub points: BTreeMap<String, PointState>,
    pub sources: BTreeMap<String, Option<Level>>,
    pub site: Option<Level>,
}

pub fn key(device: &str, point: &str) -> String {
    format!("{device}/{point}")
}

/// The last saved state; none (a fresh start) if there is no file or it cannot be read,
/// which the caller logs: alarms then start from what the next readings say.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, String> {
    match std::fs::read(dir.join(FILE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", dir.join(FILE).display())),
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{} is damaged ({e}); alarms start afresh",
                dir.join(FILE).display()
            )
        }),
    }
}

pub fn save(dir: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(snapshot).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}
