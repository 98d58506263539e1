//! Media relay benchmark (not a test): relayed packets/s on one relay thread, added
//! latency p50/p99 on loopback, SRTP protect+unprotect/s and RTCP SDES rewrites/s; with
//! `--rtpengine`, the same load against Debian's rtpengine-daemon (userspace,
//! `--table=-1`) side by side.
//!
//! `cargo run --release --example relay_bench [packets]`
//! `cargo run --release --example relay_bench -- --rtpengine [--streams 500]
//!     [--rates 20000,40000,...] [--secs 3] [--rounds 2] [--rtpengine-threads 1]`
//!
//! The relay runs in-process on a one-worker tokio runtime (one core); the load generator
//! uses blocking std sockets on other threads. Bounded: `packets` (default 200000) per
//! throughput run, 20000 paced packets per latency run.
//!
//! `--rtpengine` starts `rtpengine` as a child process on loopback (userspace only,
//! `--table=-1`), sets up `--streams` calls on it over its ng control protocol (bencode
//! over UDP) and as many streams on veil's relay, then for each round and rate sends the
//! same paced load (round-robin over the streams, so no single socket sees a burst)
//! straight to the receivers, through veil and through rtpengine, one after the other.
//! Per run: loss, packets per CPU-second of the relay (veil: its worker thread;
//! rtpengine: its whole process), latency added to the direct run at the same rate, and
//! the load average.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use veil::media::relay::Relay;
use veil::media::srtp::{SrtpKey, SrtpSession, Suite};
use veil::media::{MediaCommand, MediaEvent, Side, StreamId};
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
        // The generator is side A's SDP address: with `media.latching: ip` (the default)
        // a side without one drops every packet as `not_party`.
        relay.command(MediaCommand::SetRemote {
            id,
            side: Side::A,
            rtp: Some(tx.local_addr().expect("addr")),
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
fn run(path: Path, count: u32, gap: Duration) -> (f64, Vec<u64>) {
    let (pps, _, lat) = run_counted(path, count, gap);
    (pps, lat)
}

/// `run`, also returning how many packets arrived.
fn run_counted(mut path: Path, count: u32, gap: Duration) -> (f64, u64, Vec<u64>) {
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
        // A relay that loses packets must not stall the generator: after 20 ms without
        // progress, send on.
        let waiting = Instant::now();
        while gap.is_zero()
            && u64::from(i) > received.load(Ordering::Relaxed) + 256
            && waiting.elapsed() < Duration::from_millis(20)
        {
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
    (got as f64 / span.as_secs_f64().max(1e-9), got, lat)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    epoch();
    if args.iter().any(|a| a == "--rtpengine") {
        side_by_side(&Compare::parse(&args));
        return;
    }
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

    // RTCP is not on the paths above (RTP only); its extra cost is the SDES rewrite.
    let phone = phone_rtcp();
    let mut out = Vec::new();
    let n = count.min(200_000) * 10;
    let start = Instant::now();
    for _ in 0..n {
        let done = veil::media::rtcp_sdes::rewrite(
            std::hint::black_box(&phone),
            Some(b"0123456789abcdef"),
            &mut out,
        );
        std::hint::black_box(done).expect("well formed");
        std::hint::black_box(&out);
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    println!(
        "RTCP SDES rewrite: {rate:.0} compounds/s (one thread, SR + SDES CNAME/NAME/TOOL, {} bytes)",
        phone.len()
    );
}

/// A desk phone's RTCP compound: SR without report blocks, SDES with CNAME, NAME, TOOL.
fn phone_rtcp() -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&[0x11; 24]);
    let mut chunk = vec![0, 0, 0x12, 0x34];
    for (kind, text) in [
        (1u8, &b"sip:alice@127.0.0.2"[..]),
        (2, b"Alice Example"),
        (6, b"Acme Phone 5.1.2"),
    ] {
        chunk.extend_from_slice(&[kind, text.len() as u8]);
        chunk.extend_from_slice(text);
    }
    chunk.push(0);
    while !chunk.len().is_multiple_of(4) {
        chunk.push(0);
    }
    p.extend_from_slice(&[0x81, 202, 0, (chunk.len() / 4) as u8]);
    p.extend_from_slice(&chunk);
    p
}

/// Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// utime + stime (fields 14 and 15) of a /proc stat file, in seconds.
fn cpu_seconds(stat: &str) -> f64 {
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / TICKS
}

/// CPU seconds of this process's tokio worker threads (the relay's one core).
fn worker_cpu() -> f64 {
    let mut total = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.starts_with("relay-worker") {
                total += cpu_seconds(
                    &std::fs::read_to_string(t.path().join("stat")).unwrap_or_default(),
                );
            }
        }
    }
    total
}

