//! The subcommands of the `hazgate` binary.

pub mod check;
pub mod poll;
pub mod read;
pub mod scan;
pub mod target;

use anyhow::Result;
use firmware_config::SiteConfig;
use hazgate_common::exit::Refused;
use std::path::Path;

/// An error meaning the command refused its input and did nothing (exit code 2).
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Refused(message.into()))
}

/// Loads a site or returns every problem in it, one per line, as an operator reads them.
pub fn load(path: &Path) -> Result<SiteConfig> {
    firmware_config::load_site(path).map_err(|errors| {
        let n = errors.0.len();
        refused(format!(
            "{errors}\n{n} problem{} in the configuration; nothing was started",
            if n == 1 { "" } else { "s" }
        ))
    })
}
