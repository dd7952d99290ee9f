//! A device's four Modbus tables and the execution of requests against them. This is the
//! hot path of every poll: it copies words into the reply and allocates nothing.

use firmware_config::{Point, RegisterKind};

use crate::frame::pdu::{code, function_of, push_write_echo, Request};

/// The registers and bits a device serves. Each table spans from 0 to the end of the
/// highest point of that kind; anything past it is an illegal address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bank {
    pub coils: Vec<bool>,
    pub discrete: Vec<bool>,
    pub input: Vec<u16>,
    pub holding: Vec<u16>,
}

/// The span of a table a request wrote, so the device can stop simulating those points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub table: RegisterKind,
    pub start: u32,
    pub end: u32,
}

impl Bank {
    /// Tables sized for a device's points, all zero.
    pub fn for_points(points: &[Point]) -> Bank {
        let span = |kind| {
            points
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| p.end() as usize)
                .max()
                .unwrap_or(0)
        };
        Bank {
            coils: vec![false; span(RegisterKind::Coil)],
            discrete: vec![false; span(RegisterKind::Discrete)],
            input: vec![0; span(RegisterKind::Input)],
            holding: vec![0; span(RegisterKind::Holding)],
        }
    }

    pub fn registers(&self, kind: RegisterKind) -> &[u16] {
        match kind {
            RegisterKind::Input => &self.input,
            _ => &self.holding,
        }
    }

    pub fn registers_mut(&mut self, kind: RegisterKind) -> &mut [u16] {
        match kind {
            RegisterKind::Input => &mut self.input,
            _ => &mut self.holding,
        }
    }

    pub fn bits(&self, kind: RegisterKind) -> &[bool] {
        match kind {
            RegisterKind::Discrete => &self.discrete,
            _ => &self.coils,
        }
    }

    pub fn bits_mut(&mut self, kind: RegisterKind) -> &mut [bool] {
        match kind {
            RegisterKind::Discrete => &mut self.discrete,
            _ => &mut self.coils,
        }
    }

    /// Executes a request and appends the reply PDU to `out`; on refusal returns the
    /// exception code and leaves `out` alone.
    pub fn execute(&mut self, req: &Request<'_>, out: &mut Vec<u8>) -> Result<Option<Written>, u8> {
        let function = function_of(req);
        match *req {
            Request::ReadBits {
                table,
                address,
                quantity,
            } => {
                let bits = span(self.bits(table), address, quantity)?;
                out.push(function);
                out.push(quantity.div_ceil(8) as u8);
                for chunk in bits.chunks(8) {
                    out.push(
                        chunk
                            .iter()
                            .enumerate()
                            .fold(0u8, |b, (i, &on)| b | (u8::from(on) << i)),
                    );
                }
                Ok(None)
            }
            Request::ReadRegisters {
                table,
                address,
                quantity,
            } => {
                let words = span(self.registers(table), address, quantity)?;
                out.push(function);
                out.push((quantity * 2) as u8);
                for w in words {
                    out.extend_from_slice(&w.to_be_bytes());
                }
                Ok(None)
            }
            Request::WriteCoil { address, on } => {
                span_mut(&mut self.coils, address, 1)?[0] = on;
                push_write_echo(out, function, address, if on { 0xFF00 } else { 0 });
                Ok(Some(written(RegisterKind::Coil, address, 1)))
            }
            Request::WriteRegister { address, value } => {
                span_mut(&mut self.holding, address, 1)?[0] = value;
                push_write_echo(out, function, address, value);
                Ok(Some(written(RegisterKind::Holding, address, 1)))
            }
            Request::WriteCoils {
                address,
                quantity,
                packed,
            } => {
                let bits = span_mut(&mut self.coils, address, quantity)?;
                for (i, bit) in bits.iter_mut().enumerate() {
                    *bit = packed.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1);
                }
                push_write_echo(out, function, address, quantity);
                Ok(Some(written(RegisterKind::Coil, address, quantity)))
            }
            Request::WriteRegisters {
                address,
                quantity,
                data,
            } => {
                let words = span_mut(&mut self.holding, address, quantity)?;
                for (w, pair) in words.iter_mut().zip(data.chunks_exact(2)) {
                    *w = u16::from_be_bytes([pair[0], pair[1]]);
                }
                push_write_echo(out, function, address, quantity);
                Ok(Some(written(RegisterKind::Holding, address, quantity)))
            }
        }
    }
}

