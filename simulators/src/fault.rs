//! Faults a scenario or operator can inject, and how long they last.

use std::time::Duration;

/// A fault of a whole device: how it answers, or does not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeviceFault {
    /// No reply at all: a dead device, a cut wire.
    Silent,
    /// Reply after this much real time, so it is judged against the poller's timeout.
    Slow(Duration),
    /// Every request gets this Modbus exception code.
    Exception(u8),
    /// Replies are damaged: bad CRC on RTU, wrong transaction id on TCP.
    Corrupt,
}

/// A fault of one point, already resolved to what it does to the registers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PointFault {
    /// Drive a 4–20 mA point's loop to this current (2.0 mA fault, 20.8 mA uncertain).
    Current(f64),
    /// Serve this engineering value (beyond the measuring range).
    Value(f64),
    /// Put `code` into the status register, the point at index `register`.
    Status { register: usize, code: u16 },
}

/// A fault and when it ends, in simulated seconds (`None`: until cleared).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Active<F> {
    pub fault: F,
    pub until: Option<f64>,
}

impl<F: Copy> Active<F> {
    pub fn new(fault: F, at: f64, duration: Option<f64>) -> Self {
        Active {
            fault,
            until: duration.map(|d| at + d),
        }
    }

    /// The fault if it still holds at `now`.
    pub fn at(&self, now: f64) -> Option<F> {
        match self.until {
            Some(until) if now >= until => None,
            _ => Some(self.fault),
        }
    }
}

/// Names of the fault kinds, for messages.
pub const KINDS: &str =
    "silent, slow, exception, corrupt (a device); sensor_fault, status, out_of_range (a point)";

/// NAMUR NE43: a loop at or below 3.6 mA signals a sensor fault.
pub const NE43_FAULT_MA: f64 = 2.0;
/// NAMUR NE43: 20.5–21 mA is out of range, the value uncertain.
pub const NE43_UNCERTAIN_MA: f64 = 20.8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry() {
        let f = Active::new(DeviceFault::Silent, 10.0, Some(20.0));
        assert_eq!(f.at(29.9), Some(DeviceFault::Silent));
        assert_eq!(f.at(30.0), None);
        assert_eq!(
            Active::new(DeviceFault::Corrupt, 0.0, None).at(1e9),
            Some(DeviceFault::Corrupt)
        );
    }
}
