//! Identification at the edge: two trunks on one address told apart by source port and
//! by arrival listener (issue 14 item 8), and the per-peer message valve (issue 15).

use super::*;

/// The harness config with a fourth peer, `trunk2`, on the PBX's address.
fn two_trunks(pbx_sources: &str, trunk2_sources: &str, listeners: &str) -> Harness {
    let cfg = CONFIG
        .replace(
            "    - {name: public, transport: udp, address: 127.0.0.1:5060}\n",
            &format!("    - {{name: public, transport: udp, address: 127.0.0.1:5060}}\n{listeners}"),
        )
        .replace("trusted: true, sources: [127.0.0.2/32]}", &format!("trusted: true, sources: {pbx_sources}}}"))
        // Last: the harness resolves the first three peers to PBX, CARRIER and BACKUP.
        .replace(
            "sources: [127.0.0.4/32]}\n",
            &format!("sources: [127.0.0.4/32]}}\n  - {{name: trunk2, address: 127.0.0.2:5070, sources: {trunk2_sources}}}\n"),
        );
    let policy = POLICY.replace(
        "  - name: in\n",
        "  - name: trunk2-out\n    when: {from_peer: trunk2}\n    then: {route: [backup]}\n  - name: in\n",
    );
    Harness::with(&cfg, &policy)
}

/// An INVITE as the PBX's, sent from `from` (its Via names it) on `listener`.
fn invite_on(h: &mut Harness, from: &str, listener: usize, call_id: &str) {
    let text = invite_from_pbx(call_id, "0123456")
        .replace("127.0.0.2:5060;branch", &format!("{from};branch"));
    let flow = Flow {
        listener,
        transport: Transport::Udp,
        remote: from.parse().unwrap(),
        conn: None,
    };
    h.engine.handle_input(
        Input::Sip {
            data: text.as_bytes(),
            flow,
        },
        h.now,
    );
    h.collect();
}

#[test]
fn two_trunks_on_one_address_told_apart_by_source_port() {
    let mut h = two_trunks("[\"127.0.0.2:5060\"]", "[\"127.0.0.2:5070\"]", "");
    invite_on(&mut h, "127.0.0.2:5060", 0, "via-pbx");
    let inv = h.take_request(CARRIER, "INVITE");
    assert!(
        h.take(BACKUP).is_empty(),
        "the PBX's call went to the carrier only"
    );
    invite_on(&mut h, "127.0.0.2:5070", 0, "via-trunk2");
    h.take_request(BACKUP, "INVITE");
    assert!(
        h.take(CARRIER).is_empty(),
        "trunk2's call went to the backup only"
    );
    // A third port of that address is no peer.
    invite_on(&mut h, "127.0.0.2:5080", 0, "via-nobody");
    h.take_response("127.0.0.2:5080", 403);
    assert_eq!(h.engine.call_count(), 2);

    // The PBX's dialog is bound to its port: trunk2 may not end it (481: a peer, not the
    // leg's), the PBX may.
    h.inject(CARRIER, &answer(&inv, 200, true));
    let ok = h.take_response(PBX, 200);
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from = ok.headers.get(&HeaderName::From).unwrap().to_string();
    let bye = |via: &str, cseq| in_dialog("BYE", &from, &to, "via-pbx", cseq, via);
    h.inject("127.0.0.2:5070", &bye("127.0.0.2:5070", 20));
    h.take_response("127.0.0.2:5070", 481);
    assert!(
        h.take(CARRIER)
            .iter()
            .all(|(m, _)| !matches!(m, Message::Request(r) if r.method.as_str() == "BYE"))
    );
    h.inject(PBX, &bye("127.0.0.2:5060", 21));
    h.take_request(CARRIER, "BYE");
}

#[test]
fn a_trunk_bound_to_a_listener_owns_what_arrives_there() {
    let mut h = two_trunks(
        "[127.0.0.2/32]",
        "[{address: 127.0.0.2, listen: trunks}]",
        "    - {name: trunks, transport: udp, address: 127.0.0.1:5080}\n",
    );
    // Same source address and port; only the listener differs.
    invite_on(&mut h, "127.0.0.2:5060", 1, "on-trunks");
    h.take_request(BACKUP, "INVITE");
    assert!(h.take(CARRIER).is_empty());
    invite_on(&mut h, "127.0.0.2:5060", 0, "on-public");
    h.take_request(CARRIER, "INVITE");
    assert!(h.take(BACKUP).is_empty());
}

fn dropped(h: &Harness, reason: &str) -> u64 {
    h.engine
        .metrics
        .sip_dropped
        .with_label_values(&[reason])
        .get()
}

#[test]
fn message_valve_drops_excess_answers_new_invites_503_and_never_bans() {
    let cfg = CONFIG.replace(
        "trusted: true, sources: [127.0.0.2/32]}",
        "trusted: true, sources: [127.0.0.2/32], limits: {messages_per_second: 10, messages_burst: 10}}",
    );
    let mut h = Harness::with_config(&cfg);
    // One call up (INVITE and its ACK use two of the ten), then the bucket refills.
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from = ok.headers.get(&HeaderName::From).unwrap().to_string();
    h.inject(PBX, &in_dialog("ACK", &from, &to, "a-call-1", 10, PBX));
    h.advance(Duration::from_secs(2));
    h.sent.clear();

    // A loop: 30 new INVITEs at one instant. New requests may use half the burst (5).
    for i in 0..30 {
        h.inject(PBX, &invite_from_pbx(&format!("loop-{i}"), "x"));
    }
    let got = h.take(PBX);
    let code = |c| {
        got.iter()
            .filter(|(m, _)| matches!(m, Message::Response(r) if r.code == c))
            .count()
    };
    assert_eq!(code(403), 5, "five new INVITEs reach the policy");
    assert_eq!(code(503), 25, "the rest get 503");
    assert!(
        got.iter()
            .all(|(m, t)| !matches!(m, Message::Response(r) if r.code == 503)
                || t.contains("\r\nRetry-After: 1\r\n"))
    );
    assert_eq!(dropped(&h, "peer_rate"), 25);
    // Over the rate, other requests are dropped unanswered.
    let options = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKopt\r\nMax-Forwards: 70\r\nFrom: <sip:p@127.0.0.2>;tag=o\r\nTo: <sip:127.0.0.1>\r\nCall-ID: opt\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    h.inject(PBX, options);
    assert!(h.take(PBX).is_empty());
    assert_eq!(dropped(&h, "peer_rate"), 26);

    // The established call is still served from the reserve: its BYE crosses.
    h.inject(PBX, &in_dialog("BYE", &from, &to, "a-call-1", 11, PBX));
    h.take_response(PBX, 200);
    h.take_request(CARRIER, "BYE");

    // Never banned, never a strike; a second later the PBX is served again.
    assert!(h.engine.bans(h.now).is_empty());
    assert_eq!(dropped(&h, "banned") + dropped(&h, "rate_limited"), 0);
    h.advance(Duration::from_secs(1));
    h.inject(PBX, options);
    h.take_response(PBX, 200);
    // Other peers have their own bucket.
    h.inject(CARRIER, &options.replace("127.0.0.2", "127.0.0.3"));
    h.take_response(CARRIER, 200);
}
