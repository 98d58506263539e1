//! SIP over TLS at the edge, against an independent TLS peer (tests/tls_peer.py, Python's
//! `ssl` module; Debian's SIPp has no TLS) on one leg and SIPp over UDP on the other.
//! Certificates come from a test CA the tests make with the `openssl` CLI.
//!
//! Proven here: TLS caller -> UDP callee and UDP caller -> TLS callee (server certificate
//! checked against the configured CA, SNI seen by the peer, veil's client certificate
//! for mutual TLS), one connection reused for two calls, a callee whose certificate does
//! not verify failed over like a dead target, a client without a certificate refused by a
//! listener that requires one, and the RFC 5626 CRLF ping answered over TLS and TCP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::sipp::SippOutcome;
use common::trace::{Direction, parse_trace};
use common::{Lab, Ports, Setup, Side, assert_all_succeeded, assert_no_leaks, assert_sdp_anchored};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls_peer.py");

/// veil's TLS port in a slot (the slot's 10 ports leave +7 free).
fn tls_port(ports: &Ports) -> u16 {
    ports.veil_sip() + 7
}

/// The lab PKI (`common::pki`: a CA and veil's certificate) plus certificates for the PBX
/// and the carrier, and a rogue CA with a carrier certificate veil must not trust.
fn tls_pki() -> Pki {
    let pki = Pki::new();
    pki.ca("rogue-ca");
    pki.leaf("pbx", "ca", "DNS:pbx.test,IP:127.0.0.2");
    pki.leaf("carrier", "ca", "DNS:carrier.test");
    pki.leaf("rogue-carrier", "rogue-ca", "DNS:carrier.test");
    pki
}

/// The standard lab config plus a TLS listener (client certificates required) and
/// `side` reached over TLS with the given `tls:` block.
fn with_tls(pki: &Pki, ports: Ports, side: Side, peer_tls: &str) -> impl FnOnce(String) -> String {
    let listener = format!(
        "    - {{name: tls, transport: tls, address: 127.0.0.1:{}, tls: {{cert: {}, key: {}, ca: {}, verify_client: true}}}}\n",
        tls_port(&ports),
        pki.p("veil.pem"),
        pki.p("veil.key"),
        pki.p("ca.pem"),
    );
    let addr = ports.sip_addr(side);
    let udp_peer = format!("    address: {addr}\n    transport: udp\n    listen: udp\n");
    let tls_peer = format!(
        "    address: sips:{addr}\n    transport: tls\n    listen: tls\n    tls: {peer_tls}\n"
    );
    move |c: String| {
        let anchor = "    - {name: tcp,";
        assert!(c.contains(anchor) && c.contains(&udp_peer), "{c}");
        c.replacen(anchor, &format!("{listener}{anchor}"), 1)
            .replacen(&udp_peer, &tls_peer, 1)
    }
}

fn peer(args: &[String]) -> Command {
    let mut c = Command::new("python3");
    c.arg(PEER).args(args).stdin(Stdio::null());
    c
}

/// A finished run of the TLS peer, shaped like a SIPp outcome so that the leak and SDP
/// checks of the harness apply to it unchanged.
fn outcome(side: Side, mode: &str, trace: &Path, out: std::process::Output) -> SippOutcome {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    SippOutcome {
        side,
        scenario: format!("tls_peer.py {mode}"),
        command: format!("python3 tests/tls_peer.py {mode}"),
        exit_code: out.status.code(),
        killed: false,
        messages: parse_trace(&text),
        errors: String::from_utf8_lossy(&out.stderr).into_owned(),
        screen: String::from_utf8_lossy(&out.stdout).into_owned(),
        trace_path: trace.to_path_buf(),
    }
}

/// The TLS peer as a callee on `side`'s address, until it answered `calls` BYEs or
/// `limit` passed. Returns once it listens.
struct Uas {
    child: Child,
    side: Side,
    trace: PathBuf,
    report: PathBuf,
}

