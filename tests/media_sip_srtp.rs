//! SRTP end to end through SIP, and media source restriction: SIPp sets the calls up
//! through veil, then the test sends media to the relay ports veil put in its SDP.
//!
//! SRTP: an SRTP leg (SIPp offering or answering `RTP/SAVP` with a fixed test key) and a
//! plain leg; libsrtp (tests/srtp_peer.py, pylibsrtp) encrypts with the SRTP peer's key
//! and decrypts with the key veil gave that peer in its SDP, the plain side is plain UDP.
//! Wrong keys, forged tags, replays and unencrypted SRTCP are dropped and counted.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::media::rtp;
use common::trace::{Direction, TracedMessage};
use common::{Lab, Setup, Side};

/// The fixed keys of tests/sipp/uac_srtp.xml (caller) and uas_srtp.xml (callee).
const CALLER_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e";
const CALLEE_KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1e";

/// The first m= line's port of an SDP.
fn media_port(sdp: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio port in {sdp}"))
}

/// (suite, inline key) of the `a=crypto` line with `tag`.
fn crypto_line(sdp: &str, tag: u32) -> (String, String) {
    let prefix = format!("a=crypto:{tag} ");
    let line = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no crypto line {tag} in {sdp}"));
    let mut parts = line.split_whitespace();
    let suite = parts.next().unwrap_or_default().to_string();
    let key = parts
        .next()
        .and_then(|k| k.strip_prefix("inline:"))
        .unwrap_or_else(|| panic!("no inline key in {line}"))
        .to_string();
    (suite, key)
}

fn received_invite(m: &TracedMessage) -> bool {
    m.direction == Direction::Received && m.is_request() && m.method() == "INVITE"
}

fn received_200_with_sdp(m: &TracedMessage) -> bool {
    m.direction == Direction::Received && m.status() == Some(200) && m.sdp().is_some()
}

/// What tests/srtp_peer.py reports.
struct PeerReport(String);

