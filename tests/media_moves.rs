//! Media that changes mid-call, through SIP: a re-INVITE that moves the audio port while
//! video keeps flowing, a re-INVITE from audio to T.38, and T.38 from the start. SIPp
//! (tests/sipp/uac_moves.xml, uas_moves.xml) carries the SDP the test gives it; the test
//! sends the media itself, from UDP sockets at the addresses in that SDP to the relay
//! ports veil put in its messages, and counts what arrives on each side.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::media::rtp;
use common::sipp::SippProc;
use common::trace::{Direction, TracedMessage};
use common::{Lab, Setup, Side};

/// The port of the first `m=<kind>` line of an SDP.
fn port_of(sdp: &str, kind: &str) -> u16 {
    let prefix = format!("m={kind} ");
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m={kind} port in {sdp}"))
}

/// The `n`th (0-based) message matching `pred` that SIPp traced, waiting up to 10 s.
fn wait_nth(
    sipp: &SippProc,
    what: &str,
    n: usize,
    pred: impl Fn(&TracedMessage) -> bool,
) -> TracedMessage {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = sipp.messages_so_far().into_iter().filter(&pred).nth(n) {
            return m;
        }
        assert!(Instant::now() < deadline, "no {what} (#{n}) within 10 s");
        thread::sleep(Duration::from_millis(20));
    }
}

fn invite_in(m: &TracedMessage) -> bool {
    m.direction == Direction::Received && m.is_request() && m.method() == "INVITE"
}

fn ok_with_sdp_in(m: &TracedMessage) -> bool {
    m.direction == Direction::Received && m.status() == Some(200) && m.sdp().is_some()
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

/// A UDPTL packet (T.38): sequence number, then an IFP packet; not RTP.
fn udptl(seq: u16) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x06, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x00]);
    p
}

/// Sends `n` packets made by `make` from `from` to `to`, 2 ms apart.
fn send(from: &UdpSocket, to: SocketAddr, n: u16, make: impl Fn(u16) -> Vec<u8>) {
    for i in 0..n {
        from.send_to(&make(i), to).expect("send");
        thread::sleep(Duration::from_millis(2));
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

/// A stream sent continuously from `from` to `to` (one packet every 5 ms, at most 20 s)
/// until stopped, and counted where it arrives (`at`).
struct Flow {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    sender: thread::JoinHandle<()>,
    receiver: thread::JoinHandle<u64>,
}

impl Flow {
    fn start(from: UdpSocket, to: SocketAddr, at: UdpSocket, ssrc: u32) -> Flow {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop_tx, sent_tx) = (stop.clone(), sent.clone());
        let sender = thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(20);
            let mut seq = 0u16;
            while !stop_tx.load(Ordering::Relaxed) && Instant::now() < until {
                if from.send_to(&rtp(ssrc, seq), to).is_ok() {
                    sent_tx.fetch_add(1, Ordering::Relaxed);
                }
                seq = seq.wrapping_add(1);
                thread::sleep(Duration::from_millis(5));
            }
        });
        let stop_rx = stop.clone();
        let receiver = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut n = 0;
            loop {
                match at.recv_from(&mut buf) {
                    Ok(_) => n += 1,
                    Err(_) if stop_rx.load(Ordering::Relaxed) => return n,
                    Err(_) => {}
                }
            }
        });
        Flow {
            stop,
            sent,
            sender,
            receiver,
        }
    }

    /// (sent, received)
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.sender.join().expect("sender");
        let received = self.receiver.join().expect("receiver");
        (self.sent.load(Ordering::Relaxed), received)
    }
}

/// Caller and callee SIPp with the given SDP media lines (see the scenarios).
fn call(
    lab: &Lab,
    offer: [&str; 2],
    reoffer: [&str; 2],
    answer: [&str; 2],
    reanswer: [&str; 2],
) -> (SippProc, SippProc) {
    let mut callee = lab.sipp(Side::Carrier, "uas_moves.xml");
    for (name, line) in ["a1", "a2", "b1", "b2"]
        .iter()
        .zip(answer.iter().chain(&reanswer))
    {
        callee = callee.arg("-set").arg(name).arg(line);
    }
    let callee = callee.spawn();
    let mut caller = lab.sipp(Side::Pbx, "uac_moves.xml");
    for (name, line) in ["o1", "o2", "r1", "r2"]
        .iter()
        .zip(offer.iter().chain(&reoffer))
    {
        caller = caller.arg("-set").arg(name).arg(line);
    }
    let caller = caller.to(lab.veil_sip()).spawn();
    (caller, callee)
}

fn finish(lab: &Lab, caller: SippProc, callee: SippProc) {
    let caller = caller.wait(Duration::from_secs(20));
    let callee = callee.wait(Duration::from_secs(20));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}

