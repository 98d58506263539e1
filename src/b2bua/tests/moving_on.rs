//! Leg B INVITEs the call has moved on from: an attempt abandoned for the next target
//! (ring timeout) is cancelled and its late answer hung up; an extra 2xx fork after the
//! answer is ACKed and hung up in its own dialog. And hanging up does not scale with the
//! number of calls held.

use super::*;

/// The test config with a ring timeout shorter than Timer B (32 s).
fn short_ring() -> Harness {
    let cfg = CONFIG.replace(
        "    - {name: public, transport: udp, address: 127.0.0.1:5060}",
        "    - {name: public, transport: udp, address: 127.0.0.1:5060}\n  timers: {invite_timeout: 10s}",
    );
    Harness::with(&cfg, POLICY)
}

fn requests(sent: &[(Message, String)]) -> Vec<String> {
    sent.iter()
        .filter_map(|(m, _)| match m {
            Message::Request(r) => Some(r.method.as_str().to_string()),
            _ => None,
        })
        .collect()
}

fn from_backup(resp: String) -> String {
    resp.replace("127.0.0.3", "127.0.0.4")
}

/// The abandoned carrier INVITE answers anyway: ACK and BYE in its dialog, caller unaware.
fn expect_late_answer_hung_up(h: &mut Harness, b_inv: &Request) {
    h.take(CARRIER); // INVITE retransmissions
    h.inject(CARRIER, &answer(b_inv, 200, true));
    let sent = h.take(CARRIER);
    assert_eq!(requests(&sent), ["ACK", "BYE"], "{sent:?}");
    for (m, _) in &sent {
        let Message::Request(r) = m else { continue };
        assert_eq!(r.call_id().unwrap(), b_inv.call_id().unwrap());
        assert!(r.to_hdr().unwrap().tag() == Some("carriertag"));
    }
    assert!(
        !h.take(PBX)
            .iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code == 200)),
        "the abandoned attempt's answer does not reach the caller"
    );
}

#[test]
fn ring_timeout_cancels_the_ringing_attempt_and_hangs_up_its_late_answer() {
    let mut h = short_ring();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.take_response(PBX, 180);
    h.advance(Duration::from_secs(11));
    let c = h.take_request(CARRIER, "CANCEL");
    assert_eq!(c.call_id().unwrap(), b_inv.call_id().unwrap());
    assert_eq!(c.cseq().unwrap().seq, b_inv.cseq().unwrap().seq);
    let b2 = h.take_request(BACKUP, "INVITE");
    // The next attempt rings: nothing cancels it.
    h.inject(BACKUP, &from_backup(answer(&b2, 180, false)));
    assert!(!requests(&h.take(BACKUP)).contains(&"CANCEL".to_string()));
    expect_late_answer_hung_up(&mut h, &b_inv);
    h.inject(BACKUP, &from_backup(answer(&b2, 200, true)));
    h.take_response(PBX, 200);
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn ring_timeout_before_any_provisional_cancels_on_the_first_one() {
    let mut h = short_ring();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.advance(Duration::from_secs(11));
    // No CANCEL before a provisional (RFC 3261 §9.1); INVITE retransmissions only.
    assert!(requests(&h.take(CARRIER)).iter().all(|m| m == "INVITE"));
    let b2 = h.take_request(BACKUP, "INVITE");
    h.inject(BACKUP, &from_backup(answer(&b2, 180, false)));
    assert!(
        !requests(&h.take(BACKUP)).contains(&"CANCEL".to_string()),
        "the new attempt is not cancelled for the old one"
    );
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    let c = h.take_request(CARRIER, "CANCEL");
    assert_eq!(c.call_id().unwrap(), b_inv.call_id().unwrap());
    h.inject(CARRIER, &answer(&c, 200, false));
    h.inject(CARRIER, &answer(&b_inv, 487, false));
    h.take_request(CARRIER, "ACK");
    assert!(
        !h.take(PBX)
            .iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code >= 300)),
        "the caller sees nothing of the abandoned attempt"
    );
    assert!(
        !h.engine
            .owners
            .values()
            .any(|o| matches!(o, crate::b2bua::owner::TxOwner::Abandoned { .. }))
    );
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn ring_timeout_before_provisional_hangs_up_a_late_answer() {
    let mut h = short_ring();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.advance(Duration::from_secs(11));
    h.take_request(BACKUP, "INVITE");
    expect_late_answer_hung_up(&mut h, &b_inv);
}

