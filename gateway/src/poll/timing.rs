//! How much line time a bus needs per second, so `hazgate check` can warn before a line
//! is overbooked and devices silently miss their intervals.

use std::time::Duration;

use firmware_config::{Device, Link};

use super::plan::DevicePlan;

/// Typical time a field device takes to start its reply; an assumption, stated in output.
pub const ASSUMED_TURNAROUND: Duration = Duration::from_millis(10);

/// Line time of one device's cycle, where the link has a line (RTU on a serial port).
pub fn cycle_time(link: &Link, gap: Duration, plan: &DevicePlan) -> Option<Duration> {
    let Link::Rtu(line) = link else { return None };
    let mut chars = 0u32;
    for block in &plan.blocks {
        let data = if block.kind.is_bit() {
            (block.count as u32).div_ceil(8)
        } else {
            block.count as u32 * 2
        };
        chars += 8 + 5 + data; // request frame, reply header + CRC, reply data
    }
    let per_request = line.frame_silence() * 2 + ASSUMED_TURNAROUND + gap;
    Some(line.char_time() * chars + per_request * plan.blocks.len() as u32)
}

/// Share of the line's time the devices need: above 1.0 they cannot keep their intervals.
#[derive(Debug, Clone, Copy)]
pub struct LineLoad {
    pub normal: f64,
    /// With the one device that costs most when silent answering nothing (its timeout).
    pub one_silent: f64,
}

pub fn line_load(
    link: &Link,
    gap: Duration,
    devices: &[(&Device, &DevicePlan)],
) -> Option<LineLoad> {
    let mut normal = 0.0;
    let mut worst_extra: f64 = 0.0;
    for (device, plan) in devices {
        let t = cycle_time(link, gap, plan)?;
        let share = t.as_secs_f64() / device.poll.as_secs_f64();
        normal += share;
        let silent = (device.timeout + gap).as_secs_f64() / device.poll.as_secs_f64();
        worst_extra = worst_extra.max(silent - share);
    }
    Some(LineLoad {
        normal,
        one_silent: normal + worst_extra,
    })
}
