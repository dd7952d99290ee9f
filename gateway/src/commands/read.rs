//! `hazgate read`: one ad hoc read of a register range, shown raw and in every decoding
//! side by side (16-bit, 32-bit and 64-bit in all four word and byte orders, text), so a
//! commissioning engineer sees at once which type and order a device uses. The decodings
//! are the gateway's own, so what looks right here is what the gateway will read.

use std::fmt::Write;
use std::time::Duration;

use firmware_config::codec::{decode, DataType, RawValue, WordOrder};
use firmware_config::profile::RegisterKind;
use firmware_config::Link;

use crate::poll::link::BusLink;
use crate::poll::modbus::{ModbusError, Request, Response};

const ORDERS: [WordOrder; 4] = [
    WordOrder::Abcd,
    WordOrder::Cdab,
    WordOrder::Badc,
    WordOrder::Dcba,
];

/// Reads `count` registers (or bits) of `kind` from `address` on one unit.
pub async fn read(
    link: Link,
    unit: u8,
    kind: RegisterKind,
    address: u16,
    count: u16,
    timeout: Duration,
) -> Result<Response, ModbusError> {
    let mut bus = BusLink::new(link);
    bus.call(
        unit,
        &Request::Read {
            kind,
            start: address,
            count,
        },
        timeout,
    )
    .await
}

fn order_name(o: WordOrder) -> &'static str {
    match o {
        WordOrder::Abcd => "ABCD",
        WordOrder::Cdab => "CDAB",
        WordOrder::Badc => "BADC",
        WordOrder::Dcba => "DCBA",
    }
}

/// A decoded value as an engineer reads it (floats in their own precision).
fn show(ty: DataType, order: WordOrder, words: &[u16]) -> String {
    match decode(ty, order, words) {
        Ok(RawValue::Unsigned(v)) => v.to_string(),
        Ok(RawValue::Signed(v)) => v.to_string(),
        Ok(RawValue::Float(v)) if ty == DataType::F32 => format!("{}", v as f32),
        Ok(RawValue::Float(v)) => format!("{v}"),
        Ok(RawValue::Bool(b)) => u8::from(b).to_string(),
        Ok(RawValue::Text(t)) => format!("{t:?}"),
        Err(e) => format!("({e})"),
    }
}

/// The reply as a table: each register raw and as 16-bit values, then from each address
/// the 32-bit and 64-bit values in all four orders, then the whole range as text.
pub fn render(kind: RegisterKind, address: u16, response: &Response) -> String {
    let mut out = String::new();
    match response {
        Response::Bits(bits) => {
            let _ = writeln!(out, "address  {}", kind.name());
            for (i, b) in bits.iter().enumerate() {
                let _ = writeln!(out, "{:<8} {}", address as usize + i, u8::from(*b));
            }
        }
        Response::Words(words) => render_words(&mut out, address, words),
        Response::Written => out.push_str("(the device answered a read with a write reply)\n"),
    }
    out
}

fn render_words(out: &mut String, address: u16, words: &[u16]) {
    let at = |i: usize| address as usize + i;
    let _ = writeln!(out, "address  hex     u16    i16");
    for (i, w) in words.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<8} 0x{w:04X}  {:<6} {}",
            at(i),
            show(DataType::U16, WordOrder::Abcd, &words[i..=i]),
            show(DataType::I16, WordOrder::Abcd, &words[i..=i]),
        );
    }
    if words.len() >= 2 {
        let _ = writeln!(
            out,
            "\n32-bit from each address (ABCD: high word first, as the standard says; CDAB: words swapped; BADC: bytes swapped; DCBA: both)"
        );
        render_wide(
            out,
            address,
            words,
            [DataType::U32, DataType::I32, DataType::F32],
        );
    }
    if words.len() >= 4 {
        let _ = writeln!(out, "\n64-bit from each address");
        render_wide(
            out,
            address,
            words,
            [DataType::U64, DataType::I64, DataType::F64],
        );
    }
    let _ = writeln!(
        out,
        "\ntext (two characters per register): {}",
        show(DataType::Text(words.len() as u16), WordOrder::Abcd, words)
    );
}

/// The values `types` (unsigned, signed, float, all as wide) from each address, in all
/// four orders, one row per address and order.
fn render_wide(out: &mut String, address: u16, words: &[u16], types: [DataType; 3]) {
    let width = types[0].width() as usize;
    let col = if width == 2 { 12 } else { 21 };
    let names = types.map(DataType::name);
    let _ = writeln!(
        out,
        "{:<8} {:<6} {:<col$} {:<col$} {}",
        "address", "order", names[0], names[1], names[2]
    );
    for (i, w) in words.windows(width).enumerate() {
        for o in ORDERS {
            let _ = writeln!(
                out,
                "{:<8} {:<6} {:<col$} {:<col$} {}",
                address as usize + i,
                order_name(o),
                show(types[0], o, w),
                show(types[1], o, w),
                show(types[2], o, w)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_float_shows_in_the_order_that_makes_sense() {
        // 25.5 as f32 is 0x41CC0000: ABCD reads it, CDAB reads the words swapped.
        let t = render(
            RegisterKind::Holding,
            100,
            &Response::Words(vec![0x41CC, 0x0000]),
        );
        assert!(t.contains("100      0x41CC  16844  16844"), "{t}");
        let row = |order: &str| {
            t.lines()
                .find(|l| l.starts_with("100 ") && l.contains(order))
                .unwrap()
        };
        let abcd = row("ABCD");
        assert!(abcd.ends_with(" 25.5"), "{abcd}");
        let cdab = row("CDAB");
        assert!(!cdab.ends_with(" 25.5"), "{cdab}");
        assert!(!t.contains("64-bit"), "two registers make no 64-bit value");
    }

    #[test]
    fn bits_are_listed_one_per_address() {
        let t = render(RegisterKind::Coil, 8, &Response::Bits(vec![true, false]));
        assert_eq!(t, "address  coil\n8        1\n9        0\n");
    }
}
