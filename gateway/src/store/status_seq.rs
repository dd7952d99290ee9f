//! The seq of the status topic, which the store does not keep: reserved in one large block
//! at every start, so it grows across restarts without a disk write per message.

use std::io::Write;
use std::path::Path;

const FILE: &str = "status.seq";
/// Far more status messages than one run sends (one every 30 s would take 4,000 years).
const BLOCK: u64 = 1 << 32;

/// The first status seq of this run; the next run starts above everything this one uses.
pub fn reserve(dir: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(FILE);
    let start = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1);
    let tmp = dir.join(format!("{FILE}.tmp"));
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
        let a = super::reserve(&dir).unwrap();
        let b = super::reserve(&dir).unwrap();
        assert!(b > a);
        std::fs::write(dir.join(super::FILE), "garbage").unwrap();
        assert_eq!(
            super::reserve(&dir).unwrap(),
            1,
            "an unreadable file starts over rather than refusing to start"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
