//! RFC 4475 torture messages (tests/data/rfc4475) and RFC 5118-style IPv6 messages sent
//! over UDP to the running binary, as the PBX (a known peer), asserting what veil answers
//! as the UAS of leg A. Runs inside a loopback-only network namespace (common::netns):
//! the messages name 192.0.2.x and example.com hosts.
//!
//! "Reached routing" is made visible by a policy that rejects everything from the PBX
//! with 404: a 404 means the message parsed and passed admission.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Lab, Rule, Setup, Side};

/// What veil must do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This final status code (provisional responses before it are fine).
    Final(u16),
    /// No answer at all (responses nobody asked for; requests no answer can be built for).
    Nothing,
}
use Expect::*;

/// Every RFC 4475 message, with the RFC section's expectation for a UAS (veil as leg A).
const TORTURE: &[(&str, Expect)] = &[
    // §3.1.1 valid: parsed, admitted, answered by method.
    ("wsinv.dat", Final(481)), // its To has a tag: a request in a dialog veil does not know
    ("intmeth.dat", Final(501)), // unknown method
    ("esc01.dat", Final(404)),
    ("escnull.dat", Final(405)), // REGISTER: veil is no registrar
    ("esc02.dat", Final(501)),   // RE%47IST%45R is an unknown method, not REGISTER
    ("lwsdisp.dat", Final(200)),
    ("longreq.dat", Final(404)),
    ("dblreq.dat", Final(405)), // the REGISTER; the INVITE after it is ignored
    ("semiuri.dat", Final(200)),
    ("transports.dat", Final(200)),
    ("mpart01.dat", Final(405)), // MESSAGE is not relayed
    ("unreason.dat", Nothing),   // responses to nothing veil sent
    ("noreason.dat", Nothing),
    // §3.1.2 invalid: 400 where a response can be built.
    ("badinv01.dat", Final(400)),
    ("clerr.dat", Final(400)),
    ("ncl.dat", Final(400)),
    ("scalar02.dat", Final(400)),
    ("scalarlg.dat", Nothing),
    ("quotbal.dat", Final(400)),
    ("ltgtruri.dat", Final(400)),
    ("lwsruri.dat", Final(400)),
    ("lwsstart.dat", Final(400)),
    ("trws.dat", Final(400)),
    ("escruri.dat", Final(400)),
    ("baddate.dat", Final(404)), // a bad Date is harmless: accepted (RFC 4475 §3.1.2.12)
    ("regbadct.dat", Final(400)),
    ("badaspec.dat", Final(400)),
    ("baddn.dat", Final(400)),
    ("badvers.dat", Final(505)),
    ("mismatch01.dat", Final(400)),
    ("mismatch02.dat", Final(400)),
    ("bigcode.dat", Nothing),
    // §3.2 transaction layer: a branch without the magic cookie is still processed.
    ("badbranch.dat", Final(200)),
    // §3.3 application layer.
    ("insuf.dat", Final(400)),
    ("unkscm.dat", Final(416)),
    ("novelsc.dat", Final(416)),
    ("unksm2.dat", Final(405)),
    ("bext01.dat", Final(420)),
    ("invut.dat", Final(415)),
    ("regaut01.dat", Final(405)),
    ("multi01.dat", Final(400)),
    ("mcl01.dat", Final(400)),
    ("bcast.dat", Nothing),
    ("zeromf.dat", Final(200)), // OPTIONS is answered by veil itself: processed normally
    ("cparam01.dat", Final(405)),
    ("cparam02.dat", Final(405)),
    ("regescrt.dat", Final(405)),
    ("sdp01.dat", Final(406)), // Accept excludes application/sdp
    // §3.4 backwards compatibility: RFC 2543 syntax is accepted.
    ("inv2543.dat", Final(404)),
];

/// 22 of the messages share `branch=z9hG4bKkdjuw` (and some their sent-by and method):
/// sent to one veil, the later ones would rightly be absorbed as retransmissions of the
/// first (RFC 3261 §17.2.3). Each message gets its own branch so that each is a new
/// transaction; nothing else in it changes.
fn unique_branch(data: &[u8], i: usize) -> Vec<u8> {
    let from = b"z9hG4bKkdjuw";
    let to = format!("z9hG4bKkdjuw{i}x").into_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut rest = data;
    while let Some(pos) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(&to);
        rest = &rest[pos + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn setup() -> Setup {
    Setup {
        peers: vec![Side::Pbx, Side::Carrier],
        rules: vec![Rule {
            name: "pbx-reaches-routing".into(),
            from_peer: Some("pbx".into()),
            to_user: None,
            route: vec![],
            reject: Some(404),
        }],
        ..Setup::standard()
    }
}

/// Sends `data` from a fresh PBX socket and returns the status lines veil sent back: up
/// to the first final response, or whatever came within `quiet` when none is expected.
fn exchange(veil: std::net::SocketAddr, data: &[u8], expect: Expect) -> Vec<String> {
    let sock = UdpSocket::bind((Side::Pbx.ip(), 0)).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    sock.send_to(data, veil).expect("send");
    let wait = match expect {
        Final(_) => Duration::from_secs(3),
        Nothing => Duration::from_millis(400),
    };
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 65535];
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let first = text.lines().next().unwrap_or_default().to_string();
            let provisional = first.starts_with("SIP/2.0 1");
            got.push(first);
            if !provisional {
                break;
            }
        }
    }
    got
}

fn final_code(lines: &[String]) -> Option<u16> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("SIP/2.0 "))
        .filter_map(|l| l.get(..3)?.parse::<u16>().ok())
        .find(|c| *c >= 200)
}

