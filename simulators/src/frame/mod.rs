//! Modbus framing: the PDU shared by every transport, and the two envelopes around it
//! (RTU with its CRC, TCP with its MBAP header).

pub use firmware_config::modbus_crc as crc;
pub mod pdu;
pub mod rtu;
pub mod tcp;
