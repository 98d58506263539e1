//! The in-memory harness of the engine tests: scripted peers (PBX at 127.0.0.2, carrier
//! at 127.0.0.3, backup at 127.0.0.4) wired to an [`Engine`] without sockets, the clock
//! advanced by the caller. Built for the unit tests and, with feature `testkit`, for the
//! fuzz crate (`fuzz/fuzz_targets/engine_call.rs`), so both drive the same engine setup.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Engine, Input, Output};
use crate::config::{Config, Transport};
use crate::media::MediaCommand;
use crate::observe::{CdrEvent, Metrics};
use crate::policy::Policy;
use crate::sip::{HeaderName, Message, Request, Response, SipHeaders};
use crate::transaction::Flow;

pub const CONFIG: &str = r#"
instance: test
sip:
  listen:
    - {name: public, transport: udp, address: 127.0.0.1:5060}
media:
  address: 127.0.0.1
  ports: 30000-30099
peers:
  - {name: pbx, address: 127.0.0.2:5060, trusted: true, sources: [127.0.0.2/32]}
  - {name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32]}
  - {name: backup, address: 127.0.0.4:5060, sources: [127.0.0.4/32]}
policy: policy.yaml
"#;

pub const POLICY: &str = r#"
rules:
  - name: out
    when: {from_peer: pbx, to_user: '^[0-9]+$'}
    then: {route: [carrier, backup]}
  - name: in
    when: {from_peer: [carrier, backup]}
    then: {route: [pbx]}
  - name: deny
    then: {reject: 403}
"#;

pub const PBX: &str = "127.0.0.2:5060";
pub const CARRIER: &str = "127.0.0.3:5060";
pub const BACKUP: &str = "127.0.0.4:5060";

pub struct Harness {
    pub engine: Engine,
    pub now: Instant,
    pub sent: Vec<(SocketAddr, Message, String)>,
    pub media: Vec<MediaCommand>,
    pub cdr: Vec<CdrEvent>,
    /// Unless set, the harness fails a test in which the leak guard found anything: in
    /// a normal call a hit is a false positive (or a real leak veil itself wrote).
    pub allow_leak_hits: bool,
    /// Where `with` wrote the config files (reload tests write theirs next to them).
    dir: Option<tempfile::TempDir>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.allow_leak_hits || std::thread::panicking() {
            return;
        }
        for k in super::leak_guard::Kind::ALL {
            let n = self
                .engine
                .metrics
                .leak_guard_hits
                .with_label_values(&[k.as_str()])
                .get();
            assert_eq!(n, 0, "leak guard hits of kind {}", k.as_str());
        }
    }
}

