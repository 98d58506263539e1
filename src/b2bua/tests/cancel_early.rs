//! CANCEL of leg B's INVITE (RFC 3261 §9.1): allowed once any provisional response, 100
//! Trying included, has arrived; a caller's CANCEL before that waits for the first one.

use super::*;

const CANCEL: &str = "CANCEL sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxa-call-1\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: a-call-1\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n";

fn calling() -> (Harness, Request) {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take(PBX);
    let b_inv = h.take_request(CARRIER, "INVITE");
    (h, b_inv)
}

fn assert_cancels(c: &Request, b_inv: &Request) {
    assert_eq!(c.call_id().unwrap(), b_inv.call_id().unwrap());
    assert_eq!(c.cseq().unwrap().seq, b_inv.cseq().unwrap().seq);
    assert_eq!(
        c.top_via().unwrap().branch(),
        b_inv.top_via().unwrap().branch()
    );
}

#[test]
fn caller_cancel_after_a_100_cancels_leg_b_at_once() {
    let (mut h, b_inv) = calling();
    h.inject(CARRIER, &answer(&b_inv, 100, false));
    assert!(h.take(PBX).is_empty(), "a 100 is hop-by-hop, not relayed");
    h.inject(PBX, CANCEL);
    h.take_response(PBX, 487);
    let c = h.take_request(CARRIER, "CANCEL");
    assert_cancels(&c, &b_inv);
}

#[test]
fn caller_cancel_before_any_provisional_is_sent_on_the_first_100() {
    let (mut h, b_inv) = calling();
    h.inject(PBX, CANCEL);
    h.take_response(PBX, 487);
    assert!(
        !h.take(CARRIER)
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "CANCEL")),
        "no CANCEL before a provisional"
    );
    h.inject(CARRIER, &answer(&b_inv, 100, false));
    let c = h.take_request(CARRIER, "CANCEL");
    assert_cancels(&c, &b_inv);
    // The callee answers anyway: ACK and BYE, never an answered call.
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let methods: Vec<String> = h
        .take(CARRIER)
        .iter()
        .filter_map(|(m, _)| match m {
            Message::Request(r) => Some(r.method.as_str().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert!(h.take(PBX).is_empty(), "nothing reaches the caller");
    let answered = h
        .engine
        .metrics
        .calls_total
        .with_label_values(&["answered"])
        .get();
    assert_eq!(answered, 0);
    h.advance(Duration::from_secs(3));
    assert!(
        !h.cdr.iter().any(|c| matches!(
            c,
            CdrEvent::End {
                final_code: 200,
                ..
            }
        )),
        "{:?}",
        h.cdr
    );
}

/// A callee that rang, then ignores the CANCEL (neither 200 to it nor 487): its INVITE
/// transaction is destroyed 64*T1 after the CANCEL (RFC 3261 §9.1) instead of being kept
/// for ever once the provisional stopped timer B (found by the `engine_call` fuzz target).
#[test]
fn a_cancel_never_answered_does_not_keep_leg_bs_invite_for_ever() {
    let (mut h, b_inv) = calling();
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.inject(PBX, CANCEL);
    h.take_response(PBX, 487);
    let c = h.take_request(CARRIER, "CANCEL");
    assert_cancels(&c, &b_inv);
    h.advance(Duration::from_secs(120));
    assert_eq!(h.engine.call_count(), 0);
    assert!(
        h.engine.idle(),
        "leg B's INVITE still awaits its final response"
    );
    assert_eq!(h.engine.transaction_count(), 0);
}
