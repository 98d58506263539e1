//! Every client transaction of veil's has one owner (`owner.rs`): its responses go there,
//! a 2xx retransmission of an ACKed re-INVITE gets the same ACK again, an abandoned INVITE
//! is cancelled on its first provisional response, and once the calls have ended nothing
//! of them stays in the routing maps.

use super::*;

const FROM_A: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";

fn nothing_left(h: &mut Harness) {
    h.advance(Duration::from_secs(180));
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(h.engine.transaction_count(), 0);
    assert_eq!(h.engine.call_routing_entries(), 0, "routing maps emptied");
    assert!(h.engine.idle());
}

fn requests(h: &mut Harness, to: &str) -> Vec<String> {
    h.take(to)
        .into_iter()
        .filter_map(|(m, _)| match m {
            Message::Request(r) => Some(r.method.as_str().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_reinvite_2xx_again_gets_the_same_ack_and_the_ended_call_leaves_no_owner() {
    let (mut h, _, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", FROM_A, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    let sdp = offer_sdp("127.0.0.2", 6002, "pbxsecret");
    let reinvite = in_dialog("INVITE", FROM_A, &to_hdr, "a-call-1", 12, "127.0.0.2:5060").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(PBX, &reinvite);
    let b_re = h.take_request(CARRIER, "INVITE");
    let ok_re = answer(&b_re, 200, true);
    h.inject(CARRIER, &ok_re);
    let ack = h.take_request(CARRIER, "ACK");
    h.take_response(PBX, 200);
    h.inject(
        PBX,
        &in_dialog("ACK", FROM_A, &to_hdr, "a-call-1", 12, "127.0.0.2:5060"),
    );
    // The callee did not get the ACK and sends its 2xx again: the same ACK again, and
    // nothing crosses to the caller.
    h.inject(CARRIER, &ok_re);
    let again = h.take_request(CARRIER, "ACK");
    assert_eq!(again.to_bytes(), ack.to_bytes(), "the same ACK");
    assert!(h.take(PBX).is_empty(), "a retransmission does not cross");
    h.inject(
        PBX,
        &in_dialog("BYE", FROM_A, &to_hdr, "a-call-1", 13, "127.0.0.2:5060"),
    );
    let bye = h.take_request(CARRIER, "BYE");
    h.inject(CARRIER, &answer(&bye, 200, false));
    nothing_left(&mut h);
}

#[test]
fn an_attempt_abandoned_before_its_first_provisional_is_cancelled_on_it() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("c2", "0123456"));
    let first = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&first, 503, false));
    let second = h.take_request(BACKUP, "INVITE");
    // The caller gives up before the backup said anything: no CANCEL may go yet.
    let cancel = "CANCEL sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxc2\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: c2\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n";
    h.inject(PBX, cancel);
    h.take(PBX);
    assert_eq!(h.engine.call_count(), 0, "the call is over for the caller");
    assert!(
        requests(&mut h, BACKUP).is_empty(),
        "no CANCEL before a provisional"
    );
    let backup = |s: String| s.replace("127.0.0.3", "127.0.0.4");
    h.inject(BACKUP, &backup(answer(&second, 100, false)));
    let c = h.take_request(BACKUP, "CANCEL");
    assert_eq!(c.call_id().unwrap(), second.call_id().unwrap());
    h.inject(BACKUP, &backup(answer(&c, 200, false)));
    h.inject(BACKUP, &backup(answer(&second, 487, false)));
    assert_eq!(requests(&mut h, BACKUP), ["ACK"]);
    assert!(h.take(PBX).is_empty(), "nothing more for the caller");
    nothing_left(&mut h);
}

#[test]
fn a_refused_answer_leaves_no_owner_once_its_transaction_is_over() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("c3", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    // A 2xx without the answer: refused (ACK and BYE leg B, 502 to the caller). Its
    // INVITE stays owned for the 2xx's retransmissions, until its transaction is over.
    h.inject(CARRIER, &answer(&b_inv, 200, false));
    assert_eq!(requests(&mut h, CARRIER), ["ACK", "BYE"]);
    h.take_response(PBX, 502);
    nothing_left(&mut h);
}
