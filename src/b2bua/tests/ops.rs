//! Reload (`Engine::reconfigure`) and graceful drain (`Engine::drain`) scenarios.

use super::*;

/// The harness's config with `carrier` removed and PBX calls routed to `backup` only.
const CONFIG_V2: &str = r#"
instance: test
sip:
  listen:
    - {name: public, transport: udp, address: 127.0.0.1:5060}
media:
  address: 127.0.0.1
  ports: 30100-30199
peers:
  - {name: pbx, address: 127.0.0.2:5060, trusted: true, sources: [127.0.0.2/32]}
  - {name: backup, address: 127.0.0.4:5060, sources: [127.0.0.4/32], keepalive: 10s}
policy: policy2.yaml
"#;

const POLICY_V2: &str = r#"
rules:
  - name: out-v2
    when: {from_peer: pbx}
    then: {route: [backup]}
  - name: deny
    then: {reject: 403}
"#;

fn reload_v2(h: &mut Harness) {
    let dir = h.dir();
    std::fs::write(dir.join("veil2.yaml"), CONFIG_V2).unwrap();
    std::fs::write(dir.join("policy2.yaml"), POLICY_V2).unwrap();
    let loaded = crate::config::load(&dir.join("veil2.yaml")).unwrap();
    let resolved = [Some(PBX.parse().unwrap()), Some(BACKUP.parse().unwrap())];
    h.engine.reconfigure(
        Arc::new(loaded.config),
        Arc::new(loaded.policy),
        &resolved,
        h.now,
    );
}

fn b_side_bye(b_inv: &Request, cseq: u32) -> String {
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    in_dialog(
        "BYE",
        &b_to,
        &b_from,
        b_inv.call_id().unwrap(),
        cseq,
        "127.0.0.3:5060",
    )
}

