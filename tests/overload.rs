//! Overload shedding (issue 7): with a tiny `security.overload_queue`, a burst of new
//! INVITEs saturates veil's signalling queue. While it lasts, new INVITEs are answered 503
//! with Retry-After by the socket task without reaching the engine, and the re-INVITE, ACK
//! and BYE of calls already up are still served: every call ends cleanly with a CDR.
//!
//! The burst comes from the PBX's own address (a configured peer: exempt from rate limits
//! and bans, and its `limits.messages_per_second` valve switched off, so only the shedding
//! stands between it and the engine), to a number no rule routes. Loopback only, bounded
//! in time and count.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::observe::read_cdr;
use common::{Lab, Setup, Side, assert_all_succeeded};

const CALLS: u32 = 5;
/// Hard bound of the burst, whatever happens to the calls.
const BURST_MAX: Duration = Duration::from_secs(20);
const BURST_RATE: f64 = 100_000.0;
const BURST_MAX_DATAGRAMS: u64 = 2_000_000;

fn new_invite(veil: SocketAddr, local: SocketAddr, n: u64) -> String {
    format!(
        "INVITE sip:0000@{veil} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKov{n}\r\n\
         From: <sip:burst@{ip}>;tag=b{n}\r\nTo: <sip:0000@{veil}>\r\nCall-ID: burst-{n}\r\n\
         CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:burst@{local}>\r\n\
         Content-Length: 0\r\n\r\n",
        ip = local.ip()
    )
}

/// What the burst's sockets got back.
#[derive(Debug, Default)]
struct BurstResult {
    sent: u64,
    shed_503: u64,
    other: u64,
    retry_after: bool,
}

/// New INVITEs at up to `BURST_RATE` per second until `stop` (or the bounds), reading the
/// answers as they come.
fn burst(veil: SocketAddr, stop: Arc<AtomicBool>) -> BurstResult {
    let sock = UdpSocket::bind((Side::Pbx.ip(), 0)).expect("bind burst source");
    sock.set_nonblocking(true).expect("nonblocking");
    let local = sock.local_addr().expect("addr");
    let mut r = BurstResult::default();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    let mut read = |r: &mut BurstResult| {
        while let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 503") {
                r.shed_503 += 1;
                r.retry_after |= text.contains("\r\nRetry-After: ");
            } else {
                r.other += 1;
            }
        }
    };
    while !stop.load(Ordering::Relaxed)
        && start.elapsed() < BURST_MAX
        && r.sent < BURST_MAX_DATAGRAMS
    {
        if r.sent as f64 > start.elapsed().as_secs_f64() * BURST_RATE {
            std::thread::sleep(Duration::from_micros(200));
            read(&mut r);
            continue;
        }
        for _ in 0..64 {
            let _ = sock.send_to(new_invite(veil, local, r.sent).as_bytes(), veil);
            r.sent += 1;
        }
        read(&mut r);
    }
    std::thread::sleep(Duration::from_millis(300));
    read(&mut r);
    r
}

#[test]
fn saturated_queue_sheds_new_invites_and_serves_dialogs() {
    let setup = Setup::standard().with_peer(Side::Pbx, "limits: {messages_per_second: 0}");
    let mut lab = Lab::start_edited(75, &setup, |c| {
        c.replace("level: debug", "level: info") + "security:\n  overload_queue: 1\n"
    });
    let veil = lab.veil_sip();

    // Calls up first: they re-INVITE 3 s after their ACK, then BYE.
    let callee = lab
        .sipp(Side::Carrier, "uas_reinvite_lossy.xml")
        .calls(CALLS)
        .spawn();
    let callers = lab
        .sipp(Side::Pbx, "uac_reinvite_late.xml")
        .calls(CALLS)
        .arg("-r")
        .arg(&CALLS.to_string())
        .arg("-l")
        .arg(&CALLS.to_string())
        .to(veil)
        .spawn();
    let up_by = Instant::now() + Duration::from_secs(15);
    loop {
        let active = lab.metrics().sum("veil_calls_active", &[]).unwrap_or(0.0);
        if active >= f64::from(CALLS) {
            break;
        }
        assert!(Instant::now() < up_by, "only {active} of {CALLS} calls up");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The burst runs until every call has re-INVITEd and hung up.
    let stop = Arc::new(AtomicBool::new(false));
    let burster = {
        let stop = stop.clone();
        std::thread::spawn(move || burst(veil, stop))
    };
    let callers = callers.wait(Duration::from_secs(30));
    let burst_was_on = !burster.is_finished();
    stop.store(true, Ordering::Relaxed);
    let b = burster.join().expect("burst thread");
    let callee = callee.wait(Duration::from_secs(10));

    assert!(lab.veil_mut().is_running(), "veil died under the burst");
    let m = lab.metrics();
    let shed = m
        .sum("veil_sip_dropped_total", &[("reason", "overload")])
        .unwrap_or(0.0);
    let rows = read_cdr(&lab.veil().cdr_path()).expect("cdr");
    let clean = rows
        .iter()
        .filter(|r| {
            r.get("final_code") == Some("200")
                && r.get("end_reason") == Some("caller_bye")
                && r.get("ended_at").is_some_and(|v| !v.is_empty())
        })
        .count();
    println!(
        "overload: burst sent {} new INVITEs, {} answered 503 by the socket task, {} other \
         answers (policy 403s and their retransmissions); veil_sip_dropped_total{{overload}} \
         {shed}; calls ended cleanly {clean}/{CALLS}",
        b.sent, b.shed_503, b.other
    );
    assert_all_succeeded(&[&callers, &callee]);
    assert!(
        burst_was_on,
        "the burst ended before the calls' re-INVITE and BYE"
    );
    assert!(b.shed_503 > 0, "no new INVITE was shed: {b:?}");
    assert!(b.retry_after, "the shedding 503 has no Retry-After");
    assert!(
        shed >= b.shed_503 as f64,
        "shed {shed} < 503s seen {}",
        b.shed_503
    );
    assert_eq!(
        rows.len() as u32,
        CALLS,
        "one CDR per call (shed INVITEs make none)"
    );
    assert_eq!(
        clean as u32, CALLS,
        "every call re-INVITEd and ended by BYE"
    );
}
