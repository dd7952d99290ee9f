//! Register words <-> values, for every data type and byte/word order a profile can name.
//!
//! One codec serves both sides: the gateway decodes what a device sends, the simulator
//! encodes what a device would send. Keeping both directions here means they cannot drift.

use std::fmt;

/// How a point's value is laid out in registers or bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// A coil or discrete input, or one bit (0 = least significant) of a register.
    Bit(u8),
    /// ASCII text, two characters per register.
    Text(u16),
}

impl DataType {
    /// Registers (or, for coils and discrete inputs, bits) the value occupies.
    pub fn width(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bit(_) => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::Text(registers) => registers,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
            DataType::Bit(_) => "bit",
            DataType::Text(_) => "string",
        }
    }
}

/// Byte and word order, named by where the bytes A (most significant) .. D land.
/// `Abcd` is Modbus big-endian; `Cdab` swaps words (common for f32 in transmitters);
/// `Badc` swaps bytes within each word; `Dcba` is fully little-endian. For 64-bit values
/// the same rule extends to four words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WordOrder {
    #[default]
    Abcd,
    Cdab,
    Badc,
    Dcba,
}

impl WordOrder {
    pub const ALL: [WordOrder; 4] = [
        WordOrder::Abcd,
        WordOrder::Cdab,
        WordOrder::Badc,
        WordOrder::Dcba,
    ];

    fn words_reversed(self) -> bool {
        matches!(self, WordOrder::Cdab | WordOrder::Dcba)
    }

    fn bytes_swapped(self) -> bool {
        matches!(self, WordOrder::Badc | WordOrder::Dcba)
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "abcd" | "big" => Some(WordOrder::Abcd),
            "cdab" | "word_swap" => Some(WordOrder::Cdab),
            "badc" | "byte_swap" => Some(WordOrder::Badc),
            "dcba" | "little" => Some(WordOrder::Dcba),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WordOrder::Abcd => "abcd",
            WordOrder::Cdab => "cdab",
            WordOrder::Badc => "badc",
            WordOrder::Dcba => "dcba",
        }
    }
}

/// A value as the device holds it, before scale, offset or decimals.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl RawValue {
    /// The number behind the value, if it is one (a bit counts as 0 or 1).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            RawValue::Unsigned(u) => Some(u as f64),
            RawValue::Signed(i) => Some(i as f64),
            RawValue::Float(f) => Some(f),
            RawValue::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            RawValue::Text(_) => None,
        }
    }
}

impl fmt::Display for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Unsigned(u) => write!(f, "{u}"),
            RawValue::Signed(i) => write!(f, "{i}"),
            RawValue::Float(x) => write!(f, "{x}"),
            RawValue::Bool(b) => write!(f, "{b}"),
            RawValue::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// Why words could not become a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{ty} needs {need} registers, got {got}")]
    WrongLength {
        ty: &'static str,
        need: u16,
        got: usize,
    },
    #[error("{0} cannot hold this value")]
    OutOfRange(&'static str),
}

/// Canonical big-endian bytes (A first) from registers in the given order.
fn to_canonical(words: &[u16], order: WordOrder) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(words.len() * 2);
    let mut push = |w: u16| {
        let [hi, lo] = w.to_be_bytes();
        if order.bytes_swapped() {
            bytes.extend_from_slice(&[lo, hi]);
        } else {
            bytes.extend_from_slice(&[hi, lo]);
        }
    };
    if order.words_reversed() {
        words.iter().rev().copied().for_each(&mut push);
    } else {
        words.iter().copied().for_each(&mut push);
    }
    bytes
}

/// Registers in the given order from canonical big-endian bytes; inverse of `to_canonical`.
fn from_canonical(bytes: &[u8], order: WordOrder) -> Vec<u16> {
    let mut words: Vec<u16> = bytes
        .chunks(2)
        .map(|pair| {
            let (a, b) = (pair[0], *pair.get(1).unwrap_or(&0));
            if order.bytes_swapped() {
                u16::from_be_bytes([b, a])
            } else {
                u16::from_be_bytes([a, b])
            }
        })
        .collect();
    if order.words_reversed() {
        words.reverse();
    }
    words
}

