//! The relay on real loopback sockets. Ports come from 41000-41999; a pair that turns out
//! to be busy (another test, another process) is skipped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::relay::{Relay, RelayOptions};
use super::stream::{LatchPolicy, Latching};
use super::{MediaCommand, MediaEvent, Side, StreamId};
use crate::observe::Metrics;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(5);

fn test_metrics() -> Metrics {
    Metrics::new("test").unwrap()
}

struct Harness {
    relay: Relay,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    metrics: Metrics,
}

impl Harness {
    /// Latching `any` with immediate re-latching: most tests here are about forwarding,
    /// from clients that all share 127.0.0.1; the source rules have their own tests.
    fn start() -> Harness {
        Harness::start_with(RelayOptions {
            latch: LatchPolicy {
                latching: Latching::Any,
                relatch_after: Duration::ZERO,
            },
            ..RelayOptions::default()
        })
    }

    fn start_with(options: RelayOptions) -> Harness {
        let (tx, events) = mpsc::unbounded_channel();
        let metrics = test_metrics();
        let relay = Relay::start_with(LOCALHOST, tx, metrics.clone(), options);
        Harness {
            relay,
            events,
            metrics,
        }
    }

    /// Opens stream `id` on free ports, retrying with other ports on `BindFailed`.
    async fn open(&mut self, id: StreamId) -> (u16, u16) {
        for _ in 0..100 {
            let (a_port, b_port) = (free_pair(), free_pair());
            self.relay
                .command(MediaCommand::Open { id, a_port, b_port });
            self.relay.flush().await;
            match self.events.try_recv() {
                Err(_) => return (a_port, b_port),
                Ok(MediaEvent::BindFailed { id: failed }) if failed == id => continue,
                Ok(other) => panic!("unexpected event {other:?}"),
            }
        }
        panic!("no free ports in 41000-41999");
    }

    async fn set_remote(
        &self,
        id: StreamId,
        side: Side,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
    ) {
        self.relay.command(MediaCommand::SetRemote {
            id,
            side,
            rtp,
            rtcp,
        });
        self.relay.flush().await;
    }

    /// The next event other than `Stats` (which precedes every `Closed`).
    async fn event(&mut self) -> MediaEvent {
        loop {
            match self.any_event().await {
                MediaEvent::Stats { .. } => continue,
                other => return other,
            }
        }
    }

    async fn any_event(&mut self) -> MediaEvent {
        timeout(WAIT, self.events.recv())
            .await
            .expect("event in time")
            .expect("relay alive")
    }
}

/// An even port whose pair looks free right now (racy by nature; `open` retries).
fn free_pair() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id();
        let port = 41000 + (n % 500) as u16 * 2;
        let rtp = std::net::UdpSocket::bind((LOCALHOST, port));
        let rtcp = std::net::UdpSocket::bind((LOCALHOST, port + 1));
        if rtp.is_ok() && rtcp.is_ok() {
            return port;
        }
    }
}

async fn client() -> UdpSocket {
    UdpSocket::bind((LOCALHOST, 0)).await.unwrap()
}

fn at(port: u16) -> SocketAddr {
    SocketAddr::new(LOCALHOST, port)
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (len, from) = timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("packet in time")
        .unwrap();
    (buf[..len].to_vec(), from)
}

async fn assert_silent(socket: &UdpSocket) {
    let mut buf = [0u8; 2048];
    let got = timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await;
    assert!(got.is_err(), "unexpected packet {got:?}");
}

