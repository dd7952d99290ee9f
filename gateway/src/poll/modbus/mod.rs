//! The gateway's Modbus client. Small on purpose: every failure maps to one precise
//! quality reason, and a line is resynchronised after a late or broken reply.

mod connection;
mod error;
mod pdu;

pub use connection::{Connection, Framing, Io};
pub use error::{exception_name, ModbusError};
pub use firmware_config::modbus_crc::crc16;
pub use pdu::{Request, Response};
