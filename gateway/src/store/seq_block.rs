//! Seqs reserved in durable blocks, one file per topic (`telemetry.seq`, `state.seq`, …)
//! holding the ceiling below which this or an earlier run may have used seqs; the running
//! gateway moves it up (synced) well before its counters reach it.
//!
//! Messages are sent before the store syncs them. After a crash of the process the page
//! cache still holds everything written, so the store knows the last seq used and the next
//! run simply continues (no hole). After a reboot (perhaps a power cut) it cannot know
//! what went out unsynced: the run starts at the ceiling, a jump rather than a reuse. The
//! machine's boot id, kept beside the files, tells the two apart. Retained topics, which
//! the store does not keep, always start at the ceiling. No seq is ever reused for other
//! content.

use std::io::Write;
use std::path::Path;

/// Seqs reserved at a time: at one message per millisecond, over four hours of them, and
/// the ceiling is moved every sync once half is used.
pub const BLOCK: u64 = 1 << 24;

/// The first seq of this run for `name`: `floor` (what the store recovered) when `resume`
/// (the same boot, a topic the store keeps), else at or above `floor` and above
/// everything an earlier run reserved. A ceiling at least `first + BLOCK` is durable
/// before this returns. A file that cannot be read is an error: the caller then counts
/// from the clock, above anything a counter reaches.
pub fn reserve(dir: &Path, name: &str, floor: u64, resume: bool) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let reserved = read(dir, name)?.unwrap_or(1);
    let start = if resume { floor } else { reserved.max(floor) }.max(1);
    write(dir, name, reserved.max(start.saturating_add(BLOCK)))?;
    Ok(start)
}

/// Whether the machine has not rebooted since the last start in `dir` (its boot id is the
/// one kept there); records this boot's id for the next start. `false` when unknown.
pub fn same_boot(dir: &Path) -> bool {
    let Ok(now) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
        return false;
    };
    let now = now.trim();
    let file = dir.join("boot_id");
    let same = std::fs::read_to_string(&file).is_ok_and(|b| b.trim() == now);
    if !same {
        let _ = write_synced(dir, "boot_id", now);
    }
    same
}

/// Moves `name`'s ceiling up to `ceiling`, durably.
pub fn extend(dir: &Path, name: &str, ceiling: u64) -> std::io::Result<()> {
    write(dir, name, ceiling)
}

fn read(dir: &Path, name: &str) -> std::io::Result<Option<u64>> {
    let path = dir.join(format!("{name}.seq"));
    match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse::<u64>().map(Some).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} does not hold a number", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write(dir: &Path, name: &str, ceiling: u64) -> std::io::Result<()> {
    write_synced(dir, &format!("{name}.seq"), &ceiling.to_string())
}

fn write_synced(dir: &Path, file: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!("{file}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{text}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(file))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_across_restarts_and_above_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let a = reserve(dir.path(), "status", 1, false).unwrap();
        let b = reserve(dir.path(), "status", 1, false).unwrap();
        assert_eq!(b, a + BLOCK, "a restart starts above the whole last block");
        assert_eq!(
            reserve(dir.path(), "state", 1, false).unwrap(),
            1,
            "one block per name"
        );
        assert_eq!(
            reserve(dir.path(), "alarm", 500, false).unwrap(),
            500,
            "never below what the store recovered"
        );
        extend(dir.path(), "status", 10 * BLOCK).unwrap();
        assert_eq!(reserve(dir.path(), "status", 1, false).unwrap(), 10 * BLOCK);
        // The same boot: the store knows the last seq used; the ceiling never goes down.
        assert_eq!(reserve(dir.path(), "status", 42, true).unwrap(), 42);
        assert_eq!(reserve(dir.path(), "status", 1, false).unwrap(), 11 * BLOCK);
        std::fs::write(dir.path().join("status.seq"), "garbage").unwrap();
        assert!(
            reserve(dir.path(), "status", 7, false).is_err(),
            "an unreadable file is not taken for a fresh start"
        );
        let fresh = tempfile::tempdir().unwrap();
        assert!(!same_boot(fresh.path()), "unknown the first time");
        assert!(
            same_boot(fresh.path()),
            "known from then on, until a reboot"
        );
    }
}
