//! Any bytes as the reply to any read or write: a response or a Modbus error, never a
//! panic.
#![no_main]

use firmware_config::RegisterKind;
use hazgate::poll::modbus::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let (head, reply) = data.split_at(5);
    let a = u16::from_be_bytes([head[1], head[2]]);
    let b = u16::from_be_bytes([head[3], head[4]]);
    let kinds = [
        RegisterKind::Coil,
        RegisterKind::Discrete,
        RegisterKind::Input,
        RegisterKind::Holding,
    ];
    let request = match head[0] % 7 {
        k @ 0..=3 => Request::Read {
            kind: kinds[k as usize],
            start: a,
            count: b % 126 + 1,
        },
        4 => Request::WriteCoil { address: a, on: b & 1 == 1 },
        5 => Request::WriteRegister { address: a, value: b },
        _ => Request::WriteRegisters {
            address: a,
            values: vec![b; (b % 8 + 1) as usize],
        },
    };
    let _ = request.parse_reply(reply);
});
