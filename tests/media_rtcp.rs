//! RTCP topology hiding through the binary (issue 14 item 7): the SDES a phone puts in its
//! RTCP (CNAME `sip:alice@<its address>`, NAME, TOOL) does not reach the other party;
//! RTCP arrives with the CNAME veil's SDP named towards the receiver (`a=ssrc ... cname:`)
//! and no other SDES items; malformed RTCP is dropped and counted. Plain RTP on both legs,
//! and one SRTP leg with libsrtp as the independent peer (tests/srtcp_sdes_peer.py).
//! SIPp (uac_moves.xml, uas_moves.xml) carries SDP lines the test sets; the test sends
//! the RTCP itself.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::sipp::SippProc;
use common::trace::{Direction, TracedMessage};
use common::{Lab, Setup, Side};

const VEIL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

fn wait_for(sipp: &SippProc, what: &str, pred: impl Fn(&TracedMessage) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = sipp.messages_so_far().into_iter().find(&pred) {
            return m.sdp().unwrap_or_default().to_string();
        }
        assert!(Instant::now() < deadline, "no {what} within 10 s");
        thread::sleep(Duration::from_millis(20));
    }
}

fn received_invite(m: &TracedMessage) -> bool {
    m.direction == Direction::Received && m.is_request() && m.method() == "INVITE"
}

fn received_200_with_sdp(m: &TracedMessage) -> bool {
    m.direction == Direction::Received && m.status() == Some(200) && m.sdp().is_some()
}

fn port_of(sdp: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio port in {sdp}"))
}

/// The CNAME of the SDP's `a=ssrc:<ssrc> cname:` line: what veil says it is on that leg.
fn sdp_cname(sdp: &str, ssrc: u32) -> String {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("a=ssrc:{ssrc} cname:")))
        .unwrap_or_else(|| panic!("no a=ssrc:{ssrc} cname line in {sdp}"))
        .to_string()
}

/// SR (no report blocks) + SDES with CNAME, NAME and TOOL: a desk phone's compound.
fn phone_rtcp(ssrc: u32, cname: &str) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xe8, 0x3a, 0x1b, 0x22, 0x4d, 0x2f, 0x1a, 0x9b]);
    p.extend_from_slice(&[0, 0, 0x1f, 0x40, 0, 0, 0, 50, 0, 0, 0x1f, 0x40]);
    let mut chunk = ssrc.to_be_bytes().to_vec();
    for (kind, text) in [
        (1u8, cname.as_bytes()),
        (2, b"Alice Example".as_slice()),
        (6, b"Acme Phone 5.1.2".as_slice()),
    ] {
        chunk.extend_from_slice(&[kind, text.len() as u8]);
        chunk.extend_from_slice(text);
    }
    chunk.push(0);
    while !chunk.len().is_multiple_of(4) {
        chunk.push(0);
    }
    p.extend_from_slice(&[0x81, 202]);
    p.extend_from_slice(&((chunk.len() / 4) as u16).to_be_bytes());
    p.extend_from_slice(&chunk);
    p
}

/// The packets of a compound as (type, bytes), and each SDES chunk's (SSRC, items); the
/// framing is checked on the way (lengths, null termination to 32 bits).
#[allow(clippy::type_complexity)]
fn parse(mut p: &[u8]) -> (Vec<(u8, Vec<u8>)>, Vec<(u32, Vec<(u8, String)>)>) {
    let (mut packets, mut chunks) = (Vec::new(), Vec::new());
    while !p.is_empty() {
        assert!(p.len() >= 4 && p[0] >> 6 == 2, "bad header in {p:02x?}");
        let len = (usize::from(u16::from_be_bytes([p[2], p[3]])) + 1) * 4;
        assert!(len <= p.len(), "length runs past the datagram");
        let (one, rest) = p.split_at(len);
        if one[1] == 202 {
            assert_eq!(one[0] & 0x20, 0, "no padding");
            let mut at = 4;
            for _ in 0..one[0] & 0x1f {
                let ssrc = u32::from_be_bytes(one[at..at + 4].try_into().unwrap());
                at += 4;
                let mut items = Vec::new();
                while one[at] != 0 {
                    let n = usize::from(one[at + 1]);
                    let text = String::from_utf8_lossy(&one[at + 2..at + 2 + n]).into_owned();
                    items.push((one[at], text));
                    at += 2 + n;
                }
                at = (at + 4) & !3;
                assert!(one[..at].ends_with(&[0]), "chunk not null-terminated");
                chunks.push((ssrc, items));
            }
            assert_eq!(at, one.len(), "SDES length field");
        }
        packets.push((one[1], one.to_vec()));
        p = rest;
    }
    (packets, chunks)
}

