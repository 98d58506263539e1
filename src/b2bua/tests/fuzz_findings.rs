//! Findings of the engine_call fuzz target (issue 13), one test each: what a peer's odd
//! but parsable messages did to veil's own output or state.

use super::*;

fn with_sdp(msg: &str, content_type: &str, sdp: &str) -> String {
    msg.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    )
}

/// crash-704f…: a Record-Route entry without `;lr` is a strict router whose URI becomes
/// the Request-URI of veil's requests on the leg; one that is no SIP URI made veil send
/// an ACK and BYE it could not frame. Such a route set is ignored whole.
#[test]
fn an_unusable_record_route_never_becomes_the_request_uri() {
    for (n, rr) in ["\0\0\0\0 \0", "garbage", "<sip:>", "<tel:+4930123>"]
        .iter()
        .enumerate()
    {
        let mut h = Harness::new();
        let call_id = format!("rr-bad-{n}");
        h.inject(PBX, &invite_from_pbx(&call_id, "0123456"));
        let b_inv = h.take_request(CARRIER, "INVITE");
        let ok = answer(&b_inv, 200, true).replace(
            "Record-Route: <sip:127.0.0.3;lr>",
            &format!("Record-Route: {rr}"),
        );
        h.inject(CARRIER, &ok);
        let a_ok = h.take_response(PBX, 200);
        let ack = h.take_request(CARRIER, "ACK");
        assert_eq!(ack.uri.to_string(), "sip:bob@127.0.0.3:5060", "{rr:?}");
        assert!(ack.headers.get(&HeaderName::Route).is_none(), "{rr:?}");
        let a_to = a_ok.headers.get(&HeaderName::To).unwrap().to_string();
        let from = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
        h.inject(
            PBX,
            &in_dialog("BYE", from, &a_to, &call_id, 11, "127.0.0.2:5060"),
        );
        let bye = h.take_request(CARRIER, "BYE");
        assert_eq!(bye.uri.to_string(), "sip:bob@127.0.0.3:5060", "{rr:?}");
    }
}

/// crash-fd35…: a failure response's body crossed verbatim when its Content-Type was not
/// SDP (the callee's addresses with it), and was anchored as if it were an answer when it
/// was. A failure carries no offer/answer: it crosses without a body.
#[test]
fn a_failure_crosses_without_its_body() {
    let sdp = offer_sdp("127.0.0.3", 7000, "carriersecret");
    for (n, (code, content_type)) in [(486, "text/plain"), (488, "application/sdp")]
        .into_iter()
        .enumerate()
    {
        let mut h = Harness::new();
        h.inject(PBX, &invite_from_pbx(&format!("fail-body-{n}"), "0123456"));
        let b_inv = h.take_request(CARRIER, "INVITE");
        h.inject(
            CARRIER,
            &with_sdp(&answer(&b_inv, code, false), content_type, &sdp),
        );
        let got = h.take(PBX);
        let (r, text) = got
            .iter()
            .find(|(m, _)| matches!(m, Message::Response(r) if r.code == code))
            .unwrap_or_else(|| panic!("no {code} to the caller: {got:?}"));
        let Message::Response(r) = r else { continue };
        assert!(r.body.is_empty(), "{text}");
        assert!(r.headers.get(&HeaderName::ContentType).is_none(), "{text}");
        assert!(!text.contains("127.0.0.3"), "{text}");
        assert_eq!(h.ports_in_use(), 0, "nothing anchored for a failure");
    }
}