/// Audio moves to another port of the caller by re-INVITE; video is unchanged and flows
/// both ways throughout: not one video packet may be lost across the re-INVITE. Audio
/// reaches the caller's new port before the caller sent anything from it (the SDP, not
/// latching, moved it), and the caller's audio from there crosses.
#[test]
fn reinvite_moving_audio_keeps_video_flowing() {
    let lab = Lab::start(100, &Setup::standard());
    let pbx = |port: u16| SocketAddr::from((Side::Pbx.ip(), port));
    let carrier = |port: u16| SocketAddr::from((Side::Carrier.ip(), port));
    let (a1, a2, av) = (
        lab.ports.sipp_media(Side::Pbx) + 4,
        lab.ports.sipp_media(Side::Pbx) + 6,
        lab.ports.alt_sipp_media(),
    );
    let (ca, cv) = (
        lab.ports.sipp_media(Side::Carrier) + 4,
        lab.ports.sipp_media(Side::Carrier) + 6,
    );
    let audio = |p: u16| format!("m=audio {p} RTP/AVP 8");
    let video = |p: u16| format!("m=video {p} RTP/AVP 96");
    let (caller, callee) = call(
        &lab,
        [&audio(a1), &video(av)],
        [&audio(a2), &video(av)],
        [&audio(ca), &video(cv)],
        [&audio(ca), &video(cv)],
    );
    let ok = wait_nth(&caller, "200 with SDP", 0, ok_with_sdp_in);
    let ok_sdp = ok.sdp().unwrap_or_default().to_string();
    let b_invite = wait_nth(&callee, "INVITE", 0, invite_in);
    let b_sdp = b_invite.sdp().unwrap_or_default().to_string();
    let (veil_a_audio, veil_a_video) = (port_of(&ok_sdp, "audio"), port_of(&ok_sdp, "video"));
    let (veil_b_audio, veil_b_video) = (port_of(&b_sdp, "audio"), port_of(&b_sdp, "video"));

    let pbx_a1 = bind(pbx(a1));
    let pbx_a2 = bind(pbx(a2));
    let carrier_a = bind(carrier(ca));
    let pbx_v = bind(pbx(av));
    let carrier_v = bind(carrier(cv));
    let video_out = Flow::start(
        pbx_v.try_clone().expect("clone"),
        relay(veil_a_video),
        carrier_v.try_clone().expect("clone"),
        0x71de0,
    );
    let video_back = Flow::start(carrier_v, relay(veil_b_video), pbx_v, 0x71de1);

    send(&pbx_a1, relay(veil_a_audio), 20, |i| rtp(0xa1, i));
    assert_eq!(drain(&carrier_a), 20, "audio from the first port crosses");
    send(&carrier_a, relay(veil_b_audio), 20, |i| rtp(0xca, i));
    assert_eq!(drain(&pbx_a1), 20, "audio reaches the first port");

    let reinvite = wait_nth(&callee, "re-INVITE", 1, invite_in);
    let re_b_sdp = reinvite.sdp().unwrap_or_default().to_string();
    let re_ok = wait_nth(&caller, "200 to the re-INVITE", 1, ok_with_sdp_in);
    let re_ok_sdp = re_ok.sdp().unwrap_or_default().to_string();
    assert_eq!(
        port_of(&re_ok_sdp, "video"),
        veil_a_video,
        "video stays put"
    );
    assert_eq!(port_of(&re_b_sdp, "video"), veil_b_video, "{re_b_sdp}");
    // Let the ACK cross before the media moves.
    thread::sleep(Duration::from_millis(200));
    send(&carrier_a, relay(port_of(&re_b_sdp, "audio")), 20, |i| {
        rtp(0xca, 20 + i)
    });
    assert_eq!(drain(&pbx_a2), 20, "audio goes to the new port");
    assert_eq!(drain(&pbx_a1), 0, "and no more to the old one");
    send(&pbx_a2, relay(port_of(&re_ok_sdp, "audio")), 20, |i| {
        rtp(0xa1, 20 + i)
    });
    assert_eq!(drain(&carrier_a), 20, "audio from the new port crosses");

    let (sent, received) = video_out.finish();
    assert!(sent >= 100, "video flowed across the re-INVITE: {sent}");
    assert_eq!(received, sent, "no video lost caller -> callee");
    let (sent, received) = video_back.finish();
    assert!(sent >= 100, "{sent}");
    assert_eq!(received, sent, "no video lost callee -> caller");
    finish(&lab, caller, callee);
}

