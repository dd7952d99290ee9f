//! The subcommands of the `hazgate` binary.

pub mod check;
pub mod poll;
pub mod read;
pub mod scan;
pub mod target;

use anyhow::{anyhow, Result};
use firmware_config::SiteConfig;
use std::path::Path;

/// Loads a site or returns every problem in it, one per line, as an operator reads them.
pub fn load(path: &Path) -> Result<SiteConfig> {
    firmware_config::load_site(path).map_err(|errors| {
        let n = errors.0.len();
        anyhow!(
            "{errors}\n{n} problem{} in the configuration; nothing was started",
            if n == 1 { "" } else { "s" }
        )
    })
}
