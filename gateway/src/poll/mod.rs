//! Polling: poll plans, the Modbus client and links, and the cycles that read devices.

pub mod cycle;
pub mod link;
pub mod modbus;
pub mod plan;
pub mod schedule;
pub mod timing;

use tokio::sync::mpsc;

use firmware_config::SiteConfig;
use hazgate_wire::Reading;

/// The readings of one device cycle, with the monotonic time they were taken at (see
/// [`crate::clock`]): alarm delays run on it, never on the readings' wall times.
#[derive(Debug, Clone)]
pub struct Acquired {
    pub clock: i64,
    pub readings: Vec<Reading>,
}

use crate::decode::decode_device;
use cycle::read_device;
use link::BusLink;
use plan::DevicePlan;

/// Reads every point of every device once (or of one device), buses in parallel and the
/// devices of one bus in turn, sending each device's readings as soon as it is done.
pub async fn poll_once(
    site: &SiteConfig,
    only_device: Option<&str>,
    out: mpsc::Sender<Vec<Reading>>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for (b, bus) in site.buses.iter().enumerate() {
        let devices: Vec<_> = site
            .devices_on(b)
            .filter(|d| only_device.is_none_or(|id| d.id == id))
            .cloned()
            .collect();
        if devices.is_empty() {
            continue;
        }
        let bus = bus.clone();
        let out = out.clone();
        tasks.spawn(async move {
            let mut link = BusLink::new(bus.link.clone());
            for device in &devices {
                let plan = DevicePlan::for_device(device, &bus.link);
                let image = read_device(&mut link, device, &plan, bus.gap).await;
                if out
                    .send(decode_device(device, &plan, &image))
                    .await
                    .is_err()
                {
                    return;
                }
                if !(bus.gap + link.frame_silence()).is_zero() {
                    tokio::time::sleep(bus.gap + link.frame_silence()).await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
