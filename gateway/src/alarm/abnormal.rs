//! Which devices have a point in a process alarm right now, for the pollers: a device
//! with `poll_in_alarm` is polled at that interval while it is abnormal (GB 51108: an
//! abnormal state is measured more often), and at its own interval again afterwards.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Abnormal {
    devices: Mutex<HashSet<Arc<str>>>,
    /// Woken when the set changes, so a poller waiting out a long interval starts the
    /// faster one at once.
    pub changed: Notify,
}

impl Abnormal {
    pub fn set(&self, devices: HashSet<Arc<str>>) {
        let mut current = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if *current != devices {
            *current = devices;
            self.changed.notify_waiters();
        }
    }

    pub fn contains(&self, device: &str) -> bool {
        self.devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(device)
    }
}
