//! Overload and hostile floods (issue 7's proof): while 50 answered calls are up, hostile
//! sources flood veil at ten times its measured capacity for 10 s. Afterwards every call
//! still re-INVITEs and BYEs cleanly, every CDR is complete, veil's memory is back near
//! its level before the flood, and a new call succeeds right after the flood.
//!
//! Loopback only; the flood is bounded in time (10 s) and count (rate x 10 s, at most
//! 4 M datagrams). Numbers are printed (`cargo test --release --test flood -- --nocapture`).

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::observe::read_cdr;
use common::{Lab, Rule, Setup, Side, assert_all_succeeded};

const CALLS: u32 = 50;
const FLOOD: Duration = Duration::from_secs(10);
const MAX_DATAGRAMS: u64 = 4_000_000;
/// Memory after the flood must come back to within 10% or this much (whichever is more)
/// of its level before, and stay there for [`RSS_STABLE`], within [`RSS_SETTLE`] of the
/// flood's end: 32 s of transaction linger (64*T1), a housekeeping sweep (5 s), and slack
/// for a loaded machine. Without help it did not: the allocator kept the pages the flood
/// had touched (transparent huge pages pin them at 2 MiB granularity, and pages freed by
/// another thread wait for their owner), +9 MiB over a 27-37 MiB baseline. veil disables
/// THP for itself and, after a burst, asks the allocator to return what is free
/// (src/shell/trim.rs).
const RSS_MARGIN_KIB: u64 = 5 * 1024;
const RSS_SETTLE: Duration = Duration::from_secs(60);
const RSS_STABLE: Duration = Duration::from_secs(5);
/// Hostile source addresses (127.1.x.y): many, so that bans alone do not end the flood.
const SOURCES: u32 = 400;

fn options(veil: SocketAddr, local: SocketAddr, n: u64) -> String {
    format!(
        "OPTIONS sip:{veil} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKcap{n}\r\n\
         From: <sip:cap@{ip}>;tag=c{n}\r\nTo: <sip:{veil}>\r\nCall-ID: cap-{n}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        ip = local.ip()
    )
}

/// Requests per second veil answers from one trusted source (100 in flight), over 1 s.
fn measure_capacity(veil: SocketAddr) -> u64 {
    let sock = UdpSocket::bind((Side::Pbx.ip(), 0)).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let local = sock.local_addr().expect("addr");
    let mut buf = [0u8; 4096];
    let (mut sent, mut answered) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        while sent - answered < 100 {
            sent += 1;
            let _ = sock.send_to(options(veil, local, sent).as_bytes(), veil);
        }
        match sock.recv_from(&mut buf) {
            Ok(_) => answered += 1,
            Err(_) => answered = sent, // lost: refill the window
        }
    }
    answered
}

fn hostile(veil: SocketAddr, n: u64, local: SocketAddr) -> Vec<u8> {
    match n % 4 {
        0 | 1 => format!(
            "INVITE sip:4930123456@{veil} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKfl{n}\r\n\
             From: <sip:x@{ip}>;tag=f{n}\r\nTo: <sip:4930123456@{veil}>\r\nCall-ID: flood-{n}\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:x@{local}>\r\nContent-Length: 0\r\n\r\n",
            ip = local.ip()
        )
        .into_bytes(),
        2 => options(veil, local, n).into_bytes(),
        _ => format!("GARBAGE {n} \u{1}\u{2}\r\n\r\n").into_bytes(),
    }
}