impl Uas {
    fn start(lab: &Lab, side: Side, pki: &Pki, cert: &str, calls: u32, limit: u32) -> Uas {
        let trace = lab.dir().join("tls_uas.trace");
        let report = lab.dir().join("tls_uas.json");
        let ready = lab.dir().join("tls_uas.ready");
        let child = peer(&[
            "uas".into(),
            "--listen".into(),
            lab.ports.sip_addr(side).to_string(),
            "--cert".into(),
            pki.p(&format!("{cert}.pem")),
            "--key".into(),
            pki.p(&format!("{cert}.key")),
            "--ca".into(),
            pki.p("ca.pem"),
            "--calls".into(),
            calls.to_string(),
            "--media-port".into(),
            lab.ports.sipp_media(side).to_string(),
            "--trace".into(),
            trace.display().to_string(),
            "--report".into(),
            report.display().to_string(),
            "--ready".into(),
            ready.display().to_string(),
            "--timeout".into(),
            limit.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "tls_peer.py uas did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Uas {
            child,
            side,
            trace,
            report,
        }
    }

    fn wait(self) -> (SippOutcome, serde_json::Value) {
        let out = self.child.wait_with_output().expect("uas exits");
        let report = std::fs::read_to_string(&self.report).unwrap_or_else(|_| "{}".into());
        let report = serde_json::from_str(&report).expect("uas report is JSON");
        (outcome(self.side, "uas", &self.trace, out), report)
    }
}

/// The TLS peer as a client from the PBX's address to veil's TLS port.
fn client(lab: &Lab, pki: &Pki, mode: &str, cert: Option<&str>, extra: &[&str]) -> SippOutcome {
    let trace = lab.dir().join(format!("tls_{mode}.trace"));
    let mut args: Vec<String> = vec![
        mode.into(),
        "--connect".into(),
        format!("127.0.0.1:{}", tls_port(&lab.ports)),
        "--bind".into(),
        Side::Pbx.ip().to_string(),
        "--ca".into(),
        pki.p("ca.pem"),
        "--server-name".into(),
        "veil.test".into(),
        "--media-port".into(),
        lab.ports.sipp_media(Side::Pbx).to_string(),
        "--trace".into(),
        trace.display().to_string(),
    ];
    if let Some(c) = cert {
        args.extend(["--cert".into(), pki.p(&format!("{c}.pem"))]);
        args.extend(["--key".into(), pki.p(&format!("{c}.key"))]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = peer(&args).output().expect("python3 runs");
    outcome(Side::Pbx, mode, &trace, out)
}

fn assert_ok(o: &SippOutcome) {
    assert!(
        o.succeeded(),
        "{} failed ({:?}):\n{}\n{}",
        o.scenario,
        o.exit_code,
        o.screen,
        o.errors
    );
}

/// Every message `o` received: over TLS nothing says UDP, over UDP nothing says TLS.
fn assert_only_transport(o: &SippOutcome, tls: bool) {
    for m in o.received() {
        let t = m.text.to_ascii_uppercase();
        let foreign = if tls {
            ["SIP/2.0/UDP", "TRANSPORT=UDP"]
        } else {
            ["SIP/2.0/TLS", "SIPS:"]
        };
        for f in foreign {
            assert!(
                !t.contains(f),
                "{f} reached the {} leg:\n{}",
                o.side.label(),
                m.text
            );
        }
    }
}

#[test]
fn tls_caller_reaches_udp_callee() {
    let pki = tls_pki();
    let ports = Ports::new(22);
    let block = format!("{{ca: {}}}", pki.p("ca.pem"));
    let lab = Lab::start_edited(
        22,
        &Setup::standard(),
        with_tls(&pki, ports, Side::Pbx, &block),
    );
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = client(&lab, &pki, "uac", Some("pbx"), &[]);
    let callee = callee.wait(Duration::from_secs(15));
    assert_ok(&caller);
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    assert_only_transport(&caller, true);
    assert_only_transport(&callee, false);
    let invite = &callee.received_requests("INVITE")[0];
    assert!(
        invite
            .header("Via")
            .is_some_and(|v| v.starts_with("SIP/2.0/UDP"))
    );
    // Towards the TLS caller veil's Contact is a sips: URI on its TLS port.
    let ok = caller
        .received()
        .find(|m| m.status() == Some(200) && m.sdp().is_some())
        .expect("200 with SDP");
    let contact = ok.header("Contact").expect("Contact");
    assert!(
        contact.contains(&format!("sips:127.0.0.1:{}", tls_port(&ports))),
        "{contact}"
    );
}

#[test]
fn udp_caller_reaches_tls_callee_on_one_reused_connection() {
    let pki = tls_pki();
    let ports = Ports::new(25);
    let block = format!(
        "{{ca: {}, server_name: carrier.test, cert: {}, key: {}}}",
        pki.p("ca.pem"),
        pki.p("veil.pem"),
        pki.p("veil.key")
    );
    let lab = Lab::start_edited(
        25,
        &Setup::standard(),
        with_tls(&pki, ports, Side::Carrier, &block),
    );
    let uas = Uas::start(&lab, Side::Carrier, &pki, "carrier", 2, 30);
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .calls(2)
        .run();
    let (callee, report) = uas.wait();
    assert_all_succeeded(&[&caller]);
    assert_ok(&callee);
    assert_no_leaks(&[&caller, &callee]);
    assert_sdp_anchored(&caller, &lab.ports);
    assert_sdp_anchored(&callee, &lab.ports);
    assert_only_transport(&caller, false);
    assert_only_transport(&callee, true);
    assert_eq!(report["invites"], 2, "{report}");
    assert_eq!(
        report["connections"], 1,
        "two calls, one connection: {report}"
    );
    assert_eq!(
        report["sni"],
        serde_json::json!(["carrier.test"]),
        "{report}"
    );
    assert_eq!(
        report["client_certs"], 1,
        "veil's client certificate: {report}"
    );
    let invite = &callee.received_requests("INVITE")[0];
    assert!(
        invite.first_line().starts_with("INVITE sips:"),
        "{}",
        invite.text
    );
    assert!(
        invite
            .header("Via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TLS"))
    );
    assert!(
        invite
            .header("Contact")
            .is_some_and(|c| c.contains("sips:"))
    );
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "200");
    cdr.assert_eq("dest_peer", "carrier");
}

#[test]
fn callee_with_untrusted_certificate_fails_over() {
    let pki = tls_pki();
    let ports = Ports::new(26);
    let block = format!("{{ca: {}, server_name: carrier.test}}", pki.p("ca.pem"));
    let lab = Lab::start_edited(
        26,
        &Setup::failover(),
        with_tls(&pki, ports, Side::Carrier, &block),
    );
    // The carrier presents a certificate of a CA veil does not trust.
    let rogue = Uas::start(&lab, Side::Carrier, &pki, "rogue-carrier", 1, 8);
    let backup = lab.sipp(Side::Backup, "uas_basic.xml").spawn();
    let started = Instant::now();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let backup = backup.wait(Duration::from_secs(15));
    assert_all_succeeded(&[&caller, &backup]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failover waited for a timer instead of the handshake failure"
    );
    assert_no_leaks(&[&caller, &backup]);
    let (rogue, report) = rogue.wait();
    assert_eq!(report["invites"], 0, "{report}");
    assert!(rogue.received().next().is_none(), "{}", rogue.report());
    assert!(report["connections"].as_u64().unwrap_or(0) >= 1, "{report}");
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("dest_peer", "carrier-b");
    let lines = lab.veil().log_lines("connection to peer failed");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"peer\":\"carrier\"") && l.contains("certificate")),
        "no log line naming the peer and the certificate problem: {lines:?}"
    );
}

