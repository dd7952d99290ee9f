//! RTU framing: `[unit][function][data][crc lo][crc hi]`. A serial line has no length
//! field, so the length of a request follows from its function code; for codes the
//! simulator does not know, the frame ends at the first silence (as on a real line).

use super::crc::append_crc;

/// The longest RTU frame (Modbus over serial line, 2.5.1).
pub const MAX_FRAME: usize = 256;

/// How long the request at the start of a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A frame of this many bytes, CRC included.
    Bytes(usize),
    /// Not enough bytes yet to tell.
    NeedMore,
    /// Unknown function code: whatever arrives before the line goes quiet.
    UntilSilence,
}

/// Length of the request at the start of `buf`, from its function code.
pub fn expected_len(buf: &[u8]) -> Expected {
    let Some(&function) = buf.get(1) else {
        return Expected::NeedMore;
    };
    match function {
        0x01..=0x06 => Expected::Bytes(8),
        0x0F | 0x10 => match buf.get(6) {
            Some(&count) => Expected::Bytes(9 + count as usize),
            None => Expected::NeedMore,
        },
        _ => Expected::UntilSilence,
    }
}

/// Builds a reply frame: unit, PDU, CRC. `out` is cleared first and reused across replies.
pub fn build_reply(out: &mut Vec<u8>, unit: u8, pdu: &[u8]) {
    out.clear();
    out.push(unit);
    out.extend_from_slice(pdu);
    append_crc(out);
}

/// Spoils a frame's CRC, for the `corrupt` fault.
pub fn corrupt(frame: &mut [u8]) {
    if let Some(last) = frame.last_mut() {
        *last ^= 0xA5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::crc::check_crc;

    #[test]
    fn lengths() {
        assert_eq!(expected_len(&[1]), Expected::NeedMore);
        assert_eq!(expected_len(&[1, 3]), Expected::Bytes(8));
        assert_eq!(expected_len(&[1, 0x10, 0, 0, 0, 2]), Expected::NeedMore);
        assert_eq!(expected_len(&[1, 0x10, 0, 0, 0, 2, 4]), Expected::Bytes(13));
        assert_eq!(expected_len(&[1, 0x2B]), Expected::UntilSilence);
    }

    #[test]
    fn replies_carry_a_crc() {
        let mut out = Vec::new();
        build_reply(&mut out, 1, &[0x03, 0x02, 0x01, 0x2C]);
        assert!(check_crc(&out));
        corrupt(&mut out);
        assert!(!check_crc(&out));
    }
}
