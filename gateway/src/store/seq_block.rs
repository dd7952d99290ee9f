//! Seqs of the retained topics (state, status), which the store does not keep: reserved in
//! one large block at every start, so they grow across restarts without a disk write per
//! message. The file and its folder are synced before the block is used.

use std::io::Write;
use std::path::Path;

/// Far more status messages than one run sends (one every 30 s would take 4,000 years).
const BLOCK: u64 = 1 << 32;

/// The first seq of this run for `name` (`status`, `state`); the next run starts above
/// everything this one uses.
pub fn reserve(dir: &Path, name: &str) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let file = format!("{name}.seq");
    let path = dir.join(&file);
    let start = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1);
    let tmp = dir.join(format!("{file}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{}", start.saturating_add(BLOCK))?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(start)
}

#[cfg(test)]
mod tests {
    #[test]
    fn grows_across_restarts() {
        let dir = std::env::temp_dir().join(format!("hazgate-seq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = super::reserve(&dir, "status").unwrap();
        let b = super::reserve(&dir, "status").unwrap();
        assert!(b > a);
        assert_eq!(
            super::reserve(&dir, "state").unwrap(),
            1,
            "one block per name"
        );
        std::fs::write(dir.join("status.seq"), "garbage").unwrap();
        assert_eq!(
            super::reserve(&dir, "status").unwrap(),
            1,
            "an unreadable file starts over rather than refusing to start"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
