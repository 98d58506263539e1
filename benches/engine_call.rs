//! Engine cost per call, in memory: one iteration is a whole call through
//! `veil::b2bua::Engine` (INVITE, 100, leg B INVITE, 180, 200, ACK both legs, BYE both
//! legs, 200s, media open/close, CDR events, and the timers that clear the transactions
//! afterwards). No sockets and no relay: this is the signalling ceiling of one core.
//! `cargo bench --bench engine_call`; see docs/performance.md.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The allocator of the `veil` binary (src/main.rs), so the figures match it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use veil::b2bua::{Engine, Input, Output};
use veil::config::Transport;
use veil::media::{MediaCommand, MediaEvent};
use veil::observe::Metrics;
use veil::transaction::Flow;

const PBX: &str = "127.0.0.2:15060";
const CARRIER: &str = "127.0.0.3:15060";
const SDP_A: &str = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
const SDP_B: &str = "v=0\r\no=carrier 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// The engine and a fake clock, wired to two scripted peers.
struct Bench {
    engine: Engine,
    now: Instant,
    pbx: SocketAddr,
    carrier: SocketAddr,
    /// Transmissions of the last step: (to, bytes).
    sent: Vec<(SocketAddr, bytes::Bytes)>,
    n: u64,
}

/// The value of the first header line `name: value` in `msg`.
fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.split("\r\n")
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or("")
}

impl Bench {
    fn new() -> Bench {
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/veil-bench.yaml");
        let loaded = match veil::config::load(&cfg) {
            Ok(l) => l,
            Err(e) => panic!("{}: {e:?}", cfg.display()),
        };
        let pbx: SocketAddr = PBX.parse().unwrap();
        let carrier: SocketAddr = CARRIER.parse().unwrap();
        let now = Instant::now();
        let mut config = loaded.config;
        // `ENGINE_LEAK_GUARD=off`: the cost of the leak guard is the difference.
        if std::env::var("ENGINE_LEAK_GUARD").is_ok_and(|v| v == "off") {
            config.sip.leak_guard = false;
        }
        let engine = Engine::new(
            Arc::new(config),
            Arc::new(loaded.policy),
            &[Some(pbx), Some(carrier)],
            Metrics::new("bench").unwrap(),
            now,
            SystemTime::now(),
        );
        Bench {
            engine,
            now,
            pbx,
            carrier,
            sent: Vec::new(),
            n: 0,
        }
    }

    /// Drain the engine's outputs; media closes are answered as the relay would.
    fn drain(&mut self) {
        let mut closed = Vec::new();
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Transmit(t) => self.sent.push((t.flow.remote, t.data)),
                Output::Media(MediaCommand::Close { id }) => closed.push(id),
                Output::Media(_) | Output::Cdr(_) => {}
            }
        }
        for id in closed {
            let ev = MediaEvent::Closed {
                id,
                a_packets: 0,
                b_packets: 0,
            };
            self.engine.handle_input(Input::Media(ev), self.now);
            self.drain();
        }
    }

    fn inject(&mut self, from: SocketAddr, text: &str) {
        let flow = Flow {
            listener: 0,
            transport: Transport::Udp,
            remote: from,
            conn: None,
        };
        let data = text.as_bytes();
        self.engine
            .handle_input(Input::Sip { data, flow }, self.now);
        self.drain();
    }

    /// The last message sent to `to` whose first line starts with `start`.
    fn take(&mut self, to: SocketAddr, start: &str) -> String {
        let found = self
            .sent
            .iter()
            .rev()
            .find(|(a, d)| *a == to && d.starts_with(start.as_bytes()))
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned());
        self.sent.clear();
        found.unwrap_or_else(|| panic!("nothing starting {start:?} sent to {to}"))
    }

    /// A response from the carrier to `req` (leg B), optionally with SDP.
    fn carrier_answer(req: &str, code: &str, sdp: bool) -> String {
        let body = if sdp { SDP_B } else { "" };
        let ctype = if sdp {
            "Content-Type: application/sdp\r\n"
        } else {
            ""
        };
        let to = header(req, "To");
        let to = if to.contains("tag=") {
            to.to_string()
        } else {
            format!("{to};tag=carrier")
        };
        format!(
            "SIP/2.0 {code}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:b@127.0.0.3:15060>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            header(req, "Via"),
            header(req, "From"),
            header(req, "Call-ID"),
            header(req, "CSeq"),
            body.len()
        )
    }

    /// One whole call, then the clock jumps past every transaction timer.
    fn call(&mut self) {
        self.n += 1;
        let n = self.n;
        let (pbx, carrier) = (self.pbx, self.carrier);
        let from = format!("\"Alice\" <sip:alice@127.0.0.2>;tag=a{n}");
        let invite = format!(
            "INVITE sip:0123456@127.0.0.1:15060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:15060;branch=z9hG4bK-i{n}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: bench-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.2:15060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP_A}",
            SDP_A.len()
        );
        self.inject(pbx, &invite);
        let b_invite = self.take(carrier, "INVITE");
        self.inject(
            carrier,
            &Self::carrier_answer(&b_invite, "180 Ringing", false),
        );
        self.inject(carrier, &Self::carrier_answer(&b_invite, "200 OK", true));
        let ok = self.take(pbx, "SIP/2.0 200");
        let to = header(&ok, "To").to_string();
        let in_dialog = |method: &str, cseq: u32| {
            format!(
                "{method} sip:veil@127.0.0.1:15060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:15060;branch=z9hG4bK-{method}{n}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: bench-{n}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
            )
        };
        self.inject(pbx, &in_dialog("ACK", 1));
        self.inject(pbx, &in_dialog("BYE", 2));
        let b_bye = self.take(carrier, "BYE");
        self.inject(carrier, &Self::carrier_answer(&b_bye, "200 OK", false));
        self.now += Duration::from_secs(40);
        while let Some(t) = self.engine.poll_timeout() {
            if t > self.now {
                break;
            }
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.sent.clear();
    }
}

fn bench(c: &mut Criterion) {
    let mut b = Bench::new();
    // `ENGINE_CALLS=N` runs exactly N calls and no measurement: for callgrind, whose
    // instruction counts are exact where wall time on a shared box is not.
    if let Some(n) = std::env::var("ENGINE_CALLS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        for _ in 0..n {
            b.call();
        }
        return;
    }
    // Warm the tables (and prove the script works) before measuring.
    for _ in 0..100 {
        b.call();
    }
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("call", |it| it.iter(|| black_box(&mut b).call()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