#[test]
fn listener_requiring_client_certificates_refuses_a_client_without_one() {
    let pki = tls_pki();
    let ports = Ports::new(23);
    let block = format!("{{ca: {}}}", pki.p("ca.pem"));
    let lab = Lab::start_edited(
        23,
        &Setup::standard(),
        with_tls(&pki, ports, Side::Pbx, &block),
    );
    let refused = client(&lab, &pki, "refused", None, &[]);
    assert_ok(&refused);
    // The same client with its certificate is let in and answered.
    let answered = client(&lab, &pki, "refused", Some("pbx"), &[]);
    assert_eq!(answered.exit_code, Some(1), "{}", answered.screen);
    assert!(
        answered.errors.contains("got an answer"),
        "{}",
        answered.errors
    );
}

#[test]
fn crlf_ping_gets_a_pong_over_tls_and_tcp() {
    let pki = tls_pki();
    let ports = Ports::new(24);
    let block = format!("{{ca: {}}}", pki.p("ca.pem"));
    let lab = Lab::start_edited(
        24,
        &Setup::standard(),
        with_tls(&pki, ports, Side::Pbx, &block),
    );
    let ping = client(&lab, &pki, "ping", Some("pbx"), &[]);
    assert_ok(&ping);
    let mut tcp = TcpStream::connect(lab.veil_sip()).expect("veil's TCP listener");
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    tcp.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    tcp.read_exact(&mut pong).expect("a pong");
    assert_eq!(&pong, b"\r\n");
}

#[test]
fn idle_connections_are_closed_and_pings_keep_them_open() {
    let lab = Lab::start_edited(27, &Setup::standard(), |c| {
        c.replacen("sip:\n", "sip:\n  connection_idle: 1s\n", 1)
    });
    let ping = |s: &mut TcpStream| {
        s.write_all(b"\r\n\r\n").unwrap();
        let mut pong = [0u8; 2];
        s.read_exact(&mut pong).expect("a pong");
        assert_eq!(&pong, b"\r\n");
    };
    let mut kept = TcpStream::connect(lab.veil_sip()).expect("veil's TCP listener");
    kept.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut idle = TcpStream::connect(lab.veil_sip()).expect("veil's TCP listener");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    ping(&mut idle);
    let started = Instant::now();
    // Pinged every 400 ms for 2.4 s: more than twice the idle time, still open.
    for _ in 0..6 {
        ping(&mut kept);
        std::thread::sleep(Duration::from_millis(400));
    }
    ping(&mut kept);
    // The other one, silent since its first ping, was closed by veil.
    let mut rest = [0u8; 16];
    let n = idle.read(&mut rest).expect("EOF, not a read timeout");
    assert_eq!(n, 0, "veil closes an idle connection");
    assert!(started.elapsed() < Duration::from_secs(5));
}
