//! Engine scenarios without sockets: two scripted peers (PBX at 127.0.0.2, carrier at
//! 127.0.0.3/.4) wired to the engine in memory, the clock advanced by the test. The
//! harness itself lives in `harness.rs` (also built for the fuzz crate, feature `testkit`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::Input;
pub(super) use super::harness::*;
use crate::config::Transport;
use crate::media::MediaCommand;
use crate::observe::CdrEvent;
use crate::sip::{HeaderName, Message, Request, Response, SipHeaders};
use crate::transaction::Flow;

const A_SECRETS: &[&str] = &[
    "127.0.0.2",
    "pbxtag",
    "a-call-1",
    "z9hG4bKpbx",
    "pbxsecret",
    "PBX-Internal",
    "X-Secret",
    "Secret PBX",
    "6000",
];
const B_SECRETS: &[&str] = &[
    "127.0.0.3",
    "carriertag",
    "carriersecret",
    "Carrier-Switch",
    "7000",
];

pub(super) fn assert_clean(texts: &[(Message, String)], secrets: &[&str], side: &str) {
    for (_, t) in texts {
        for s in secrets {
            assert!(
                !t.contains(s),
                "{side} received {s:?} from the other side:\n{t}"
            );
        }
    }
}

/// Set up an answered call pbx -> carrier; returns (harness, leg B INVITE, 200 to A).
pub(super) fn answered_call() -> (Harness, Request, Response) {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let trying = h.take(PBX);
    assert!(
        trying
            .iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code == 100))
    );
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.take_response(PBX, 180);
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    let ack = h.take_request(CARRIER, "ACK");
    assert_eq!(ack.call_id().unwrap(), b_inv.call_id().unwrap());
    (h, b_inv, ok)
}

