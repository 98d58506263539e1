//! Findings of the engine_call fuzz target (issue 13), one test each: what a peer's odd
//! but parsable messages did to veil's own output or state.

use super::*;

/// The carrier's dialog identifiers for requests of its own on leg B: (From, To).
fn carrier_ids(b_inv: &Request) -> (String, String) {
    let from = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    (
        from,
        b_inv.headers.get(&HeaderName::From).unwrap().to_string(),
    )
}

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

/// crash-9b29…: the callee sent an INVITE in its leg's dialog before answering veil's;
/// veil forwarded it to the caller, whose 100 left it pending for ever. Before any tagged
/// response it names no dialog (481, RFC 3261 §12.2.2); in the early dialog, RFC 3261
/// §14.2: the callee gets 491 (veil's INVITE on its leg is in progress), the caller 500
/// with Retry-After (its own first INVITE has no final response yet); nothing crosses.
#[test]
fn an_invite_inside_an_unanswered_call_is_refused_not_forwarded() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("early-re", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.take(PBX);
    let (from, to) = carrier_ids(&b_inv);
    let call_id = b_inv.call_id().unwrap().to_string();
    let sdp = offer_sdp("127.0.0.3", 7002, "carriersecret");
    let b_re = |cseq| {
        let r = in_dialog("INVITE", &from, &to, &call_id, cseq, "127.0.0.3:5060");
        with_sdp(&r, "application/sdp", &sdp)
    };
    h.inject(CARRIER, &b_re(1));
    h.take_response(CARRIER, 481);
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    let ringing = h.take_response(PBX, 180);
    h.inject(CARRIER, &b_re(2));
    h.take_response(CARRIER, 491);
    assert!(h.take(PBX).is_empty(), "nothing reaches the caller");

    let a_to = ringing.headers.get(&HeaderName::To).unwrap().to_string();
    let a_from = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    let sdp = offer_sdp("127.0.0.2", 6002, "pbxsecret");
    let a_re = in_dialog("INVITE", a_from, &a_to, "early-re", 11, "127.0.0.2:5060");
    h.inject(PBX, &with_sdp(&a_re, "application/sdp", &sdp));
    let r = h.take_response(PBX, 500);
    let secs: u64 = r
        .headers
        .get(&HeaderName::RetryAfter)
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs <= 10);
    assert!(h.take(CARRIER).is_empty(), "nothing reaches the callee");

    // The call itself goes on.
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    h.take_response(PBX, 200);
    assert_eq!(h.engine.call_count(), 1);
}

/// The general case behind crash-9b29…: a re-INVITE veil forwarded got only 100 when the
/// call ended. Its sender gets 487 (RFC 3261 §15.1.2) and veil's INVITE a CANCEL, so
/// that its transaction ends 64·T1 later (§9.1) and the engine goes idle.
#[test]
fn a_forwarded_reinvite_left_at_100_is_settled_when_the_call_ends() {
    let (mut h, b_inv, _ok) = answered_call();
    let (from, to) = carrier_ids(&b_inv);
    let call_id = b_inv.call_id().unwrap().to_string();
    let sdp = offer_sdp("127.0.0.3", 7002, "carriersecret");
    let b_re = in_dialog("INVITE", &from, &to, &call_id, 2, "127.0.0.3:5060");
    h.inject(CARRIER, &with_sdp(&b_re, "application/sdp", &sdp));
    let a_re = h.take_request(PBX, "INVITE");
    h.inject(PBX, &answer(&a_re, 100, false));
    h.inject(
        CARRIER,
        &in_dialog("BYE", &from, &to, &call_id, 3, "127.0.0.3:5060"),
    );
    let to_carrier = h.take(CARRIER);
    for code in [200, 487] {
        assert!(
            to_carrier
                .iter()
                .any(|(m, _)| matches!(m, Message::Response(r) if r.code == code)),
            "no {code} to the callee: {to_carrier:?}"
        );
    }
    let to_pbx = h.take(PBX);
    let cancel = to_pbx
        .iter()
        .find_map(|(m, _)| match m {
            Message::Request(r) if r.method.as_str() == "CANCEL" => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no CANCEL of the re-INVITE: {to_pbx:?}"));
    assert_eq!(cancel.cseq().unwrap().seq, a_re.cseq().unwrap().seq);
    for (m, _) in &to_pbx {
        if let Message::Request(r) = m
            && r.method.as_str() == "BYE"
        {
            h.inject(PBX, &answer(r, 200, false));
        }
    }
    h.advance(Duration::from_secs(40));
    assert_eq!(h.engine.call_count(), 0);
    assert!(h.engine.idle(), "a client transaction was left waiting");
}

/// Found in the engine_call corpus once the others were fixed: a callee that rang again
/// after veil's CANCEL had that provisional disarm the 64·T1 deadline the CANCEL set
/// (RFC 3261 §9.1), so leg B's INVITE awaited its final response for ever.
#[test]
fn a_provisional_after_the_cancel_keeps_its_deadline() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("ring-on", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.take_response(PBX, 180);
    h.inject(PBX, "CANCEL sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxring-on\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: ring-on\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n");
    h.take_response(PBX, 487);
    let c = h.take_request(CARRIER, "CANCEL");
    h.inject(CARRIER, &answer(&c, 200, false));
    h.advance(Duration::from_secs(10));
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.advance(Duration::from_secs(120));
    assert_eq!(h.engine.call_count(), 0);
    assert!(h.engine.idle(), "{:?}", h.engine.awaiting_final());
}

/// Found in the engine_call corpus: a 2xx whose SDP said `v=` (no version) was anchored
/// and reached the caller with that line, as SDP nobody can read. SDP is `v=0` or none
/// (RFC 8866 §5.1): the answer is refused like any unusable one (488, leg B hung up).
#[test]
fn an_answer_without_sdp_version_0_is_refused() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("v-empty", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.take(PBX);
    let ok = answer(&b_inv, 200, false);
    let sdp = offer_sdp("127.0.0.3", 7000, "carriersecret").replace("v=0\r\n", "v=\r\n");
    h.inject(CARRIER, &with_sdp(&ok, "application/sdp", &sdp));
    let got = h.take(PBX);
    assert!(
        got.iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code == 488)),
        "{got:?}"
    );
    assert!(!got.iter().any(|(_, t)| t.contains("v=\r\n")), "{got:?}");
    h.take_request(CARRIER, "BYE");
}

