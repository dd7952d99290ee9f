//! Why a Modbus request failed, precisely enough to tell an operator what to check.

use hazgate_wire::Reason;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModbusError {
    #[error("no reply within {}ms", .0.as_millis())]
    Timeout(Duration),
    #[error("Modbus exception {code:02X} ({})", exception_name(*code))]
    Exception { code: u8 },
    #[error("CRC mismatch: frame says {got:04X}, data gives {computed:04X}")]
    Crc { got: u16, computed: u16 },
    #[error("malformed reply: {0}")]
    Framing(String),
    #[error("connection refused by {0}")]
    Refused(String),
    #[error("connection lost: {0}")]
    Lost(String),
}

impl ModbusError {
    /// The quality reason a reading gets when its request failed like this.
    pub fn reason(&self) -> Reason {
        match self {
            ModbusError::Timeout(_) => Reason::Timeout,
            ModbusError::Exception { .. } => Reason::Exception,
            ModbusError::Crc { .. } => Reason::Crc,
            ModbusError::Framing(_) => Reason::Framing,
            ModbusError::Refused(_) => Reason::ConnectionRefused,
            ModbusError::Lost(_) => Reason::ConnectionLost,
        }
    }

    /// Whether the device itself is unreachable, so its further requests this cycle would
    /// only cost their timeouts on a shared line.
    pub fn device_unreachable(&self) -> bool {
        matches!(
            self,
            ModbusError::Timeout(_) | ModbusError::Refused(_) | ModbusError::Lost(_)
        )
    }
}

/// Names from the Modbus application protocol, so a technician need not look codes up.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        0x01 => "illegal function",
        0x02 => "illegal data address",
        0x03 => "illegal data value",
        0x04 => "server device failure",
        0x05 => "acknowledge",
        0x06 => "server device busy",
        0x08 => "memory parity error",
        0x0A => "gateway path unavailable",
        0x0B => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}