fn end_reasons(h: &Harness) -> Vec<String> {
    h.cdr
        .iter()
        .filter_map(|c| match c {
            CdrEvent::End { end_reason, .. } => Some(end_reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn reload_routes_new_calls_while_the_call_in_progress_keeps_its_peers() {
    let (mut h, b_inv, _ok) = answered_call();
    let held: Vec<u16> = h
        .engine
        .calls
        .values()
        .flat_map(|c| c.streams.iter().map(|s| s.a_port))
        .collect();
    reload_v2(&mut h);
    // The new range starts empty but for nothing: the old call's ports lie outside it.
    assert_eq!(h.engine.ports.in_use(), 0);
    assert!(held.iter().all(|p| *p < 30100));

    // The next call follows the new policy: to the backup, with a port from the new range.
    h.inject(PBX, &invite_from_pbx("a-call-2", "0123456"));
    let inv2 = h.take_request(BACKUP, "INVITE");
    assert!(
        h.take(CARRIER).is_empty(),
        "the removed carrier gets nothing"
    );
    assert!(inv2.uri.to_string().starts_with("sip:0123456@127.0.0.4"));
    assert_eq!(h.engine.ports.in_use(), 2, "a and b port from the new pool");

    // The call in progress goes on with the carrier, which is no longer configured.
    h.inject(CARRIER, &b_side_bye(&b_inv, 1));
    h.take_response(CARRIER, 200);
    let bye = h.take_request(PBX, "BYE");
    assert_eq!(bye.call_id().unwrap(), "a-call-1");
    h.advance(Duration::from_secs(3));
    assert_eq!(end_reasons(&h), ["callee_bye"]);
    assert_eq!(h.engine.call_count(), 1, "only the new call is left");
}

#[test]
fn reload_with_an_overlapping_port_range_keeps_held_ports_out() {
    let (mut h, _b_inv, _ok) = answered_call();
    let held: Vec<u16> = h
        .engine
        .calls
        .values()
        .flat_map(|c| c.streams.iter().flat_map(|s| [s.a_port, s.b_port]))
        .collect();
    assert_eq!(held.len(), 2);
    let mut cfg = (*h.engine.cfg).clone();
    // A range overlapping the held ports (drawn at random from the old one) and reaching
    // past them: the new pool hands out every pair of it except the two held.
    let low = held.iter().min().copied().unwrap_or(30000);
    let high = held.iter().max().copied().unwrap_or(30000);
    let range = crate::config::PortRange {
        first: low,
        last: high + 9,
    };
    let capacity = {
        let mut pool = crate::media::ports::PortPool::new(range);
        std::iter::from_fn(|| pool.allocate()).count()
    };
    cfg.media.ports = range;
    let policy = h.engine.policy.clone();
    let resolved: Vec<Option<SocketAddr>> = [PBX, CARRIER, BACKUP]
        .iter()
        .map(|a| Some(a.parse().unwrap()))
        .collect();
    h.engine
        .reconfigure(Arc::new(cfg), policy, &resolved, h.now);
    assert_eq!(
        h.engine.ports.in_use(),
        2,
        "held ports reserved in the new pool"
    );
    let mut fresh = Vec::new();
    while let Some(p) = h.engine.ports.allocate() {
        fresh.push(p);
    }
    assert_eq!(fresh.len(), capacity - 2);
    assert!(
        fresh.iter().all(|p| !held.contains(p)),
        "{fresh:?} vs {held:?}"
    );
}

#[test]
fn drain_refuses_new_calls_and_lets_calls_in_progress_finish() {
    let (mut h, b_inv, _ok) = answered_call();
    h.engine.drain(h.now);
    assert!(h.engine.is_draining());
    h.inject(PBX, &invite_from_pbx("a-call-2", "0123456"));
    let r = h.take_response(PBX, 503);
    assert!(r.headers.get(&HeaderName::RetryAfter).is_some());
    assert!(h.take(CARRIER).is_empty());
    // Well inside drain_timeout (30s default) the call is left alone.
    h.advance(Duration::from_secs(20));
    assert!(
        h.take(CARRIER)
            .iter()
            .all(|(m, _)| !matches!(m, Message::Request(r) if r.method.as_str() == "BYE"))
    );
    assert_eq!(h.engine.call_count(), 1);
    assert!(!h.engine.idle());
    h.inject(CARRIER, &b_side_bye(&b_inv, 1));
    let bye = h.take_request(PBX, "BYE");
    h.inject(PBX, &answer(&bye, 200, false));
    h.advance(Duration::from_secs(3));
    assert!(h.engine.idle(), "nothing left: the shell may exit");
    assert_eq!(end_reasons(&h), ["callee_bye"]);
}

#[test]
fn drain_timeout_ends_both_legs_with_reason_shutdown() {
    let (mut h, _b_inv, _ok) = answered_call();
    h.engine.drain(h.now);
    h.engine.drain(h.now); // a second signal changes nothing
    h.advance(Duration::from_secs(29));
    assert_eq!(h.engine.call_count(), 1);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.engine.call_count(), 0);
    let bye_a = h.take_request(PBX, "BYE");
    let bye_b = h.take_request(CARRIER, "BYE");
    assert_eq!(bye_a.call_id().unwrap(), "a-call-1");
    h.inject(PBX, &answer(&bye_a, 200, false));
    h.inject(CARRIER, &answer(&bye_b, 200, false));
    h.advance(Duration::from_secs(3));
    assert!(h.engine.idle());
    assert_eq!(end_reasons(&h), ["shutdown"]);
}

#[test]
fn reload_starts_keepalives_for_the_new_peer_table() {
    let mut h = Harness::new();
    reload_v2(&mut h);
    h.advance(Duration::from_millis(1));
    let probe = h.take_request(BACKUP, "OPTIONS");
    h.inject(BACKUP, &answer(&probe, 200, false));
    // One chain per peer: ten seconds later exactly one more probe.
    h.advance(Duration::from_secs(10));
    let probes = h
        .take(BACKUP)
        .into_iter()
        .filter(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "OPTIONS"))
        .count();
    assert_eq!(probes, 1);
}

#[test]
fn an_unanswered_keepalive_does_not_hold_up_the_drain() {
    let mut h = Harness::new();
    reload_v2(&mut h);
    h.advance(Duration::from_millis(1));
    let first = h.take_request(BACKUP, "OPTIONS");
    h.engine.drain(h.now);
    assert!(h.engine.idle(), "only a probe is in flight");
    h.inject(BACKUP, &answer(&first, 200, false));
    h.advance(Duration::from_secs(25));
    // Retransmissions of the probe in flight, but no new probe while draining.
    for (m, _) in h.take(BACKUP) {
        let Message::Request(r) = m else { continue };
        assert_eq!(
            r.call_id().unwrap(),
            first.call_id().unwrap(),
            "new probe while draining"
        );
    }
}
