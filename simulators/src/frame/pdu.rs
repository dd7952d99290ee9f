//! The Modbus PDU (function code + data): request parsing and reply building, shared by
//! TCP and RTU. Parsing checks what the protocol defines (function, quantity, byte count)
//! in the order the Modbus application protocol gives; whether an address exists is the
//! device's business (see `bank`).

use firmware_config::RegisterKind;

/// Exception codes a simulated device sends.
pub mod code {
    pub const ILLEGAL_FUNCTION: u8 = 0x01;
    pub const ILLEGAL_DATA_ADDRESS: u8 = 0x02;
    pub const ILLEGAL_DATA_VALUE: u8 = 0x03;
    pub const SERVER_DEVICE_FAILURE: u8 = 0x04;
    pub const GATEWAY_TARGET_FAILED: u8 = 0x0B;
}

/// Most registers one read may ask for.
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most bits one read may ask for.
pub const MAX_READ_BITS: u16 = 2000;
/// Most registers one write (0x10) may carry.
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Most coils one write (0x0F) may carry.
pub const MAX_WRITE_BITS: u16 = 1968;

/// A parsed request; write payloads borrow the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// 01 (coils) or 02 (discrete inputs).
    ReadBits {
        table: RegisterKind,
        address: u16,
        quantity: u16,
    },
    /// 03 (holding) or 04 (input registers).
    ReadRegisters {
        table: RegisterKind,
        address: u16,
        quantity: u16,
    },
    /// 05.
    WriteCoil { address: u16, on: bool },
    /// 06.
    WriteRegister { address: u16, value: u16 },
    /// 0F: `packed` holds the bits, least significant first.
    WriteCoils {
        address: u16,
        quantity: u16,
        packed: &'a [u8],
    },
    /// 10: `data` holds big-endian words.
    WriteRegisters {
        address: u16,
        quantity: u16,
        data: &'a [u8],
    },
}

impl Request<'_> {
    /// Whether the request changes the device (only those may be broadcast).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::WriteCoil { .. }
                | Request::WriteRegister { .. }
                | Request::WriteCoils { .. }
                | Request::WriteRegisters { .. }
        )
    }
}

/// A request the device refuses: the reply is `[function | 0x80, code]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub function: u8,
    pub code: u8,
}

fn word(pdu: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([pdu[at], pdu[at + 1]])
}

/// Parses a request PDU. Never panics, whatever the bytes.
pub fn parse_request(pdu: &[u8]) -> Result<Request<'_>, Exception> {
    let function = pdu.first().copied().unwrap_or(0);
    let refuse = |code| Exception { function, code };
    let value_error = refuse(code::ILLEGAL_DATA_VALUE);
    match function {
        0x01..=0x06 => {
            if pdu.len() != 5 {
                return Err(value_error);
            }
            let (address, n) = (word(pdu, 1), word(pdu, 3));
            match function {
                0x01..=0x04 => {
                    let bits = function <= 0x02;
                    let max = if bits {
                        MAX_READ_BITS
                    } else {
                        MAX_READ_REGISTERS
                    };
                    if n == 0 || n > max {
                        return Err(value_error);
                    }
                    let table = match function {
                        0x01 => RegisterKind::Coil,
                        0x02 => RegisterKind::Discrete,
                        0x03 => RegisterKind::Holding,
                        _ => RegisterKind::Input,
                    };
                    Ok(if bits {
                        Request::ReadBits {
                            table,
                            address,
                            quantity: n,
                        }
                    } else {
                        Request::ReadRegisters {
                            table,
                            address,
                            quantity: n,
                        }
                    })
                }
                0x05 => match n {
                    0xFF00 => Ok(Request::WriteCoil { address, on: true }),
                    0x0000 => Ok(Request::WriteCoil { address, on: false }),
                    _ => Err(value_error),
                },
                _ => Ok(Request::WriteRegister { address, value: n }),
            }
        }
        0x0F | 0x10 => {
            if pdu.len() < 6 {
                return Err(value_error);
            }
            let (address, quantity, count) = (word(pdu, 1), word(pdu, 3), pdu[5] as usize);
            let data = &pdu[6..];
            let (max, need) = if function == 0x0F {
                (MAX_WRITE_BITS, (quantity as usize).div_ceil(8))
            } else {
                (MAX_WRITE_REGISTERS, quantity as usize * 2)
            };
            if quantity == 0 || quantity > max || count != need || data.len() != count {
                return Err(value_error);
            }
            Ok(if function == 0x0F {
                Request::WriteCoils {
                    address,
                    quantity,
                    packed: data,
                }
            } else {
                Request::WriteRegisters {
                    address,
                    quantity,
                    data,
                }
            })
        }
        _ => Err(refuse(code::ILLEGAL_FUNCTION)),
    }
}

