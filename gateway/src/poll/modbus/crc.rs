//! Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), table-driven.

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

pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0xFFFF, |crc, &b| {
        (crc >> 8) ^ TABLE[((crc ^ b as u16) & 0xFF) as usize]
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_frame() {
        // Read holding registers, unit 1, address 0, count 10: 01 03 00 00 00 0A C5 CD
        assert_eq!(super::crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]), 0xCDC5);
    }
}
