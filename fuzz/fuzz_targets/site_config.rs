//! Any text as a site file: a site or located errors, never a panic.
#![no_main]

use firmware_config::error::SourceText;
use firmware_config::site::parse_site;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_site(&SourceText::new("/nonexistent/site.toml", text.as_ref()));
});