#[tokio::test]
async fn forwards_rtp_and_rtcp_both_ways() {
    let mut h = Harness::start();
    let id = StreamId(1);
    let (a_port, b_port) = h.open(id).await;
    assert_eq!(h.metrics.media_streams_active.get(), 1);
    let (a_rtp, a_rtcp, b_rtp, b_rtcp) = (
        client().await,
        client().await,
        client().await,
        client().await,
    );
    h.set_remote(
        id,
        Side::B,
        Some(b_rtp.local_addr().unwrap()),
        Some(b_rtcp.local_addr().unwrap()),
    )
    .await;

    a_rtp.send_to(b"rtp from a", at(a_port)).await.unwrap();
    assert_eq!(recv(&b_rtp).await, (b"rtp from a".to_vec(), at(b_port)));
    // RTCP (here a receiver report, which is not rewritten) passes byte for byte.
    let rr_a = [0x80, 201, 0, 1, 0, 0, 0, 0xa];
    a_rtcp.send_to(&rr_a, at(a_port + 1)).await.unwrap();
    assert_eq!(recv(&b_rtcp).await, (rr_a.to_vec(), at(b_port + 1)));

    // A has no SDP address here: its replies go where its packets came from.
    b_rtp.send_to(b"rtp from b", at(b_port)).await.unwrap();
    assert_eq!(recv(&a_rtp).await, (b"rtp from b".to_vec(), at(a_port)));
    let rr_b = [0x80, 201, 0, 1, 0, 0, 0, 0xb];
    b_rtcp.send_to(&rr_b, at(b_port + 1)).await.unwrap();
    assert_eq!(recv(&a_rtcp).await, (rr_b.to_vec(), at(a_port + 1)));
    assert_eq!(h.metrics.media_packets_relayed.get(), 4);

    h.relay.command(MediaCommand::Close { id });
    assert_eq!(
        h.event().await,
        MediaEvent::Closed {
            id,
            a_packets: 2,
            b_packets: 2
        }
    );
    assert_eq!(h.metrics.media_streams_active.get(), 0);
}

#[tokio::test]
async fn drops_packets_without_destination() {
    let mut h = Harness::start();
    let id = StreamId(2);
    let (a_port, b_port) = h.open(id).await;
    let (a, b) = (client().await, client().await);

    a.send_to(b"nowhere to go", at(a_port)).await.unwrap();
    // B sends next: A is latched by now, B's packet reaches A...
    b.send_to(b"to a", at(b_port)).await.unwrap();
    assert_eq!(recv(&a).await.0, b"to a");
    // ...and B is latched, so A's next packet reaches B; the first one was dropped.
    a.send_to(b"to b", at(a_port)).await.unwrap();
    assert_eq!(recv(&b).await.0, b"to b");
    assert_silent(&b).await;
    assert_eq!(h.metrics.media_packets_relayed.get(), 2);

    h.relay.command(MediaCommand::Close { id });
    assert_eq!(
        h.event().await,
        MediaEvent::Closed {
            id,
            a_packets: 2,
            b_packets: 1
        }
    );
}

#[tokio::test]
async fn latches_to_first_source_and_new_sdp_resets() {
    let mut h = Harness::start();
    let id = StreamId(3);
    let (a_port, b_port) = h.open(id).await;
    let (a, b_real, decoy, decoy2) = (
        client().await,
        client().await,
        client().await,
        client().await,
    );
    h.set_remote(id, Side::A, Some(a.local_addr().unwrap()), None)
        .await;
    h.set_remote(id, Side::B, Some(decoy.local_addr().unwrap()), None)
        .await;

    // B (behind NAT, say) sends from an address other than its SDP one.
    b_real.send_to(b"hello from b", at(b_port)).await.unwrap();
    assert_eq!(recv(&a).await.0, b"hello from b");
    a.send_to(b"to latched b", at(a_port)).await.unwrap();
    assert_eq!(recv(&b_real).await, (b"to latched b".to_vec(), at(b_port)));
    assert_silent(&decoy).await;

    // The same SDP address again keeps the latch.
    h.set_remote(id, Side::B, Some(decoy.local_addr().unwrap()), None)
        .await;
    a.send_to(b"still latched", at(a_port)).await.unwrap();
    assert_eq!(recv(&b_real).await.0, b"still latched");

    // A new SDP address resets it.
    h.set_remote(id, Side::B, Some(decoy2.local_addr().unwrap()), None)
        .await;
    a.send_to(b"to new sdp address", at(a_port)).await.unwrap();
    assert_eq!(recv(&decoy2).await.0, b"to new sdp address");
    assert_silent(&b_real).await;
    assert_silent(&decoy).await;
}

