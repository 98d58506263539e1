//! Identification at the edge, through the binary (loopback only):
//! - issue 14 item 8: two trunks on one IP address, told apart by their source port, are
//!   different peers and are routed differently by the policy;
//! - issue 15: a trusted peer flooding veil is held by `limits.messages_per_second`
//!   (dropped and counted, new INVITEs 503, never banned) while another peer's calls all
//!   succeed. The flood is bounded in time and count; its figures are printed
//!   (`cargo test --release --test edge_peers -- --nocapture`) and kept in docs/security.md.

mod common;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::observe::read_cdr;
use common::topology::E164;
use common::trace::Direction;
use common::{Lab, Rule, Setup, Side, assert_all_succeeded, assert_no_leaks};

/// Call-IDs a SIPp caller used.
fn call_ids(o: &common::sipp::SippOutcome) -> HashSet<String> {
    o.messages
        .iter()
        .filter(|m| m.direction == Direction::Sent)
        .filter_map(|m| m.header("Call-ID").map(str::to_string))
        .collect()
}

#[test]
fn two_trunks_on_one_address_are_told_apart_by_source_port_and_routed_apart() {
    let slot = 121;
    let setup = Setup {
        peers: vec![Side::Pbx, Side::Carrier, Side::Backup],
        rules: vec![
            Rule::route("pbx-to-carrier", "pbx", Some(E164), &["carrier"]),
            Rule::route("trunk2-to-backup", "pbx-trunk2", Some(E164), &["carrier-b"]),
            Rule::reject("default-deny", 403),
        ],
        ..Setup::standard()
    };
    let ports = common::Ports::new(slot);
    let (pbx, trunk2) = (ports.sip_addr(Side::Pbx), {
        let mut a = ports.sip_addr(Side::Pbx);
        a.set_port(ports.alt_sip());
        a
    });
    let lab = Lab::start_edited(slot, &setup, |c| {
        let own = "    sources: [127.0.0.2/32]\n";
        assert!(c.contains(own), "{c}");
        let trunk = format!(
            "    sources: [\"{pbx}\"]\n  - name: pbx-trunk2\n    address: {trunk2}\n    \
             transport: udp\n    listen: udp\n    trusted: true\n    sources: [\"{trunk2}\"]\n"
        );
        c.replacen(own, &trunk, 1)
    });
    let (n_pbx, n_trunk2) = (3u32, 2u32);
    let carrier = lab
        .sipp(Side::Carrier, "uas_basic.xml")
        .calls(n_pbx)
        .spawn();
    let backup = lab
        .sipp(Side::Backup, "uas_basic.xml")
        .calls(n_trunk2)
        .spawn();
    let first = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .calls(n_pbx)
        .to(lab.veil_sip())
        .spawn();
    let second = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .alt_ports()
        .calls(n_trunk2)
        .to(lab.veil_sip())
        .spawn();
    let first = first.wait(Duration::from_secs(30));
    let second = second.wait(Duration::from_secs(30));
    let carrier = carrier.wait(Duration::from_secs(10));
    let backup = backup.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&first, &second, &carrier, &backup]);
    assert_no_leaks(&[&first, &carrier]);
    assert_no_leaks(&[&second, &backup]);

    // What arrived where: the PBX's calls at the carrier, trunk2's at the backup.
    assert_eq!(
        carrier.received_requests("INVITE").len() as u32,
        n_pbx,
        "{}",
        carrier.report()
    );
    assert_eq!(
        backup.received_requests("INVITE").len() as u32,
        n_trunk2,
        "{}",
        backup.report()
    );
    // And the CDRs name the two trunks.
    let (ids1, ids2) = (call_ids(&first), call_ids(&second));
    let rows = read_cdr(&lab.veil().cdr_path()).expect("cdr");
    assert_eq!(rows.len() as u32, n_pbx + n_trunk2);
    for r in &rows {
        let a = r.get("a_call_id").unwrap_or_default().to_string();
        let (src, dst) = if ids1.contains(&a) {
            ("pbx", "carrier")
        } else {
            assert!(ids2.contains(&a), "unknown call {a}");
            ("pbx-trunk2", "carrier-b")
        };
        r.assert_eq("source_peer", src);
        r.assert_eq("dest_peer", dst);
    }
}