/// UDPTL both ways between the relay ports of `caller_sdp` (seen by the caller) and
/// `callee_sdp` (seen by the callee), from the caller's `a` and callee's `b`.
fn udptl_both_ways(caller_sdp: &str, callee_sdp: &str, a: &UdpSocket, b: &UdpSocket) {
    let (veil_a, veil_b) = (port_of(caller_sdp, "image"), port_of(callee_sdp, "image"));
    send(a, relay(veil_a), 30, udptl);
    assert_eq!(drain(b), 30, "UDPTL caller -> callee");
    send(b, relay(veil_b), 30, udptl);
    assert_eq!(drain(a), 30, "UDPTL callee -> caller");
}

const T38_ATTR: &str = "a=T38FaxVersion:0";

/// Audio first, then the caller switches to T.38 by re-INVITE: both SDPs carry
/// `m=image ... udptl t38` with veil's ports, and UDPTL crosses both ways.
#[test]
fn reinvite_from_audio_to_t38_relays_udptl() {
    let lab = Lab::start(101, &Setup::standard());
    let a = lab.ports.sipp_media(Side::Pbx) + 4;
    let b = lab.ports.sipp_media(Side::Carrier) + 4;
    let (ta, tb) = (a + 2, b + 2);
    let audio = |p: u16| format!("m=audio {p} RTP/AVP 8");
    let image = |p: u16| format!("m=image {p} udptl t38");
    let (caller, callee) = call(
        &lab,
        [&audio(a), "a=sendrecv"],
        [&image(ta), T38_ATTR],
        [&audio(b), "a=sendrecv"],
        [&image(tb), T38_ATTR],
    );
    let ok = wait_nth(&caller, "200 with SDP", 0, ok_with_sdp_in);
    let b_invite = wait_nth(&callee, "INVITE", 0, invite_in);
    let pbx_audio = bind(SocketAddr::from((Side::Pbx.ip(), a)));
    let carrier_audio = bind(SocketAddr::from((Side::Carrier.ip(), b)));
    send(
        &pbx_audio,
        relay(port_of(ok.sdp().unwrap_or_default(), "audio")),
        20,
        |i| rtp(0xa, i),
    );
    assert_eq!(drain(&carrier_audio), 20, "audio before the switch");
    send(
        &carrier_audio,
        relay(port_of(b_invite.sdp().unwrap_or_default(), "audio")),
        20,
        |i| rtp(0xb, i),
    );
    assert_eq!(drain(&pbx_audio), 20);

    let reinvite = wait_nth(&callee, "re-INVITE", 1, invite_in);
    let re_ok = wait_nth(&caller, "200 to the re-INVITE", 1, ok_with_sdp_in);
    let (callee_sdp, caller_sdp) = (
        reinvite.sdp().unwrap_or_default(),
        re_ok.sdp().unwrap_or_default(),
    );
    for sdp in [callee_sdp, caller_sdp] {
        assert!(
            sdp.contains(" udptl t38") && sdp.contains(T38_ATTR),
            "{sdp}"
        );
    }
    thread::sleep(Duration::from_millis(200));
    let pbx_fax = bind(SocketAddr::from((Side::Pbx.ip(), ta)));
    let carrier_fax = bind(SocketAddr::from((Side::Carrier.ip(), tb)));
    udptl_both_ways(caller_sdp, callee_sdp, &pbx_fax, &carrier_fax);
    finish(&lab, caller, callee);
}

/// T.38 offered in the initial INVITE: UDPTL crosses both ways after the answer.
#[test]
fn t38_in_the_initial_invite_relays_udptl() {
    let lab = Lab::start(102, &Setup::standard());
    let a = lab.ports.sipp_media(Side::Pbx) + 4;
    let b = lab.ports.sipp_media(Side::Carrier) + 4;
    let image = |p: u16| format!("m=image {p} udptl t38");
    let (caller, callee) = call(
        &lab,
        [&image(a), T38_ATTR],
        [&image(a), T38_ATTR],
        [&image(b), T38_ATTR],
        [&image(b), T38_ATTR],
    );
    let ok = wait_nth(&caller, "200 with SDP", 0, ok_with_sdp_in);
    let b_invite = wait_nth(&callee, "INVITE", 0, invite_in);
    let (caller_sdp, callee_sdp) = (
        ok.sdp().unwrap_or_default(),
        b_invite.sdp().unwrap_or_default(),
    );
    for sdp in [callee_sdp, caller_sdp] {
        assert!(
            sdp.contains(" udptl t38") && sdp.contains(T38_ATTR),
            "{sdp}"
        );
    }
    let pbx_fax = bind(SocketAddr::from((Side::Pbx.ip(), a)));
    let carrier_fax = bind(SocketAddr::from((Side::Carrier.ip(), b)));
    udptl_both_ways(caller_sdp, callee_sdp, &pbx_fax, &carrier_fax);
    finish(&lab, caller, callee);
}
