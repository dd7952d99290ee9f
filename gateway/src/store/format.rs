//! The store's format version, in a file of its own beside the ledger. A later hazgate
//! that changes the layout writes a higher number; this one then refuses the store with a
//! clear message instead of taking its records for damage and cutting them. A store made
//! before the file existed has the layout of format 1.

use std::io::Write;
use std::path::Path;

use super::error::StoreError;
use super::segment::sync_dir;

/// The format this build reads and writes.
pub const CURRENT: u32 = 1;
pub const FILE: &str = "format";
const PREFIX: &str = "hazgate store format ";

/// Reads the format file and refuses a newer format; writes the file where it is missing.
pub fn check_or_write(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().strip_prefix(PREFIX).map(str::parse::<u32>) {
            Some(Ok(found)) if found > CURRENT => Err(StoreError::NewerFormat {
                path,
                found,
                supported: CURRENT,
            }),
            Some(Ok(_)) => Ok(()),
            // Unreadable: the records' own checks still hold; say so and mark it anew.
            _ => {
                tracing::warn!(
                    "{} is unreadable ({text:?}); taken as format {CURRENT}",
                    path.display()
                );
                write(dir)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write(dir),
        Err(e) => Err(StoreError::Io {
            action: "read",
            path,
            err: e,
        }),
    }
}

fn write(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let io = |action| StoreError::io(action, &tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io("create"))?;
    f.write_all(format!("{PREFIX}{CURRENT}\n").as_bytes())
        .map_err(io("write"))?;
    f.sync_all().map_err(io("sync"))?;
    std::fs::rename(&tmp, &path).map_err(StoreError::io("rename", &path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_kept_and_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        check_or_write(dir.path()).unwrap();
        let path = dir.path().join(FILE);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "hazgate store format 1\n"
        );
        check_or_write(dir.path()).unwrap();
        std::fs::write(&path, "hazgate store format 2\n").unwrap();
        let e = check_or_write(dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("written by a newer hazgate (format 2"),
            "{e}"
        );
        // Refused, not rewritten.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "hazgate store format 2\n"
        );
        std::fs::write(&path, "garbage").unwrap();
        check_or_write(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "hazgate store format 1\n"
        );
    }
}
