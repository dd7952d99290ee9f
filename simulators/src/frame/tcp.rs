//! Modbus TCP framing: the 7-byte MBAP header (transaction id, protocol id 0, length,
//! unit id) in front of the PDU.

/// Bytes of the MBAP header.
pub const HEADER: usize = 7;
/// Largest PDU (Modbus application protocol 4.1).
pub const MAX_PDU: usize = 253;

/// A request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mbap {
    pub transaction: u16,
    pub unit: u8,
    /// Bytes of PDU that follow the header.
    pub pdu_len: usize,
}

/// Why a header cannot start a request: the stream is out of step, and the only safe
/// thing is to drop the connection, as real servers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MbapError {
    #[error("protocol id {0} is not Modbus (0)")]
    Protocol(u16),
    #[error("length {0} is outside 2..=254")]
    Length(u16),
}

/// Parses a request header.
pub fn parse_header(h: &[u8; HEADER]) -> Result<Mbap, MbapError> {
    let protocol = u16::from_be_bytes([h[2], h[3]]);
    if protocol != 0 {
        return Err(MbapError::Protocol(protocol));
    }
    let len = u16::from_be_bytes([h[4], h[5]]);
    if !(2..=(MAX_PDU as u16 + 1)).contains(&len) {
        return Err(MbapError::Length(len));
    }
    Ok(Mbap {
        transaction: u16::from_be_bytes([h[0], h[1]]),
        unit: h[6],
        pdu_len: len as usize - 1,
    })
}

/// Builds a reply frame into `out` (cleared first): header, then the PDU.
pub fn build_reply(out: &mut Vec<u8>, transaction: u16, unit: u8, pdu: &[u8]) {
    out.clear();
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    out.push(unit);
    out.extend_from_slice(pdu);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = parse_header(&[0x12, 0x34, 0, 0, 0, 6, 1]).unwrap();
        assert_eq!(
            h,
            Mbap {
                transaction: 0x1234,
                unit: 1,
                pdu_len: 5
            }
        );
        let mut out = Vec::new();
        build_reply(&mut out, 0x1234, 1, &[0x83, 0x02]);
        assert_eq!(out, [0x12, 0x34, 0, 0, 0, 3, 1, 0x83, 0x02]);
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            parse_header(&[0, 1, 0, 1, 0, 6, 1]),
            Err(MbapError::Protocol(1))
        );
        assert_eq!(
            parse_header(&[0, 1, 0, 0, 0, 1, 1]),
            Err(MbapError::Length(1))
        );
        assert_eq!(
            parse_header(&[0, 1, 0, 0, 1, 0, 1]),
            Err(MbapError::Length(256))
        );
    }
}
