//! CANCEL of a pending re-INVITE (RFC 3261 §9): 200 to the CANCEL, CANCEL on the other
//! leg (once it has answered provisionally), 487 back to the sender, and the call keeps its
//! previous media.

use super::*;
use crate::media::Side;

const FROM: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";

/// An answered, confirmed call; the PBX re-INVITEs to move its media to port 6002.
fn reinvite_pending() -> (Harness, String, Request) {
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
    h.media.clear();
    h.inject(PBX, &reinvite);
    let b_re = h.take_request(CARRIER, "INVITE");
    (h, to_hdr, b_re)
}

/// The PBX's CANCEL: same branch and CSeq number as its re-INVITE.
fn cancel(to_hdr: &str) -> String {
    in_dialog("CANCEL", FROM, to_hdr, "a-call-1", 12, "127.0.0.2:5060")
        .replace("branch=z9hG4bKCANCEL12", "branch=z9hG4bKINVITE12")
}

fn a_remote_ports(h: &Harness) -> Vec<u16> {
    h.media
        .iter()
        .filter_map(|c| match c {
            MediaCommand::SetRemote {
                side: Side::A,
                rtp: Some(a),
                ..
            } => Some(a.port()),
            _ => None,
        })
        .collect()
}

fn expect_cancel_and_487(h: &mut Harness, b_re: &Request) {
    let c = h.take_request(CARRIER, "CANCEL");
    assert_eq!(c.cseq().unwrap().seq, b_re.cseq().unwrap().seq);
    assert_eq!(
        c.top_via().unwrap().branch(),
        b_re.top_via().unwrap().branch()
    );
    h.inject(CARRIER, &answer(&c, 200, false));
    h.inject(CARRIER, &answer(b_re, 487, false));
    h.take_request(CARRIER, "ACK");
    let r = h.take_response(PBX, 487);
    assert_eq!(r.cseq().unwrap().seq, 12);
    // The relay is back on the PBX's media from before the re-INVITE.
    assert_eq!(a_remote_ports(h).last(), Some(&6000), "{:?}", h.media);
    assert_eq!(h.engine.call_count(), 1, "the call goes on");
}

#[test]
fn cancel_of_a_ringing_reinvite_crosses_and_restores_media() {
    let (mut h, to_hdr, b_re) = reinvite_pending();
    assert_eq!(a_remote_ports(&h), [6002], "the offer moved the relay");
    h.inject(CARRIER, &answer(&b_re, 100, false));
    h.inject(PBX, &cancel(&to_hdr));
    let ok = h.take_response(PBX, 200);
    assert_eq!(ok.cseq().unwrap().seq, 12);
    expect_cancel_and_487(&mut h, &b_re);
}

#[test]
fn cancel_before_any_provisional_waits_for_the_first() {
    let (mut h, to_hdr, b_re) = reinvite_pending();
    h.inject(PBX, &cancel(&to_hdr));
    h.take_response(PBX, 200);
    assert!(
        !h.take(CARRIER)
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "CANCEL")),
        "no CANCEL before a provisional"
    );
    h.inject(CARRIER, &answer(&b_re, 180, false));
    expect_cancel_and_487(&mut h, &b_re);
}