#[tokio::test]
async fn close_releases_ports() {
    let mut h = Harness::start();
    let id = StreamId(4);
    let (a_port, b_port) = h.open(id).await;
    let ports = [a_port, a_port + 1, b_port, b_port + 1];
    for port in ports {
        assert!(
            std::net::UdpSocket::bind((LOCALHOST, port)).is_err(),
            "{port} should be bound"
        );
    }
    h.relay.command(MediaCommand::Close { id });
    assert_eq!(
        h.event().await,
        MediaEvent::Closed {
            id,
            a_packets: 0,
            b_packets: 0
        }
    );
    for port in ports {
        std::net::UdpSocket::bind((LOCALHOST, port)).unwrap();
    }
    // A second Close of the same stream is ignored.
    h.relay.command(MediaCommand::Close { id });
    h.relay.flush().await;
    assert!(h.events.try_recv().is_err());
    assert_eq!(h.metrics.media_streams_active.get(), 0);
}

#[tokio::test]
async fn bind_failure_is_reported_and_releases_what_was_bound() {
    let mut h = Harness::start();
    let id = StreamId(5);
    for _ in 0..100 {
        let (a_port, b_port) = (free_pair(), free_pair());
        // The last of the four sockets is taken, so the first three were bound.
        let Ok(_blocker) = std::net::UdpSocket::bind((LOCALHOST, b_port + 1)) else {
            continue;
        };
        h.relay.command(MediaCommand::Open { id, a_port, b_port });
        h.relay.flush().await;
        assert_eq!(h.events.try_recv(), Ok(MediaEvent::BindFailed { id }));
        assert_eq!(h.metrics.media_streams_active.get(), 0);
        let mut rebound = 0;
        for port in [a_port, a_port + 1, b_port] {
            // Another process may grab a port meanwhile; ours must not hold all three.
            rebound += usize::from(std::net::UdpSocket::bind((LOCALHOST, port)).is_ok());
        }
        assert_eq!(rebound, 3, "ports of the failed stream still bound");
        return;
    }
    panic!("no free ports in 41000-41999");
}

#[tokio::test]
async fn invalid_ports_and_duplicate_open_fail() {
    let mut h = Harness::start();
    for (id, a_port, b_port) in [(6, 0, 41000), (7, 41000, 65535)] {
        let id = StreamId(id);
        h.relay.command(MediaCommand::Open { id, a_port, b_port });
        h.relay.flush().await;
        assert_eq!(h.events.try_recv(), Ok(MediaEvent::BindFailed { id }));
    }
    let id = StreamId(8);
    let (a_port, b_port) = h.open(id).await;
    h.relay.command(MediaCommand::Open {
        id,
        a_port: free_pair(),
        b_port: free_pair(),
    });
    h.relay.flush().await;
    assert_eq!(h.events.try_recv(), Ok(MediaEvent::BindFailed { id }));
    // The original stream is untouched.
    assert_eq!(h.metrics.media_streams_active.get(), 1);
    assert!(std::net::UdpSocket::bind((LOCALHOST, a_port)).is_err());
    assert!(std::net::UdpSocket::bind((LOCALHOST, b_port)).is_err());
}

fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

