//! Requests the gateway sends and the replies it accepts, as protocol data units.

use firmware_config::RegisterKind;

use super::error::ModbusError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Read {
        kind: RegisterKind,
        start: u16,
        count: u16,
    },
    WriteCoil {
        address: u16,
        on: bool,
    },
    WriteRegister {
        address: u16,
        value: u16,
    },
    WriteRegisters {
        address: u16,
        values: Vec<u16>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Words(Vec<u16>),
    Bits(Vec<bool>),
    Written,
}

impl Request {
    pub fn function(&self) -> u8 {
        match self {
            Request::Read { kind, .. } => kind.read_function(),
            Request::WriteCoil { .. } => 0x05,
            Request::WriteRegister { .. } => 0x06,
            Request::WriteRegisters { .. } => 0x10,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.function());
        match self {
            Request::Read { start, count, .. } => {
                out.extend_from_slice(&start.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
            }
            Request::WriteCoil { address, on } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&if *on { [0xFF, 0x00] } else { [0x00, 0x00] });
            }
            Request::WriteRegister { address, value } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            Request::WriteRegisters { address, values } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&(values.len() as u16).to_be_bytes());
                out.push((values.len() * 2) as u8);
                for v in values {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
    }

    /// Length of the reply PDU (function code onwards) when the device answers normally.
    pub fn reply_len(&self) -> usize {
        match self {
            Request::Read { kind, count, .. } => 2 + data_bytes(*kind, *count),
            _ => 5,
        }
    }

    /// Checks a reply PDU against this request and extracts its data.
    pub fn parse_reply(&self, pdu: &[u8]) -> Result<Response, ModbusError> {
        let function = self.function();
        let Some(&got) = pdu.first() else {
            return Err(ModbusError::Framing("empty reply".into()));
        };
        if got == function | 0x80 {
            return match pdu {
                [_, code] => Err(ModbusError::Exception { code: *code }),
                _ => Err(ModbusError::Framing(format!(
                    "exception reply of {} bytes, expected 2",
                    pdu.len()
                ))),
            };
        }
        if got != function {
            return Err(ModbusError::Framing(format!(
                "reply has function {got:02X}, request was {function:02X}"
            )));
        }
        match self {
            Request::Read { kind, count, .. } => {
                let want = data_bytes(*kind, *count);
                if pdu.len() < 2 || pdu[1] as usize != want || pdu.len() != 2 + want {
                    return Err(ModbusError::Framing(format!(
                        "reply carries {} data bytes, {} registers need {want}",
                        pdu.get(1).copied().unwrap_or(0),
                        count
                    )));
                }
                let data = &pdu[2..];
                Ok(if kind.is_bit() {
                    Response::Bits(
                        (0..*count as usize)
                            .map(|i| data[i / 8] >> (i % 8) & 1 == 1)
                            .collect(),
                    )
                } else {
                    Response::Words(
                        data.chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]))
                            .collect(),
                    )
                })
            }
            _ => {
                let mut sent = Vec::with_capacity(8);
                self.encode(&mut sent);
                // A write reply echoes address and value (05, 06) or address and count (10).
                if pdu.len() != 5 || pdu[1..5] != sent[1..5] {
                    return Err(ModbusError::Framing(
                        "write reply does not echo the request".into(),
                    ));
                }
                Ok(Response::Written)
            }
        }
    }
}

fn data_bytes(kind: RegisterKind, count: u16) -> usize {
    if kind.is_bit() {
        (count as usize).div_ceil(8)
    } else {
        count as usize * 2
    }
}
