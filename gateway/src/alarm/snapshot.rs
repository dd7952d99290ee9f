//! The alarm state kept on disk beside the store, so a restart mid-alarm neither clears
//! nor raises anything that did not change. Written atomically after every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use hazgate_wire::Level;

use super::point::PointState;

const FILE: &str = "alarms.json";
/// The layout this build writes; files without the field (earlier builds) have it.
pub const FORMAT: u32 = 1;

fn format_one() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// A later hazgate that changes the layout writes a higher number.
    #[serde(default = "format_one")]
    pub format: u32,
    /// By `device/point`.
    pub points: BTreeMap<String, PointState>,
    pub sources: BTreeMap<String, Option<Level>>,
    pub site: Option<Level>,
}

pub fn key(device: &str, point: &str) -> String {
    format!("{device}/{point}")
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            format: FORMAT,
            points: BTreeMap::new(),
            sources: BTreeMap::new(),
            site: None,
        }
    }
}

/// The last saved state; none (a fresh start) if there is no file or it cannot be read,
/// which the caller logs: alarms then start from what the next readings say. A file of a
/// newer format is moved aside (`alarms.json.format-N`), kept for that version, not read
/// wrongly.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, String> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        Ok(bytes) => bytes,
    };
    #[derive(Deserialize)]
    struct Format {
        #[serde(default = "format_one")]
        format: u32,
    }
    if let Ok(Format { format }) = serde_json::from_slice::<Format>(&bytes) {
        if format > FORMAT {
            let aside = dir.join(format!("{FILE}.format-{format}"));
            let moved = std::fs::rename(&path, &aside)
                .map(|_| format!("moved to {}", aside.display()))
                .unwrap_or_else(|e| format!("could not be moved aside: {e}"));
            return Err(format!(
                "{} was written by a newer hazgate (alarm state format {format}; this one reads {FORMAT}); it is {moved}, and alarms start from what the next readings say",
                path.display()
            ));
        }
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{} is damaged ({e}); alarms start afresh", path.display()))
}

pub fn save(dir: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(snapshot).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_file_loads_and_a_newer_one_is_set_aside_unread() {
        let dir = tempfile::tempdir().unwrap();
        // Written before the format field existed.
        std::fs::write(
            dir.path().join(FILE),
            r#"{"points":{},"sources":{},"site":null}"#,
        )
        .unwrap();
        let old = load(dir.path()).unwrap().unwrap();
        assert_eq!(old.format, 1);
        save(dir.path(), &Snapshot::default()).unwrap();
        assert!(std::fs::read_to_string(dir.path().join(FILE))
            .unwrap()
            .contains(r#""format":1"#));
        std::fs::write(
            dir.path().join(FILE),
            r#"{"format":2,"points":{"x":"a shape this build does not know"}}"#,
        )
        .unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.contains("written by a newer hazgate"), "{e}");
        assert!(!dir.path().join(FILE).exists());
        assert!(dir.path().join("alarms.json.format-2").exists());
        assert!(load(dir.path()).unwrap().is_none());
    }
}