#[tokio::test]
async fn stats_come_before_closed_with_loss() {
    let mut h = Harness::start();
    let id = StreamId(20);
    let (a_port, b_port) = h.open(id).await;
    let (a, b) = (client().await, client().await);
    h.set_remote(id, Side::B, Some(b.local_addr().unwrap()), None)
        .await;
    for seq in [1u16, 2, 3, 5, 6] {
        a.send_to(&rtp(seq, u32::from(seq) * 160, 7), at(a_port))
            .await
            .unwrap();
        recv(&b).await;
    }
    let _ = b_port;
    h.relay.command(MediaCommand::Close { id });
    match h.any_event().await {
        MediaEvent::Stats { id: got, a, b } => {
            assert_eq!(got, id);
            assert_eq!((a.packets, a.lost, a.bytes), (5, 1, 5 * 172));
            assert_eq!(b.packets, 0);
        }
        other => panic!("expected Stats, got {other:?}"),
    }
    assert!(matches!(
        h.any_event().await,
        MediaEvent::Closed { a_packets: 5, .. }
    ));
}

#[tokio::test]
async fn idle_reported_once_then_active_again() {
    let mut h = Harness::start_with(RelayOptions {
        idle_after: Some(Duration::from_millis(150)),
        tos: 184,
        latch: LatchPolicy {
            latching: Latching::Any,
            relatch_after: Duration::ZERO,
        },
        ..RelayOptions::default()
    });
    let id = StreamId(21);
    let (a_port, _) = h.open(id).await;
    assert_eq!(h.any_event().await, MediaEvent::Idle { id });
    // Only once per silence.
    let more = timeout(Duration::from_millis(400), h.events.recv()).await;
    assert!(more.is_err(), "{more:?}");
    let a = client().await;
    a.send_to(&rtp(1, 160, 1), at(a_port)).await.unwrap();
    assert_eq!(h.any_event().await, MediaEvent::Active { id });
    assert_eq!(h.any_event().await, MediaEvent::Idle { id });
    // RTCP alone does not count as activity.
    a.send_to(&[0x80, 200, 0, 1, 0, 0, 0, 1], at(a_port + 1))
        .await
        .unwrap();
    a.send_to(&[0x80, 201, 0, 1, 0, 0, 0, 1], at(a_port))
        .await
        .unwrap();
    let more = timeout(Duration::from_millis(300), h.events.recv()).await;
    assert!(more.is_err(), "{more:?}");
}

#[tokio::test]
async fn relatches_on_same_ssrc_from_a_new_source_only() {
    let mut h = Harness::start();
    let id = StreamId(22);
    let (a_port, b_port) = h.open(id).await;
    let (a1, a2, spoof, b) = (
        client().await,
        client().await,
        client().await,
        client().await,
    );
    h.set_remote(id, Side::B, Some(b.local_addr().unwrap()), None)
        .await;
    a1.send_to(&rtp(1, 160, 0xaaaa), at(a_port)).await.unwrap();
    recv(&b).await;
    // A spoofer with another SSRC is neither forwarded nor takes the return path.
    spoof
        .send_to(&rtp(9, 160, 0xbbbb), at(a_port))
        .await
        .unwrap();
    assert_silent(&b).await;
    let dropped = |reason: &str| h.metrics.media_drops.with_label_values(&[reason]).get();
    assert_eq!(dropped("unlatched_source"), 1);
    b.send_to(&rtp(1, 160, 0xcccc), at(b_port)).await.unwrap();
    assert_eq!(recv(&a1).await.1, at(a_port));
    assert_silent(&spoof).await;
    // NAT rebinding: same SSRC from a new port moves the latch.
    a2.send_to(&rtp(2, 320, 0xaaaa), at(a_port)).await.unwrap();
    recv(&b).await;
    b.send_to(&rtp(2, 320, 0xcccc), at(b_port)).await.unwrap();
    recv(&a2).await;
    assert_silent(&a1).await;
}

