//! Continuous polling of one bus: every device at its own interval without drift, one
//! request at a time on the line, dead devices backed off and retried forever.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use firmware_config::{Bus, Device};

use super::cycle::{read_device, BlockResult, DeviceImage};
use super::link::BusLink;
use super::modbus::ModbusError;
use super::plan::DevicePlan;
use crate::clock::wall_ms as now_ms;
use crate::decode::DeviceDecoder;
use crate::metrics::Metrics;

/// The longest a backed-off device waits between attempts (or its poll interval, if longer).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct Scheduled {
    decoder: DeviceDecoder,
    poll: Duration,
    next_due: Instant,
    /// When it was last polled: the faster interval while abnormal counts from here.
    last_polled: Option<Instant>,
    /// Consecutive cycles in which the device could not be reached.
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<ModbusError>,
    device: Device,
}

/// When to try an unreachable device again: the interval doubles with each failed cycle,
/// up to a minute, and never stops.
pub fn backoff(poll: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    (poll * factor).min(MAX_BACKOFF.max(poll))
}

impl Scheduled {
    /// When it is due: its own grid, or sooner at `poll_in_alarm` while abnormal.
    fn due(&self, abnormal: &crate::alarm::abnormal::Abnormal) -> Instant {
        match (self.device.poll_in_alarm, self.last_polled) {
            (Some(fast), Some(last)) if abnormal.contains(&self.device.id) => {
                self.next_due.min(last + fast)
            }
            _ => self.next_due,
        }
    }
}

/// Polls the devices of one bus until `stop` turns true, sending each cycle's readings.
/// Writes (linkage outputs) arrive on `writes` and go out between polls, first in line.
pub async fn run_bus(
    bus: Bus,
    devices: Vec<Device>,
    out: mpsc::Sender<super::Acquired>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    mut writes: mpsc::Receiver<crate::alarm::linkage::WriteRequest>,
    abnormal: Arc<crate::alarm::abnormal::Abnormal>,
) {
    let mut link = BusLink::new(bus.link.clone());
    let start = Instant::now();
    let mut devices: Vec<Scheduled> = devices
        .into_iter()
        .map(|d| {
            let plan = DevicePlan::for_device(&d, &bus.link);
            Scheduled {
                decoder: DeviceDecoder::new(&d, &plan),
                poll: d.poll,
                next_due: start,
                last_polled: None,
                failures: 0,
                retry_at: None,
                last_error: None,
                device: d,
            }
        })
        .collect();
    if devices.is_empty() {
        return;
    }
    let pause = bus.gap + link.frame_silence();
    loop {
        let i = (0..devices.len())
            .min_by_key(|&i| devices[i].due(&abnormal))
            .expect("not empty");
        let due = devices[i].due(&abnormal);
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            // A device turned abnormal (or normal): its interval changed.
            _ = abnormal.changed.notified() => continue,
            Some(w) = writes.recv() => {
                let result = link.call(w.unit, &w.request, bus.timeout).await.map(|_| ());
                let _ = w.reply.send(result);
                continue;
            }
            _ = sleep_until(due) => {}
        }
        if *stop.borrow() {
            return;
        }
        let d = &mut devices[i];
        let now = Instant::now();
        let readings = if d.retry_at.is_some_and(|t| now < t) {
            // Backed off: not polled, but never silent: every point says why it has no value.
            metrics.backoffs.fetch_add(1, Ordering::Relaxed);
            let error = d
                .last_error
                .clone()
                .unwrap_or(ModbusError::Timeout(d.device.timeout));
            let image = DeviceImage {
                results: d
                    .decoder
                    .plan()
                    .blocks
                    .iter()
                    .map(|_| BlockResult {
                        ts: now_ms(),
                        data: Err(error.clone()),
                    })
                    .collect(),
            };
            d.decoder.decode(&image)
        } else {
            let started = Instant::now();
            let image = read_device(&mut link, &d.device, d.decoder.plan(), bus.gap).await;
            metrics.polls.fetch_add(1, Ordering::Relaxed);
            metrics.request_latency(
                started.elapsed().as_secs_f64() / image.results.len().max(1) as f64,
            );
            let unreachable = image.results.iter().find_map(|r| {
                r.data
                    .as_ref()
                    .err()
                    .filter(|e| e.device_unreachable())
                    .cloned()
            });
            for r in &image.results {
                if let Err(e) = &r.data {
                    metrics.poll_error(e.reason());
                }
            }
            match unreachable {
                Some(e) => {
                    d.failures += 1;
                    let wait = backoff(d.poll, d.failures);
                    if d.failures == 1 || d.failures.is_power_of_two() {
                        warn!(bus = %bus.id, device = %d.device.id, failures = d.failures, "device unreachable: {e}; next attempt in {}s", wait.as_secs_f64());
                    }
                    d.retry_at = Some(now + wait);
                    d.last_error = Some(e);
                }
                None => {
                    if d.failures > 0 {
                        info!(bus = %bus.id, device = %d.device.id, "device answers again after {} failed cycles", d.failures);
                    }
                    d.failures = 0;
                    d.retry_at = None;
                    d.last_error = None;
                }
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            d.decoder.decode(&image)
        };
        metrics
            .readings
            .fetch_add(readings.len() as u64, Ordering::Relaxed);
        // The store takes everything; this waits only if it is far behind (a failing disk).
        metrics
            .last_poll_mono_ms
            .store(crate::clock::mono_ms(), Ordering::Relaxed);
        let acquired = super::Acquired {
            clock: crate::clock::mono_ms(),
            readings,
        };
        if out.send(acquired).await.is_err() {
            return;
        }
        // Next slot on the device's own grid: no drift, and an overrun skips, never queues.
        // A faster poll while abnormal comes between slots and leaves the grid alone.
        let d = &mut devices[i];
        let early = Instant::now() < d.next_due;
        d.last_polled = Some(Instant::now());
        if early {
            continue;
        }
        d.next_due += d.poll;
        let now = Instant::now();
        if d.next_due <= now {
            let behind = (now - d.next_due).as_nanos() / d.poll.as_nanos().max(1) + 1;
            metrics.overruns.fetch_add(behind as u64, Ordering::Relaxed);
            d.next_due += d.poll * behind as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute_and_never_ends() {
        let s = Duration::from_secs(1);
        assert_eq!(backoff(s, 1), s);
        assert_eq!(backoff(s, 2), 2 * s);
        assert_eq!(backoff(s, 4), 8 * s);
        assert_eq!(backoff(s, 10), 60 * s);
        assert_eq!(backoff(s, 1000), 60 * s);
        // a device polled every 10 min is retried at its own interval at the least
        assert_eq!(
            backoff(Duration::from_secs(600), 5),
            Duration::from_secs(600)
        );
    }
}
