//! Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), sent low byte first.
//! One implementation for the gateway's client and the simulator's server.

/// Table of the CRC of every byte value, built at compile time so the hot path is one
/// lookup per byte.
const TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-16/MODBUS of `bytes`.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0xFFFF, |crc, &b| {
        (crc >> 8) ^ TABLE[((crc ^ b as u16) & 0xFF) as usize]
    })
}

/// Appends the CRC of everything in `frame` (low byte first, as on the wire).
pub fn append_crc(frame: &mut Vec<u8>) {
    let crc = crc16(frame);
    frame.extend_from_slice(&crc.to_le_bytes());
}

/// Whether a whole frame (payload followed by its CRC) is intact.
pub fn check_crc(frame: &[u8]) -> bool {
    if frame.len() < 3 {
        return false;
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    crc16(body).to_le_bytes() == [crc[0], crc[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Read holding registers, unit 1, address 0, 10 registers: 01 03 00 00 00 0A C5 CD
        assert_eq!(crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]), 0xCDC5);
        // The check value of CRC-16/MODBUS.
        assert_eq!(crc16(b"123456789"), 0x4B37);
        let mut f = vec![0x11, 0x03, 0x00, 0x6B, 0x00, 0x03];
        append_crc(&mut f);
        assert_eq!(&f[6..], &[0x76, 0x87]);
        assert!(check_crc(&f));
        f[2] ^= 1;
        assert!(!check_crc(&f));
        assert!(!check_crc(&[1, 2]));
    }
}
