//! The leak guard in the engine: leaky paths (a default-allowed header naming the other
//! leg, an RTCP CNAME in SDP, a policy-allowed header) are caught; the message leaves
//! without the offending part and `veil_leak_guard_hits_total` counts it.

use super::*;
use crate::sip::{HeaderName, SipHeaders};

fn hits(h: &Harness, kind: &str) -> u64 {
    h.engine
        .metrics
        .leak_guard_hits
        .with_label_values(&[kind])
        .get()
}

/// The PBX's INVITE with a leaky Subject (allowed across by default) and an RTCP CNAME
/// naming the PBX in its SDP.
fn leaky_invite() -> String {
    let sdp = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=ssrc:4242 cname:alice@pbx-17.internal\r\n";
    format!(
        "INVITE sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxleak\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: leak-call-1\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@127.0.0.2:5060>\r\nSubject: transferred from leak-call-1\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn leaky_header_and_cname_are_removed_before_leg_b() {
    let mut h = Harness::new();
    h.allow_leak_hits = true;
    h.inject(PBX, &leaky_invite());
    let b_inv = h.take_request(CARRIER, "INVITE");
    let text = String::from_utf8_lossy(&b_inv.to_bytes()).to_string();
    assert!(b_inv.headers.get(&HeaderName::Subject).is_none(), "{text}");
    let body = std::str::from_utf8(&b_inv.body).unwrap();
    // The SDP rewriter replaces the CNAME with veil's own for leg B; the guard is the
    // second line of defence (its CNAME matching: `leak_guard::tests`).
    assert!(!body.contains("alice@"), "{body}");
    assert!(!body.contains("pbx-17.internal"), "{body}");
    assert!(body.contains("m=audio"), "SDP still valid: {body}");
    assert_eq!(hits(&h, "call_id"), 1);
}

#[test]
fn leaky_header_in_a_response_is_removed_before_leg_a() {
    let mut h = Harness::new();
    h.allow_leak_hits = true;
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.take_response(PBX, 180);
    // The carrier names its own dialog (its tag) in a header veil copies by default.
    let ok = answer(&b_inv, 200, true).replacen(
        "Server:",
        "Reason: SIP;cause=200;text=\"carriertag\"\r\nServer:",
        1,
    );
    h.inject(CARRIER, &ok);
    let ok = h.take_response(PBX, 200);
    assert!(ok.headers.get(&HeaderName::Reason).is_none());
    assert_eq!(hits(&h, "tag"), 1);
}

#[test]
fn policy_allowed_header_naming_the_other_leg_is_removed() {
    let config = CONFIG.replace(
        "sources: [127.0.0.2/32]}",
        "sources: [127.0.0.2/32], headers: {allow: [User-Agent, X-Secret]}}",
    );
    let mut h = Harness::with(&config, POLICY);
    h.allow_leak_hits = true;
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    // X-Secret ("topology") names nothing of leg A and crosses as configured.
    assert_eq!(
        b_inv.headers.get(&HeaderName::Other("X-Secret".into())),
        Some("topology")
    );
    assert!(b_inv.headers.get(&HeaderName::UserAgent).is_none());
    assert_eq!(hits(&h, "user_agent"), 1);
}

#[test]
fn switched_off_the_guard_lets_the_leak_through() {
    let config = CONFIG.replace("sip:\n", "sip:\n  leak_guard: false\n");
    let mut h = Harness::with(&config, POLICY);
    h.inject(PBX, &leaky_invite());
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(b_inv.headers.get(&HeaderName::Subject).is_some());
    assert_eq!(hits(&h, "call_id"), 0);
}

#[test]
fn a_whole_call_with_reinvite_and_bye_has_no_hits() {
    let (mut h, b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from_hdr = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    h.inject(
        PBX,
        &in_dialog("ACK", from_hdr, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    // The callee re-INVITEs, then hangs up; every message is checked both ways.
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let bye = in_dialog(
        "BYE",
        &b_to,
        &b_from,
        b_inv.call_id().unwrap(),
        5,
        "127.0.0.3:5060",
    );
    h.inject(CARRIER, &bye);
    h.take_response(CARRIER, 200);
    let a_bye = h.take_request(PBX, "BYE");
    h.inject(PBX, &super::answer(&a_bye, 200, false));
    assert_eq!(h.engine.call_count(), 0);
}