#[tokio::test]
async fn rtcp_mux_side_and_plain_side_interwork() {
    let mut h = Harness::start();
    let id = StreamId(23);
    let (a_port, b_port) = h.open(id).await;
    // A multiplexes (no RTCP address), B uses separate RTCP.
    let (a, b_rtp, b_rtcp) = (client().await, client().await, client().await);
    h.set_remote(id, Side::A, Some(a.local_addr().unwrap()), None)
        .await;
    h.set_remote(
        id,
        Side::B,
        Some(b_rtp.local_addr().unwrap()),
        Some(b_rtcp.local_addr().unwrap()),
    )
    .await;
    let sr = [0x80, 200, 0, 1, 0, 0, 0, 1];
    // RTCP from A on its RTP port goes to B's RTCP address, from veil's B RTCP port.
    a.send_to(&sr, at(a_port)).await.unwrap();
    assert_eq!(recv(&b_rtcp).await, (sr.to_vec(), at(b_port + 1)));
    // RTP from A still goes to B's RTP address.
    a.send_to(&rtp(1, 160, 5), at(a_port)).await.unwrap();
    assert_eq!(recv(&b_rtp).await.1, at(b_port));
    // RTCP from B goes to A's one (mux) port, from veil's A RTP port.
    b_rtcp.send_to(&sr, at(b_port + 1)).await.unwrap();
    assert_eq!(recv(&a).await, (sr.to_vec(), at(a_port)));
}

#[tokio::test]
async fn sockets_carry_the_configured_tos() {
    for tos in [0xb8u8, 0x00, 0x88] {
        let s = super::relay::bind_one(LOCALHOST, 0, tos).unwrap();
        assert_eq!(s.tos_v4().unwrap(), u32::from(tos));
    }
}

/// A port released by a closing call is handed straight to the next call (a short pool
/// under load): the Open right behind the Close must bind, not fail with EADDRINUSE.
#[tokio::test]
async fn ports_of_a_closed_stream_can_be_reopened_at_once() {
    let mut h = Harness::start();
    let (a_port, b_port) = h.open(StreamId(1)).await;
    for n in 2..20 {
        h.relay.command(MediaCommand::Close {
            id: StreamId(n - 1),
        });
        h.relay.command(MediaCommand::Open {
            id: StreamId(n),
            a_port,
            b_port,
        });
        h.relay.flush().await;
        loop {
            match h.events.try_recv() {
                Ok(MediaEvent::BindFailed { id }) => panic!("reopen {id:?} failed to bind"),
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
}

async fn client_on(ip: [u8; 4]) -> UdpSocket {
    UdpSocket::bind((Ipv4Addr::from(ip), 0)).await.unwrap()
}

/// The default policy (`ip`, 500 ms) on sockets of distinct loopback addresses: a stranger
/// who sends first is refused (bleed), a latched stream takes nothing from another source,
/// and a rebinding moves the latch only after the latched source went silent.
#[tokio::test]
async fn default_policy_refuses_strangers_and_waits_before_relatching() {
    let mut h = Harness::start_with(RelayOptions::default());
    let id = StreamId(40);
    let (a_port, b_port) = h.open(id).await;
    let (a1, a2, stranger, b) = (
        client_on([127, 0, 0, 11]).await,
        client_on([127, 0, 0, 11]).await,
        client_on([127, 0, 0, 99]).await,
        client_on([127, 0, 0, 12]).await,
    );
    h.set_remote(id, Side::A, Some(a1.local_addr().unwrap()), None)
        .await;
    h.set_remote(id, Side::B, Some(b.local_addr().unwrap()), None)
        .await;
    let dropped =
        |h: &Harness, reason: &str| h.metrics.media_drops.with_label_values(&[reason]).get();

    stranger
        .send_to(&rtp(1, 160, 0xaaaa), at(a_port))
        .await
        .unwrap();
    assert_silent(&b).await;
    assert_eq!(dropped(&h, "not_party"), 1);
    // The party's signalling IP (here another address) may latch too.
    h.relay.command(MediaCommand::SetParty {
        id,
        side: Side::A,
        ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 13))),
    });
    let via_signalling = client_on([127, 0, 0, 13]).await;
    h.relay.flush().await;

    a1.send_to(&rtp(1, 160, 0xaaaa), at(a_port)).await.unwrap();
    recv(&b).await;
    // Live stream: same SSRC from another port of the same IP, or from the signalling IP.
    a2.send_to(&rtp(2, 320, 0xaaaa), at(a_port)).await.unwrap();
    via_signalling
        .send_to(&rtp(2, 320, 0xaaaa), at(a_port))
        .await
        .unwrap();
    assert_silent(&b).await;
    assert_eq!(dropped(&h, "unlatched_source"), 2);
    b.send_to(&rtp(1, 160, 0xcccc), at(b_port)).await.unwrap();
    assert_eq!(recv(&a1).await.1, at(a_port));
    // After 500 ms of silence the rebinding is accepted.
    tokio::time::sleep(Duration::from_millis(600)).await;
    a2.send_to(&rtp(3, 480, 0xaaaa), at(a_port)).await.unwrap();
    recv(&b).await;
    b.send_to(&rtp(2, 320, 0xcccc), at(b_port)).await.unwrap();
    recv(&a2).await;
    assert_silent(&a1).await;

    h.relay.command(MediaCommand::Close { id });
    let mut stats = None;
    while stats.is_none() {
        if let MediaEvent::Stats { a, .. } = h.any_event().await {
            stats = Some(a);
        }
    }
    // Only the two accepted packets of A were metered.
    assert_eq!(stats.map(|s| s.packets), Some(2));
}

