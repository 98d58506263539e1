//! Any input: `parse_message` must not panic; whatever parses must serialize with
//! `to_bytes` into bytes that parse back to the same message. The typed header parsers
//! and the sanity checks run on every parsed message too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil::sip::Message;
use veil::sip::parse::{
    check_request_sanity, check_response_sanity, parse_cseq, parse_message, parse_name_addr,
    parse_rack, parse_via,
};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = parse_message(data) else { return };
    let wire = match &m {
        Message::Request(r) => {
            let _ = check_request_sanity(r);
            r.to_bytes()
        }
        Message::Response(r) => {
            let _ = check_response_sanity(r);
            r.to_bytes()
        }
    };
    for h in m.headers().iter() {
        let _ = parse_name_addr(&h.value);
        let _ = parse_via(&h.value);
        let _ = parse_cseq(&h.value);
        let _ = parse_rack(&h.value);
    }
    let again = parse_message(&wire).expect("serialized message must parse");
    assert_eq!(again, m, "round trip changed the message");
});