fn process_cpu(pid: u32) -> f64 {
    cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// A bencoded string.
fn benc(s: &str) -> String {
    format!("{}:{s}", s.len())
}

/// Options of the side-by-side comparison.
struct Compare {
    streams: usize,
    rates: Vec<u64>,
    secs: f64,
    rounds: u32,
    engine_threads: u32,
}

impl Compare {
    fn parse(args: &[String]) -> Compare {
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
        };
        let rates: Vec<u64> = value("--rates").map_or_else(
            || vec![20_000, 40_000, 60_000, 80_000, 100_000, 120_000, 160_000],
            |list| {
                list.split(',')
                    .filter_map(|r| r.trim().parse().ok())
                    .collect()
            },
        );
        Compare {
            streams: value("--streams")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(500)
                .clamp(1, 2000),
            rates,
            secs: value("--secs")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(3.0_f64)
                .clamp(0.5, 30.0),
            rounds: value("--rounds")
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(2)
                .clamp(1, 10),
            engine_threads: value("--rtpengine-threads")
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(1)
                .clamp(1, 16),
        }
    }
}

/// Receiver sockets per load: spreads the aggregate rate so one socket's default
/// receive buffer (~200 loopback packets) is not the bottleneck.
const RECEIVERS: usize = 4;

/// `streams` streams of one relay (or none, for the direct baseline): the generator sends
/// stream `i`'s packets to `targets[i]`, and the relay forwards them to `rxs[i % RECEIVERS]`.
struct Load {
    targets: Vec<SocketAddr>,
    tx: UdpSocket,
    rxs: Vec<UdpSocket>,
}

impl Load {
    fn sockets() -> (UdpSocket, Vec<UdpSocket>) {
        let tx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
        let rxs = (0..RECEIVERS)
            .map(|_| UdpSocket::bind((LOCALHOST, 0)).expect("bind"))
            .collect();
        (tx, rxs)
    }

    fn rx_addr(rxs: &[UdpSocket], i: usize) -> SocketAddr {
        rxs[i % rxs.len()].local_addr().expect("addr")
    }

    /// No relay: the generator sends straight to the receivers.
    fn direct(streams: usize) -> Load {
        let (tx, rxs) = Load::sockets();
        let targets = (0..streams).map(|i| Load::rx_addr(&rxs, i)).collect();
        Load { targets, tx, rxs }
    }

    /// veil's relay: one stream per target, A -> B.
    fn veil(rt: &tokio::runtime::Runtime, relay: &Relay, streams: usize) -> Load {
        let (tx, rxs) = Load::sockets();
        let mut targets = Vec::with_capacity(streams);
        // The relay binds at `flush`: pairs chosen before must not be chosen again.
        let mut taken = std::collections::HashSet::new();
        let mut pair = || loop {
            let p = free_pair();
            if taken.insert(p) {
                return p;
            }
        };
        for i in 0..streams {
            let (a_port, b_port) = (pair(), pair());
            let id = StreamId(i as u64 + 1);
            relay.command(MediaCommand::Open { id, a_port, b_port });
            relay.command(MediaCommand::SetRemote {
                id,
                side: Side::B,
                rtp: Some(Load::rx_addr(&rxs, i)),
                rtcp: None,
            });
            targets.push(SocketAddr::new(LOCALHOST, a_port));
        }
        rt.block_on(relay.flush());
        Load { targets, tx, rxs }
    }

    /// rtpengine: one call per stream (ng offer from the generator, answer from a
    /// receiver), call ids `bench-RUN-I`. Fresh calls for every run: once a stream's
    /// socket overflowed five times (an overloaded run), rtpengine 10.5 logs "UDP receive
    /// queue exceeded 5 times: discarding packet" and drops that stream's packets from
    /// then on, which would poison every later run.
    fn rtpengine(engine: &mut Rtpengine, streams: usize, run: u32) -> Load {
        let (tx, rxs) = Load::sockets();
        let from = tx.local_addr().expect("addr");
        let targets = (0..streams)
            .map(|i| {
                let port = engine.setup(&format!("bench-{run}-{i}"), from, Load::rx_addr(&rxs, i));
                SocketAddr::new(LOCALHOST, port)
            })
            .collect();
        Load { targets, tx, rxs }
    }
}

/// One paced run: what was sent and received, the one-way latencies (sorted).
struct Outcome {
    sent: u64,
    received: u64,
    latencies: Vec<u64>,
}

impl Outcome {
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        100.0 * self.sent.saturating_sub(self.received) as f64 / self.sent as f64
    }
}

