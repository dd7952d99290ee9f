//! `hazgate scan`: which unit ids answer on a bus, and which read functions each accepts.
//! A unit is there when it replies at all, an exception included; a Modbus TCP gateway's
//! "no device at that id" (exceptions 0A and 0B) and silence mean it is not.

use std::ops::RangeInclusive;
use std::time::Duration;

use firmware_config::profile::RegisterKind;
use firmware_config::Link;

use crate::poll::link::BusLink;
use crate::poll::modbus::{exception_name, ModbusError, Request};

/// Modbus TCP gateways answer for ids they have no device behind with these.
const GATEWAY_PATH_UNAVAILABLE: u8 = 0x0A;
const GATEWAY_TARGET_FAILED: u8 = 0x0B;

/// How one read function fared at address 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Answers,
    /// The unit is there but refuses: 01 (no such function), 02 (no register at 0), …
    Exception(u8),
    NoReply,
    /// A reply came, damaged (CRC, framing): someone is there, the line is not well.
    Damaged(String),
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Answers => write!(f, "answers"),
            Probe::Exception(c) => write!(f, "exception {c:02X} ({})", exception_name(*c)),
            Probe::NoReply => write!(f, "no reply"),
            Probe::Damaged(e) => write!(f, "damaged reply: {e}"),
        }
    }
}

/// A unit that answered, with each read function's probe.
#[derive(Debug, Clone)]
pub struct Found {
    pub unit: u8,
    pub functions: Vec<(RegisterKind, Probe)>,
}

/// Why a scan could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}: nothing to scan")]
    NoLink(ModbusError),
}

const KINDS: [RegisterKind; 4] = [
    RegisterKind::Holding,
    RegisterKind::Input,
    RegisterKind::Coil,
    RegisterKind::Discrete,
];

async fn probe(
    bus: &mut BusLink,
    unit: u8,
    kind: RegisterKind,
    timeout: Duration,
) -> Result<Probe, ScanError> {
    let request = Request::Read {
        kind,
        start: 0,
        count: 1,
    };
    Ok(match bus.call(unit, &request, timeout).await {
        Ok(_) => Probe::Answers,
        Err(ModbusError::Exception { code }) => Probe::Exception(code),
        Err(ModbusError::Timeout(_)) => Probe::NoReply,
        Err(e @ (ModbusError::Crc { .. } | ModbusError::Framing(_))) => {
            Probe::Damaged(e.to_string())
        }
        // Some devices close the connection on an id they do not have; the next call
        // opens a new one.
        Err(ModbusError::Lost(_)) => Probe::NoReply,
        // Nothing listens there: no unit could answer.
        Err(e @ ModbusError::Refused(_)) => return Err(ScanError::NoLink(e)),
    })
}

fn present(p: &Probe) -> bool {
    match p {
        Probe::Answers | Probe::Damaged(_) => true,
        Probe::Exception(c) => !matches!(*c, GATEWAY_PATH_UNAVAILABLE | GATEWAY_TARGET_FAILED),
        Probe::NoReply => false,
    }
}

/// Asks every unit id in `units` for holding register 0; those that answer are probed for
/// the other read functions too. `progress(done, total, found)` is called after each id.
pub async fn scan(
    link: Link,
    units: RangeInclusive<u8>,
    timeout: Duration,
    mut progress: impl FnMut(usize, usize, usize),
) -> Result<Vec<Found>, ScanError> {
    let mut bus = BusLink::new(link);
    let total = units.clone().count();
    let mut found = Vec::new();
    for (done, unit) in units.enumerate() {
        let first = probe(&mut bus, unit, KINDS[0], timeout).await?;
        if present(&first) {
            let mut functions = vec![(KINDS[0], first)];
            for kind in &KINDS[1..] {
                functions.push((*kind, probe(&mut bus, unit, *kind, timeout).await?));
            }
            found.push(Found { unit, functions });
        }
        progress(done + 1, total, found.len());
    }
    Ok(found)
}

/// The result as the engineer reads it.
pub fn render(found: &[Found]) -> String {
    if found.is_empty() {
        return "no unit answered\n".into();
    }
    let mut out = String::new();
    for f in found {
        out.push_str(&format!("unit {}:", f.unit));
        for (kind, probe) in &f.functions {
            out.push_str(&format!(
                " {} (FC{:02}) {probe};",
                kind.name(),
                kind.read_function()
            ));
        }
        out.pop();
        out.push('\n');
    }
    out
}

/// A unit range as the command line gives it: `5`, `1-247`.
pub fn parse_units(s: &str) -> Result<RangeInclusive<u8>, String> {
    let unit = |t: &str| {
        t.trim()
            .parse::<u8>()
            .ok()
            .filter(|u| (1..=247).contains(u))
            .ok_or_else(|| format!("\"{t}\" is not a unit id (1 to 247)"))
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (unit(a)?, unit(b)?),
        None => (unit(s)?, unit(s)?),
    };
    if a > b {
        return Err(format!("\"{s}\" runs backwards"));
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_ranges() {
        assert_eq!(parse_units("1-247"), Ok(1..=247));
        assert_eq!(parse_units("7"), Ok(7..=7));
        for bad in ["0", "248", "5-2", "a-b", ""] {
            assert!(parse_units(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_gateway_saying_no_device_is_no_unit() {
        assert!(present(&Probe::Exception(0x02)));
        assert!(!present(&Probe::Exception(0x0B)));
        assert!(!present(&Probe::NoReply));
        assert!(present(&Probe::Damaged("CRC".into())));
    }
}