/// Appends the exception reply `[function | 0x80, code]`.
pub fn push_exception(out: &mut Vec<u8>, function: u8, code: u8) {
    out.extend_from_slice(&[function | 0x80, code]);
}

/// Appends the echo a device sends after a write: function, address, and the value
/// (05, 06) or quantity (0F, 10).
pub fn push_write_echo(out: &mut Vec<u8>, function: u8, address: u16, value: u16) {
    out.push(function);
    out.extend_from_slice(&address.to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
}

/// The function code of a request, for echoing it.
pub fn function_of(req: &Request<'_>) -> u8 {
    match req {
        Request::ReadBits {
            table: RegisterKind::Coil,
            ..
        } => 0x01,
        Request::ReadBits { .. } => 0x02,
        Request::ReadRegisters {
            table: RegisterKind::Holding,
            ..
        } => 0x03,
        Request::ReadRegisters { .. } => 0x04,
        Request::WriteCoil { .. } => 0x05,
        Request::WriteRegister { .. } => 0x06,
        Request::WriteCoils { .. } => 0x0F,
        Request::WriteRegisters { .. } => 0x10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads() {
        assert_eq!(
            parse_request(&[0x03, 0x00, 0x10, 0x00, 0x02]),
            Ok(Request::ReadRegisters {
                table: RegisterKind::Holding,
                address: 16,
                quantity: 2
            })
        );
        assert_eq!(
            parse_request(&[0x02, 0x00, 0x00, 0x07, 0xD0]),
            Ok(Request::ReadBits {
                table: RegisterKind::Discrete,
                address: 0,
                quantity: 2000
            })
        );
    }

    #[test]
    fn quantities_are_checked() {
        let e = |f| {
            Err(Exception {
                function: f,
                code: code::ILLEGAL_DATA_VALUE,
            })
        };
        assert_eq!(parse_request(&[0x03, 0, 0, 0, 0]), e(0x03));
        assert_eq!(parse_request(&[0x04, 0, 0, 0, 126]), e(0x04));
        assert_eq!(parse_request(&[0x01, 0, 0, 0x07, 0xD1]), e(0x01));
        assert_eq!(parse_request(&[0x05, 0, 0, 0x12, 0x34]), e(0x05));
        assert_eq!(parse_request(&[0x03, 0, 0, 0]), e(0x03));
        // byte count disagrees with the quantity
        assert_eq!(parse_request(&[0x10, 0, 0, 0, 2, 2, 0, 1]), e(0x10));
        assert_eq!(parse_request(&[0x0F, 0, 0, 0, 9, 1, 0xFF]), e(0x0F));
    }

    #[test]
    fn writes() {
        assert_eq!(
            parse_request(&[0x05, 0, 3, 0xFF, 0]),
            Ok(Request::WriteCoil {
                address: 3,
                on: true
            })
        );
        assert_eq!(
            parse_request(&[0x06, 0, 3, 0x12, 0x34]),
            Ok(Request::WriteRegister {
                address: 3,
                value: 0x1234
            })
        );
        assert_eq!(
            parse_request(&[0x10, 0, 1, 0, 2, 4, 0, 1, 0, 2]),
            Ok(Request::WriteRegisters {
                address: 1,
                quantity: 2,
                data: &[0, 1, 0, 2]
            })
        );
        assert_eq!(
            parse_request(&[0x0F, 0, 0, 0, 9, 2, 0xFF, 0x01]),
            Ok(Request::WriteCoils {
                address: 0,
                quantity: 9,
                packed: &[0xFF, 0x01]
            })
        );
    }

    #[test]
    fn unknown_functions() {
        let e = |f| {
            Err(Exception {
                function: f,
                code: code::ILLEGAL_FUNCTION,
            })
        };
        assert_eq!(parse_request(&[0x2B, 0x0E, 1, 0]), e(0x2B));
        assert_eq!(parse_request(&[0x83]), e(0x83));
        assert_eq!(parse_request(&[]), e(0));
    }

    #[test]
    fn exception_reply() {
        let mut out = Vec::new();
        push_exception(&mut out, 0x03, code::ILLEGAL_DATA_ADDRESS);
        assert_eq!(out, [0x83, 0x02]);
    }
}
