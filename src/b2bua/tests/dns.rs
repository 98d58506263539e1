//! DNS targets (issue 5): the shell hands the engine a peer's SRV/A targets; the engine
//! tries them in order on timeout, 408 or 503 before the next peer of the route, rests
//! one address after a 503 with Retry-After, and draws the weighted order per call.

use super::*;
use crate::b2bua::targets::{PeerTarget, TargetRecord};

const CARRIER_2: &str = "127.0.0.5:5060";
const CARRIER_3: &str = "127.0.0.6:5060";

fn record(addr: &str, priority: u16, weight: u16) -> TargetRecord {
    TargetRecord {
        host: format!("sip-{priority}.carrier.test"),
        priority,
        weight,
        targets: vec![PeerTarget {
            addr: addr.parse().unwrap(),
            transport: Transport::Udp,
        }],
    }
}

fn with_carrier_targets(records: Vec<TargetRecord>) -> Harness {
    let mut h = Harness::new();
    let now = h.now;
    h.engine.set_peer_targets("carrier", Ok(records), now);
    h
}

/// Requests (not retransmissions' responses) sent to `to` since the last look.
fn requests_to(h: &mut Harness, to: &str) -> usize {
    h.take(to)
        .iter()
        .filter(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "INVITE"))
        .count()
}