/// `veil check` of the lab config with a second trunk on the PBX's address whose sources
/// are `trunk2`: exit status and everything printed.
fn check_with_trunk2(trunk2: &str) -> (bool, String, String) {
    let lab = Lab::new(121);
    let config = lab.write_config(&Setup::standard());
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "policy: policy.yaml",
        &format!(
            "  - name: pbx-trunk2\n    address: 127.0.0.2:5070\n    sources: [{trunk2}]\n\
             policy: policy.yaml"
        ),
        1,
    );
    std::fs::write(&config, &text).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run veil check");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed, text)
}

#[test]
fn veil_check_refuses_two_peers_that_would_match_the_same_traffic() {
    let (ok, printed, text) = check_with_trunk2("\"127.0.0.2\"");
    assert!(!ok, "{printed}");
    let line = text
        .lines()
        .position(|l| l.contains("sources: [\"127.0.0.2\"]"))
        .expect("trunk2 line")
        + 1;
    let first = text
        .lines()
        .position(|l| l.contains("sources: [127.0.0.2/32]"))
        .expect("pbx line")
        + 1;
    assert!(
        printed.contains(&format!("veil.yaml:{line}: peers[2].sources[0]: "))
            && printed.contains(&format!("peer `pbx` (peers[0].sources[0], line {first})")),
        "{printed}"
    );
    // With a port it is another trunk.
    let (ok, printed, _) = check_with_trunk2("\"127.0.0.2:5070\"");
    assert!(ok, "{printed}");
}

/// Calls a SIPp caller got a 200 to its INVITE for.
fn answered(o: &common::sipp::SippOutcome) -> usize {
    o.received()
        .filter(|m| m.first_line().starts_with("SIP/2.0 200"))
        .filter(|m| m.header("CSeq").is_some_and(|c| c.ends_with("INVITE")))
        .filter_map(|m| m.header("Call-ID"))
        .collect::<HashSet<_>>()
        .len()
}

/// The trusted PBX's flood: new INVITEs (a routing loop) to a number no rule routes.
const FLOOD_RATE: u64 = 10_000;
const FLOOD_FOR: Duration = Duration::from_secs(6);
const FLOOD_MAX: u64 = 100_000;
/// The PBX's valve in this test.
const PBX_MPS: u32 = 500;
/// Calls of the other peer during the flood.
const CALLS: u32 = 30;

#[derive(Debug, Default)]
struct Flood {
    sent: u64,
    got_503: u64,
    got_403: u64,
    other: u64,
    retry_after: bool,
}

fn flood_invite(veil: SocketAddr, local: SocketAddr, n: u64) -> String {
    format!(
        "INVITE sip:loop@{veil} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKloop{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:pbx@{ip}>;tag=l{n}\r\nTo: <sip:loop@{veil}>\r\n\
         Call-ID: loop-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@{local}>\r\n\
         Content-Length: 0\r\n\r\n",
        ip = local.ip()
    )
}

/// New INVITEs from the PBX's address at `FLOOD_RATE` for `FLOOD_FOR` (at most
/// `FLOOD_MAX`), reading the answers as they come.
fn flood(veil: SocketAddr) -> Flood {
    let sock = UdpSocket::bind((Side::Pbx.ip(), 0)).expect("bind flood source");
    sock.set_nonblocking(true).expect("nonblocking");
    let local = sock.local_addr().expect("addr");
    let mut f = Flood::default();
    let mut buf = [0u8; 4096];
    let mut read = |f: &mut Flood| {
        while let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 503") {
                f.got_503 += 1;
                f.retry_after |= text.contains("\r\nRetry-After: 1\r\n");
            } else if text.starts_with("SIP/2.0 403") {
                f.got_403 += 1;
            } else {
                f.other += 1;
            }
        }
    };
    let start = Instant::now();
    while start.elapsed() < FLOOD_FOR && f.sent < FLOOD_MAX {
        if f.sent as f64 > start.elapsed().as_secs_f64() * FLOOD_RATE as f64 {
            std::thread::sleep(Duration::from_micros(500));
            read(&mut f);
            continue;
        }
        for _ in 0..50 {
            let _ = sock.send_to(flood_invite(veil, local, f.sent).as_bytes(), veil);
            f.sent += 1;
        }
        read(&mut f);
    }
    std::thread::sleep(Duration::from_millis(500));
    read(&mut f);
    f
}

