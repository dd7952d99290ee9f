//! Whatever bytes arrive, parsing and answering never panic.

use hazsim::bank::Bank;
use hazsim::frame::crc::check_crc;
use hazsim::frame::pdu::parse_request;
use hazsim::frame::rtu::expected_len;
use hazsim::frame::tcp::parse_header;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn request_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = expected_len(&bytes);
        let _ = check_crc(&bytes);
        if bytes.len() >= 7 {
            let header: [u8; 7] = bytes[..7].try_into().unwrap();
            let _ = parse_header(&header);
        }
        if let Ok(req) = parse_request(&bytes) {
            let mut bank = Bank { coils: vec![false; 20], discrete: vec![true; 3], input: vec![1; 10], holding: vec![2; 60] };
            let mut out = Vec::new();
            let _ = bank.execute(&req, &mut out);
            prop_assert!(out.len() <= 253);
        }
    }

    #[test]
    fn requests_with_a_known_function_parse_or_refuse(f in prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 15, 16]), rest in prop::collection::vec(any::<u8>(), 0..260)) {
        let mut pdu = vec![f];
        pdu.extend(rest);
        match parse_request(&pdu) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.function == f && (e.code == 3), "{e:?}"),
        }
    }
}