/// Send `rate` packets/s for `secs`, round-robin over the load's streams, paced in
/// half-millisecond batches (each stream sees at most one packet per batch at the
/// default 500 streams and up to 1 Mpps). Stops at `secs` + 0.5 s even if the generator
/// fell behind; receivers stop after 300 ms without a packet once the generator is done.
fn paced(load: &Load, rate: u64, secs: f64) -> Outcome {
    let total = (rate as f64 * secs) as u64;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receivers: Vec<_> = load
        .rxs
        .iter()
        .map(|rx| {
            let rx = rx.try_clone().expect("clone");
            rx.set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            let done = done.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut lat = Vec::with_capacity(total as usize / RECEIVERS + 1024);
                loop {
                    match rx.recv(&mut buf) {
                        Ok(n) if n >= 20 => {
                            let t = now_ns();
                            let mut ts = [0u8; 8];
                            ts.copy_from_slice(&buf[12..20]);
                            lat.push(t.saturating_sub(u64::from_be_bytes(ts)));
                        }
                        Ok(_) => {}
                        Err(_) if done.load(Ordering::Relaxed) => break,
                        Err(_) => {}
                    }
                }
                lat
            })
        })
        .collect();
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(secs + 0.5);
    let mut sent = 0u64;
    while sent < total && Instant::now() < stop {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let target = load.targets[sent as usize % load.targets.len()];
            let _ = load.tx.send_to(&rtp(sent as u16), target);
            sent += 1;
        }
        thread::sleep(Duration::from_micros(500));
    }
    done.store(true, Ordering::Relaxed);
    let mut latencies = Vec::with_capacity(sent as usize);
    for r in receivers {
        latencies.extend(r.join().expect("receiver"));
    }
    latencies.sort_unstable();
    Outcome {
        sent,
        received: latencies.len() as u64,
        latencies,
    }
}

/// rtpengine as a child process, controlled over ng (bencode over UDP).
struct Rtpengine {
    child: std::process::Child,
    ng: UdpSocket,
    cookie: u32,
}

impl Rtpengine {
    /// Userspace only (`--table=-1`), loopback, `threads` poller threads; stderr goes to
    /// `log`.
    fn start(threads: u32, log: &std::path::Path) -> Rtpengine {
        let ng_port = free_pair();
        let stderr = std::fs::File::create(log).expect("rtpengine log file");
        let child = std::process::Command::new("rtpengine")
            .args([
                "--config-file=none",
                "--table=-1",
                "--interface=127.0.0.1",
                &format!("--listen-ng=127.0.0.1:{ng_port}"),
                "--port-min=50000",
                "--port-max=59999",
                &format!("--num-threads={threads}"),
                "--timeout=600",
                "--foreground",
                "--log-stderr",
                "--log-level=4",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start rtpengine (apt-get install rtpengine-daemon)");
        let ng = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
        ng.connect((LOCALHOST, ng_port)).expect("connect");
        ng.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut engine = Rtpengine {
            child,
            ng,
            cookie: 0,
        };
        for _ in 0..50 {
            if engine.call("d7:command4:pinge").contains("pong") {
                return engine;
            }
            // Not listening yet: a connected UDP socket fails at once (port unreachable).
            thread::sleep(Duration::from_millis(100));
        }
        panic!("rtpengine did not answer ping on 127.0.0.1:{ng_port}");
    }

    fn call(&mut self, dict: &str) -> String {
        self.cookie += 1;
        let msg = format!("c{} {dict}", self.cookie);
        let _ = self.ng.send(msg.as_bytes());
        // Replies to earlier (timed-out) messages may still arrive: take ours only.
        let mine = format!("c{} ", self.cookie);
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(n) = self.ng.recv(&mut buf) {
            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(body) = reply.strip_prefix(&mine) {
                return body.to_string();
            }
            if Instant::now() > deadline {
                break;
            }
        }
        String::new()
    }

    /// Offer (side A at `a`) and answer (side B at `b`): returns the port rtpengine
    /// receives side A's media on.
    fn setup(&mut self, call_id: &str, a: SocketAddr, b: SocketAddr) -> u16 {
        let sdp = |addr: SocketAddr| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {}\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=sendrecv\r\n",
                addr.ip(),
                addr.port()
            )
        };
        let offer = format!(
            "d7:command5:offer7:call-id{}8:from-tag{}3:sdp{}e",
            benc(call_id),
            benc("a"),
            benc(&sdp(a))
        );
        let reply = self.call(&offer);
        assert!(reply.contains("2:ok"), "rtpengine offer: {reply}");
        let answer = format!(
            "d7:command6:answer7:call-id{}8:from-tag{}6:to-tag{}3:sdp{}e",
            benc(call_id),
            benc("a"),
            benc("b"),
            benc(&sdp(b))
        );
        let reply = self.call(&answer);
        assert!(reply.contains("2:ok"), "rtpengine answer: {reply}");
        reply
            .split("m=audio ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in rtpengine's answer: {reply}"))
    }
}

