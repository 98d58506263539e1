//! Connection exhaustion (issue 15, hole 4): one stranger opens 4,200 idle TCP connections
//! while 100 UDP calls run through veil, with veil's RLIMIT_NOFILE lowered to 1024 (so
//! that without the caps the connections alone would take every descriptor the relay
//! needs). Every call must succeed; the stranger keeps at most
//! `sip.max_connections_per_source` (32) connections, the rest are refused and counted,
//! and the ones it keeps are closed after 5 s without a SIP message.
//!
//! Loopback only; the attack is bounded in count (4,200) and time (30 s).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, Setup, Side, assert_all_succeeded};

const CALLS: u32 = 100;
const IDLE_CONNECTIONS: usize = 4200;
const ATTACK_LIMIT: Duration = Duration::from_secs(30);
const PER_SOURCE: f64 = 32.0;

/// Opens `n` TCP connections from the outsider's address to `veil`, and holds them (the
/// ones veil closes at accept stay half-closed on our side, as an attacker's would).
fn idle_connections(veil: SocketAddr, n: usize) -> (Vec<tokio::net::TcpStream>, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut held = Vec::with_capacity(n);
        let mut failed = 0;
        let end = Instant::now() + ATTACK_LIMIT;
        for _ in 0..n {
            if Instant::now() > end {
                break;
            }
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.bind(SocketAddr::from((Side::Outsider.ip(), 0)))
                .expect("bind outsider");
            match tokio::time::timeout(Duration::from_secs(1), sock.connect(veil)).await {
                Ok(Ok(s)) => held.push(s),
                _ => failed += 1,
            }
        }
        (held, failed)
    })
}

#[test]
fn idle_connections_from_one_stranger_cost_no_call() {
    let mut setup = Setup::standard();
    // 100 calls at 20/s need few relay ports at once; slots 79-88's ranges are ours.
    setup.media_ports = Some((27900, 28899));
    let lab = Lab::start_edited(79, &setup, |c| c.replace("level: debug", "level: info"));
    let veil = lab.veil_sip();
    let pid = lab.veil().pid().to_string();
    let limited = Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=1024:1024"])
        .status()
        .expect("prlimit");
    assert!(limited.success(), "prlimit --nofile=1024:1024 failed");
    assert_ne!(Side::Outsider.ip(), Ipv4Addr::LOCALHOST);

    let callee = lab
        .sipp(Side::Carrier, "uas_basic.xml")
        .calls(CALLS)
        .spawn();
    let callers = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .calls(CALLS)
        .arg("-r")
        .arg("20")
        .to(veil)
        .spawn();

    let started = Instant::now();
    let (held, failed) = idle_connections(veil, IDLE_CONNECTIONS);
    let attack_took = started.elapsed();
    let during = lab.metrics();
    let open = during.sum("veil_sip_connections", &[]).unwrap_or(-1.0);

    let callers = callers.wait(Duration::from_secs(60));
    let callee = callee.wait(Duration::from_secs(60));
    let refused = lab
        .metrics()
        .sum(
            "veil_sip_connections_refused_total",
            &[("reason", "per_source")],
        )
        .unwrap_or(0.0);
    println!(
        "idle connections: {} opened ({} connect failures) in {attack_took:?}; veil held {open}, \
         refused {refused}",
        held.len(),
        failed
    );
    assert_all_succeeded(&[&callers, &callee]);
    assert!(
        (0.0..=PER_SOURCE).contains(&open),
        "veil holds {open} connections from one stranger, more than its cap"
    );
    assert!(
        held.len() + failed >= IDLE_CONNECTIONS,
        "the attack was cut short by its time limit"
    );
    // Every connection veil accepted was refused at accept, or kept (at most 32 at a time)
    // and closed after 5 s of silence, or is still open. The kept ones are bounded by the
    // cap once per 5 s of attack (plus one round for the tail): the rest must be refused.
    let closed = lab
        .metrics()
        .sum(
            "veil_sip_connections_closed_total",
            &[("reason", "no_message")],
        )
        .unwrap_or(0.0);
    let rounds = attack_took.as_secs_f64() / 5.0 + 2.0;
    assert!(
        closed + open <= PER_SOURCE * rounds,
        "{closed} silent connections closed and {open} open: more than {PER_SOURCE} per 5 s"
    );
    assert!(
        refused + closed + open.max(0.0) >= held.len() as f64 - 2.0,
        "only {refused} connections refused at accept, {closed} closed silent, {open} open, \
         of {} opened",
        held.len()
    );

    // The kept connections never sent SIP: closed 5 s after accept.
    let by = Instant::now() + Duration::from_secs(10);
    loop {
        let m = lab.metrics();
        let open = m.sum("veil_sip_connections", &[]).unwrap_or(-1.0);
        if open == 0.0 {
            m.assert_at_least(
                "veil_sip_connections_closed_total",
                &[("reason", "no_message")],
                1.0,
            );
            break;
        }
        assert!(
            Instant::now() < by,
            "{open} silent connections still open 10 s after the attack"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(held);
}