/// Decodes a register value. For `Bit(n)` the words are one register and bit n is taken;
/// coils and discrete inputs are decoded by the caller as plain booleans.
pub fn decode(ty: DataType, order: WordOrder, words: &[u16]) -> Result<RawValue, CodecError> {
    if words.len() != ty.width() as usize {
        return Err(CodecError::WrongLength {
            ty: ty.name(),
            need: ty.width(),
            got: words.len(),
        });
    }
    if let DataType::Bit(n) = ty {
        return Ok(RawValue::Bool(words[0] >> (n & 15) & 1 == 1));
    }
    let b = to_canonical(words, order);
    let value = match ty {
        DataType::U16 => RawValue::Unsigned(u16::from_be_bytes([b[0], b[1]]) as u64),
        DataType::I16 => RawValue::Signed(i16::from_be_bytes([b[0], b[1]]) as i64),
        DataType::U32 => RawValue::Unsigned(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64),
        DataType::I32 => RawValue::Signed(i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64),
        DataType::F32 => RawValue::Float(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64),
        DataType::U64 => RawValue::Unsigned(u64::from_be_bytes(eight(&b))),
        DataType::I64 => RawValue::Signed(i64::from_be_bytes(eight(&b))),
        DataType::F64 => RawValue::Float(f64::from_be_bytes(eight(&b))),
        DataType::Text(_) => {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            RawValue::Text(String::from_utf8_lossy(&b[..end]).trim_end().to_string())
        }
        DataType::Bit(_) => unreachable!("handled above"),
    };
    Ok(value)
}

fn eight(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[..8]);
    out
}

