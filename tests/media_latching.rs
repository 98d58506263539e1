//! Media source discipline through the binary (issue 15): a stranger who races the caller
//! to veil's relay port gets nothing (RTP bleed), packets injected into a latched stream
//! from a stranger or from another port of the caller's own IP reach nobody while the
//! call's own audio crosses complete both ways, and a NAT rebinding (same SSRC from a new
//! port after silence) still moves the stream. SIPp (uac_moves.xml, uas_moves.xml) carries
//! the SDP; the test sends the media itself.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use common::media::rtp;
use common::sipp::SippProc;
use common::trace::{Direction, TracedMessage};
use common::{Lab, Setup, Side};

/// Not a party of the call: loopback, but neither SIPp's address nor veil's.
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 99);

fn port_of(sdp: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio port in {sdp}"))
}

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

fn bind(addr: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s
}

fn relay(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends `n` packets made by `make` from `from` to `to`, 2 ms apart.
fn send(from: &UdpSocket, to: SocketAddr, n: u16, make: impl Fn(u16) -> Vec<u8>) {
    for i in 0..n {
        from.send_to(&make(i), to).expect("send");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Counts what arrives at `s` until it is quiet for 300 ms, and how many of those packets
/// carried `ssrc`.
fn drain(s: &UdpSocket, ssrc: u32) -> (usize, usize) {
    let mut buf = [0u8; 2048];
    let (mut n, mut own) = (0, 0);
    while let Ok((len, _)) = s.recv_from(&mut buf) {
        n += 1;
        if len >= 12 && buf[8..12] == ssrc.to_be_bytes() {
            own += 1;
        }
    }
    (n, own)
}

fn metric(lab: &Lab, reason: &str) -> u64 {
    lab.metrics()
        .sum("veil_media_dropped_total", &[("reason", reason)])
        .unwrap_or_else(|| panic!("no veil_media_dropped_total{{reason={reason}}}")) as u64
}

#[test]
fn strangers_neither_steal_nor_inject_and_nat_rebinding_still_works() {
    let lab = Lab::start(36, &Setup::standard());
    let pbx = |port: u16| SocketAddr::from((Side::Pbx.ip(), port));
    let carrier = |port: u16| SocketAddr::from((Side::Carrier.ip(), port));
    let a1 = lab.ports.sipp_media(Side::Pbx) + 4;
    let ca = lab.ports.sipp_media(Side::Carrier) + 4;
    let audio = |p: u16| format!("m=audio {p} RTP/AVP 8");
    // Each side's SDP names its RTCP CNAME after its AOR and address (issue 14 item 7).
    let pbx_cname = format!("a=ssrc:161 cname:sip:pbx@{}", Side::Pbx.ip());
    let carrier_cname = format!("a=ssrc:202 cname:sip:carrier@{}", Side::Carrier.ip());
    let mut callee = lab.sipp(Side::Carrier, "uas_moves.xml");
    for (name, line) in [("a1", audio(ca)), ("a2", carrier_cname.clone())]
        .into_iter()
        .chain([("b1", audio(ca)), ("b2", carrier_cname.clone())])
    {
        callee = callee.arg("-set").arg(name).arg(&line);
    }
    let callee = callee.spawn();
    let mut caller = lab.sipp(Side::Pbx, "uac_moves.xml");
    for (name, line) in [("o1", audio(a1)), ("o2", pbx_cname.clone())]
        .into_iter()
        .chain([("r1", audio(a1)), ("r2", pbx_cname.clone())])
    {
        caller = caller.arg("-set").arg(name).arg(&line);
    }
    let caller = caller.to(lab.veil_sip()).spawn();
    let answer = wait_for(&caller, "200 with SDP", |m| {
        m.direction == Direction::Received && m.status() == Some(200) && m.sdp().is_some()
    });
    let offer = wait_for(&callee, "INVITE", |m| {
        m.direction == Direction::Received && m.is_request() && m.method() == "INVITE"
    });
    let (veil_a, veil_b) = (port_of(&answer), port_of(&offer));
    for (sdp, ssrc, theirs) in [(&offer, 161, "sip:pbx@"), (&answer, 202, "sip:carrier@")] {
        assert!(
            !sdp.contains(theirs),
            "the other side's CNAME crossed: {sdp}"
        );
        let cname = sdp
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("a=ssrc:{ssrc} cname:")))
            .unwrap_or_else(|| panic!("no a=ssrc cname line in {sdp}"));
        assert!(
            cname.len() >= 16 && cname.bytes().all(|b| b.is_ascii_hexdigit()),
            "{cname}"
        );
    }

    let caller_rtp = bind(pbx(a1));
    let callee_rtp = bind(carrier(ca));
    let stranger = bind(SocketAddr::from((STRANGER, a1)));
    let caller_other_port = bind(pbx(a1 + 10));

    // Bleed: the stranger sends first, with the SSRC it expects the caller to use.
    send(&stranger, relay(veil_a), 20, |i| rtp(0xa1, i));
    assert_eq!(
        drain(&callee_rtp, 0xa1).0,
        0,
        "the stranger's packets reached the callee"
    );
    send(&callee_rtp, relay(veil_b), 25, |i| rtp(0xca, i));
    assert_eq!(
        drain(&stranger, 0xca).0,
        0,
        "the stranger stole the callee's audio"
    );
    assert_eq!(
        drain(&caller_rtp, 0xca),
        (25, 25),
        "the caller got the callee's audio"
    );

    // The caller latches; injection from the stranger and from another port of the
    // caller's own IP, interleaved with the call's audio both ways.
    let (mut injected, audio_n) = (0u64, 100u16);
    for i in 0..audio_n {
        caller_rtp
            .send_to(&rtp(0xa1, 100 + i), relay(veil_a))
            .expect("send");
        callee_rtp
            .send_to(&rtp(0xca, 100 + i), relay(veil_b))
            .expect("send");
        for k in 0..5u16 {
            stranger
                .send_to(&rtp(0xa1, 1000 + 5 * i + k), relay(veil_a))
                .expect("send");
            let random_ssrc = 0x5000_0000 + u32::from(i) * 7 + u32::from(k);
            caller_other_port
                .send_to(&rtp(random_ssrc, i), relay(veil_a))
                .expect("send");
            injected += 2;
        }
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        drain(&callee_rtp, 0xa1),
        (usize::from(audio_n), usize::from(audio_n)),
        "the callee got exactly the caller's audio, none of {injected} injected packets"
    );
    assert_eq!(
        drain(&caller_rtp, 0xca),
        (usize::from(audio_n), usize::from(audio_n))
    );
    assert_eq!(drain(&stranger, 0xca).0, 0);
    assert_eq!(drain(&caller_other_port, 0xca).0, 0);
    assert!(metric(&lab, "not_party") >= 20, "bleed attempts counted");
    assert!(
        metric(&lab, "unlatched_source") >= injected,
        "injections counted"
    );

    // NAT rebinding: the caller goes silent, then its SSRC comes from a new port.
    thread::sleep(Duration::from_millis(700));
    let rebound = bind(pbx(a1 + 20));
    send(&rebound, relay(veil_a), 20, |i| rtp(0xa1, 300 + i));
    assert_eq!(
        drain(&callee_rtp, 0xa1),
        (20, 20),
        "audio from the new binding crosses"
    );
    send(&callee_rtp, relay(veil_b), 20, |i| rtp(0xca, 300 + i));
    assert_eq!(
        drain(&rebound, 0xca),
        (20, 20),
        "the callee's audio follows the rebinding"
    );
    assert_eq!(drain(&caller_rtp, 0xca).0, 0);

    let caller = caller.wait(Duration::from_secs(20));
    let callee = callee.wait(Duration::from_secs(20));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}