/// Sends at `rate` datagrams/s for `FLOOD` from `SOURCES` addresses; returns how many.
fn flood(veil: SocketAddr, rate: u64) -> u64 {
    let socks: Vec<UdpSocket> = (0..SOURCES)
        .map(|i| {
            let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
            let s = UdpSocket::bind((ip, 0)).expect("bind hostile source");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let locals: Vec<SocketAddr> = socks
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    let start = Instant::now();
    let total = (rate * FLOOD.as_secs()).min(MAX_DATAGRAMS);
    let mut sent = 0u64;
    while sent < total && start.elapsed() < FLOOD {
        // Pace: as many as are due by now.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        if sent >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let i = (sent % u64::from(SOURCES)) as usize;
        let _ = socks[i].send_to(&hostile(veil, sent, locals[i]), veil);
        sent += 1;
    }
    sent
}

/// Resident memory (`VmRSS`) of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// A KiB field of /proc/PID/status (`VmRSS:`, or `VmHWM:` for the peak resident size).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("status field")
}

#[test]
fn hostile_flood_does_not_cost_established_calls() {
    let mut setup = Setup::standard();
    // A probe number routed to the backup carrier: the new call after the flood.
    setup.peers.push(Side::Backup);
    setup.rules.insert(
        0,
        Rule::route("probe", "pbx", Some("^999$"), &["carrier-b"]),
    );
    // 51 calls need 102 relay ports: slots 72-79's media ranges (this test owns them).
    setup.media_ports = Some((27200, 27999));
    let mut lab = Lab::start_edited(72, &setup, |c| c.replace("level: debug", "level: info"));
    let veil = lab.veil_sip();
    let pid = lab.veil().pid();

    let callee = lab
        .sipp(Side::Carrier, "uas_reinvite.xml")
        .calls(CALLS)
        .spawn();
    let probe_callee = lab.sipp(Side::Backup, "uas_basic.xml").spawn();
    let callers = lab
        .sipp(Side::Pbx, "uac_hold_reinvite.xml")
        .calls(CALLS)
        .arg("-r")
        .arg("50")
        .arg("-l")
        .arg(&CALLS.to_string())
        .to(veil)
        .spawn();
    // All calls answered before the flood starts.
    let up_by = Instant::now() + Duration::from_secs(8);
    loop {
        let active = lab.metrics().sum("veil_calls_active", &[]).unwrap_or(0.0);
        if active >= f64::from(CALLS) {
            break;
        }
        assert!(Instant::now() < up_by, "only {active} of {CALLS} calls up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(pid);
    // Measured after the baseline: its OPTIONS are load too (their transactions live 32 s).
    let capacity = measure_capacity(veil);
    assert!(capacity > 0, "veil answered nothing");

    let rate = capacity * 10;
    let t0 = Instant::now();
    let sent = flood(veil, rate);
    let flood_time = t0.elapsed();
    let flood_end = Instant::now();

    // A new call right after the flood (basic scenario: answer, 0.5 s talk, BYE).
    let probe = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .service("999")
        .arg("-p")
        .arg(&(lab.ports.veil_sip() + 9).to_string()) // the PBX's ports are busy with the 50
        .arg("-mp")
        .arg(&lab.ports.sipp_media(Side::Outsider).to_string())
        .to(veil)
        .run();
    let probe_time = flood_end.elapsed();
    // SIPp wait limits count from spawn: the callees were started before the flood.
    let probe_callee = probe_callee.wait(Duration::from_secs(40));
    assert_all_succeeded(&[&probe, &probe_callee]);

    assert!(lab.veil_mut().is_running(), "veil died in the flood");
    let callers = callers.wait(Duration::from_secs(60));
    let callee = callee.wait(Duration::from_secs(60));
    assert_all_succeeded(&[&callers, &callee]);

    // Memory: transactions of the load linger 64*T1 = 32 s (RFC 3261 timers H and J) and
    // veil's housekeeping sweeps every 5 s (bans, buckets, oversized maps); allow a bounded
    // time after the flood for both, sampling once a second.
    let margin = (rss_before / 10).max(RSS_MARGIN_KIB);
    let mut rss_trace = Vec::new();
    let mut within_since: Option<Instant> = None;
    let (rss_after, stable) = loop {
        std::thread::sleep(Duration::from_secs(1));
        let rss = rss_kib(pid);
        rss_trace.push(rss / 1024);
        if rss <= rss_before + margin {
            let since = *within_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= RSS_STABLE {
                break (rss, true);
            }
        } else {
            within_since = None;
        }
        if flood_end.elapsed() >= RSS_SETTLE {
            break (rss, false);
        }
    };
    let rss_peak = proc_status_kib(pid, "VmHWM:");
    let settled_in = flood_end.elapsed();
    let m = lab.metrics();
    let banned = m.sum("veil_bans_total", &[]).unwrap_or(0.0);
    let dropped = m.sum("veil_sip_dropped_total", &[]).unwrap_or(0.0);
    let rows = read_cdr(&lab.veil().cdr_path()).expect("cdr");
    let complete = rows
        .iter()
        .filter(|r| {
            r.get("final_code") == Some("200")
                && r.get("end_reason") == Some("caller_bye")
                && r.get("ended_at").is_some_and(|v| !v.is_empty())
        })
        .count();
    println!(
        "flood: capacity {capacity}/s (OPTIONS, one trusted source), flood target {rate}/s, \
         sent {sent} datagrams from {SOURCES} sources in {flood_time:?} ({:.0}/s); \
         bans {banned}, dropped unread {dropped}; RSS {rss_before} KiB before, {rss_after} KiB \
         after ({settled_in:?} after the flood; peak {rss_peak} KiB; MiB each second: \
         {rss_trace:?}); \
         probe call done {probe_time:?} after the flood (incl. 0.5 s talk); \
         CDR rows complete {complete}/{}",
        sent as f64 / flood_time.as_secs_f64(),
        rows.len()
    );
    assert_eq!(rows.len() as u32, CALLS + 1, "one CDR per call, no more");
    assert_eq!(complete as u32, CALLS + 1, "every CDR complete");
    assert!(banned >= 1.0, "the flood sources were not banned");
    assert!(
        stable,
        "memory did not come back for {RSS_STABLE:?} within {RSS_SETTLE:?}: {rss_before} KiB -> {rss_after} KiB \
         (margin {margin} KiB; MiB each second: {rss_trace:?})"
    );
    assert!(
        probe_time < Duration::from_secs(3),
        "new call took {probe_time:?}"
    );
}