impl Rtpengine {
    fn delete(&mut self, call_id: &str) {
        let _ = self.call(&format!(
            "d7:command6:delete7:call-id{}8:from-tag{}e",
            benc(call_id),
            benc("a")
        ));
    }
}

impl Drop for Rtpengine {
    fn drop(&mut self) {
        // Only the child this process started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// veil's relay and rtpengine side by side, plain RTP, paced: `streams` streams on each
/// (veil's set up once, rtpengine's per run, see [`Load::rtpengine`]), then for every round and rate a direct (no relay) run, a veil run and an
/// rtpengine run with the same generator, so all three see the same machine load.
fn side_by_side(opts: &Compare) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("relay-worker")
        .enable_all()
        .build()
        .expect("runtime");
    let log =
        std::env::temp_dir().join(format!("relay_bench_rtpengine_{}.log", std::process::id()));
    let mut engine = Rtpengine::start(opts.engine_threads, &log);
    let pid = engine.child.id();
    let (events, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let relay = rt.block_on(async {
        Relay::start(LOCALHOST, events, Metrics::new("bench").expect("metrics"))
    });
    let through_veil = Load::veil(&rt, &relay, opts.streams);
    while let Ok(event) = events_rx.try_recv() {
        if let MediaEvent::BindFailed { id } = event {
            panic!("veil stream {} could not bind its ports", id.0);
        }
    }
    let direct = Load::direct(opts.streams);
    let mut run = 0;
    println!(
        "{} streams on each relay; rtpengine pid {pid}, --num-threads={}, log {}; veil: one relay thread; {:.1} s per run",
        opts.streams,
        opts.engine_threads,
        log.display(),
        opts.secs
    );
    println!(
        "| round | rate (pps) | relay | load avg | sent | received | loss % | packets per CPU-second | latency p50 / p99 (us) | added p50 / p99 (us) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // Highest rate lossless in every round, per relay.
    let mut lossy: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=opts.rounds {
        for &rate in &opts.rates {
            let base = paced(&direct, rate, opts.secs);
            let (b50, b99) = (
                percentile(&base.latencies, 0.5),
                percentile(&base.latencies, 0.99),
            );
            println!(
                "| {round} | {rate} | direct | {} | {} | {} | {:.3} | - | {b50:.0} / {b99:.0} | - |",
                loadavg(),
                base.sent,
                base.received,
                base.loss()
            );
            for (k, name) in ["veil", "rtpengine"].into_iter().enumerate() {
                let load = loadavg();
                let cpu = || {
                    if k == 0 {
                        worker_cpu()
                    } else {
                        process_cpu(pid)
                    }
                };
                run += 1;
                let fresh = (k == 1).then(|| Load::rtpengine(&mut engine, opts.streams, run));
                let before = cpu();
                let out = paced(fresh.as_ref().unwrap_or(&through_veil), rate, opts.secs);
                let used = cpu() - before;
                if fresh.is_some() {
                    for i in 0..opts.streams {
                        engine.delete(&format!("bench-{run}-{i}"));
                    }
                }
                if out.received < out.sent {
                    lossy[k].push(rate);
                }
                let per_cpu = if used > 0.0 {
                    format!("{:.0} ({:.2} s CPU)", out.received as f64 / used, used)
                } else {
                    "- (< 10 ms CPU)".to_string()
                };
                let (p50, p99) = (
                    percentile(&out.latencies, 0.5),
                    percentile(&out.latencies, 0.99),
                );
                println!(
                    "| {round} | {rate} | {name} | {load} | {} | {} | {:.3} | {per_cpu} | {p50:.0} / {p99:.0} | {:.0} / {:.0} |",
                    out.sent,
                    out.received,
                    out.loss(),
                    p50 - b50,
                    p99 - b99
                );
            }
        }
    }
    for (k, name) in ["veil", "rtpengine"].into_iter().enumerate() {
        let best = opts
            .rates
            .iter()
            .filter(|r| !lossy[k].contains(r))
            .max()
            .map_or("none".to_string(), |r| format!("{r} pps"));
        println!("{name}: highest rate without loss in every round: {best}");
    }
    drop(relay);
    drop(engine);
}
