//! Records when this binary was built: a wall clock earlier than that is certainly wrong
//! (an edge box without a real-time clock, before NTP), so readings stamped by it are
//! flagged. Reproducible builds set SOURCE_DATE_EPOCH.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=HAZGATE_BUILD_MS={}", secs * 1000);
}
