//! Media relay benchmark (not a test): relayed packets/s on one relay thread, added
//! latency p50/p99 on loopback, and SRTP protect+unprotect/s.
//!
//! `cargo run --release --example relay_bench [packets]`
//!
//! The relay runs in-process on a one-worker tokio runtime (one core); the load generator
//! uses blocking std sockets on other threads. Bounded: `packets` (default 200000) per
//! throughput run, 20000 paced packets per latency run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use veil::media::relay::Relay;
use veil::media::srtp::{SrtpKey, SrtpSession, Suite};
use veil::media::{MediaCommand, Side, StreamId};
use veil::observe::Metrics;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PAYLOAD: usize = 160;

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 12 + PAYLOAD];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p[12..20].copy_from_slice(&now_ns().to_be_bytes());
    p
}

fn free_pair() -> u16 {
    loop {
        let probe = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
        let port = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if port > 1024
            && UdpSocket::bind((LOCALHOST, port)).is_ok()
            && UdpSocket::bind((LOCALHOST, port + 1)).is_ok()
        {
            return port;
        }
    }
}

struct Path {
    /// Where the generator sends (veil's A port, or the receiver itself for the baseline).
    to: SocketAddr,
    tx: UdpSocket,
    rx: UdpSocket,
    /// The generator encrypts with this (SRTP towards veil's A side).
    srtp: Option<SrtpSession>,
}

/// One relay stream A -> B; `srtp`: side A speaks SRTP.
fn relay_path(rt: &tokio::runtime::Runtime, id: u64, srtp: bool) -> (Relay, Path) {
    let metrics = Metrics::new("bench").expect("metrics");
    let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(_rx);
    let (veil_a, veil_b) = (free_pair(), free_pair());
    let tx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let rx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let key = SrtpKey::generate(Suite::AesCm128HmacSha1_80);
    let relay = rt.block_on(async {
        let relay = Relay::start(LOCALHOST, events, metrics);
        let id = StreamId(id);
        relay.command(MediaCommand::Open {
            id,
            a_port: veil_a,
            b_port: veil_b,
        });
        relay.command(MediaCommand::SetRemote {
            id,
            side: Side::B,
            rtp: Some(rx.local_addr().expect("addr")),
            rtcp: None,
        });
        if srtp {
            relay.command(MediaCommand::SetCrypto {
                id,
                side: Side::A,
                inbound: Some(key.clone()),
                outbound: None,
            });
        }
        relay.flush().await;
        relay
    });
    let path = Path {
        to: SocketAddr::new(LOCALHOST, veil_a),
        tx,
        rx,
        srtp: srtp.then(|| SrtpSession::new(key)),
    };
    (relay, path)
}

fn direct_path() -> Path {
    let tx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let rx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    Path {
        to: rx.local_addr().expect("addr"),
        tx,
        rx,
        srtp: None,
    }
}

/// Send `count` packets, `gap` apart (zero: as fast as possible, in bursts the receiver
/// can keep up with); returns received packets/s and the one-way latencies.
fn run(mut path: Path, count: u32, gap: Duration) -> (f64, Vec<u64>) {
    path.rx
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let received = Arc::new(AtomicU64::new(0));
    let seen = received.clone();
    let rx = path.rx;
    let receiver = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut lat = Vec::with_capacity(count as usize);
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        while let Ok(n) = rx.recv(&mut buf) {
            let t = now_ns();
            last = Instant::now();
            first.get_or_insert(last);
            if n >= 20 {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&buf[12..20]);
                lat.push(t.saturating_sub(u64::from_be_bytes(ts)));
            }
            seen.fetch_add(1, Ordering::Relaxed);
        }
        let span = first.map_or(Duration::ZERO, |f| last - f);
        (span, lat)
    });
    let mut next = Instant::now();
    for i in 0..count {
        // Keep at most 256 packets in flight so a saturated relay measures its rate, not
        // socket-buffer drops.
        while gap.is_zero() && u64::from(i) > received.load(Ordering::Relaxed) + 256 {
            std::hint::spin_loop();
        }
        let plain = rtp(i as u16);
        let packet = match &mut path.srtp {
            Some(s) => s.protect_rtp(&plain).expect("protect").to_vec(),
            None => plain,
        };
        let _ = path.tx.send_to(&packet, path.to);
        if !gap.is_zero() {
            next += gap;
            while Instant::now() < next {
                std::hint::spin_loop();
            }
        }
    }
    let (span, lat) = receiver.join().expect("receiver");
    let got = received.load(Ordering::Relaxed);
    (got as f64 / span.as_secs_f64().max(1e-9), lat)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    epoch();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    let (_, direct) = run(direct_path(), 20_000, Duration::from_micros(50));
    let mut direct = direct;
    direct.sort_unstable();
    println!(
        "loopback baseline (no relay): p50 {:.1} us, p99 {:.1} us",
        percentile(&direct, 0.5),
        percentile(&direct, 0.99)
    );

    for (name, srtp, id) in [("plain RTP -> RTP", false, 1), ("SRTP -> RTP", true, 2)] {
        let (relay, path) = relay_path(&rt, id, srtp);
        let (pps, _) = run(path, count, Duration::ZERO);
        drop(relay);
        let (relay, path) = relay_path(&rt, id + 10, srtp);
        let (_, mut lat) = run(path, 20_000, Duration::from_micros(50));
        drop(relay);
        lat.sort_unstable();
        println!(
            "{name}: {pps:.0} packets/s on one relay thread; latency at 20 kpps p50 {:.1} us, p99 {:.1} us (added: p50 {:.1} us, p99 {:.1} us)",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 0.5) - percentile(&direct, 0.5),
            percentile(&lat, 0.99) - percentile(&direct, 0.99),
        );
    }

    for suite in Suite::OFFERED {
        let key = SrtpKey::generate(suite);
        let (mut tx, mut rx) = (SrtpSession::new(key.clone()), SrtpSession::new(key));
        let n = count.min(200_000);
        let start = Instant::now();
        for i in 0..n {
            let sealed = tx.protect_rtp(&rtp(i as u16)).expect("protect");
            rx.unprotect_rtp(&sealed).expect("unprotect");
        }
        let rate = f64::from(n) / start.elapsed().as_secs_f64();
        println!(
            "SRTP {}: {rate:.0} protect+unprotect pairs/s (one thread, {PAYLOAD}-byte payload)",
            suite.sdes_name()
        );
    }
}
