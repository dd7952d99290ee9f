//! Any registers as any data type in any word order: a value or a codec error, never a
//! panic.
#![no_main]

use firmware_config::codec::decode;
use firmware_config::{DataType, WordOrder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let ty = match pick % 10 {
        0 => DataType::U16,
        1 => DataType::I16,
        2 => DataType::U32,
        3 => DataType::I32,
        4 => DataType::U64,
        5 => DataType::I64,
        6 => DataType::F32,
        7 => DataType::F64,
        8 => DataType::Bit(pick / 10),
        _ => DataType::Text(u16::from(pick / 10)),
    };
    let order = WordOrder::ALL[(pick / 64) as usize % WordOrder::ALL.len()];
    let words: Vec<u16> = rest
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let _ = decode(ty, order, &words);
});