pub fn offer_sdp(ip: &str, port: u16, user: &str) -> String {
    format!(
        "v=0\r\no={user} 1 1 IN IP4 {ip}\r\ns=Secret PBX\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(CONFIG, POLICY)
    }

    pub fn with_config(config: &str) -> Harness {
        Harness::with(config, POLICY)
    }

    /// The engine of config YAML `config` and policy YAML `policy`, loaded from a temp dir.
    pub fn with(config: &str, policy: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("veil.yaml"), config).unwrap();
        std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
        let loaded = match crate::config::load(&dir.path().join("veil.yaml")) {
            Ok(l) => l,
            Err(e) => panic!("config: {e:?}"),
        };
        let mut h = Harness::from_loaded(Arc::new(loaded.config), Arc::new(loaded.policy));
        h.dir = Some(dir);
        h
    }

    /// An engine of an already loaded config (no files: the fuzz target loads once and
    /// builds one harness per input). `cfg.peers` are resolved to PBX, CARRIER, BACKUP.
    pub fn from_loaded(cfg: Arc<Config>, policy: Arc<Policy>) -> Harness {
        Harness::with_metrics(cfg, policy, Metrics::new("test").unwrap())
    }

    /// [`Harness::from_loaded`] counting into `metrics`: building the registry is most
    /// of an engine's setup, so the fuzz target builds it once and shares it between
    /// inputs (its counters then only grow; it compares the leak guard's before/after).
    pub fn with_metrics(cfg: Arc<Config>, policy: Arc<Policy>, metrics: Metrics) -> Harness {
        let resolved: Vec<Option<SocketAddr>> = [PBX, CARRIER, BACKUP]
            .iter()
            .map(|a| Some(a.parse().unwrap()))
            .collect();
        let now = Instant::now();
        let engine = Engine::new(cfg, policy, &resolved, metrics, now, SystemTime::now());
        Harness {
            engine,
            now,
            sent: Vec::new(),
            media: Vec::new(),
            cdr: Vec::new(),
            allow_leak_hits: false,
            dir: None,
        }
    }

    /// The temp dir of the config files (harnesses built by [`Harness::with`] only).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("harness built from files").path()
    }

    /// `veil_leak_guard_hits_total`, all kinds together.
    pub fn leak_hits(&self) -> u64 {
        super::leak_guard::Kind::ALL
            .iter()
            .map(|k| {
                self.engine
                    .metrics
                    .leak_guard_hits
                    .with_label_values(&[k.as_str()])
                    .get()
            })
            .sum()
    }

    /// Every identifier the leak guard holds for either leg of any call in memory.
    pub fn leak_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for call in self.engine.calls.values() {
            for leg in [&call.leak.a, &call.leak.b] {
                out.extend(leg.values().map(str::to_string));
            }
        }
        out
    }

    /// Relay ports held by calls (and lingering after them).
    pub fn ports_in_use(&self) -> usize {
        self.engine.ports.in_use()
    }

    pub fn collect(&mut self) {
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Transmit(t) => {
                    let text = String::from_utf8_lossy(&t.data).to_string();
                    let msg = Message::parse(&t.data)
                        .unwrap_or_else(|e| panic!("veil sent unparsable {e}: {text}"));
                    self.sent.push((t.flow.remote, msg, text));
                }
                Output::Media(m) => self.media.push(m),
                Output::Cdr(c) => self.cdr.push(c),
            }
        }
    }

    pub fn inject(&mut self, from: &str, text: &str) {
        self.inject_bytes(from.parse().unwrap(), text.as_bytes());
    }

    /// One datagram from `from` over UDP listener 0, whatever its bytes.
    pub fn inject_bytes(&mut self, from: SocketAddr, data: &[u8]) {
        let flow = Flow {
            listener: 0,
            transport: Transport::Udp,
            remote: from,
            conn: None,
        };
        self.engine
            .handle_input(Input::Sip { data, flow }, self.now);
        self.collect();
    }

    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.engine.poll_timeout() {
            if t > end {
                break;
            }
            self.now = t.max(self.now);
            self.engine.handle_timeout(self.now);
            self.collect();
        }
        self.now = end;
    }

    /// Everything sent to `to` since the last call, oldest first.
    pub fn take(&mut self, to: &str) -> Vec<(Message, String)> {
        let addr: SocketAddr = to.parse().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|(a, _, _)| *a == addr);
        self.sent = rest;
        mine.into_iter().map(|(_, m, t)| (m, t)).collect()
    }

    /// [`Self::take`] without the texts.
    pub fn take_messages(&mut self, to: &str) -> Vec<Message> {
        self.take(to).into_iter().map(|(m, _)| m).collect()
    }

    /// One event of the relay's (a stream idle, active, closed, its statistics).
    pub fn media_event(&mut self, ev: crate::media::MediaEvent) {
        self.engine.handle_input(Input::Media(ev), self.now);
        self.collect();
    }

    /// Streams the engine asked the relay to open, in order.
    pub fn opened(&self) -> Vec<crate::media::StreamId> {
        self.media
            .iter()
            .filter_map(|c| match c {
                MediaCommand::Open { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// The `end_reason` of the first CDR end row.
    pub fn end_reason(&self) -> Option<String> {
        self.cdr.iter().find_map(|c| match c {
            CdrEvent::End { end_reason, .. } => Some(end_reason.clone()),
            _ => None,
        })
    }

    pub fn take_request(&mut self, to: &str, method: &str) -> Request {
        let got = self.take(to);
        got.iter()
            .find_map(|(m, _)| match m {
                Message::Request(r) if r.method.as_str() == method => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {method} sent to {to}; got {:?}",
                    got.iter()
                        .map(|g| g.1.lines().next().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                )
            })
    }

    pub fn take_response(&mut self, to: &str, code: u16) -> Response {
        let got = self.take(to);
        got.iter()
            .find_map(|(m, _)| match m {
                Message::Response(r) if r.code == code => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {code} sent to {to}; got {:?}",
                    got.iter()
                        .map(|g| g.1.lines().next().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                )
            })
    }
}

pub fn invite_from_pbx(call_id: &str, user: &str) -> String {
    let sdp = offer_sdp("127.0.0.2", 6000, "pbxsecret");
    format!(
        "INVITE sip:{user}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbx{call_id}\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@127.0.0.2:5060>\r\nRecord-Route: <sip:127.0.0.2;lr>\r\nUser-Agent: PBX-Internal\r\nX-Secret: topology\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Status line and dialog headers of the callee's response to `req`: Via and From echoed,
/// the callee's tag added to To, Call-ID and CSeq echoed, the callee's Contact.
pub fn response_head(req: &Request, code: u16) -> String {
    let mut out = format!("SIP/2.0 {code} Whatever\r\n");
    for name in [HeaderName::Via, HeaderName::From] {
        for v in req.headers.get_all(&name) {
            out.push_str(&format!("{}: {v}\r\n", name.as_str()));
        }
    }
    let to = req.headers.get(&HeaderName::To).unwrap();
    if to.contains("tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag=carriertag\r\n"));
    }
    out.push_str(&format!(
        "Call-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@127.0.0.3:5060>\r\n",
        req.call_id().unwrap(),
        req.headers.get(&HeaderName::CSeq).unwrap()
    ));
    out
}

/// A response from the callee to a request veil sent, with its own tag, Contact and SDP.
pub fn answer(req: &Request, code: u16, sdp: bool) -> String {
    let mut out = response_head(req, code);
    out.push_str("Record-Route: <sip:127.0.0.3;lr>\r\nServer: Carrier-Switch 9\r\n");
    if sdp {
        let body = offer_sdp("127.0.0.3", 7000, "carriersecret");
        out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        out.push_str("Content-Length: 0\r\n\r\n");
    }
    out
}

/// An in-dialog request from the side that received `resp_to` (its dialog identifiers).
pub fn in_dialog(
    method: &str,
    from_hdr: &str,
    to_hdr: &str,
    call_id: &str,
    cseq: u32,
    via_host: &str,
) -> String {
    format!(
        "{method} sip:veil@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK{method}{cseq}{call_id}\r\nMax-Forwards: 70\r\nFrom: {from_hdr}\r\nTo: {to_hdr}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}