/// Found by the long engine_call run (crash-7f38…): the callee sent an UPDATE with an
/// offer before any tagged response, veil forwarded it to the caller, and the answerless
/// 2xx that followed reached the caller as its INVITE's answer. A request naming no dialog
/// of leg B gets 481 (RFC 3261 §12.2.2); an UPDATE offer while veil's offer to the callee
/// is unanswered gets 491 (RFC 3311 §5.2). Nothing crosses.
#[test]
fn an_early_update_offer_from_the_callee_is_refused() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("early-update", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.take(PBX);
    let (from, to) = carrier_ids(&b_inv);
    let call_id = b_inv.call_id().unwrap().to_string();
    let sdp = offer_sdp("127.0.0.3", 7002, "carriersecret");
    let update = |cseq| {
        let u = in_dialog("UPDATE", &from, &to, &call_id, cseq, "127.0.0.3:5060");
        with_sdp(&u, "application/sdp", &sdp)
    };
    // No tagged response yet: no dialog.
    h.inject(CARRIER, &update(1));
    h.take_response(CARRIER, 481);
    // An early dialog (180 with the carrier's tag), no answer to veil's offer yet.
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.take_response(PBX, 180);
    h.inject(CARRIER, &update(2));
    h.take_response(CARRIER, 491);
    assert!(h.take(PBX).is_empty(), "nothing reaches the caller");
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    h.take_response(PBX, 200);
}

/// Found by the long engine_call run (crash-623c…): the callee's UPDATE carried its SDP
/// under an empty Content-Type; veil relayed the body as it came, the callee's addresses
/// with it. The body of an INVITE, UPDATE or PRACK is a session description, and veil
/// speaks only SDP: 415 with `Accept: application/sdp` (RFC 3261 §21.4.13).
#[test]
fn a_session_description_that_is_not_sdp_is_refused_415() {
    let (mut h, b_inv, _ok) = answered_call();
    let (from, to) = carrier_ids(&b_inv);
    let call_id = b_inv.call_id().unwrap().to_string();
    let sdp = offer_sdp("127.0.0.3", 7002, "carriersecret");
    for (cseq, method) in [(2, "UPDATE"), (3, "INVITE")] {
        let m = in_dialog(method, &from, &to, &call_id, cseq, "127.0.0.3:5060");
        h.inject(CARRIER, &with_sdp(&m, "text/plain", &sdp));
        let r = h.take_response(CARRIER, 415);
        assert_eq!(
            r.headers.get(&HeaderName::Accept),
            Some("application/sdp"),
            "{method}"
        );
        assert!(h.take(PBX).is_empty(), "{method} reached the caller");
    }
}

/// Found by the long engine_call run (crash-186a…, 6c0c…, 7b70…): the callee sent its SDP
/// in an unreliable 180, then a 2xx without SDP, which reached the caller without an
/// answer (RFC 3261 §13.2.1 wants it in the 2xx). The 2xx now repeats the SDP veil gave
/// the caller in the 180, same `o=` version.
#[test]
fn a_2xx_without_sdp_after_an_18x_with_sdp_repeats_it() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("early-sdp", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.take(PBX);
    h.inject(CARRIER, &answer(&b_inv, 180, true));
    let ringing = h.take_response(PBX, 180);
    assert!(!ringing.body.is_empty());
    h.inject(CARRIER, &answer(&b_inv, 200, false));
    let ok = h.take_response(PBX, 200);
    assert_eq!(ok.body, ringing.body);
    assert_eq!(ok.content_type(), Some("application/sdp"));
    h.take_request(CARRIER, "ACK");
}

/// Found by the long engine_call run (crash-1384…, bcd7…): the callee's 183 to a
/// forwarded OPTIONS carried SDP without a Content-Type, relayed as it came with the
/// callee's addresses. A response body crosses only as SDP veil anchored, in the answer
/// to an INVITE, UPDATE or PRACK; any other crosses without its body.
#[test]
fn a_response_body_veil_cannot_anchor_stays_on_its_leg() {
    let (mut h, _b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    let sdp = offer_sdp("127.0.0.3", 7002, "carriersecret");
    for (cseq, code, content_type) in [(11, 183, ""), (12, 200, "application/sdp")] {
        h.inject(
            PBX,
            &in_dialog("OPTIONS", from, &to_hdr, "a-call-1", cseq, "127.0.0.2:5060"),
        );
        let b_opt = h.take_request(CARRIER, "OPTIONS");
        let resp = answer(&b_opt, code, false).replace(
            "Content-Length: 0\r\n\r\n",
            &format!("{content_type}Content-Length: {}\r\n\r\n{sdp}", sdp.len()).replacen(
                "application/sdp",
                "Content-Type: application/sdp\r\n",
                1,
            ),
        );
        h.inject(CARRIER, &resp);
        let r = h.take_response(PBX, code);
        assert!(r.body.is_empty(), "{code}: {r:?}");
        assert!(r.headers.get(&HeaderName::ContentType).is_none(), "{code}");
    }
}
