//! Edge security in the engine: scanners, strikes and rate bans, no open relay (nothing
//! an untrusted source sends reaches a peer), and call limits.

use super::*;

const OUTSIDER: &str = "127.0.0.9:5060";

/// CONFIG with a tight `security:` section and optional per-peer limits for the PBX.
fn config(pbx_limits: &str, calls: &str) -> String {
    CONFIG.replace(
        "  - {name: pbx, address: 127.0.0.2:5060, trusted: true, sources: [127.0.0.2/32]}",
        &format!("  - {{name: pbx, address: 127.0.0.2:5060, trusted: true, sources: [127.0.0.2/32]{pbx_limits}}}"),
    ) + "security:\n  requests_per_second: 5\n  requests_burst: 10\n  invites_per_second: 2\n  invites_burst: 3\n  ban_after: 3\n  ban_window: 10s\n  ban_time: 60s\n  exempt: trusted\n"
        + calls
}

fn options(from_ip: &str, n: u32, ua: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {from_ip}:5060;branch=z9hG4bKopt{n}\r\nMax-Forwards: 70\r\nFrom: <sip:x@{from_ip}>;tag=o{n}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: opt{n}\r\nCSeq: 1 OPTIONS\r\n{ua}Content-Length: 0\r\n\r\n"
    )
}

fn request(method: &str, from_ip: &str, n: u32) -> String {
    options(from_ip, n, "").replace("OPTIONS", method)
}

fn counter(h: &Harness, name: &str, label: &str) -> f64 {
    let text = h.engine.metrics.render();
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}{{{label}}} not in\n{text}"))
}

#[test]
fn scanner_user_agent_is_dropped_silently_and_banned() {
    let mut h = Harness::with(&config("", ""), POLICY);
    h.inject(
        OUTSIDER,
        &options("127.0.0.9", 1, "User-Agent: friendly-scanner\r\n"),
    );
    assert!(h.take(OUTSIDER).is_empty(), "a scanner gets no answer");
    // Banned: even a clean request gets nothing now.
    h.inject(OUTSIDER, &options("127.0.0.9", 2, ""));
    assert!(h.take(OUTSIDER).is_empty());
    assert_eq!(counter(&h, "veil_bans_total", "reason=\"scanner\""), 1.0);
    assert_eq!(counter(&h, "veil_banned_sources", ""), 1.0);
    assert_eq!(
        counter(&h, "veil_sip_dropped_total", "reason=\"banned\""),
        1.0
    );
    // A trusted peer is never banned, whatever its User-Agent says.
    h.inject(PBX, &options("127.0.0.2", 3, "User-Agent: sipvicious\r\n"));
    assert!(h.take(PBX).is_empty(), "dropped");
    h.inject(PBX, &options("127.0.0.2", 4, ""));
    h.take_response(PBX, 200);
}

#[test]
fn unauthorized_requests_ban_after_n_strikes() {
    let mut h = Harness::with(&config("", ""), POLICY);
    for n in 0..3 {
        h.inject(OUTSIDER, &request("REGISTER", "127.0.0.9", n));
        h.take_response(OUTSIDER, 403);
    }
    h.inject(OUTSIDER, &request("REGISTER", "127.0.0.9", 9));
    assert!(h.take(OUTSIDER).is_empty(), "banned after 3 strikes");
    assert_eq!(counter(&h, "veil_bans_total", "reason=\"invalid\""), 1.0);
    // The ban ends after ban_time.
    h.advance(Duration::from_secs(61));
    h.inject(OUTSIDER, &request("OPTIONS", "127.0.0.9", 10));
    h.take_response(OUTSIDER, 403);
}

#[test]
fn garbage_counts_as_strikes() {
    let mut h = Harness::with(&config("", ""), POLICY);
    for _ in 0..3 {
        h.inject(OUTSIDER, "\u{1}\u{2} not sip at all\r\n\r\n");
    }
    assert!(
        h.engine
            .guard
            .is_banned("127.0.0.9".parse().unwrap(), h.now)
    );
}

#[test]
fn request_rate_bans_untrusted_sources_only() {
    let mut h = Harness::with(&config("", ""), POLICY);
    // The carrier is a peer but not trusted: limited. Burst 10, then banned.
    for n in 0..10 {
        h.inject(CARRIER, &options("127.0.0.3", n, ""));
        h.take_response(CARRIER, 200);
    }
    h.inject(CARRIER, &options("127.0.0.3", 11, ""));
    assert!(h.take(CARRIER).is_empty());
    assert_eq!(
        counter(&h, "veil_bans_total", "reason=\"request_rate\""),
        1.0
    );
    // The trusted PBX may send as much as it likes.
    for n in 0..100 {
        h.inject(PBX, &options("127.0.0.2", n, ""));
        h.take_response(PBX, 200);
    }
}