fn check(lab: &mut Lab, cases: &[(String, Vec<u8>, Expect)]) {
    let veil = lab.veil_sip();
    let mut wrong = Vec::new();
    for (name, data, expect) in cases {
        let got = exchange(veil, data, *expect);
        let ok = match expect {
            Final(code) => final_code(&got) == Some(*code),
            Nothing => got.is_empty(),
        };
        if !ok {
            wrong.push(format!("{name}: expected {expect:?}, veil sent {got:?}"));
        }
        assert!(lab.veil_mut().is_running(), "veil died on {name}");
    }
    let log = lab.veil().log_tail(100_000);
    assert!(!log.contains("panicked"), "veil panicked:\n{log}");
    assert!(
        wrong.is_empty(),
        "{} of {} messages answered wrongly:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn rfc4475_torture_messages_over_udp() {
    if !common::netns::isolate("rfc4475_torture_messages_over_udp") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let listed: Vec<&str> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(listed.len(), 49);
    for f in &listed {
        assert!(
            TORTURE.iter().any(|(t, _)| t == f),
            "{f} has no expectation"
        );
    }
    let cases: Vec<(String, Vec<u8>, Expect)> = TORTURE
        .iter()
        .enumerate()
        .map(|(i, (f, e))| {
            let data = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            (f.to_string(), unique_branch(&data, i), *e)
        })
        .collect();
    let mut lab = Lab::start(70, &setup());
    check(&mut lab, &cases);
}

/// RFC 5118-style messages: IPv6 literals in the Request-URI, Via, From/To, Contact,
/// Record-Route and SDP. veil listens on IPv4 here (IPv6 listeners come with the transport
/// issue), so this tests IPv6 *content* carried over IPv4.
fn ipv6_cases() -> Vec<(String, Vec<u8>, Expect)> {
    let msg = |ruri: &str, via: &str, contact: &str, extra: &str, body: &str, n: u32| {
        let ct = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKv6x{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@[2001:db8::1]>;tag=v6{n}\r\n\
             To: <sip:bob@[2001:db8::10]>\r\nCall-ID: v6-{n}@[2001:db8::1]\r\n\
             CSeq: 1 INVITE\r\nContact: <{contact}>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let sdp6 = "v=0\r\no=alice 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\n\
                t=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";
    vec![
        // 5118 §4.1: a basic request with IPv6 everywhere.
        (
            "v6 basic".into(),
            msg(
                "sip:4930123456@[2001:db8::10]",
                "[2001:db8::9:1]",
                "sip:alice@[2001:db8::1]",
                "",
                "",
                1,
            ),
            Final(404),
        ),
        // §4.2: an unbracketed IPv6 Request-URI is not a host: 400.
        (
            "v6 unbracketed Request-URI".into(),
            msg(
                "sip:4930123456@2001:db8::10",
                "[2001:db8::9:1]",
                "sip:alice@[2001:db8::1]",
                "",
                "",
                2,
            ),
            Final(400),
        ),
        // §4.3: port or no port, both unambiguous with brackets.
        (
            "v6 port ambiguous".into(),
            msg(
                "sip:4930123456@[2001:db8::10:5070]",
                "[2001:db8::9:1]:5070",
                "sip:alice@[2001:db8::1]:5070",
                "",
                "",
                3,
            ),
            Final(404),
        ),
        // §4.4: IPv4-mapped IPv6 addresses.
        (
            "v6 IPv4-mapped".into(),
            msg(
                "sip:4930123456@[::ffff:192.0.2.10]",
                "[::ffff:192.0.2.128]",
                "sip:alice@[::ffff:192.0.2.128]",
                "",
                "",
                4,
            ),
            Final(404),
        ),
        // §4.5: several Vias, IPv6 received= parameter, Record-Route with IPv6.
        (
            "v6 multiple Vias and Record-Route".into(),
            msg(
                "sip:4930123456@[2001:db8::10]",
                "[2001:db8::9:1];received=[2001:db8::9:255]",
                "sip:alice@[2001:db8::1]",
                "Via: SIP/2.0/UDP [2001:db8::9:2];branch=z9hG4bKv6y5\r\n\
                 Record-Route: <sip:[2001:db8::20];lr>\r\n",
                "",
                5,
            ),
            Final(404),
        ),
        // §4.6: IPv6 in SDP (c=IN IP6).
        (
            "v6 SDP".into(),
            msg(
                "sip:4930123456@[2001:db8::10]",
                "[2001:db8::9:1]",
                "sip:alice@[2001:db8::1]",
                "",
                sdp6,
                6,
            ),
            Final(404),
        ),
        // A malformed IPv6 reference (unclosed bracket) in the Request-URI: 400.
        (
            "v6 unclosed bracket".into(),
            msg(
                "sip:4930123456@[2001:db8::10",
                "[2001:db8::9:1]",
                "sip:alice@[2001:db8::1]",
                "",
                "",
                7,
            ),
            Final(400),
        ),
        // A bad Via sent-by (not an address): 400.
        (
            "v6 bad Via".into(),
            msg(
                "sip:4930123456@[2001:db8::10]",
                "[2001:db8::zz]",
                "sip:alice@[2001:db8::1]",
                "",
                "",
                8,
            ),
            Final(400),
        ),
    ]
}

#[test]
fn rfc5118_ipv6_content_over_udp() {
    if !common::netns::isolate("rfc5118_ipv6_content_over_udp") {
        return;
    }
    let mut lab = Lab::start(71, &setup());
    check(&mut lab, &ipv6_cases());
}
