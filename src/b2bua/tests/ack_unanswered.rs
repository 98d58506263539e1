//! A malformed ACK is counted and dropped: an ACK never gets a response (RFC 3261 §17).

use super::*;

#[test]
fn malformed_acks_get_no_response_and_are_counted() {
    let mut h = Harness::new();
    let before = h.engine.metrics.sip_invalid_messages.get();
    // Parses, but fails the sanity checks (no Call-ID); then does not parse at all.
    for junk in [
        "ACK sip:veil@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKack1\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.2>;tag=x\r\nTo: <sip:b@127.0.0.1>;tag=y\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        "ACK sip:veil@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKack2\r\nFrom <broken\r\nCSeq: x ACK\r\nContent-Length: 999\r\n\r\n",
    ] {
        h.inject(PBX, junk);
        assert!(h.take(PBX).is_empty(), "an ACK got a response: {junk}");
    }
    assert_eq!(h.engine.metrics.sip_invalid_messages.get(), before + 2);
    // The same malformed request as an OPTIONS is still answered 400.
    h.inject(
        PBX,
        "OPTIONS sip:veil@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.2>;tag=x\r\nTo: <sip:b@127.0.0.1>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    h.take_response(PBX, 400);
}
