//! One record on disk: a fixed little-endian header, then the payload. The CRC covers the
//! whole header except itself, and the payload, so a torn write, a flipped bit or garbage
//! is told apart from a record the store wrote.
//!
//! ```text
//! 0  magic u16 "HG"   2 version u8   3 topic u8   4 payload len u32   8 crc32 u32
//! 12 id u64   20 seq u64   28 min_ts i64   36 max_ts i64   44 payload...
//! ```

pub const MAGIC: u16 = u16::from_le_bytes(*b"HG");
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 44;
/// Upper bound of a payload: larger lengths in a header are corruption, not a record.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// The header fields of a record (all but magic, version and CRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub topic: u8,
    pub len: u32,
    pub id: u64,
    pub seq: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the header announces: a write cut short.
    Torn,
    /// Wrong magic, version, length or CRC.
    Corrupt,
}

fn crc(header: &[u8; HEADER_LEN], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..8]);
    h.update(&header[12..]);
    h.update(payload);
    h.finalize()
}

/// Appends the encoded record to `out`.
pub fn encode(h: &Header, payload: &[u8], out: &mut Vec<u8>) {
    let mut hdr = [0u8; HEADER_LEN];
    hdr[0..2].copy_from_slice(&MAGIC.to_le_bytes());
    hdr[2] = VERSION;
    hdr[3] = h.topic;
    hdr[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    hdr[12..20].copy_from_slice(&h.id.to_le_bytes());
    hdr[20..28].copy_from_slice(&h.seq.to_le_bytes());
    hdr[28..36].copy_from_slice(&h.min_ts.to_le_bytes());
    hdr[36..44].copy_from_slice(&h.max_ts.to_le_bytes());
    let c = crc(&hdr, payload);
    hdr[8..12].copy_from_slice(&c.to_le_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses a header without checking the CRC (the payload is not at hand yet).
/// `available` is how many bytes the file holds from the header's start on.
pub fn parse_header(hdr: &[u8; HEADER_LEN], available: u64) -> Result<Header, Bad> {
    if u16::from_le_bytes([hdr[0], hdr[1]]) != MAGIC || hdr[2] != VERSION {
        return Err(Bad::Corrupt);
    }
    let len = u32_at(hdr, 4);
    if len as usize > MAX_PAYLOAD {
        return Err(Bad::Corrupt);
    }
    if (HEADER_LEN as u64 + len as u64) > available {
        return Err(Bad::Torn);
    }
    Ok(Header {
        topic: hdr[3],
        len,
        id: u64_at(hdr, 12),
        seq: u64_at(hdr, 20),
        min_ts: u64_at(hdr, 28) as i64,
        max_ts: u64_at(hdr, 36) as i64,
    })
}

/// Checks the CRC of a parsed header and its payload.
pub fn check(hdr: &[u8; HEADER_LEN], payload: &[u8]) -> bool {
    crc(hdr, payload) == u32_at(hdr, 8)
}

/// Decodes one whole record from `buf` (header + payload, exactly).
pub fn decode(buf: &[u8]) -> Result<Header, Bad> {
    let Some(hdr) = buf.get(..HEADER_LEN) else {
        return Err(Bad::Torn);
    };
    let mut a = [0u8; HEADER_LEN];
    a.copy_from_slice(hdr);
    let h = parse_header(&a, buf.len() as u64)?;
    let payload = &buf[HEADER_LEN..HEADER_LEN + h.len as usize];
    if check(&a, payload) {
        Ok(h)
    } else {
        Err(Bad::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, Vec<u8>) {
        let h = Header {
            topic: 3,
            len: 5,
            id: 42,
            seq: 7,
            min_ts: -1,
            max_ts: 1_700_000_000_000,
        };
        let mut v = Vec::new();
        encode(&h, b"hello", &mut v);
        (h, v)
    }

    #[test]
    fn round_trip() {
        let (h, v) = sample();
        assert_eq!(v.len(), HEADER_LEN + 5);
        assert_eq!(decode(&v), Ok(h));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let (_, v) = sample();
        for i in 0..v.len() {
            for bit in 0..8 {
                let mut w = v.clone();
                w[i] ^= 1 << bit;
                assert!(decode(&w).is_err(), "flip at byte {i} bit {bit} passed");
            }
        }
    }

    #[test]
    fn short_is_torn() {
        let (_, v) = sample();
        assert_eq!(decode(&v[..v.len() - 1]), Err(Bad::Torn));
        assert_eq!(decode(&v[..10]), Err(Bad::Torn));
    }
}