#[test]
fn basic_call_crosses_with_nothing_of_the_other_side() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let to_a = h.take(PBX);
    assert!(matches!(&to_a[0].0, Message::Response(r) if r.code == 100));
    let b = h.take(CARRIER);
    assert_eq!(b.len(), 1);
    assert_clean(&b, A_SECRETS, "carrier");
    let Message::Request(b_inv) = &b[0].0 else {
        panic!()
    };
    assert_eq!(b_inv.uri.to_string(), "sip:0123456@127.0.0.3:5060");
    assert_eq!(b_inv.max_forwards().unwrap().unwrap(), 69);
    assert!(b_inv.body.len() > 50, "SDP crosses");
    assert!(b[0].1.contains("\"Alice\""), "display name kept");

    h.inject(CARRIER, &answer(b_inv, 180, false));
    h.inject(CARRIER, &answer(b_inv, 200, true));
    let a = h.take(PBX);
    assert_clean(&a, B_SECRETS, "pbx");
    let codes: Vec<u16> = a
        .iter()
        .filter_map(|(m, _)| {
            if let Message::Response(r) = m {
                Some(r.code)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(codes, [180, 200]);
    let Message::Response(ok) = &a[1].0 else {
        panic!()
    };
    let our_tag = ok.to_hdr().unwrap().tag().unwrap().to_string();
    assert_ne!(our_tag, "carriertag");
    assert_eq!(ok.call_id().unwrap(), "a-call-1");
    let ack = h.take_request(CARRIER, "ACK");
    assert_eq!(ack.to_hdr().unwrap().tag(), Some("carriertag"));

    // ACK from A stops the 2xx retransmissions; BYE from A ends both legs.
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from_hdr = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    h.inject(
        PBX,
        &in_dialog("ACK", from_hdr, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    h.advance(Duration::from_secs(1));
    assert!(h.take(PBX).is_empty(), "2xx not retransmitted after ACK");
    assert_eq!(h.engine.call_count(), 1);
    h.inject(
        PBX,
        &in_dialog("BYE", from_hdr, &to_hdr, "a-call-1", 11, "127.0.0.2:5060"),
    );
    h.take_response(PBX, 200);
    let bye = h.take_request(CARRIER, "BYE");
    assert_eq!(
        bye.uri.to_string(),
        "sip:bob@127.0.0.3:5060",
        "BYE to the callee's Contact"
    );
    assert_eq!(
        bye.headers.get(&HeaderName::Route),
        Some("<sip:127.0.0.3;lr>")
    );
    assert_eq!(h.engine.call_count(), 0);
    h.inject(CARRIER, &answer(&bye, 200, false));
    // CDR: start, route, answer, end (after the relay's counters or the wait).
    h.advance(Duration::from_secs(3));
    let end = h.cdr.iter().find_map(|c| match c {
        CdrEvent::End {
            final_code,
            end_reason,
            ..
        } => Some((*final_code, end_reason.clone())),
        _ => None,
    });
    assert_eq!(end, Some((200, "caller_bye".to_string())));
    assert!(h.cdr.iter().any(|c| matches!(c, CdrEvent::Answer { .. })));
}

#[test]
fn callee_bye_ends_both_legs() {
    let (mut h, b_inv, ok) = answered_call();
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    h.inject(
        CARRIER,
        &in_dialog(
            "BYE",
            &b_to,
            &b_from,
            b_inv.call_id().unwrap(),
            1,
            "127.0.0.3:5060",
        ),
    );
    h.take_response(CARRIER, 200);
    let bye = h.take_request(PBX, "BYE");
    assert_eq!(bye.call_id().unwrap(), "a-call-1");
    assert_eq!(bye.uri.to_string(), "sip:alice@127.0.0.2:5060");
    assert_eq!(bye.to_hdr().unwrap().tag(), Some("pbxtag"));
    assert_eq!(bye.from_hdr().unwrap().tag(), ok.to_hdr().unwrap().tag());
    assert_eq!(h.engine.call_count(), 0);
    // A late BYE for the ended call gets 481.
    h.inject(
        CARRIER,
        &in_dialog(
            "BYE",
            &b_to,
            &b_from,
            b_inv.call_id().unwrap(),
            2,
            "127.0.0.3:5060",
        ),
    );
    h.take_response(CARRIER, 481);
}

#[test]
fn cancel_while_ringing() {
    let mut h = Harness::new();
    let invite = invite_from_pbx("a-call-1", "0123456");
    h.inject(PBX, &invite);
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.take(PBX);
    let cancel = "CANCEL sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxa-call-1\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: a-call-1\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n";
    h.inject(PBX, cancel);
    let a = h.take(PBX);
    let codes: Vec<u16> = a
        .iter()
        .filter_map(|(m, _)| {
            if let Message::Response(r) = m {
                Some(r.code)
            } else {
                None
            }
        })
        .collect();
    assert!(codes.contains(&200) && codes.contains(&487), "{codes:?}");
    let c = h.take_request(CARRIER, "CANCEL");
    assert_eq!(c.call_id().unwrap(), b_inv.call_id().unwrap());
    assert_eq!(c.cseq().unwrap().seq, b_inv.cseq().unwrap().seq);
    h.inject(CARRIER, &answer(&b_inv, 487, false));
    h.take_request(CARRIER, "ACK");
    assert_eq!(h.engine.call_count(), 0);
    h.advance(Duration::from_secs(3));
    assert!(h.cdr.iter().any(|c| matches!(c, CdrEvent::End { final_code: 487, end_reason, .. } if end_reason == "cancelled")));
}

#[test]
fn busy_is_passed_back_without_failover() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 486, false));
    let r = h.take_response(PBX, 486);
    assert_eq!(r.reason, "Busy Here");
    assert!(h.take(BACKUP).is_empty());
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn failover_on_503_and_retry_after_rests_the_target() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    let r503 = answer(&b_inv, 503, false).replace("Server:", "Retry-After: 60\r\nServer:");
    h.inject(CARRIER, &r503);
    let b2 = h.take_request(BACKUP, "INVITE");
    assert_ne!(
        b2.call_id().unwrap(),
        b_inv.call_id().unwrap(),
        "new leg B per attempt"
    );
    h.inject(
        BACKUP,
        &answer(&b2, 200, true).replace("127.0.0.3", "127.0.0.4"),
    );
    h.take_response(PBX, 200);
    h.take_request(CARRIER, "ACK"); // hop-by-hop ACK of the 503
    // The next call skips the resting carrier.
    h.inject(PBX, &invite_from_pbx("a-call-2", "0123456"));
    assert!(
        h.take(CARRIER)
            .iter()
            .all(|(m, _)| !matches!(m, Message::Request(_)))
    );
    h.take_request(BACKUP, "INVITE");
}

#[test]
fn timeout_fails_over_then_408() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take_request(CARRIER, "INVITE");
    h.advance(Duration::from_secs(33));
    h.take_request(BACKUP, "INVITE");
    h.advance(Duration::from_secs(33));
    h.take_response(PBX, 408);
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn transport_failure_fails_over_at_once() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take_request(CARRIER, "INVITE");
    // The shell could not connect (or the TLS peer failed verification): no 32 s wait.
    let carrier = CARRIER.parse().unwrap();
    h.engine.transport_failed(
        crate::config::Transport::Udp,
        BACKUP.parse().unwrap(),
        h.now,
    );
    h.collect();
    assert!(
        h.take(BACKUP).is_empty(),
        "another target's failure changes nothing"
    );
    h.engine
        .transport_failed(crate::config::Transport::Udp, carrier, h.now);
    h.collect();
    h.take_request(BACKUP, "INVITE");
}

