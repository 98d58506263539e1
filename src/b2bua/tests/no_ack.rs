//! A 2xx to an INVITE (initial or re-INVITE) never acknowledged within 64·T1: the call is
//! ended with BYE on both legs (RFC 3261 §13.3.1.4), `end_reason` `no_ack`. An ACK with
//! another CSeq is not the ACK of that 2xx.

use super::*;

const FROM: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";

fn expect_no_ack_end(h: &mut Harness) {
    h.take(PBX);
    h.take(CARRIER);
    h.advance(Duration::from_secs(40));
    h.take_request(PBX, "BYE");
    h.take_request(CARRIER, "BYE");
    assert_eq!(h.engine.call_count(), 0);
    let ended = h
        .engine
        .metrics
        .calls_ended
        .with_label_values(&["no_ack"])
        .get();
    assert_eq!(ended, 1);
    h.advance(Duration::from_secs(3));
    assert!(
        h.cdr
            .iter()
            .any(|c| matches!(c, CdrEvent::End { end_reason, .. } if end_reason == "no_ack")),
        "{:?}",
        h.cdr
    );
}

#[test]
fn initial_2xx_never_acked_ends_the_call() {
    let (mut h, _b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    // An ACK for another CSeq does not acknowledge the 2xx.
    h.inject(
        PBX,
        &in_dialog("ACK", FROM, &to_hdr, "a-call-1", 9, "127.0.0.2:5060"),
    );
    expect_no_ack_end(&mut h);
}

#[test]
fn reinvite_2xx_acked_with_a_wrong_cseq_ends_the_call() {
    let (mut h, _b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", FROM, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    let sdp = offer_sdp("127.0.0.2", 6002, "pbxsecret");
    let reinvite = in_dialog("INVITE", FROM, &to_hdr, "a-call-1", 12, "127.0.0.2:5060").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(PBX, &reinvite);
    let b_re = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_re, 200, true));
    h.take_response(PBX, 200);
    h.inject(
        PBX,
        &in_dialog("ACK", FROM, &to_hdr, "a-call-1", 11, "127.0.0.2:5060"),
    );
    expect_no_ack_end(&mut h);
}

#[test]
fn reinvite_2xx_acked_keeps_the_call() {
    let (mut h, _b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", FROM, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    let sdp = offer_sdp("127.0.0.2", 6002, "pbxsecret");
    let reinvite = in_dialog("INVITE", FROM, &to_hdr, "a-call-1", 12, "127.0.0.2:5060").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(PBX, &reinvite);
    let b_re = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_re, 200, true));
    h.take_response(PBX, 200);
    h.inject(
        PBX,
        &in_dialog("ACK", FROM, &to_hdr, "a-call-1", 12, "127.0.0.2:5060"),
    );
    h.take(PBX);
    h.take(CARRIER);
    h.advance(Duration::from_secs(40));
    assert_eq!(h.engine.call_count(), 1);
    assert!(
        !h.take(PBX)
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "BYE"))
    );
}