fn written(table: RegisterKind, address: u16, quantity: u16) -> Written {
    Written {
        table,
        start: address as u32,
        end: address as u32 + quantity as u32,
    }
}

fn span<T>(table: &[T], address: u16, quantity: u16) -> Result<&[T], u8> {
    let (start, end) = (address as usize, address as usize + quantity as usize);
    table.get(start..end).ok_or(code::ILLEGAL_DATA_ADDRESS)
}

fn span_mut<T>(table: &mut [T], address: u16, quantity: u16) -> Result<&mut [T], u8> {
    let (start, end) = (address as usize, address as usize + quantity as usize);
    table.get_mut(start..end).ok_or(code::ILLEGAL_DATA_ADDRESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::pdu::parse_request;

    fn bank() -> Bank {
        Bank {
            coils: vec![true, false, true],
            discrete: vec![false; 10],
            input: vec![7; 2],
            holding: vec![1, 2, 3, 4],
        }
    }

    fn run(b: &mut Bank, pdu: &[u8]) -> Result<Vec<u8>, u8> {
        let req = parse_request(pdu).unwrap();
        let mut out = Vec::new();
        b.execute(&req, &mut out).map(|_| out)
    }

    #[test]
    fn reads_and_addresses() {
        let mut b = bank();
        assert_eq!(
            run(&mut b, &[3, 0, 1, 0, 3]),
            Ok(vec![3, 6, 0, 2, 0, 3, 0, 4])
        );
        assert_eq!(
            run(&mut b, &[3, 0, 2, 0, 3]),
            Err(code::ILLEGAL_DATA_ADDRESS)
        );
        assert_eq!(
            run(&mut b, &[3, 0xFF, 0xFF, 0, 125]),
            Err(code::ILLEGAL_DATA_ADDRESS)
        );
        assert_eq!(run(&mut b, &[1, 0, 0, 0, 3]), Ok(vec![1, 1, 0b101]));
        assert_eq!(run(&mut b, &[2, 0, 0, 0, 10]), Ok(vec![2, 2, 0, 0]));
        assert_eq!(run(&mut b, &[4, 0, 0, 0, 1]), Ok(vec![4, 2, 0, 7]));
    }

    #[test]
    fn writes_stick() {
        let mut b = bank();
        assert_eq!(
            run(&mut b, &[6, 0, 3, 0x12, 0x34]),
            Ok(vec![6, 0, 3, 0x12, 0x34])
        );
        assert_eq!(b.holding[3], 0x1234);
        assert_eq!(run(&mut b, &[5, 0, 1, 0xFF, 0]), Ok(vec![5, 0, 1, 0xFF, 0]));
        assert!(b.coils[1]);
        assert_eq!(
            run(&mut b, &[0x0F, 0, 0, 0, 3, 1, 0b010]),
            Ok(vec![0x0F, 0, 0, 0, 3])
        );
        assert_eq!(b.coils, [false, true, false]);
        assert_eq!(
            run(&mut b, &[0x10, 0, 0, 0, 2, 4, 0, 9, 0, 8]),
            Ok(vec![0x10, 0, 0, 0, 2])
        );
        assert_eq!(&b.holding[..2], &[9, 8]);
        assert_eq!(
            run(&mut b, &[6, 0, 4, 0, 0]),
            Err(code::ILLEGAL_DATA_ADDRESS)
        );
    }
}