/// A sender report (no report blocks) and an SDES chunk with `items`, as a phone sends
/// them in one compound.
fn sr_sdes(ssrc: u32, items: &[(u8, &[u8])]) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x11; 20]);
    let mut chunk = ssrc.to_be_bytes().to_vec();
    for (kind, text) in items {
        chunk.extend_from_slice(&[*kind, text.len() as u8]);
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

fn phone(ssrc: u32, cname: &[u8]) -> Vec<u8> {
    sr_sdes(
        ssrc,
        &[(1, cname), (2, b"Alice Example"), (6, b"Acme Phone 5.1")],
    )
}

const CNAME_A: &[u8] = b"aaaaaaaaaaaaaaaa";
const CNAME_B: &[u8] = b"bbbbbbbbbbbbbbbb";

fn set_cnames(h: &Harness, id: StreamId) {
    for (side, cname) in [(Side::A, CNAME_A), (Side::B, CNAME_B)] {
        h.relay.command(MediaCommand::SetCname {
            id,
            side,
            cname: String::from_utf8(cname.to_vec()).unwrap(),
        });
    }
}

/// Relayed RTCP carries veil's CNAME for the receiving side instead of the sender's, and
/// none of its NAME/TOOL; on the RTCP port and multiplexed on the RTP port alike. RTCP
/// whose lengths do not add up is dropped and counted.
#[tokio::test]
async fn rtcp_sdes_carries_veils_cname_for_the_receiving_side() {
    let mut h = Harness::start();
    let id = StreamId(50);
    let (a_port, b_port) = h.open(id).await;
    let (a_rtp, a_rtcp, b_rtp, b_rtcp) = (
        client().await,
        client().await,
        client().await,
        client().await,
    );
    h.set_remote(
        id,
        Side::A,
        Some(a_rtp.local_addr().unwrap()),
        Some(a_rtcp.local_addr().unwrap()),
    )
    .await;
    h.set_remote(
        id,
        Side::B,
        Some(b_rtp.local_addr().unwrap()),
        Some(b_rtcp.local_addr().unwrap()),
    )
    .await;
    set_cnames(&h, id);
    h.relay.flush().await;

    a_rtcp
        .send_to(&phone(0xa1, b"sip:alice@127.0.0.2"), at(a_port + 1))
        .await
        .unwrap();
    assert_eq!(recv(&b_rtcp).await.0, sr_sdes(0xa1, &[(1, CNAME_B)]));
    b_rtcp
        .send_to(&phone(0xb1, b"bob@10.9.8.7"), at(b_port + 1))
        .await
        .unwrap();
    assert_eq!(recv(&a_rtcp).await.0, sr_sdes(0xb1, &[(1, CNAME_A)]));
    // Multiplexed on the RTP port (RFC 5761: told apart by its packet type).
    a_rtp
        .send_to(&phone(0xa1, b"sip:alice@127.0.0.2"), at(a_port))
        .await
        .unwrap();
    assert_eq!(recv(&b_rtcp).await.0, sr_sdes(0xa1, &[(1, CNAME_B)]));

    // Malformed: the SDES length runs past the datagram; and junk on the RTCP port.
    let mut bad = phone(0xa1, b"sip:alice@127.0.0.2");
    bad[31] += 1;
    a_rtcp.send_to(&bad, at(a_port + 1)).await.unwrap();
    a_rtcp.send_to(b"junk", at(a_port + 1)).await.unwrap();
    assert_silent(&b_rtcp).await;
    let dropped = h
        .metrics
        .media_drops
        .with_label_values(&["malformed_rtcp"])
        .get();
    assert_eq!(dropped, 2);
    h.relay.command(MediaCommand::Close { id });
    assert_eq!(
        h.event().await,
        MediaEvent::Closed {
            id,
            a_packets: 2,
            b_packets: 1
        },
        "malformed RTCP is not counted as received"
    );
}

/// SRTCP: the SDES is rewritten after unprotecting and before protecting, both ways; a
/// malformed compound that authenticates is a malformed_rtcp drop, not an SRTP error.
#[tokio::test]
async fn srtcp_sdes_is_rewritten_between_unprotect_and_protect() {
    use super::srtp::{SrtpKey, SrtpSession, Suite};
    let mut h = Harness::start();
    let id = StreamId(51);
    let (a_port, b_port) = h.open(id).await;
    let (a_rtcp, b_rtcp) = (client().await, client().await);
    h.set_remote(id, Side::A, None, Some(a_rtcp.local_addr().unwrap()))
        .await;
    h.set_remote(id, Side::B, None, Some(b_rtcp.local_addr().unwrap()))
        .await;
    let (inbound, outbound) = (
        SrtpKey::generate(Suite::AesCm128HmacSha1_80),
        SrtpKey::generate(Suite::AesCm128HmacSha1_80),
    );
    h.relay.command(MediaCommand::SetCrypto {
        id,
        side: Side::A,
        inbound: Some(inbound.clone()),
        outbound: Some(outbound.clone()),
    });
    set_cnames(&h, id);
    h.relay.flush().await;
    let (mut a_tx, mut a_rx) = (SrtpSession::new(inbound), SrtpSession::new(outbound));

    let sealed = a_tx
        .protect_rtcp(&phone(0xa1, b"sip:alice@127.0.0.2"))
        .unwrap();
    a_rtcp.send_to(&sealed, at(a_port + 1)).await.unwrap();
    assert_eq!(recv(&b_rtcp).await.0, sr_sdes(0xa1, &[(1, CNAME_B)]));

    b_rtcp
        .send_to(&phone(0xb1, b"bob@10.9.8.7"), at(b_port + 1))
        .await
        .unwrap();
    let (got, _) = recv(&a_rtcp).await;
    let plain = a_rx
        .unprotect_rtcp(&got)
        .expect("veil's SRTCP authenticates");
    assert_eq!(&plain[..], &sr_sdes(0xb1, &[(1, CNAME_A)])[..]);

    let mut bad = phone(0xa1, b"sip:alice@127.0.0.2");
    bad[31] += 1;
    let sealed = a_tx.protect_rtcp(&bad).unwrap();
    a_rtcp.send_to(&sealed, at(a_port + 1)).await.unwrap();
    assert_silent(&b_rtcp).await;
    let dropped = h
        .metrics
        .media_drops
        .with_label_values(&["malformed_rtcp"])
        .get();
    assert_eq!(dropped, 1);
    assert_eq!(h.metrics.media_srtp_errors.get(), 0);
}