/// What arrived (`got`) is `sent` with its SDES reduced to veil's `cname`: the SR byte
/// for byte, one chunk with the sender's SSRC and only the CNAME item.
fn assert_rewritten(got: &[u8], sent: &[u8], ssrc: u32, cname: &str, theirs: &str) {
    let text = String::from_utf8_lossy(got);
    for secret in [theirs, "Alice Example", "Acme Phone"] {
        assert!(!text.contains(secret), "{secret:?} crossed: {got:02x?}");
    }
    let (packets, chunks) = parse(got);
    let (sent_packets, _) = parse(sent);
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert_eq!(packets[0], sent_packets[0], "the SR passes unchanged");
    assert_eq!(chunks, vec![(ssrc, vec![(1, cname.to_string())])]);
}

fn bind(addr: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

fn recv(s: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = s.recv_from(&mut buf).expect("RTCP relayed within 500 ms");
    buf[..n].to_vec()
}

fn malformed(lab: &Lab) -> u64 {
    lab.metrics()
        .sum("veil_media_dropped_total", &[("reason", "malformed_rtcp")])
        .expect("veil_media_dropped_total{reason=malformed_rtcp} pre-registered") as u64
}

/// Starts caller (`from`, uac_moves.xml) and callee (`to`, uas_moves.xml) with the given
/// second SDP line of offer and answer (both offers and both answers alike); returns
/// them with the offer veil sent to the callee and the answer it sent to the caller.
fn call(
    lab: &Lab,
    (from, offer): (Side, [String; 2]),
    (to, answer): (Side, [String; 2]),
) -> (SippProc, SippProc, String, String) {
    let mut callee = lab.sipp(to, "uas_moves.xml");
    for (name, line) in ["a1", "a2", "b1", "b2"]
        .into_iter()
        .zip(answer.iter().cycle())
    {
        callee = callee.arg("-set").arg(name).arg(line);
    }
    let callee = callee.spawn();
    let mut caller = lab.sipp(from, "uac_moves.xml");
    for (name, line) in ["o1", "o2", "r1", "r2"]
        .into_iter()
        .zip(offer.iter().cycle())
    {
        caller = caller.arg("-set").arg(name).arg(line);
    }
    let caller = caller.to(lab.veil_sip()).spawn();
    let to_caller = wait_for(&caller, "200 with SDP", received_200_with_sdp);
    let to_callee = wait_for(&callee, "INVITE", received_invite);
    (caller, callee, to_callee, to_caller)
}

#[test]
fn relayed_rtcp_carries_veils_cname_and_no_other_sdes() {
    let lab = Lab::start(37, &Setup::standard());
    let (pbx_ip, carrier_ip) = (Side::Pbx.ip(), Side::Carrier.ip());
    let a = lab.ports.sipp_media(Side::Pbx) + 4;
    let b = lab.ports.sipp_media(Side::Carrier) + 4;
    let alice = format!("sip:alice@{pbx_ip}");
    let bob = format!("sip:bob@{carrier_ip}");
    let (caller, callee, to_callee, to_caller) = call(
        &lab,
        (
            Side::Pbx,
            [
                format!("m=audio {a} RTP/AVP 8"),
                format!("a=ssrc:161 cname:{alice}"),
            ],
        ),
        (
            Side::Carrier,
            [
                format!("m=audio {b} RTP/AVP 8"),
                format!("a=ssrc:202 cname:{bob}"),
            ],
        ),
    );
    let (cname_b, cname_a) = (sdp_cname(&to_callee, 161), sdp_cname(&to_caller, 202));
    assert_ne!(cname_a, cname_b, "one CNAME per leg");
    let veil_a = SocketAddr::from((VEIL, port_of(&to_caller) + 1));
    let veil_b = SocketAddr::from((VEIL, port_of(&to_callee) + 1));
    let caller_rtcp = bind(SocketAddr::from((pbx_ip, a + 1)));
    let callee_rtcp = bind(SocketAddr::from((carrier_ip, b + 1)));

    let sent = phone_rtcp(161, &alice);
    caller_rtcp.send_to(&sent, veil_a).expect("send");
    assert_rewritten(&recv(&callee_rtcp), &sent, 161, &cname_b, &alice);
    let sent = phone_rtcp(202, &bob);
    callee_rtcp.send_to(&sent, veil_b).expect("send");
    assert_rewritten(&recv(&caller_rtcp), &sent, 202, &cname_a, &bob);

    // An SDES whose length runs one word past the datagram: dropped, counted.
    assert_eq!(malformed(&lab), 0);
    let mut bad = phone_rtcp(161, &alice);
    bad[31] += 1;
    caller_rtcp.send_to(&bad, veil_a).expect("send");
    let mut buf = [0u8; 2048];
    assert!(
        callee_rtcp.recv_from(&mut buf).is_err(),
        "malformed RTCP relayed"
    );
    assert_eq!(malformed(&lab), 1);

    let caller = caller.wait(Duration::from_secs(20));
    let callee = callee.wait(Duration::from_secs(20));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}

/// The fixed key of the SRTP callee (as in tests/sipp/uas_srtp.xml).
const CALLEE_KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1e";

/// A plain caller (the carrier) and an SRTP callee (the PBX, `srtp: required`): veil
/// decrypts the callee's SRTCP before rewriting it and rewrites the caller's RTCP before
/// encrypting it; libsrtp on the callee's side encrypts and authenticates.
#[test]
fn srtcp_sdes_is_rewritten_between_libsrtp_and_a_plain_leg() {
    let lab = Lab::start(
        38,
        &Setup::standard().with_peer(Side::Pbx, "srtp: required"),
    );
    let (pbx_ip, carrier_ip) = (Side::Pbx.ip(), Side::Carrier.ip());
    let a = lab.ports.sipp_media(Side::Carrier) + 4;
    let b = lab.ports.sipp_media(Side::Pbx) + 4;
    // The callee's answer needs three lines: the crypto one and, after a CRLF inside the
    // same SIPp variable, the a=ssrc one.
    let crypto_and_ssrc = format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{CALLEE_KEY}\r\n\
         a=ssrc:202 cname:sip:pbx@{pbx_ip}"
    );
    let (caller, callee, to_callee, to_caller) = call(
        &lab,
        (
            Side::Carrier,
            [
                format!("m=audio {a} RTP/AVP 8"),
                format!("a=ssrc:161 cname:sip:carrier@{carrier_ip}"),
            ],
        ),
        (
            Side::Pbx,
            [format!("m=audio {b} RTP/SAVP 8"), crypto_and_ssrc],
        ),
    );
    assert!(to_callee.contains("RTP/SAVP"), "{to_callee}");
    let (cname_b, cname_a) = (sdp_cname(&to_callee, 161), sdp_cname(&to_caller, 202));
    let veil_key = to_callee
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
        })
        .unwrap_or_else(|| panic!("no crypto line in {to_callee}"))
        .split(['|', ' '])
        .next()
        .unwrap_or_default()
        .to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/srtcp_sdes_peer.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["AES_CM_128_HMAC_SHA1_80", CALLEE_KEY, &veil_key])
        .arg((port_of(&to_callee) + 1).to_string())
        .arg((port_of(&to_caller) + 1).to_string())
        .arg(format!("{pbx_ip}:{}", b + 1))
        .arg(format!("{carrier_ip}:{}", a + 1))
        .output()
        .expect("python3 runs (pip install pylibsrtp)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "srtcp_sdes_peer.py failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> Vec<u8> {
        let at = stdout.find(&format!("\"{name}\": \"")).expect(name) + name.len() + 5;
        let hex = &stdout[at..at + stdout[at..].find('"').expect("end")];
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    };
    // The script sends what `phone_rtcp` builds.
    let to_plain = field("to_plain");
    let theirs = format!("sip:pbx@{pbx_ip}");
    assert_rewritten(
        &to_plain,
        &phone_rtcp(0x5e1f, &theirs),
        0x5e1f,
        &cname_a,
        &theirs,
    );
    let to_srtp = field("to_srtp");
    let theirs = format!("sip:carrier@{carrier_ip}");
    assert_rewritten(
        &to_srtp,
        &phone_rtcp(0xca11, &theirs),
        0xca11,
        &cname_b,
        &theirs,
    );
    let errors = lab
        .metrics()
        .sum("veil_media_srtp_errors_total", &[])
        .unwrap_or(0.0);
    assert_eq!(errors, 0.0);

    let caller = caller.wait(Duration::from_secs(20));
    let callee = callee.wait(Duration::from_secs(20));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}