#[test]
fn no_open_relay_nothing_from_an_outsider_reaches_a_peer() {
    let (mut h, b_inv, ok) = answered_call();
    let a_to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let a_from = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let b_call = b_inv.call_id().unwrap().to_string();
    // Knowing a live dialog's identifiers is not enough: BYE, re-INVITE, INFO, ACK from
    // another source, on either leg.
    let mut n = 100;
    for method in ["BYE", "INVITE", "INFO", "UPDATE", "ACK"] {
        n += 1;
        h.inject(
            OUTSIDER,
            &in_dialog(method, a_from, &a_to, "a-call-1", n, "127.0.0.9:5060"),
        );
        n += 1;
        h.inject(
            OUTSIDER,
            &in_dialog(method, &b_to, &b_from, &b_call, n, "127.0.0.9:5060"),
        );
    }
    // New requests of every kind, to any user.
    for method in [
        "INVITE",
        "REGISTER",
        "SUBSCRIBE",
        "PUBLISH",
        "MESSAGE",
        "REFER",
        "NOTIFY",
        "FOO",
    ] {
        n += 1;
        h.inject(OUTSIDER, &request(method, "127.0.0.9", n));
    }
    assert!(h.take(PBX).is_empty(), "nothing reached the PBX");
    assert!(h.take(CARRIER).is_empty(), "nothing reached the carrier");
    assert!(h.take(BACKUP).is_empty(), "nothing reached the backup");
    for (m, t) in h.take(OUTSIDER) {
        match m {
            Message::Response(r) => assert!(matches!(r.code, 100 | 403), "outsider got {t}"),
            Message::Request(_) => panic!("veil sent a request to the outsider: {t}"),
        }
    }
    assert_eq!(h.engine.call_count(), 1, "the call is still up");
    // The real caller can still end it.
    h.inject(PBX, &in_dialog("BYE", a_from, &a_to, "a-call-1", 11, PBX));
    h.take_response(PBX, 200);
    h.take_request(CARRIER, "BYE");
}

#[test]
fn register_subscribe_publish_message_from_a_peer_are_refused() {
    let mut h = Harness::with(&config("", ""), POLICY);
    for (n, method) in ["REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"]
        .iter()
        .enumerate()
    {
        h.inject(PBX, &request(method, "127.0.0.2", n as u32));
        let r = h.take_response(PBX, 405);
        assert!(r.headers.get(&HeaderName::Allow).is_some());
    }
    assert!(h.take(CARRIER).is_empty());
}

fn retry_after(r: &Response) -> String {
    r.headers
        .get(&HeaderName::RetryAfter)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn peer_max_calls_gives_503_with_retry_after() {
    let mut h = Harness::with(&config(", limits: {max_calls: 1}", ""), POLICY);
    h.inject(PBX, &invite_from_pbx("c1", "0123456"));
    h.take_request(CARRIER, "INVITE");
    h.take(PBX);
    h.inject(
        PBX,
        &invite_from_pbx("c2", "0123456").replace("tag=pbxtag", "tag=t2"),
    );
    let r = h.take_response(PBX, 503);
    assert_eq!(retry_after(&r), "5");
    assert!(h.take(CARRIER).is_empty());
    assert_eq!(
        counter(&h, "veil_calls_limited_total", "limit=\"peer_max_calls\""),
        1.0
    );
    // The first call ends (the carrier refuses it): room for a new one.
    h.advance(Duration::from_secs(200));
    h.take(PBX);
    h.take(CARRIER);
    assert_eq!(h.engine.call_count(), 0);
    h.inject(
        PBX,
        &invite_from_pbx("c3", "0123456").replace("tag=pbxtag", "tag=t3"),
    );
    h.take_request(CARRIER, "INVITE");
}

#[test]
fn peer_cps_and_global_max_calls() {
    let mut h = Harness::with(&config(", limits: {cps: 2}", ""), POLICY);
    for i in 0..2 {
        h.inject(
            PBX,
            &invite_from_pbx(&format!("c{i}"), "0123456")
                .replace("tag=pbxtag", &format!("tag=t{i}")),
        );
        h.take_request(CARRIER, "INVITE");
    }
    h.inject(
        PBX,
        &invite_from_pbx("c9", "0123456").replace("tag=pbxtag", "tag=t9"),
    );
    assert_eq!(retry_after(&h.take_response(PBX, 503)), "1");
    h.now += Duration::from_secs(1);
    h.inject(
        PBX,
        &invite_from_pbx("c10", "0123456").replace("tag=pbxtag", "tag=t10"),
    );
    h.take_request(CARRIER, "INVITE");

    let mut h = Harness::with(&config("", "calls:\n  max_calls: 1\n"), POLICY);
    h.inject(PBX, &invite_from_pbx("g1", "0123456"));
    h.take_request(CARRIER, "INVITE");
    h.inject(
        CARRIER,
        &invite_from_pbx("g2", "0123456").replace("127.0.0.2", "127.0.0.3"),
    );
    h.take_response(CARRIER, 503);
    assert_eq!(
        counter(&h, "veil_calls_limited_total", "limit=\"max_calls\""),
        1.0
    );
}