#[test]
fn unknown_source_gets_403_and_unmatched_number_policy_reject() {
    let mut h = Harness::new();
    h.inject(
        "127.0.0.9:5060",
        &invite_from_pbx("x1", "0123456").replace("127.0.0.2", "127.0.0.9"),
    );
    h.take_response("127.0.0.9:5060", 403);
    h.inject(PBX, &invite_from_pbx("x2", "not-digits"));
    h.take_response(PBX, 403);
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn reinvite_crosses_with_new_sdp_and_same_ports() {
    let (mut h, b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from_hdr = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    h.inject(
        PBX,
        &in_dialog("ACK", from_hdr, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    let first_b_sdp = String::from_utf8(b_inv.body.to_vec()).unwrap();
    let sdp = offer_sdp("127.0.0.2", 6002, "pbxsecret");
    let reinvite = in_dialog(
        "INVITE",
        from_hdr,
        &to_hdr,
        "a-call-1",
        12,
        "127.0.0.2:5060",
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(PBX, &reinvite);
    let b_re = h.take_request(CARRIER, "INVITE");
    assert_eq!(b_re.call_id().unwrap(), b_inv.call_id().unwrap());
    assert!(b_re.cseq().unwrap().seq > b_inv.cseq().unwrap().seq);
    let new_b_sdp = String::from_utf8(b_re.body.to_vec()).unwrap();
    let m = |s: &str| s.lines().find(|l| l.starts_with("m=")).unwrap().to_string();
    assert_eq!(m(&first_b_sdp), m(&new_b_sdp), "relay ports unchanged");
    let ver = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("o="))
            .unwrap()
            .split(' ')
            .nth(2)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    // Only A's port moved: what veil offers B is the same, so its o= version stays.
    assert_eq!(
        ver(&new_b_sdp),
        ver(&first_b_sdp),
        "o= version kept when veil's SDP is unchanged"
    );
    assert_eq!(new_b_sdp, first_b_sdp);
    assert!(!new_b_sdp.contains("6002"));
    // The relay now sends A's media to the new port.
    assert!(
        h.media
            .iter()
            .any(|c| matches!(c, MediaCommand::SetRemote { rtp: Some(a), .. } if a.port() == 6002))
    );
    h.inject(CARRIER, &answer(&b_re, 200, true));
    h.take_request(CARRIER, "ACK");
    let ok2 = h.take_response(PBX, 200);
    assert_eq!(ok2.cseq().unwrap().seq, 12);
    assert!(!ok2.body.is_empty());
    h.inject(
        PBX,
        &in_dialog("ACK", from_hdr, &to_hdr, "a-call-1", 12, "127.0.0.2:5060"),
    );

    // A codec change does change veil's offer: the o= version moves by one.
    let sdp = offer_sdp("127.0.0.2", 6002, "pbxsecret").replace("RTP/AVP 0 8 101", "RTP/AVP 8 101");
    let reinvite = in_dialog(
        "INVITE",
        from_hdr,
        &to_hdr,
        "a-call-1",
        13,
        "127.0.0.2:5060",
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(PBX, &reinvite);
    let b_re2 = h.take_request(CARRIER, "INVITE");
    let third = String::from_utf8(b_re2.body.to_vec()).unwrap();
    assert_eq!(
        ver(&third),
        ver(&first_b_sdp) + 1,
        "o= version bumped on change"
    );
}

#[test]
fn malformed_input_then_a_good_call() {
    let mut h = Harness::new();
    for junk in [
        &b"\x00\x01garbage"[..],
        b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
    ] {
        let flow = Flow {
            listener: 0,
            transport: Transport::Udp,
            remote: PBX.parse().unwrap(),
            conn: None,
        };
        h.engine
            .handle_input(Input::Sip { data: junk, flow }, h.now);
        h.collect();
    }
    h.take(PBX);
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take_request(CARRIER, "INVITE");
}

#[test]
fn options_answered_and_max_forwards_zero_gets_483() {
    let mut h = Harness::new();
    let opt = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKopt\r\nMax-Forwards: 70\r\nFrom: <sip:ping@127.0.0.2>;tag=o1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: opt-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    h.inject(PBX, opt);
    h.take_response(PBX, 200);
    h.inject(
        PBX,
        &invite_from_pbx("a-call-1", "0123456").replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    h.take_response(PBX, 483);
}

#[test]
fn no_state_left_after_many_calls() {
    let mut h = Harness::new();
    for i in 0..300 {
        let cid = format!("bulk-{i}");
        h.inject(PBX, &invite_from_pbx(&cid, "0123456"));
        let b_inv = h.take_request(CARRIER, "INVITE");
        h.inject(CARRIER, &answer(&b_inv, 200, true));
        let ok = h.take_response(PBX, 200);
        let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
        let from_hdr = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
        h.inject(
            PBX,
            &in_dialog("ACK", from_hdr, &to_hdr, &cid, 10, "127.0.0.2:5060"),
        );
        h.inject(
            PBX,
            &in_dialog("BYE", from_hdr, &to_hdr, &cid, 11, "127.0.0.2:5060"),
        );
        let bye = h.take_request(CARRIER, "BYE");
        h.inject(CARRIER, &answer(&bye, 200, false));
        h.sent.clear();
    }
    assert_eq!(h.engine.call_count(), 0);
    h.advance(Duration::from_secs(120));
    assert_eq!(h.engine.transaction_count(), 0);
    assert!(h.engine.idle());
    assert_eq!(h.engine.ports.in_use(), 0, "relay ports returned");
}

#[test]
fn prack_crosses_with_rack_translated_to_the_other_legs_cseq() {
    let mut h = Harness::new();
    let invite = invite_from_pbx("a-call-1", "0123456").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: 100rel\r\n",
    );
    h.inject(PBX, &invite);
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(
        b_inv.has_option_tag(&HeaderName::Supported, "100rel"),
        "100rel is end to end"
    );
    // Reliable 183 with early media from the callee.
    let r183 =
        answer(&b_inv, 183, true).replace("Server:", "Require: 100rel\r\nRSeq: 77\r\nServer:");
    h.inject(CARRIER, &r183);
    let p = h.take_response(PBX, 183);
    assert_eq!(p.headers.get(&HeaderName::RSeq), Some("77"));
    assert!(p.has_option_tag(&HeaderName::Require, "100rel"));
    assert!(!p.body.is_empty(), "early media SDP crosses, anchored");
    let to_hdr = p.headers.get(&HeaderName::To).unwrap().to_string();
    // PRACK from the caller names its own INVITE CSeq (10) in RAck.
    let prack = in_dialog(
        "PRACK",
        "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag",
        &to_hdr,
        "a-call-1",
        11,
        "127.0.0.2:5060",
    )
    .replace(
        "Content-Length: 0",
        "RAck: 77 10 INVITE\r\nContent-Length: 0",
    );
    h.inject(PBX, &prack);
    let b_prack = h.take_request(CARRIER, "PRACK");
    let b_seq = b_inv.cseq().unwrap().seq;
    assert_eq!(
        b_prack.headers.get(&HeaderName::RAck),
        Some(format!("77 {b_seq} INVITE").as_str())
    );
    assert_eq!(b_prack.call_id().unwrap(), b_inv.call_id().unwrap());
    assert!(
        b_prack.cseq().unwrap().seq > b_seq,
        "leg B's own CSeq space"
    );
    h.inject(CARRIER, &answer(&b_prack, 200, false));
    let ok = h.take_response(PBX, 200);
    assert_eq!(ok.cseq().unwrap().seq, 11);
    assert_eq!(ok.cseq().unwrap().method.as_str(), "PRACK");
}

#[test]
fn info_and_update_cross_both_ways_with_per_leg_cseq() {
    let (mut h, b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from_hdr = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    h.inject(
        PBX,
        &in_dialog("ACK", from_hdr, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    let info = in_dialog("INFO", from_hdr, &to_hdr, "a-call-1", 20, "127.0.0.2:5060")
        .replace("Content-Length: 0\r\n\r\n", "Content-Type: application/dtmf-relay\r\nX-Secret: no\r\nContent-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n");
    h.inject(PBX, &info);
    let b_info = h.take_request(CARRIER, "INFO");
    assert_eq!(b_info.body.as_ref(), b"Signal=5\r\nDuration=160\r\n");
    assert!(b_info.headers.get(&HeaderName::parse("X-Secret")).is_none());
    assert_eq!(b_info.call_id().unwrap(), b_inv.call_id().unwrap());
    let b_info_seq = b_info.cseq().unwrap().seq;
    h.inject(CARRIER, &answer(&b_info, 200, false));
    assert_eq!(h.take_response(PBX, 200).cseq().unwrap().seq, 20);
    // The callee's UPDATE (new SDP) reaches the caller in the caller's dialog.
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    let sdp = offer_sdp("127.0.0.3", 7010, "carriersecret");
    let update = in_dialog(
        "UPDATE",
        &b_to,
        &b_from,
        b_inv.call_id().unwrap(),
        5,
        "127.0.0.3:5060",
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(CARRIER, &update);
    let a_update = h.take_request(PBX, "UPDATE");
    assert_eq!(a_update.call_id().unwrap(), "a-call-1");
    assert_eq!(a_update.to_hdr().unwrap().tag(), Some("pbxtag"));
    assert!(!String::from_utf8_lossy(&a_update.body).contains("7010"));
    let a_seq = a_update.cseq().unwrap().seq;
    assert_ne!(a_seq, b_info_seq);
    h.inject(
        PBX,
        &answer(&a_update, 200, true).replace("127.0.0.3", "127.0.0.2"),
    );
    let r = h.take_response(CARRIER, 200);
    assert_eq!(r.cseq().unwrap().seq, 5);
}
mod edge;

/// Calls ended before leg B's first provisional response.
mod unanswered_end;

/// Abandoned attempts, extra 2xx forks, hang-up cost against calls held.
mod moving_on;

#[path = "security_tests.rs"]
mod security;

/// Reload and graceful drain (issue 6).
mod ops;

/// Peers resolved by DNS (RFC 3263): several targets per peer, weights, resting targets.
mod dns;

/// Route sets on both legs: Record-Route copied back, loose and strict routing.
mod routing;

/// CANCEL of leg B once any provisional (100 included) has arrived (issue 14).
mod cancel_early;

/// A 2xx never ACKed ends the call, `no_ack` (issue 14).
mod no_ack;

/// Malformed ACKs dropped, never answered (issue 14).
mod ack_unanswered;

/// CANCEL of a pending re-INVITE; failed offers keep the previous media (issue 14).
mod reoffer_cancel;

/// Hold with c=0.0.0.0 crosses as a direction attribute (issue 14).
mod hold;

/// A panicking engine step ends its own call only (issue 13).
mod panic_guard;

/// Answers veil cannot relay are refused, never forwarded empty (issue 13).
mod unusable_answer;

/// Peers told apart by source port and listener (issue 14); the message valve (issue 15).
mod peer_edge;
