//! Hostile numeric values from peers (issue 13): 20-digit Retry-After and Session-Expires
//! must neither panic the engine nor be trusted raw.

use std::time::Duration;

use super::*;
use crate::sip::{HeaderName, Message, Request};

const PBX_FROM: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
const HUGE: &str = "18446744073709551615";

/// Answered call whose callee's 2xx carries `answer_extra`; ACKed by the caller.
fn call_with(h: &mut Harness, invite_extra: &str, answer_extra: &str) -> (Request, String) {
    let invite = invite_from_pbx("a-call-1", "0123456").replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{invite_extra}"),
    );
    h.inject(PBX, &invite);
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, true).replace("Server:", &format!("{answer_extra}Server:")),
    );
    let ok = h.take_response(PBX, 200);
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", PBX_FROM, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    h.take(CARRIER);
    (b_inv, to_hdr)
}

/// Requests veil sent to `to` (retransmissions folded: one per CSeq and method).
fn requests_to(h: &mut Harness, to: &str) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    for (m, _) in h.take(to) {
        if let Message::Request(r) = m {
            let key = |q: &Request| q.headers.get(&HeaderName::CSeq).map(str::to_string);
            if !out.iter().any(|o| key(o) == key(&r)) {
                out.push(r);
            }
        }
    }
    out
}

#[test]
fn retry_after_of_twenty_digits_rests_the_target_at_most_an_hour() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    let r503 =
        answer(&b_inv, 503, false).replace("Server:", &format!("Retry-After: {HUGE}\r\nServer:"));
    h.inject(CARRIER, &r503);
    let b2 = h.take_request(BACKUP, "INVITE");
    h.inject(
        BACKUP,
        &answer(&b2, 200, true).replace("127.0.0.3", "127.0.0.4"),
    );
    h.take_response(PBX, 200);
    h.take(CARRIER);
    // Past sip.max_retry_after (1h) the carrier is used again.
    h.advance(Duration::from_secs(3601));
    h.take(CARRIER);
    h.take(PBX);
    h.take(BACKUP);
    h.inject(PBX, &invite_from_pbx("a-call-2", "0123456"));
    h.take_request(CARRIER, "INVITE");
}

#[test]
fn session_expires_of_twenty_digits_in_the_2xx_is_lowered_to_the_offer() {
    let mut h = Harness::new();
    let (b_inv, _) = call_with(
        &mut h,
        "",
        &format!("Session-Expires: {HUGE};refresher=uac\r\n"),
    );
    assert_eq!(b_inv.headers.get(&HeaderName::SessionExpires), Some("1800"));
    // Lowered to the 1800 s veil offered: veil refreshes leg B at half of it.
    h.advance(Duration::from_secs(901));
    let to_b = requests_to(&mut h, CARRIER);
    assert_eq!(to_b.len(), 1, "refresh at 900 s, not never");
    assert_eq!(
        to_b[0].headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uac")
    );
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn session_expires_of_twenty_digits_in_a_refresh_answer_is_lowered() {
    let mut h = Harness::new();
    call_with(&mut h, "", "");
    h.advance(Duration::from_secs(901));
    let to_b = requests_to(&mut h, CARRIER);
    for r in requests_to(&mut h, PBX) {
        h.inject(PBX, &answer(&r, 200, false));
    }
    let refresh = to_b.iter().find(|r| r.method.as_str() == "INVITE").unwrap();
    h.inject(
        CARRIER,
        &answer(refresh, 200, false).replace(
            "Server:",
            &format!("Session-Expires: {HUGE};refresher=uac\r\nServer:"),
        ),
    );
    h.take_request(CARRIER, "ACK");
    h.advance(Duration::from_secs(901));
    let again = requests_to(&mut h, CARRIER);
    assert!(
        again.iter().any(|r| r.method.as_str() == "INVITE"),
        "next refresh after 900 s again"
    );
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn session_expires_of_twenty_digits_in_an_in_dialog_update_is_lowered() {
    let mut h = Harness::new();
    let (_, to_hdr) = call_with(&mut h, "Supported: timer\r\nSession-Expires: 1800\r\n", "");
    let update = in_dialog(
        "UPDATE",
        PBX_FROM,
        &to_hdr,
        "a-call-1",
        11,
        "127.0.0.2:5060",
    )
    .replace(
        "Content-Length: 0\r\n",
        &format!("Session-Expires: {HUGE};refresher=uac\r\nContent-Length: 0\r\n"),
    );
    h.inject(PBX, &update);
    let r = h.take_response(PBX, 200);
    assert_eq!(
        r.headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uac"),
        "answered with the peer's value lowered"
    );
    // The caller refreshes; without a refresh the session ends within 1800 s.
    h.advance(Duration::from_secs(1800));
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn session_expires_of_twenty_digits_in_an_in_dialog_reinvite_is_lowered() {
    let mut h = Harness::new();
    let (_, to_hdr) = call_with(&mut h, "Supported: timer\r\nSession-Expires: 1800\r\n", "");
    let reinvite = in_dialog(
        "INVITE",
        PBX_FROM,
        &to_hdr,
        "a-call-1",
        11,
        "127.0.0.2:5060",
    )
    .replace(
        "Content-Length: 0\r\n",
        &format!("Session-Expires: {HUGE};refresher=uac\r\nContent-Length: 0\r\n"),
    );
    h.inject(PBX, &reinvite);
    let r = h.take_response(PBX, 200);
    assert_eq!(
        r.headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uac")
    );
    h.inject(
        PBX,
        &in_dialog("ACK", PBX_FROM, &to_hdr, "a-call-1", 11, "127.0.0.2:5060"),
    );
    h.advance(Duration::from_secs(1800));
    assert_eq!(h.engine.call_count(), 0);
}

/// RFC 4566 §5.7: an offer whose active stream has no c= line (session or media level) is
/// answered 488; veil does not invent a connection address for it (issue 13).
#[test]
fn offer_without_connection_line_is_refused_488() {
    let mut h = Harness::new();
    let invite = invite_from_pbx("no-c-1", "0123456").replace("c=IN IP4 127.0.0.2\r\n", "");
    let invite = fix_length(&invite);
    h.inject(PBX, &invite);
    h.take_response(PBX, 488);
    assert!(
        h.take(CARRIER).is_empty(),
        "nothing may be offered to the carrier"
    );
}

/// A disabled stream (port 0) needs no c= line: such an offer still goes through.
#[test]
fn disabled_stream_without_connection_line_is_fine() {
    let mut h = Harness::new();
    let invite = invite_from_pbx("no-c-2", "0123456")
        .replace("t=0 0\r\n", "t=0 0\r\nm=video 0 RTP/AVP 96\r\n");
    // Move the session-level c= into the audio section; the video section has none.
    let invite = invite
        .replace("c=IN IP4 127.0.0.2\r\n", "")
        .replace("a=rtpmap:101", "c=IN IP4 127.0.0.2\r\na=rtpmap:101");
    let invite = fix_length(&invite);
    h.inject(PBX, &invite);
    h.take_request(CARRIER, "INVITE");
}

/// Content-Length of a hand-edited message.
fn fix_length(msg: &str) -> String {
    let (head, body) = msg.split_once("\r\n\r\n").unwrap();
    let head: String = head
        .lines()
        .map(|l| {
            if l.starts_with("Content-Length:") {
                format!("Content-Length: {}", body.len())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    format!("{head}\r\n\r\n{body}")
}
