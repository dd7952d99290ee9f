//! Any text as a central config: a config or located errors, never a panic.
#![no_main]

use firmware_config::central::parse_central;
use firmware_config::error::SourceText;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_central(&SourceText::new("/nonexistent/central.toml", text.as_ref()));
});
