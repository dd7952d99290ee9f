//! Whatever bytes come back as a reply, the client answers with an error that names the
//! problem, and never panics or takes a wrong reply for a right one.

use std::time::Duration;

use firmware_config::RegisterKind;
use hazgate::poll::modbus::{crc16, Connection, Framing, ModbusError, Request, Response};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_millis(40);

fn rtu() -> Framing {
    Framing::Rtu {
        silence: Duration::from_micros(1750),
    }
}

/// Sends `request` to unit 1 and has the other end answer with `reply` (then stay silent).
fn exchange(framing: Framing, request: Request, reply: Vec<u8>) -> Result<Response, ModbusError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (client_end, mut device_end) = tokio::io::duplex(4096);
        let device = tokio::spawn(async move {
            let mut request = [0u8; 256];
            let _ = device_end.read(&mut request).await;
            let _ = device_end.write_all(&reply).await;
            tokio::time::sleep(TIMEOUT * 3).await; // keep the line open, silent
        });
        let mut conn = Connection::new(Box::new(client_end), framing);
        let result = conn.call(1, &request, TIMEOUT).await;
        device.abort();
        result
    })
}

fn read_holding(count: u16) -> Request {
    Request::Read {
        kind: RegisterKind::Holding,
        start: 0,
        count,
    }
}

fn rtu_frame(body: &[u8]) -> Vec<u8> {
    let mut f = body.to_vec();
    f.extend_from_slice(&crc16(body).to_le_bytes());
    f
}

fn mbap(transaction: u16, body: &[u8]) -> Vec<u8> {
    let mut f = transaction.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn is_framing(r: &Result<Response, ModbusError>) -> bool {
    matches!(r, Err(ModbusError::Framing(_)))
}

#[test]
fn good_replies_are_accepted() {
    let r = exchange(
        rtu(),
        read_holding(2),
        rtu_frame(&[1, 3, 4, 0, 100, 0xFF, 0x38]),
    );
    assert_eq!(r, Ok(Response::Words(vec![100, 0xFF38])));
    let r = exchange(Framing::Tcp, read_holding(1), mbap(1, &[1, 3, 2, 0, 7]));
    assert_eq!(r, Ok(Response::Words(vec![7])));
}

#[test]
fn rtu_faults_are_named() {
    // wrong unit id (a valid frame from unit 2): not taken for unit 1's answer
    assert!(is_framing(&exchange(
        rtu(),
        read_holding(1),
        rtu_frame(&[2, 3, 2, 0, 7])
    )));
    // bad checksum
    let mut f = rtu_frame(&[1, 3, 2, 0, 7]);
    f[4] ^= 0x55;
    assert!(matches!(
        exchange(rtu(), read_holding(1), f),
        Err(ModbusError::Crc { .. })
    ));
    // truncated, then silence
    assert!(is_framing(&exchange(
        rtu(),
        read_holding(2),
        vec![1, 3, 4, 0]
    )));
    // oversized: more data than asked for
    assert!(is_framing(&exchange(
        rtu(),
        read_holding(1),
        rtu_frame(&[1, 3, 4, 0, 1, 0, 2])
    )));
    // exception
    assert_eq!(
        exchange(rtu(), read_holding(1), rtu_frame(&[1, 0x83, 2])),
        Err(ModbusError::Exception { code: 2 })
    );
    // nothing at all
    assert_eq!(
        exchange(rtu(), read_holding(1), vec![]),
        Err(ModbusError::Timeout(TIMEOUT))
    );
}

#[test]
fn tcp_faults_are_named() {
    // wrong transaction id
    assert!(is_framing(&exchange(
        Framing::Tcp,
        read_holding(1),
        mbap(99, &[1, 3, 2, 0, 7])
    )));
    // wrong unit id
    assert!(is_framing(&exchange(
        Framing::Tcp,
        read_holding(1),
        mbap(1, &[9, 3, 2, 0, 7])
    )));
    // truncated
    assert!(is_framing(&exchange(
        Framing::Tcp,
        read_holding(2),
        mbap(1, &[1, 3, 4, 0, 7])[..9].to_vec()
    )));
    // oversized length field
    let mut f = mbap(1, &[1, 3, 2, 0, 7]);
    f[4..6].copy_from_slice(&300u16.to_be_bytes());
    assert!(is_framing(&exchange(Framing::Tcp, read_holding(1), f)));
    // right frame, wrong function
    assert!(is_framing(&exchange(
        Framing::Tcp,
        read_holding(1),
        mbap(1, &[1, 4, 2, 0, 7])
    )));
    // exception
    assert_eq!(
        exchange(Framing::Tcp, read_holding(1), mbap(1, &[1, 0x83, 4])),
        Err(ModbusError::Exception { code: 4 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_rtu_bytes_never_pass_or_panic(reply in prop::collection::vec(any::<u8>(), 0..300)) {
        let r = exchange(rtu(), read_holding(3), reply.clone());
        // Only a frame that is exactly a right answer may pass.
        if let Ok(resp) = &r {
            prop_assert_eq!(reply.len(), 11);
            prop_assert!(matches!(resp, Response::Words(w) if w.len() == 3));
        }
    }

    #[test]
    fn arbitrary_tcp_bytes_never_pass_or_panic(reply in prop::collection::vec(any::<u8>(), 0..300)) {
        let r = exchange(Framing::Tcp, read_holding(3), reply.clone());
        if let Ok(resp) = &r {
            prop_assert_eq!(&reply[..2], &[0u8, 1][..]);
            prop_assert!(matches!(resp, Response::Words(w) if w.len() == 3));
        }
    }

    #[test]
    fn mangled_good_replies_give_named_errors(flip in 0usize..11, bits in 1u8..=255) {
        let mut f = rtu_frame(&[1, 3, 6, 0, 1, 0, 2, 0, 3]);
        f[flip] ^= bits;
        let r = exchange(rtu(), read_holding(3), f);
        prop_assert!(r.is_err(), "a corrupted frame was accepted: {:?}", r);
    }
}