#[test]
fn targets_of_a_peer_are_tried_in_order_on_timeout_408_and_503_then_the_next_peer() {
    let mut h = with_carrier_targets(vec![
        record(CARRIER_3, 30, 0),
        record(CARRIER, 10, 0),
        record(CARRIER_2, 20, 0),
    ]);
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let first = h.take_request(CARRIER, "INVITE");
    assert!(h.take(BACKUP).is_empty());
    // No answer at all: timer B moves on to the next address of the same peer.
    h.advance(Duration::from_secs(33));
    let second = h.take_request(CARRIER_2, "INVITE");
    assert_ne!(first.call_id().unwrap(), second.call_id().unwrap());
    // The R-URI keeps the peer's configured host whatever address it goes to.
    assert!(
        second.uri.to_string().contains("127.0.0.3"),
        "{}",
        second.uri
    );
    h.inject(CARRIER_2, &answer(&second, 408, false));
    let third = h.take_request(CARRIER_3, "INVITE");
    h.inject(CARRIER_3, &answer(&third, 503, false));
    // Every address of the carrier failed: the next peer of the route.
    let backup = h.take_request(BACKUP, "INVITE");
    h.inject(
        BACKUP,
        &answer(&backup, 200, true).replace("127.0.0.3", "127.0.0.4"),
    );
    h.take_response(PBX, 200);
    let routes: Vec<&str> = h
        .cdr
        .iter()
        .filter_map(|c| match c {
            CdrEvent::Route { dest_peer, .. } => Some(dest_peer.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(routes, ["carrier", "carrier", "carrier", "backup"]);
}

#[test]
fn other_5xx_skips_the_remaining_targets_of_the_peer() {
    let mut h = with_carrier_targets(vec![record(CARRIER, 10, 0), record(CARRIER_2, 20, 0)]);
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b, 500, false));
    h.take_request(BACKUP, "INVITE");
    assert_eq!(requests_to(&mut h, CARRIER_2), 0);
}

#[test]
fn retry_after_rests_only_that_target_until_it_expires() {
    let mut h = with_carrier_targets(vec![record(CARRIER, 10, 0), record(CARRIER_2, 20, 0)]);
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b = h.take_request(CARRIER, "INVITE");
    let r503 = answer(&b, 503, false).replace("Server:", "Retry-After: 60\r\nServer:");
    h.inject(CARRIER, &r503);
    let b2 = h.take_request(CARRIER_2, "INVITE");
    h.inject(CARRIER_2, &answer(&b2, 486, false));
    h.take_response(PBX, 486);
    // While it rests, new calls go straight to the other address of the same peer.
    for i in 2..5 {
        h.advance(Duration::from_secs(10));
        h.inject(PBX, &invite_from_pbx(&format!("a-call-{i}"), "0123456"));
        assert_eq!(
            requests_to(&mut h, CARRIER),
            0,
            "call {i} went to the resting target"
        );
        let b = h.take_request(CARRIER_2, "INVITE");
        h.inject(CARRIER_2, &answer(&b, 486, false));
        assert!(h.take(BACKUP).is_empty());
    }
    // 60 s after the 503 the first target is back.
    h.advance(Duration::from_secs(31));
    h.inject(PBX, &invite_from_pbx("a-call-9", "0123456"));
    h.take_request(CARRIER, "INVITE");
}

#[test]
fn weights_are_honoured_per_call_with_a_seeded_rng() {
    let mut h = with_carrier_targets(vec![record(CARRIER, 10, 3), record(CARRIER_2, 10, 1)]);
    h.engine.seed(7);
    let (mut heavy, mut light) = (0, 0);
    for i in 0..400 {
        h.inject(PBX, &invite_from_pbx(&format!("w-{i}"), "0123456"));
        let (to, b) = match h.take(CARRIER).into_iter().find_map(|(m, _)| match m {
            Message::Request(r) if r.method.as_str() == "INVITE" => Some(r),
            _ => None,
        }) {
            Some(b) => {
                heavy += 1;
                (CARRIER, b)
            }
            None => {
                light += 1;
                (CARRIER_2, h.take_request(CARRIER_2, "INVITE"))
            }
        };
        h.inject(to, &answer(&b, 486, false));
        h.sent.clear();
    }
    // 3:1 over 400 calls: 300 expected, sd ~8.7; +-45 is over 5 sd.
    assert_eq!(heavy + light, 400);
    assert!((255..=345).contains(&heavy), "heavy {heavy}, light {light}");
}

/// The shell reports that `peer`'s name did not resolve; the failure is counted once.
fn fail_resolution(h: &mut Harness, peer: &str) {
    let now = h.now;
    h.engine.set_peer_targets(
        peer,
        Err("SRV _sip._udp.carrier.test: timed out".into()),
        now,
    );
    let failures = h.engine.metrics.dns_failures.with_label_values(&[peer]);
    assert_eq!(failures.get(), 1);
}

#[test]
fn resolution_failure_fails_over_to_the_next_peer_and_is_counted() {
    let mut h = Harness::new();
    let now = h.now;
    // The carrier's name has no targets (the harness peers start with addresses).
    h.engine.set_peer_targets("carrier", Ok(Vec::new()), now);
    fail_resolution(&mut h, "carrier");
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    assert_eq!(requests_to(&mut h, CARRIER), 0);
    let b = h.take_request(BACKUP, "INVITE");
    h.inject(BACKUP, &answer(&b, 486, false));
    h.take_response(PBX, 486);
    // Resolved again: the carrier is used again.
    h.engine
        .set_peer_targets("carrier", Ok(vec![record(CARRIER_2, 0, 0)]), now);
    h.inject(PBX, &invite_from_pbx("a-call-2", "0123456"));
    h.take_request(CARRIER_2, "INVITE");
}

#[test]
fn a_failed_re_resolution_keeps_the_last_known_targets() {
    let mut h = Harness::new();
    let now = h.now;
    h.engine
        .set_peer_targets("carrier", Ok(vec![record(CARRIER_2, 0, 0)]), now);
    fail_resolution(&mut h, "carrier");
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take_request(CARRIER_2, "INVITE");
    assert_eq!(requests_to(&mut h, BACKUP), 0);
}

#[test]
fn a_peer_with_no_target_at_all_and_nothing_else_gets_503() {
    let mut h = Harness::new();
    let now = h.now;
    for p in ["carrier", "backup"] {
        h.engine.set_peer_targets(p, Ok(Vec::new()), now);
        h.engine.set_peer_targets(p, Err("NXDOMAIN".into()), now);
    }
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take_response(PBX, 503);
}
