//! A `required` leg whose answer (or late offer) comes without acceptable crypto after
//! the first INVITE's answer: in a late offer's 2xx, in a re-INVITE's or UPDATE's 2xx,
//! in an ACK. veil never relays such SDP stripped: it refuses and ends the call.

use super::*;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

/// `sdp` as RTP/SAVP with one crypto line.
fn savp(ip: &str, port: u16, tag: &str) -> String {
    sdp(
        ip,
        port,
        "8",
        &format!("a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"),
    )
    .replace("RTP/AVP", "RTP/SAVP")
}

/// The tag veil gave AES_CM_128_HMAC_SHA1_80 in the offer `m`.
fn aes_tag(m: &Message) -> String {
    body(m)
        .lines()
        .find(|l| l.starts_with("a=crypto:") && l.contains("AES_CM_128_HMAC_SHA1_80"))
        .and_then(|l| l.strip_prefix("a=crypto:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no AES_CM_128_HMAC_SHA1_80 offered: {}", body(m)))
        .to_string()
}

fn requests(msgs: &[Message]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Request(r) => Some(r.method.as_str().to_string()),
            _ => None,
        })
        .collect()
}

/// Response codes, without 100 Trying.
fn codes(msgs: &[Message]) -> Vec<u16> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Response(r) if r.code > 100 => Some(r.code),
            _ => None,
        })
        .collect()
}

/// A call answered with SRTP by a `required` carrier; returns the 200 to the caller.
fn answered_srtp(h: &mut Harness) -> Response {
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "8", "")));
    let b_inv = h.take_request(CARRIER, "INVITE");
    let tag = aes_tag(&Message::Request(b_inv.clone()));
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, &savp("127.0.0.3", 7000, &tag)),
    );
    let ok = h.take_response(PBX, 200);
    h.take_request(CARRIER, "ACK");
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(PBX, &in_dialog("ACK", &to, "c1", 10, ""));
    assert_eq!(h.engine.call_count(), 1, "answered with SRTP");
    ok
}

/// Late offer: the `required` carrier's 2xx offers plain RTP. Leg B is ACKed and hung
/// up, the caller gets 488 (not a 200 with no SDP).
#[test]
fn late_offer_without_crypto_from_required_callee_is_refused() {
    let mut h = harness(&config("", "", ", srtp: required"));
    h.inject(PBX, &invite("c1", ""));
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(b_inv.body.is_empty(), "late offer towards the carrier");
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, &sdp("127.0.0.3", 7000, "8", "")),
    );
    let to_carrier = h.take_messages(CARRIER);
    assert_eq!(requests(&to_carrier), ["ACK", "BYE"]);
    let to_pbx = h.take_messages(PBX);
    assert_eq!(codes(&to_pbx), [488], "refused, no 200 to the caller");
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(h.engine.ports.in_use(), 0);
}

/// The caller sends `method` with a plain offer in an answered SRTP call; the `required`
/// carrier answers 200 without crypto. Returns what the carrier and the caller then got,
/// and the engine, to check that the call is gone.
fn crossed_answer_without_crypto(method: &str) -> (Harness, Vec<Message>, Vec<Message>) {
    let mut h = harness(&config("", "", ", srtp: required"));
    let ok = answered_srtp(&mut h);
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog(method, &to, "c1", 11, &sdp("127.0.0.2", 6002, "8", "")),
    );
    let offer = h.take_request(CARRIER, method);
    assert!(body(&Message::Request(offer.clone())).contains("RTP/SAVP"));
    h.inject(
        CARRIER,
        &answer(&offer, 200, &sdp("127.0.0.3", 7002, "8", "")),
    );
    let (to_carrier, to_pbx) = (h.take_messages(CARRIER), h.take_messages(PBX));
    (h, to_carrier, to_pbx)
}

/// A re-INVITE: the carrier's 2xx is ACKed, the caller gets 488, both legs are hung up.
#[test]
fn reinvite_answer_without_crypto_ends_the_call() {
    let (h, to_carrier, to_pbx) = crossed_answer_without_crypto("INVITE");
    assert_eq!(requests(&to_carrier), ["ACK", "BYE"]);
    assert_eq!(codes(&to_pbx), [488]);
    assert_eq!(requests(&to_pbx), ["BYE"]);
    assert_eq!(h.engine.call_count(), 0);
}

/// The same with UPDATE: no ACK, 488 to the caller, both legs hung up.
#[test]
fn update_answer_without_crypto_ends_the_call() {
    let (h, to_carrier, to_pbx) = crossed_answer_without_crypto("UPDATE");
    assert_eq!(requests(&to_carrier), ["BYE"]);
    assert_eq!(codes(&to_pbx), [488]);
    assert_eq!(requests(&to_pbx), ["BYE"]);
    assert_eq!(h.engine.call_count(), 0);
}

/// Late offer towards a `required` caller: veil's 200 offers it SRTP; the caller's ACK
/// answers plain. The carrier's 2xx is ACKed, then both legs are hung up.
#[test]
fn ack_answer_without_crypto_from_required_caller_ends_the_call() {
    let mut h = harness(&config("", ", srtp: required", ""));
    h.inject(PBX, &invite("c1", ""));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, &sdp("127.0.0.3", 7000, "8", "")),
    );
    let ok = h.take_response(PBX, 200);
    assert!(body(&Message::Response(ok.clone())).contains("RTP/SAVP"));
    assert!(
        h.take_messages(CARRIER).is_empty(),
        "leg B's ACK waits for the answer"
    );
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", &to, "c1", 10, &sdp("127.0.0.2", 6000, "8", "")),
    );
    let to_carrier = h.take_messages(CARRIER);
    assert_eq!(requests(&to_carrier), ["ACK", "BYE"]);
    assert_eq!(requests(&h.take_messages(PBX)), ["BYE"]);
    assert_eq!(h.engine.call_count(), 0);
}
