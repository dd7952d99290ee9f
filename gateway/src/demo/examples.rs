//! The example sites and scenarios the demo plays. From a checkout the files under
//! `examples/` are used, so editing them changes the demo; an installed binary carries
//! copies and writes them to a temp dir, so `hazgate demo` works anywhere.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One simulated site: its config and the scenario played on it.
#[derive(Debug, Clone)]
pub struct Example {
    pub config: PathBuf,
    pub scenario: PathBuf,
}

/// (relative path under `examples/`, embedded text) of every file the demo needs.
const EMBEDDED: [(&str, &str); 4] = [
    (
        "tank-farm.toml",
        include_str!("../../../examples/tank-farm.toml"),
    ),
    (
        "tailings-dam.toml",
        include_str!("../../../examples/tailings-dam.toml"),
    ),
    (
        "scenarios/leak.toml",
        include_str!("../../../examples/scenarios/leak.toml"),
    ),
    (
        "scenarios/pond-rising.toml",
        include_str!("../../../examples/scenarios/pond-rising.toml"),
    ),
];

/// The tank farm with the gas leak, then the tailings dam with the rising pond.
pub fn sites(dir: &Path) -> Vec<Example> {
    vec![
        Example {
            config: dir.join("tank-farm.toml"),
            scenario: dir.join("scenarios/leak.toml"),
        },
        Example {
            config: dir.join("tailings-dam.toml"),
            scenario: dir.join("scenarios/pond-rising.toml"),
        },
    ]
}

/// The checkout's `examples/` if every file is there, else the embedded copies written
/// under `scratch`.
pub fn locate(scratch: &Path) -> Result<PathBuf> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    if EMBEDDED.iter().all(|(rel, _)| checkout.join(rel).is_file()) {
        return Ok(checkout.canonicalize().unwrap_or(checkout));
    }
    write_embedded(&scratch.join("examples"))
}

fn write_embedded(dir: &Path) -> Result<PathBuf> {
    for (rel, text) in EMBEDDED {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_copies_load_as_sites_with_their_scenarios() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_embedded(tmp.path()).unwrap();
        for e in sites(&dir) {
            let site = crate::commands::load(&e.config).unwrap();
            hazsim::scenario::load(&e.scenario, &site).unwrap();
        }
    }
}