#[test]
fn flooding_trusted_peer_is_throttled_never_banned_and_other_calls_all_succeed() {
    let slot = 122;
    let setup = Setup {
        peers: vec![Side::Pbx, Side::Carrier, Side::Backup],
        rules: vec![
            Rule::route("pbx-to-carrier", "pbx", Some(E164), &["carrier"]),
            Rule::route("carrier-to-backup", "carrier", Some(E164), &["carrier-b"]),
            Rule::reject("default-deny", 403),
        ],
        ..Setup::standard()
    }
    .with_peer(
        Side::Pbx,
        &format!("limits: {{messages_per_second: {PBX_MPS}}}"),
    );
    let lab = Lab::start_edited(slot, &setup, |c| c.replace("level: debug", "level: info"));
    let veil = lab.veil_sip();

    let callee = lab.sipp(Side::Backup, "uas_basic.xml").calls(CALLS).spawn();
    let flooder = std::thread::spawn(move || flood(veil));
    std::thread::sleep(Duration::from_millis(500));
    let callers = lab
        .sipp(Side::Carrier, "uac_basic.xml")
        .calls(CALLS)
        .arg("-r")
        .arg("10")
        .to(veil)
        .run();
    let flood_was_on = !flooder.is_finished();
    let f = flooder.join().expect("flood thread");
    let callee = callee.wait(Duration::from_secs(10));

    let m = lab.metrics();
    let dropped = m
        .sum("veil_sip_dropped_total", &[("reason", "peer_rate")])
        .unwrap_or(0.0);
    let bans = m.sum("veil_bans_total", &[]).unwrap_or(0.0);
    let banned = m.sum("veil_banned_sources", &[]).unwrap_or(-1.0);
    let failed = CALLS as usize - answered(&callers);
    println!(
        "peer valve: the trusted PBX (limits.messages_per_second {PBX_MPS}, burst {}) sent {} \
         new INVITEs in {:?} ({} per second); veil answered {} with 503 (Retry-After: 1); {} \
         passed the valve (100 Trying, then the policy's 403: {} with retransmissions); \
         veil_sip_dropped_total{{peer_rate}} {dropped}; \
         bans {bans}, banned sources {banned}; the carrier's calls: {}/{CALLS} succeeded, \
         {failed} failed",
        PBX_MPS * 2,
        f.sent,
        FLOOD_FOR,
        FLOOD_RATE,
        f.got_503,
        f.other,
        f.got_403,
        CALLS as usize - failed,
    );
    assert!(flood_was_on, "the flood ended before the calls");
    assert_all_succeeded(&[&callers, &callee]);
    assert_eq!(failed, 0);
    assert!(
        dropped > f.sent as f64 * 0.5,
        "the valve dropped {dropped} of {} messages",
        f.sent
    );
    assert!(f.got_503 > 0 && f.retry_after, "{f:?}");
    // What passed stays near the rate: burst plus the rate over the flood, with slack.
    let passed = f.sent as f64 - dropped;
    let bound = f64::from(PBX_MPS) * (FLOOD_FOR.as_secs_f64() + 1.5) + f64::from(PBX_MPS * 2);
    assert!(
        passed <= bound,
        "{passed} messages passed, more than {bound}"
    );
    assert_eq!(bans, 0.0, "a peer is never banned by its valve");
    assert_eq!(banned, 0.0);

    // Right after the flood the PBX is served again: one call to the carrier.
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab.sipp(Side::Pbx, "uac_basic.xml").to(veil).run();
    let callee = callee.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &callee]);
}
