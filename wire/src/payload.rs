//! How a message's bytes are encoded. A payload is either the message's JSON (it begins
//! with `{`) or that JSON compressed as one zstd frame (it begins with the zstd magic
//! number `28 B5 2F FD`): any subscriber tells the two apart from the first byte, with no
//! topic or property to agree on, and decodes the second with any zstd library.

use std::borrow::Cow;
use std::io::Read;

/// The first four bytes of every zstd frame (RFC 8878).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// zstd's level for telemetry: fast on an ARM edge box, most of the gain of higher levels.
pub const LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Zstd,
}

impl Encoding {
    pub fn of(payload: &[u8]) -> Encoding {
        if payload.starts_with(&ZSTD_MAGIC) {
            Encoding::Zstd
        } else {
            Encoding::Json
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("compressed payload decodes to more than {max} bytes")]
    TooLarge { max: usize },
    #[error("compressed payload is not a valid zstd frame: {0}")]
    Corrupt(String),
}

/// The JSON compressed as one zstd frame.
pub fn compress(json: &[u8]) -> Vec<u8> {
    Compressor::default().compress(json)
}

/// A zstd context kept for many payloads: a context for level 3 is over a megabyte, so
/// making one per message costs an allocation of that size each time.
pub struct Compressor {
    context: Option<zstd::bulk::Compressor<'static>>,
}

impl Default for Compressor {
    fn default() -> Self {
        Self {
            context: zstd::bulk::Compressor::new(LEVEL).ok(),
        }
    }
}

impl Compressor {
    /// One zstd frame of `json` (with its size in the frame header), or the JSON itself
    /// when the frame would not be smaller (a message of one or two readings): payloads
    /// say what they are, so a subscriber reads either. Compressing from memory into
    /// memory cannot fail short of allocation failure; were it to, the JSON is sent too.
    pub fn compress(&mut self, json: &[u8]) -> Vec<u8> {
        match self.context.as_mut().and_then(|c| c.compress(json).ok()) {
            Some(frame) if frame.len() < json.len() => frame,
            _ => json.to_vec(),
        }
    }
}

/// The message's JSON, decompressed if need be, never more than `max` bytes (a small
/// frame can claim gigabytes).
pub fn decode(payload: &[u8], max: usize) -> Result<Cow<'_, [u8]>, PayloadError> {
    match Encoding::of(payload) {
        Encoding::Json => Ok(Cow::Borrowed(payload)),
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(payload)
                .map_err(|e| PayloadError::Corrupt(e.to_string()))?;
            let mut out = Vec::with_capacity(payload.len().saturating_mul(8).min(max));
            decoder
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| PayloadError::Corrupt(e.to_string()))?;
            if out.len() > max {
                return Err(PayloadError::TooLarge { max });
            }
            Ok(Cow::Owned(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_told_apart_by_the_first_bytes() {
        let json = br#"{"kind":"telemetry","v":1,"readings":[]}"#.repeat(20);
        let z = compress(&json);
        assert_eq!(Encoding::of(&z), Encoding::Zstd);
        assert_eq!(Encoding::of(&json), Encoding::Json);
        assert!(z.len() < json.len() / 4, "{} of {}", z.len(), json.len());
        assert_eq!(decode(&z, 1 << 20).unwrap(), &json[..]);
        assert_eq!(decode(&json, 1 << 20).unwrap(), &json[..]);
    }

    #[test]
    fn what_zstd_cannot_shrink_stays_json() {
        let json = br#"{"kind":"telemetry","v":1,"readings":[]}"#;
        assert_eq!(compress(json), json);
        assert_eq!(Encoding::of(&compress(json)), Encoding::Json);
    }

    #[test]
    fn a_bomb_or_garbage_is_refused() {
        let big = vec![b' '; 10 << 20];
        let z = compress(&big);
        assert!(z.len() < 4096);
        assert_eq!(
            decode(&z, 1 << 20),
            Err(PayloadError::TooLarge { max: 1 << 20 })
        );
        let mut bad = ZSTD_MAGIC.to_vec();
        bad.extend_from_slice(b"not a frame at all");
        assert!(matches!(
            decode(&bad, 1 << 20),
            Err(PayloadError::Corrupt(_))
        ));
    }
}
