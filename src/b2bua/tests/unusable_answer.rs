//! An answer veil cannot anchor (issue 13, item 3) is refused, never forwarded with an
//! empty body: an initial 2xx gets ACK and BYE on leg B and the caller 488 (502 when there
//! is no SDP at all); a re-INVITE 2xx is ACKed, its offerer gets 488 and the call stays;
//! an ACK carrying such an answer ends the call (`error`).

use super::*;

const NO_C: &str =
    "v=0\r\no=callee 1 1 IN IP4 127.0.0.3\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";
const GARBAGE: &str = "this is no session description\r\n";

/// The callee's response to `req` with `body` of `content_type`.
fn with_body(req: &Request, code: u16, content_type: &str, body: &str) -> String {
    let mut out = response_head(req, code);
    if body.is_empty() {
        out.push_str("Content-Length: 0\r\n\r\n");
    } else {
        out.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    out
}

fn requests(msgs: &[(Message, String)]) -> Vec<String> {
    msgs.iter()
        .filter_map(|(m, _)| match m {
            Message::Request(r) => Some(r.method.as_str().to_string()),
            _ => None,
        })
        .collect()
}

fn finals(msgs: &[(Message, String)]) -> Vec<u16> {
    msgs.iter()
        .filter_map(|(m, _)| match m {
            Message::Response(r) if r.code >= 200 => Some(r.code),
            _ => None,
        })
        .collect()
}

fn ended(h: &Harness) -> Vec<(u16, String)> {
    h.cdr
        .iter()
        .filter_map(|e| match e {
            CdrEvent::End {
                final_code,
                end_reason,
                ..
            } => Some((*final_code, end_reason.clone())),
            _ => None,
        })
        .collect()
}

/// The initial 2xx of leg B carries `content_type`/`body`: the caller gets `code`, leg B
/// ACK and BYE, the CDR that final code.
fn initial_answer_refused(content_type: &str, body: &str, code: u16) {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &with_body(&b_inv, 200, content_type, body));
    let to_a = h.take(PBX);
    assert_eq!(finals(&to_a), vec![code], "{to_a:?}");
    assert!(
        !to_a
            .iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code == 200)),
        "an unusable answer crossed as 200"
    );
    assert_eq!(requests(&h.take(CARRIER)), ["ACK", "BYE"]);
    h.advance(Duration::from_secs(5));
    assert_eq!(ended(&h), vec![(code, "failed".to_string())]);
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn initial_2xx_with_unreadable_sdp_is_refused_488() {
    initial_answer_refused("application/sdp", GARBAGE, 488);
}

#[test]
fn initial_2xx_whose_stream_has_no_connection_line_is_refused_488() {
    initial_answer_refused("application/sdp", NO_C, 488);
}

#[test]
fn initial_2xx_with_a_body_that_is_not_sdp_is_refused_502() {
    initial_answer_refused("text/plain", "hello", 502);
}

#[test]
fn initial_2xx_without_the_answer_is_refused_502() {
    initial_answer_refused("", "", 502);
}

#[test]
fn initial_2xx_without_sdp_after_an_early_answer_goes_through() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 183, true));
    h.take_response(PBX, 183);
    h.inject(CARRIER, &with_body(&b_inv, 200, "", ""));
    h.take_response(PBX, 200);
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn reinvite_2xx_with_unusable_sdp_is_acked_refused_488_and_the_call_stays() {
    let (mut h, b_inv, ok) = answered_call();
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    h.inject(
        PBX,
        &in_dialog("ACK", from, &to, "a-call-1", 10, "127.0.0.2:5060"),
    );
    h.take(CARRIER);
    let sdp = offer_sdp("127.0.0.2", 6002, "pbxsecret");
    let reinvite = in_dialog("INVITE", from, &to, "a-call-1", 11, "127.0.0.2:5060").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(PBX, &reinvite);
    let b_re = h.take_request(CARRIER, "INVITE");
    assert_eq!(b_re.call_id().unwrap(), b_inv.call_id().unwrap());
    h.inject(CARRIER, &with_body(&b_re, 200, "application/sdp", NO_C));
    assert_eq!(requests(&h.take(CARRIER)), ["ACK"]);
    let to_a = h.take(PBX);
    assert_eq!(finals(&to_a), vec![488], "{to_a:?}");
    assert_eq!(
        h.engine.call_count(),
        1,
        "the call stays on its previous media"
    );
    assert!(ended(&h).is_empty());
}

#[test]
fn ack_with_an_unusable_answer_ends_the_call_with_error() {
    let mut h = Harness::new();
    // A late offer: the caller's INVITE has no SDP; the callee offers in its 2xx and the
    // caller answers in the ACK.
    let invite = invite_from_pbx("a-call-1", "0123456");
    let head = invite.split("Content-Type:").next().unwrap().to_string();
    h.inject(PBX, &format!("{head}Content-Length: 0\r\n\r\n"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(b_inv.body.is_empty(), "late offer crossed as late offer");
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    assert!(!ok.body.is_empty(), "the callee's offer reaches the caller");
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    let ack = in_dialog("ACK", from, &to, "a-call-1", 10, "127.0.0.2:5060").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{GARBAGE}",
            GARBAGE.len()
        ),
    );
    h.inject(PBX, &ack);
    assert_eq!(requests(&h.take(CARRIER)), ["ACK", "BYE"]);
    assert_eq!(requests(&h.take(PBX)), ["BYE"]);
    h.advance(Duration::from_secs(5));
    assert_eq!(ended(&h), vec![(200, "error".to_string())]);
}
