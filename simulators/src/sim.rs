//! The simulated plant: every device of a site, found by bus and unit, on one clock.

use std::time::Instant;

use firmware_config::SiteConfig;

use crate::command::Command;
use crate::device::{DeviceSim, PointReading};

/// Simulated time: real time since start, times the speed-up.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    speed: f64,
}

impl Clock {
    pub fn new(speed: f64) -> Self {
        Clock {
            start: Instant::now(),
            speed,
        }
    }

    /// Simulated seconds since start.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.speed
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}

/// All simulated devices of a site.
#[derive(Debug)]
pub struct Sim {
    pub site: SiteConfig,
    pub devices: Vec<DeviceSim>,
    /// Per bus, unit id -> device index: one array lookup per request.
    units: Vec<[Option<u16>; 256]>,
    pub clock: Clock,
}

impl Sim {
    pub fn new(site: SiteConfig, speed: f64) -> Self {
        let devices: Vec<DeviceSim> = site
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| DeviceSim::new(d, 0x4841_5A53_494D ^ i as u64))
            .collect();
        let mut units: Vec<[Option<u16>; 256]> =
            (0..site.buses.len()).map(|_| [None; 256]).collect();
        for (i, d) in devices.iter().enumerate() {
            units[d.bus][d.unit as usize] = Some(i as u16);
        }
        let sim = Sim {
            site,
            devices,
            units,
            clock: Clock::new(speed),
        };
        sim.refresh();
        sim
    }

    /// The device answering `unit` on bus `bus`.
    pub fn device(&self, bus: usize, unit: u8) -> Option<&DeviceSim> {
        self.units.get(bus)?[unit as usize].map(|i| &self.devices[i as usize])
    }

    /// Devices on one bus.
    pub fn devices_on(&self, bus: usize) -> impl Iterator<Item = &DeviceSim> {
        self.devices.iter().filter(move |d| d.bus == bus)
    }

    /// Recomputes every device's registers at the current simulated time.
    pub fn refresh(&self) {
        let now = self.clock.now();
        for d in &self.devices {
            d.refresh(now);
        }
    }

    /// Carries out a command that took effect at simulated time `at`.
    pub fn apply(&self, cmd: &Command, at: f64) -> Option<PointReading> {
        let device = &self.devices[cmd.device];
        device.apply(cmd.point, &cmd.action, at, self.clock.now())
    }

    /// Carries out a command now.
    pub fn apply_now(&self, cmd: &Command) -> Option<PointReading> {
        let now = self.clock.now();
        self.devices[cmd.device].apply(cmd.point, &cmd.action, now, now)
    }
}