#[test]
fn last_attempt_timing_out_silent_is_cancelled_only_after_it_rings() {
    let mut h = short_ring();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.advance(Duration::from_secs(11));
    h.take_request(CARRIER, "CANCEL");
    let b2 = h.take_request(BACKUP, "INVITE");
    // The backup stays silent until no target is left: the caller gets 408.
    h.advance(Duration::from_secs(10));
    h.take_response(PBX, 408);
    assert_eq!(h.engine.call_count(), 0);
    assert!(
        requests(&h.take(BACKUP)).iter().all(|m| m == "INVITE"),
        "no CANCEL before the backup's first provisional, although leg A was early"
    );
    h.inject(BACKUP, &from_backup(answer(&b2, 180, false)));
    let c = h.take_request(BACKUP, "CANCEL");
    assert_eq!(c.call_id().unwrap(), b2.call_id().unwrap());
}

/// Call answered by the carrier (dialog tag `carriertag`); returns leg B's INVITE.
fn answered(h: &mut Harness) -> Request {
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    h.take_response(PBX, 200);
    h.take_request(CARRIER, "ACK");
    b_inv
}

#[test]
fn extra_2xx_fork_is_acked_and_hung_up_in_its_own_dialog() {
    let mut h = Harness::new();
    let b_inv = answered(&mut h);
    let fork = answer(&b_inv, 200, true)
        .replace("tag=carriertag", "tag=fork2")
        .replace("<sip:bob@127.0.0.3:5060>", "<sip:bob2@127.0.0.3:5070>");
    h.inject(CARRIER, &fork);
    let sent = h.take(CARRIER);
    assert_eq!(requests(&sent), ["ACK", "BYE"], "{sent:?}");
    let mut bye_seq = 0;
    for (m, _) in &sent {
        let Message::Request(r) = m else { continue };
        assert_eq!(r.to_hdr().unwrap().tag(), Some("fork2"), "{r:?}");
        assert_eq!(r.uri.to_string(), "sip:bob2@127.0.0.3:5070");
        assert_eq!(r.call_id().unwrap(), b_inv.call_id().unwrap());
        if r.method.as_str() == "BYE" {
            bye_seq = r.cseq().unwrap().seq;
        }
    }
    assert!(bye_seq > b_inv.cseq().unwrap().seq);
    assert!(
        h.take(PBX).is_empty(),
        "the caller sees nothing of the fork"
    );
    // The first dialog is untouched; its retransmitted 2xx gets the stored ACK.
    assert_eq!(h.engine.call_count(), 1);
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let again = h.take(CARRIER);
    assert_eq!(requests(&again), ["ACK"]);
    let Message::Request(ack) = &again[0].0 else {
        panic!()
    };
    assert_eq!(ack.to_hdr().unwrap().tag(), Some("carriertag"));
    assert_eq!(ack.uri.to_string(), "sip:bob@127.0.0.3:5060");
    // The fork's retransmitted 2xx is ACKed again, not hung up again.
    h.inject(CARRIER, &fork);
    assert_eq!(requests(&h.take(CARRIER)), ["ACK"]);
    let key = *h.engine.calls.keys().next().unwrap();
    assert_eq!(
        h.engine.calls[&key].b.remote_tag.as_deref(),
        Some("carriertag")
    );
    assert!(h.take(PBX).is_empty());
}

/// An answered call without SDP (no relay ports needed), ACKed by the caller.
fn hold_call(h: &mut Harness, n: usize) -> (String, String) {
    let call_id = format!("held-{n}");
    let inv = format!(
        "INVITE sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbx{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@127.0.0.2:5060>\r\nContent-Length: 0\r\n\r\n"
    );
    h.inject(PBX, &inv);
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 200, false));
    let ok = h.take_response(PBX, 200);
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from_hdr = "<sip:alice@127.0.0.2>;tag=pbxtag";
    h.inject(
        PBX,
        &in_dialog("ACK", from_hdr, &to_hdr, &call_id, 10, "127.0.0.2:5060"),
    );
    h.sent.clear();
    (call_id, to_hdr)
}

/// Hang-up cost against calls held: `cargo test --release --lib hang_up_cost -- --ignored
/// --nocapture` prints the time of 1000 BYEs with 100 and with 20 000 other calls held.
#[test]
#[ignore = "measurement, run by hand"]
fn hang_up_cost_does_not_grow_with_calls_held() {
    for held in [100usize, 20_000] {
        let mut h = Harness::new();
        let calls: Vec<_> = (0..held + 1000).map(|n| hold_call(&mut h, n)).collect();
        let from_hdr = "<sip:alice@127.0.0.2>;tag=pbxtag";
        let byes: Vec<String> = calls[..1000]
            .iter()
            .map(|(cid, to)| in_dialog("BYE", from_hdr, to, cid, 11, "127.0.0.2:5060"))
            .collect();
        let t = std::time::Instant::now();
        for bye in &byes {
            h.inject(PBX, bye);
            h.sent.clear();
        }
        let took = t.elapsed();
        assert_eq!(h.engine.call_count(), held);
        println!(
            "held {held}: 1000 hang-ups took {took:?} ({:?} each)",
            took / 1000
        );
    }
}
