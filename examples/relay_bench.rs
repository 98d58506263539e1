//! Media relay benchmark (not a test): relayed packets/s on one relay thread, added
//! latency p50/p99 on loopback, and SRTP protect+unprotect/s; with `--rtpengine`, the same
//! load against Debian's rtpengine-daemon (userspace, `--table=-1`) side by side.
//!
//! `cargo run --release --example relay_bench [packets] [--rtpengine [rounds]]`
//!
//! The relay runs in-process on a one-worker tokio runtime (one core); the load generator
//! uses blocking std sockets on other threads. Bounded: `packets` (default 200000) per
//! throughput run, 20000 paced packets per latency run.
//!
//! `--rtpengine` starts `rtpengine` as a child process on loopback (one poller thread, no
//! kernel forwarding), sets up one call per run over its ng control protocol (bencode over
//! UDP), and runs veil and rtpengine interleaved (`rounds`, default 3) so both see the same
//! machine load. Besides wall-clock packets/s it reports packets per CPU-second of the
//! relay (veil: the tokio worker thread; rtpengine: the whole process) and the load
//! average at each run.

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
    if let Some(at) = args.iter().position(|a| a == "--rtpengine") {
        let rounds = args.get(at + 1).and_then(|a| a.parse().ok()).unwrap_or(3);
        side_by_side(count, rounds);
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

/// rtpengine as a child process, controlled over ng (bencode over UDP).
struct Rtpengine {
    child: std::process::Child,
    ng: UdpSocket,
    cookie: u32,
}

impl Rtpengine {
    fn start() -> Rtpengine {
        let ng_port = free_pair();
        let child = std::process::Command::new("rtpengine")
            .args([
                "--config-file=none",
                "--table=-1",
                "--interface=127.0.0.1",
                &format!("--listen-ng=127.0.0.1:{ng_port}"),
                "--port-min=40000",
                "--port-max=40999",
                "--num-threads=1",
                "--foreground",
                "--log-stderr",
                "--log-level=3",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
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

    /// Offer (from the generator's socket) and answer (from the receiver's): returns the
    /// port rtpengine receives side A's media on.
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

    fn delete(&mut self, call_id: &str) {
        let _ = self.call(&format!(
            "d7:command6:delete7:call-id{}8:from-tag{}e",
            benc(call_id),
            benc("a")
        ));
    }

    fn path(&mut self, call_id: &str) -> Path {
        let tx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
        let rx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
        let port = self.setup(
            call_id,
            tx.local_addr().expect("addr"),
            rx.local_addr().expect("addr"),
        );
        Path {
            to: SocketAddr::new(LOCALHOST, port),
            tx,
            rx,
            srtp: None,
        }
    }
}

impl Drop for Rtpengine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// veil's relay and rtpengine, interleaved, plain RTP: throughput (wall and per
/// CPU-second of the relay) and paced latency.
fn side_by_side(count: u32, rounds: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("relay-worker")
        .enable_all()
        .build()
        .expect("runtime");
    let mut engine = Rtpengine::start();
    let pid = engine.child.id();
    let (_, mut direct) = run(direct_path(), 20_000, Duration::from_micros(50));
    direct.sort_unstable();
    let (b50, b99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
    println!(
        "loopback baseline (no relay): p50 {b50:.1} us, p99 {b99:.1} us (load {})",
        loadavg()
    );
    println!(
        "| round | relay | load avg | packets/s (wall) | packets per CPU-second | latency p50 | p99 | added p50 | added p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for round in 1..=rounds {
        for which in ["veil", "rtpengine"] {
            let load = loadavg();
            let id = u64::from(round) * 100;
            let cpu = |w: &str| {
                if w == "veil" {
                    worker_cpu()
                } else {
                    process_cpu(pid)
                }
            };
            let (pps, got, cpu_used) = if which == "veil" {
                let (relay, path) = relay_path(&rt, id, false);
                let before = cpu(which);
                let (pps, got, _) = run_counted(path, count, Duration::ZERO);
                let used = cpu(which) - before;
                drop(relay);
                (pps, got, used)
            } else {
                let call_id = format!("bench-{round}-tp");
                let path = engine.path(&call_id);
                let before = cpu(which);
                let (pps, got, _) = run_counted(path, count, Duration::ZERO);
                let used = cpu(which) - before;
                engine.delete(&call_id);
                (pps, got, used)
            };
            let mut lat = if which == "veil" {
                let (relay, path) = relay_path(&rt, id + 1, false);
                let (_, lat) = run(path, 20_000, Duration::from_micros(50));
                drop(relay);
                lat
            } else {
                let call_id = format!("bench-{round}-lat");
                let path = engine.path(&call_id);
                let (_, lat) = run(path, 20_000, Duration::from_micros(50));
                engine.delete(&call_id);
                lat
            };
            lat.sort_unstable();
            let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
            let per_cpu = if cpu_used > 0.0 {
                got as f64 / cpu_used
            } else {
                f64::NAN
            };
            println!(
                "| {round} | {which} | {load} | {pps:.0} | {per_cpu:.0} ({got} in {cpu_used:.2} s CPU) | {p50:.1} us | {p99:.1} us | {:.1} us | {:.1} us |",
                p50 - b50,
                p99 - b99
            );
        }
    }
}
