//! The example sites and scenarios the demo plays. From a checkout the files under
//! `examples/` are used, so editing them changes the demo; an installed binary carries
//! copies. Either way the demo runs a private copy: its buses on free ports and its
//! pseudo-terminals in its own folder, so it runs beside another demo, the tests or a
//! real `hazsim` on the examples' own addresses.

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

/// The examples (the checkout's if every file is there, else the embedded copies) written
/// under `scratch` with free ports and pseudo-terminals under `scratch`.
pub fn prepare(scratch: &Path) -> Result<PathBuf> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let from_checkout = EMBEDDED.iter().all(|(rel, _)| checkout.join(rel).is_file());
    let mut files = Vec::new();
    for (rel, embedded) in EMBEDDED {
        let text = if from_checkout {
            let path = checkout.join(rel);
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
        } else {
            embedded.to_string()
        };
        files.push((rel, private_links(&text, &scratch.join("tty"))?));
    }
    write(&scratch.join("examples"), files)
}

/// The site text with every Modbus TCP and RTU-over-TCP port on 127.0.0.1 moved to a free
/// one, and every serial port to a pseudo-terminal under `tty`.
fn private_links(text: &str, tty: &Path) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        let line = if t.starts_with("tcp = {") || t.starts_with("rtu_over_tcp = {") {
            match line.split_once("port = ") {
                Some((head, rest)) => {
                    let digits = rest.chars().take_while(char::is_ascii_digit).count();
                    format!("{head}port = {}{}", free_port()?, &rest[digits..])
                }
                None => line.to_string(),
            }
        } else if let Some(rest) = t.strip_prefix("rtu = { port = \"") {
            match rest.split_once('"') {
                Some((path, tail)) => {
                    let name = Path::new(path)
                        .file_name()
                        .map_or_else(|| "tty".into(), |n| n.to_string_lossy().into_owned());
                    let indent = &line[..line.len() - t.len()];
                    format!(
                        "{indent}rtu = {{ port = \"{}\"{tail}",
                        tty.join(name).display()
                    )
                }
                None => line.to_string(),
            }
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// A port on 127.0.0.1 that nobody listens on now.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
fn write_embedded(dir: &Path) -> Result<PathBuf> {
    write(
        dir,
        EMBEDDED.iter().map(|(r, t)| (*r, t.to_string())).collect(),
    )
}

fn write(dir: &Path, files: Vec<(&str, String)>) -> Result<PathBuf> {
    for (rel, text) in files {
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

    #[test]
    fn private_copies_use_free_ports_and_their_own_terminals() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = prepare(tmp.path()).unwrap();
        for e in sites(&dir) {
            let site = crate::commands::load(&e.config).unwrap();
            for bus in &site.buses {
                match &bus.link {
                    firmware_config::Link::Tcp { port, .. }
                    | firmware_config::Link::RtuOverTcp { port, .. } => {
                        assert!(!(15020..=15040).contains(port), "{port}")
                    }
                    firmware_config::Link::Rtu(line) => {
                        assert!(
                            line.port.starts_with(tmp.path().join("tty")),
                            "{:?}",
                            line.port
                        )
                    }
                }
            }
            hazsim::scenario::load(&e.scenario, &site).unwrap();
        }
    }
}