impl PeerReport {
    fn field(&self, name: &str) -> u64 {
        let at = self
            .0
            .find(&format!("\"{name}\": "))
            .unwrap_or_else(|| panic!("{name} in {}", self.0));
        self.0[at + name.len() + 4..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    }
}

/// Runs the libsrtp peer: side A speaks SRTP from `a`, side B plain RTP from `b`.
#[allow(clippy::too_many_arguments)]
fn run_peer(
    suite: &str,
    key_in_b64: &str,
    key_out_b64: &str,
    veil_a: u16,
    veil_b: u16,
    a: SocketAddr,
    b: SocketAddr,
) -> PeerReport {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/srtp_peer.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(suite)
        .arg(format!("b64:{key_in_b64}"))
        .arg(format!("b64:{key_out_b64}"))
        .args([veil_a, veil_b, a.port(), b.port()].map(|p| p.to_string()))
        .args([a.ip().to_string(), b.ip().to_string()])
        .output()
        .expect("python3 runs (pip install pylibsrtp)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "srtp_peer.py failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PeerReport(stdout)
}

fn assert_peer_report(lab: &Lab, r: &PeerReport) {
    let s = &r.0;
    assert_eq!(r.field("a_to_b_exact"), 50, "SRTP in, plain out: {s}");
    assert_eq!(r.field("a_to_b_received"), 50, "{s}");
    assert_eq!(r.field("b_to_a_exact"), 50, "plain in, SRTP out: {s}");
    assert_eq!(r.field("rtcp_a_to_b"), 1, "{s}");
    assert_eq!(r.field("rtcp_b_to_a"), 1, "{s}");
    assert_eq!(r.field("bad_leaked"), 0, "{s}");
    assert_eq!(r.field("replay_copies_out"), 1, "{s}");
    let errors = lab
        .metrics()
        .sum("veil_media_srtp_errors_total", &[])
        .unwrap_or(0.0);
    assert_eq!(
        errors as u64,
        r.field("bad_sent"),
        "every bad packet counted once: {s}"
    );
}

/// The caller offers SRTP (RTP/SAVP, its own key) to veil, whose PBX peer is `optional`;
/// the carrier gets plain RTP. libsrtp encrypts with the caller's key towards the port of
/// veil's 200 OK and decrypts with the key of that 200 OK's a=crypto line.
#[test]
fn srtp_caller_plain_callee_through_sip() {
    let lab = Lab::start(
        52,
        &Setup::standard().with_peer(Side::Pbx, "srtp: optional"),
    );
    let a = SocketAddr::from((Side::Pbx.ip(), lab.ports.sipp_media(Side::Pbx) + 4));
    let b = SocketAddr::from((Side::Carrier.ip(), lab.ports.sipp_media(Side::Carrier) + 4));
    let callee = lab
        .sipp(Side::Carrier, "uas_media_port.xml")
        .arg("-set")
        .arg("rtp_port")
        .arg(&b.port().to_string())
        .spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_srtp.xml")
        .arg("-set")
        .arg("rtp_port")
        .arg(&lab.ports.sipp_media(Side::Pbx).to_string())
        .to(lab.veil_sip())
        .spawn();
    let ok = caller.wait_message("200 with SDP", received_200_with_sdp);
    let ok_sdp = ok.sdp().unwrap_or_default();
    assert!(
        ok_sdp.contains("RTP/SAVP"),
        "answer keeps the profile: {ok_sdp}"
    );
    let (suite, veil_key) = crypto_line(ok_sdp, 1);
    assert_ne!(veil_key, CALLER_KEY, "veil answers with its own key");
    let b_invite = callee.wait_message("INVITE", received_invite);
    let b_sdp = b_invite.sdp().unwrap_or_default();
    assert!(
        b_sdp.contains("RTP/AVP") && !b_sdp.contains("a=crypto"),
        "the carrier gets plain RTP: {b_sdp}"
    );
    let report = run_peer(
        &suite,
        CALLER_KEY,
        &veil_key,
        media_port(ok_sdp),
        media_port(b_sdp),
        a,
        b,
    );
    assert_peer_report(&lab, &report);
    let caller = caller.wait(Duration::from_secs(20));
    let callee = callee.wait(Duration::from_secs(20));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}

/// The reverse: a plain caller (the carrier) and an SRTP callee (the PBX, `required`),
/// which answers veil's RTP/SAVP offer with its own key; veil encrypts towards it with the
/// key of the offer's line it chose.
#[test]
fn plain_caller_srtp_callee_through_sip() {
    let lab = Lab::start(
        53,
        &Setup::standard().with_peer(Side::Pbx, "srtp: required"),
    );
    let a = SocketAddr::from((Side::Pbx.ip(), lab.ports.sipp_media(Side::Pbx) + 4));
    let b = SocketAddr::from((Side::Carrier.ip(), lab.ports.sipp_media(Side::Carrier) + 4));
    let callee = lab
        .sipp(Side::Pbx, "uas_srtp.xml")
        .arg("-set")
        .arg("rtp_port")
        .arg(&a.port().to_string())
        .spawn();
    let caller = lab
        .sipp(Side::Carrier, "uac_media_port.xml")
        .arg("-set")
        .arg("rtp_port")
        .arg(&b.port().to_string())
        .to(lab.veil_sip())
        .spawn();
    let invite = callee.wait_message("INVITE", received_invite);
    let offer = invite.sdp().unwrap_or_default();
    assert!(
        offer.contains("RTP/SAVP"),
        "required: RTP/SAVP offer: {offer}"
    );
    let (suite, veil_key) = crypto_line(offer, 1);
    assert_eq!(suite, "AES_CM_128_HMAC_SHA1_80");
    let ok = caller.wait_message("200 with SDP", received_200_with_sdp);
    let ok_sdp = ok.sdp().unwrap_or_default();
    assert!(
        ok_sdp.contains("RTP/AVP") && !ok_sdp.contains("a=crypto"),
        "the plain caller gets plain RTP: {ok_sdp}"
    );
    let report = run_peer(
        &suite,
        CALLEE_KEY,
        &veil_key,
        media_port(offer),
        media_port(ok_sdp),
        a,
        b,
    );
    assert_peer_report(&lab, &report);
    let caller = caller.wait(Duration::from_secs(20));
    let callee = callee.wait(Duration::from_secs(20));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}

fn bind(addr: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Sends `n` RTP packets (SSRC `ssrc`, from `seq`) from `from` to `to`.
fn send(from: &UdpSocket, to: SocketAddr, ssrc: u32, seq: u16, n: u16) {
    for i in 0..n {
        from.send_to(&rtp(ssrc, seq + i), to).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Counts what arrives at `s` until it is quiet for 300 ms.
fn drain(s: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while s.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// The PBX's `media_sources` allow only its own address: RTP from the outsider to the
/// PBX side's relay port is dropped (not forwarded, no latch, counted), the PBX's own is
/// relayed, and a NAT rebinding (new port, same SSRC) inside the allowed set re-latches.
#[test]
fn media_from_outside_the_peers_media_sources_is_dropped() {
    let setup = Setup::standard().with_peer(Side::Pbx, "media_sources: [127.0.0.2/32]");
    let lab = Lab::start(54, &setup);
    let a_port = lab.ports.sipp_media(Side::Pbx) + 4;
    let b = SocketAddr::from((Side::Carrier.ip(), lab.ports.sipp_media(Side::Carrier) + 4));
    let callee = lab
        .sipp(Side::Carrier, "uas_media_port.xml")
        .arg("-set")
        .arg("rtp_port")
        .arg(&b.port().to_string())
        .spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_media_port.xml")
        .arg("-set")
        .arg("rtp_port")
        .arg(&a_port.to_string())
        .to(lab.veil_sip())
        .spawn();
    let ok = caller.wait_message("200 with SDP", received_200_with_sdp);
    let veil_a = SocketAddr::from(([127, 0, 0, 1], media_port(ok.sdp().unwrap_or_default())));
    let b_invite = callee.wait_message("INVITE", received_invite);
    let veil_b = SocketAddr::from((
        [127, 0, 0, 1],
        media_port(b_invite.sdp().unwrap_or_default()),
    ));
    let pbx = bind(SocketAddr::from((Side::Pbx.ip(), a_port)));
    let pbx_rebound = bind(SocketAddr::from((Side::Pbx.ip(), a_port + 2)));
    let outsider = bind(SocketAddr::from((
        Side::Outsider.ip(),
        lab.ports.sipp_media(Side::Outsider),
    )));
    let carrier = bind(b);
    const SSRC: u32 = 0x5eed;

    send(&outsider, veil_a, SSRC, 1, 10);
    assert_eq!(drain(&carrier), 0, "the outsider's RTP must not cross");
    send(&pbx, veil_a, SSRC, 11, 10);
    assert_eq!(drain(&carrier), 10, "the PBX's RTP crosses");
    send(&carrier, veil_b, 0xca11, 1, 5);
    assert_eq!(drain(&pbx), 5, "the carrier's RTP reaches the latched PBX");
    // NAT rebinding: same SSRC from a new port of an allowed address.
    send(&pbx_rebound, veil_a, SSRC, 21, 5);
    assert_eq!(drain(&carrier), 5);
    send(&carrier, veil_b, 0xca11, 6, 5);
    assert_eq!(drain(&pbx_rebound), 5, "re-latched after the rebinding");
    // The outsider with the latched SSRC neither crosses nor moves the latch.
    send(&outsider, veil_a, SSRC, 26, 5);
    assert_eq!(drain(&carrier), 0);
    send(&carrier, veil_b, 0xca11, 11, 5);
    assert_eq!(drain(&pbx_rebound), 5, "the latch stayed");
    assert_eq!(drain(&outsider), 0, "nothing was sent to the outsider");
    let dropped = lab
        .metrics()
        .sum("veil_media_source_dropped_total", &[])
        .unwrap_or(0.0);
    assert_eq!(dropped as u64, 15, "the outsider's packets are counted");

    let caller = caller.wait(Duration::from_secs(20));
    let callee = callee.wait(Duration::from_secs(20));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("a_packets", "15");
}

/// A `required` callee that answers 200 with plain RTP: veil cannot give it SRTP, so it
/// ACKs and hangs up leg B and refuses the caller with 488; the CDR says failed/488.
#[test]
fn required_callee_answering_plain_gets_bye_and_caller_488() {
    let lab = Lab::start(
        55,
        &Setup::standard().with_peer(Side::Carrier, "srtp: required"),
    );
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab.sipp(Side::Pbx, "uac_488.xml").to(lab.veil_sip()).run();
    let callee = callee.wait(Duration::from_secs(15));
    common::assert_all_succeeded(&[&caller, &callee]);
    common::assert_no_leaks(&[&caller, &callee]);
    assert_eq!(callee.received_requests("ACK").len(), 1, "leg B confirmed");
    assert_eq!(callee.received_requests("BYE").len(), 1, "leg B ended");
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "488");
    cdr.assert_eq("end_reason", "failed");
    cdr.assert_null("answered_at");
    let m = lab.metrics();
    m.assert_at_least("veil_calls_total", &[("outcome", "failed")], 1.0);
    assert_eq!(
        m.sum("veil_calls_total", &[("outcome", "answered")]),
        Some(0.0)
    );
    assert_eq!(m.sum("veil_calls_active", &[]), Some(0.0));
}