/// Encodes a value into registers; the inverse of `decode`. For `Bit(n)`, `current` is the
/// register the bit lives in, so the other bits are kept.
pub fn encode(
    ty: DataType,
    order: WordOrder,
    value: &RawValue,
    current: u16,
) -> Result<Vec<u16>, CodecError> {
    let name = ty.name();
    let int = |v: &RawValue| -> Option<i128> {
        match *v {
            RawValue::Unsigned(u) => Some(u as i128),
            RawValue::Signed(i) => Some(i as i128),
            RawValue::Float(f) if f.is_finite() => Some(f.round() as i128),
            RawValue::Bool(b) => Some(b as i128),
            _ => None,
        }
    };
    let float = value.as_f64();
    let bytes: Vec<u8> = match ty {
        DataType::Bit(n) => {
            let on = float.ok_or(CodecError::OutOfRange(name))? != 0.0;
            let mask = 1u16 << (n & 15);
            return Ok(vec![if on { current | mask } else { current & !mask }]);
        }
        DataType::U16 => u16::try_from(int(value).ok_or(CodecError::OutOfRange(name))?)
            .map_err(|_| CodecError::OutOfRange(name))?
            .to_be_bytes()
            .to_vec(),
        DataType::I16 => i16::try_from(int(value).ok_or(CodecError::OutOfRange(name))?)
            .map_err(|_| CodecError::OutOfRange(name))?
            .to_be_bytes()
            .to_vec(),
        DataType::U32 => u32::try_from(int(value).ok_or(CodecError::OutOfRange(name))?)
            .map_err(|_| CodecError::OutOfRange(name))?
            .to_be_bytes()
            .to_vec(),
        DataType::I32 => i32::try_from(int(value).ok_or(CodecError::OutOfRange(name))?)
            .map_err(|_| CodecError::OutOfRange(name))?
            .to_be_bytes()
            .to_vec(),
        DataType::U64 => u64::try_from(int(value).ok_or(CodecError::OutOfRange(name))?)
            .map_err(|_| CodecError::OutOfRange(name))?
            .to_be_bytes()
            .to_vec(),
        DataType::I64 => i64::try_from(int(value).ok_or(CodecError::OutOfRange(name))?)
            .map_err(|_| CodecError::OutOfRange(name))?
            .to_be_bytes()
            .to_vec(),
        DataType::F32 => (float.ok_or(CodecError::OutOfRange(name))? as f32)
            .to_be_bytes()
            .to_vec(),
        DataType::F64 => float
            .ok_or(CodecError::OutOfRange(name))?
            .to_be_bytes()
            .to_vec(),
        DataType::Text(registers) => {
            let RawValue::Text(s) = value else {
                return Err(CodecError::OutOfRange(name));
            };
            let mut b = s.as_bytes().to_vec();
            if b.len() > registers as usize * 2 {
                return Err(CodecError::OutOfRange(name));
            }
            b.resize(registers as usize * 2, 0);
            b
        }
    };
    Ok(from_canonical(&bytes, order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use DataType::*;
    use WordOrder::*;

    /// (type, order, registers as read off the wire, expected value)
    fn vectors() -> Vec<(DataType, WordOrder, Vec<u16>, RawValue)> {
        use RawValue::*;
        vec![
            (U16, Abcd, vec![0x0064], Unsigned(100)),
            (U16, Badc, vec![0x6400], Unsigned(100)),
            (U16, Dcba, vec![0x6400], Unsigned(100)),
            (U16, Cdab, vec![0x0064], Unsigned(100)),
            (I16, Abcd, vec![0xFF38], Signed(-200)),
            (I16, Badc, vec![0x38FF], Signed(-200)),
            (U32, Abcd, vec![0x0001, 0x86A0], Unsigned(100_000)),
            (U32, Cdab, vec![0x86A0, 0x0001], Unsigned(100_000)),
            (U32, Badc, vec![0x0100, 0xA086], Unsigned(100_000)),
            (U32, Dcba, vec![0xA086, 0x0100], Unsigned(100_000)),
            (I32, Abcd, vec![0xFFFE, 0x7960], Signed(-100_000)),
            (I32, Cdab, vec![0x7960, 0xFFFE], Signed(-100_000)),
            (I32, Badc, vec![0xFEFF, 0x6079], Signed(-100_000)),
            (I32, Dcba, vec![0x6079, 0xFEFF], Signed(-100_000)),
            // 1.6 MPa as IEEE-754 single: 0x3FCCCCCD
            (F32, Abcd, vec![0x3FCC, 0xCCCD], Float(1.600000023841858)),
            (F32, Cdab, vec![0xCCCD, 0x3FCC], Float(1.600000023841858)),
            (F32, Badc, vec![0xCC3F, 0xCDCC], Float(1.600000023841858)),
            (F32, Dcba, vec![0xCDCC, 0xCC3F], Float(1.600000023841858)),
            (
                U64,
                Abcd,
                vec![0x0000, 0x0001, 0x0000, 0x0002],
                Unsigned(0x1_0000_0002),
            ),
            (
                U64,
                Cdab,
                vec![0x0002, 0x0000, 0x0001, 0x0000],
                Unsigned(0x1_0000_0002),
            ),
            (
                U64,
                Badc,
                vec![0x0000, 0x0100, 0x0000, 0x0200],
                Unsigned(0x1_0000_0002),
            ),
            (
                U64,
                Dcba,
                vec![0x0200, 0x0000, 0x0100, 0x0000],
                Unsigned(0x1_0000_0002),
            ),
            (I64, Abcd, vec![0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], Signed(-2)),
            (I64, Dcba, vec![0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF], Signed(-2)),
            // 30.5 as f64: 0x403E800000000000
            (F64, Abcd, vec![0x403E, 0x8000, 0x0000, 0x0000], Float(30.5)),
            (F64, Cdab, vec![0x0000, 0x0000, 0x8000, 0x403E], Float(30.5)),
            (F64, Badc, vec![0x3E40, 0x0080, 0x0000, 0x0000], Float(30.5)),
            (F64, Dcba, vec![0x0000, 0x0000, 0x0080, 0x3E40], Float(30.5)),
            (Bit(0), Abcd, vec![0x0001], Bool(true)),
            (Bit(3), Abcd, vec![0x0007], Bool(false)),
            (Bit(15), Abcd, vec![0x8000], Bool(true)),
            (
                DataType::Text(3),
                Abcd,
                vec![0x4832, 0x5300, 0x0000],
                Text("H2S".into()),
            ),
            (
                DataType::Text(2),
                Badc,
                vec![0x3248, 0x0053],
                Text("H2S".into()),
            ),
            (
                DataType::Text(2),
                Abcd,
                vec![0x434F, 0x2020],
                Text("CO".into()),
            ),
        ]
    }

    #[test]
    fn decode_vectors() {
        for (ty, order, words, want) in vectors() {
            let got = decode(ty, order, &words).unwrap();
            assert_eq!(got, want, "{ty:?} {order:?} {words:04X?}");
        }
    }

    #[test]
    fn encode_vectors() {
        for (ty, order, words, value) in vectors() {
            if matches!(ty, Text(_)) && words.iter().any(|w| w & 0xff == 0x20) {
                continue; // trailing spaces are trimmed on decode, so that vector is one-way
            }
            let current = if let Bit(_) = ty { words[0] } else { 0 };
            assert_eq!(
                encode(ty, order, &value, current).unwrap(),
                words,
                "{ty:?} {order:?}"
            );
        }
    }

    #[test]
    fn wrong_length_is_an_error() {
        assert_eq!(
            decode(F32, Abcd, &[1]),
            Err(CodecError::WrongLength {
                ty: "f32",
                need: 2,
                got: 1
            })
        );
    }

    #[test]
    fn out_of_range_is_an_error() {
        assert!(encode(U16, Abcd, &RawValue::Signed(-1), 0).is_err());
        assert!(encode(I16, Abcd, &RawValue::Unsigned(40000), 0).is_err());
    }

    fn order() -> impl Strategy<Value = WordOrder> {
        prop::sample::select(WordOrder::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn integers_round_trip(v in any::<i64>(), o in order()) {
            for (ty, ok) in [(I64, true), (I32, i32::try_from(v).is_ok()), (I16, i16::try_from(v).is_ok())] {
                if ok {
                    let words = encode(ty, o, &RawValue::Signed(v), 0).unwrap();
                    prop_assert_eq!(decode(ty, o, &words).unwrap(), RawValue::Signed(v));
                }
            }
        }

        #[test]
        fn unsigned_round_trip(v in any::<u64>(), o in order()) {
            let words = encode(U64, o, &RawValue::Unsigned(v), 0).unwrap();
            prop_assert_eq!(decode(U64, o, &words).unwrap(), RawValue::Unsigned(v));
            let v32 = v as u32 as u64;
            let words = encode(U32, o, &RawValue::Unsigned(v32), 0).unwrap();
            prop_assert_eq!(decode(U32, o, &words).unwrap(), RawValue::Unsigned(v32));
        }

        #[test]
        fn floats_round_trip(v in any::<f64>().prop_filter("finite", |v| v.is_finite()), o in order()) {
            let words = encode(F64, o, &RawValue::Float(v), 0).unwrap();
            prop_assert_eq!(decode(F64, o, &words).unwrap(), RawValue::Float(v));
            let v32 = v as f32;
            if v32.is_finite() {
                let words = encode(F32, o, &RawValue::Float(v32 as f64), 0).unwrap();
                prop_assert_eq!(decode(F32, o, &words).unwrap(), RawValue::Float(v32 as f64));
            }
        }

        #[test]
        fn any_words_decode_without_panic(words in prop::collection::vec(any::<u16>(), 0..8), o in order()) {
            for ty in [U16, I16, U32, I32, U64, I64, F32, F64, Bit(7), Text(words.len() as u16)] {
                let _ = decode(ty, o, &words);
            }
        }
    }
}
