//! Engine scenarios about media: codec policy, RTP inactivity, stream lifetimes. Own small
//! harness (config per test) in the style of `tests.rs`: scripted peers, fake clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Engine, Input, Output};
use crate::config::Transport;
use crate::media::{MediaCommand, MediaEvent, StreamId};
use crate::observe::{CdrEvent, Metrics};
use crate::sip::{HeaderName, Message, Request, Response, SipHeaders};
use crate::transaction::Flow;

const POLICY: &str = r#"
rules:
  - name: out
    when: {from_peer: pbx}
    then: {route: [carrier]}
  - name: in
    when: {from_peer: carrier}
    then: {route: [pbx]}
"#;

const PBX: &str = "127.0.0.2:5060";
const CARRIER: &str = "127.0.0.3:5060";
const FROM_A: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";

struct Harness {
    engine: Engine,
    now: Instant,
    sent: Vec<(SocketAddr, Message)>,
    media: Vec<MediaCommand>,
    cdr: Vec<CdrEvent>,
    _dir: tempfile::TempDir,
}

/// `media` is the YAML of the media section's extra keys, `pbx`/`carrier` extra peer keys.
fn config(media: &str, pbx: &str, carrier: &str) -> String {
    format!(
        "instance: test\nsip:\n  listen:\n    - {{name: public, transport: udp, address: 127.0.0.1:5060}}\n\
         media:\n  address: 127.0.0.1\n  ports: 30000-30099\n{media}\
         peers:\n  - {{name: pbx, address: 127.0.0.2:5060, trusted: true, sources: [127.0.0.2/32]{pbx}}}\n\
         \x20 - {{name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32]{carrier}}}\n\
         policy: policy.yaml\n"
    )
}

fn sdp(ip: &str, port: u16, fmts: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {fmts}\r\n\
         a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n{extra}"
    )
}

fn with_body(head: String, body: &str) -> String {
    if body.is_empty() {
        return head + "Content-Length: 0\r\n\r\n";
    }
    format!(
        "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn invite(call_id: &str, body: &str) -> String {
    with_body(
        format!(
            "INVITE sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: {FROM_A}\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
             CSeq: 10 INVITE\r\nContact: <sip:alice@127.0.0.2:5060>\r\n"
        ),
        body,
    )
}

fn answer(req: &Request, code: u16, body: &str) -> String {
    let mut out = format!("SIP/2.0 {code} X\r\n");
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
    with_body(out, body)
}

fn in_dialog(method: &str, to_hdr: &str, call_id: &str, cseq: u32, body: &str) -> String {
    with_body(
        format!(
            "{method} sip:veil@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{method}{cseq}{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: {FROM_A}\r\nTo: {to_hdr}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        ),
        body,
    )
}

impl Harness {
    fn new(config: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("veil.yaml"), config).unwrap();
        std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
        let loaded = match crate::config::load(&dir.path().join("veil.yaml")) {
            Ok(l) => l,
            Err(e) => panic!("config: {e:?}"),
        };
        let resolved: Vec<Option<SocketAddr>> = [PBX, CARRIER]
            .iter()
            .map(|a| Some(a.parse().unwrap()))
            .collect();
        let now = Instant::now();
        let engine = Engine::new(
            Arc::new(loaded.config),
            Arc::new(loaded.policy),
            &resolved,
            Metrics::new("test").unwrap(),
            now,
            SystemTime::now(),
        );
        Harness {
            engine,
            now,
            sent: Vec::new(),
            media: Vec::new(),
            cdr: Vec::new(),
            _dir: dir,
        }
    }

    fn collect(&mut self) {
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Transmit(t) => {
                    let msg = Message::parse(&t.data).unwrap();
                    self.sent.push((t.flow.remote, msg));
                }
                Output::Media(m) => self.media.push(m),
                Output::Cdr(c) => self.cdr.push(c),
            }
        }
    }

    fn inject(&mut self, from: &str, text: &str) {
        let flow = Flow {
            listener: 0,
            transport: Transport::Udp,
            remote: from.parse().unwrap(),
            conn: None,
        };
        let data = text.as_bytes();
        self.engine
            .handle_input(Input::Sip { data, flow }, self.now);
        self.collect();
    }

    fn media_event(&mut self, ev: MediaEvent) {
        self.engine.handle_input(Input::Media(ev), self.now);
        self.collect();
    }

    fn advance(&mut self, d: Duration) {
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

    fn take(&mut self, to: &str) -> Vec<Message> {
        let addr: SocketAddr = to.parse().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|(a, _)| *a == addr);
        self.sent = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    fn take_request(&mut self, to: &str, method: &str) -> Request {
        self.take(to)
            .into_iter()
            .find_map(|m| match m {
                Message::Request(r) if r.method.as_str() == method => Some(r),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {method} to {to}"))
    }

    fn take_response(&mut self, to: &str, code: u16) -> Response {
        let got = self.take(to);
        let codes: Vec<u16> = got
            .iter()
            .filter_map(|m| match m {
                Message::Response(r) => Some(r.code),
                _ => None,
            })
            .collect();
        got.into_iter()
            .find_map(|m| match m {
                Message::Response(r) if r.code == code => Some(r),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {code} to {to}; got {codes:?}"))
    }

    /// An answered, confirmed call pbx -> carrier; returns (leg B INVITE, 200 to A).
    fn answered(&mut self, call_id: &str, offer: &str, answer_sdp: &str) -> (Request, Response) {
        self.inject(PBX, &invite(call_id, offer));
        let b_inv = self.take_request(CARRIER, "INVITE");
        self.inject(CARRIER, &answer(&b_inv, 200, answer_sdp));
        let ok = self.take_response(PBX, 200);
        self.take_request(CARRIER, "ACK");
        let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
        self.inject(PBX, &in_dialog("ACK", &to, call_id, 10, ""));
        (b_inv, ok)
    }

    fn opened(&self) -> Vec<StreamId> {
        self.media
            .iter()
            .filter_map(|c| match c {
                MediaCommand::Open { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn end_reason(&self) -> Option<String> {
        self.cdr.iter().find_map(|c| match c {
            CdrEvent::End { end_reason, .. } => Some(end_reason.clone()),
            _ => None,
        })
    }
}

fn body(m: &Message) -> String {
    let b = match m {
        Message::Request(r) => &r.body,
        Message::Response(r) => &r.body,
    };
    String::from_utf8(b.to_vec()).unwrap()
}

fn m_line(text: &str) -> &str {
    text.lines().find(|l| l.starts_with("m=")).unwrap()
}

#[test]
fn offer_towards_a_restricted_peer_keeps_only_its_codecs_in_its_order() {
    let cfg = config("", "", ", codecs: [PCMA, PCMU, telephone-event]");
    let mut h = Harness::new(&cfg);
    let (b_inv, ok) = h.answered(
        "c1",
        &sdp("127.0.0.2", 6000, "9 0 8 101", ""),
        &sdp("127.0.0.3", 7000, "8 101", ""),
    );
    let offer = body(&Message::Request(b_inv));
    assert!(m_line(&offer).ends_with("RTP/AVP 8 0 101"), "{offer}");
    assert!(!offer.contains("G722"));
    assert!(offer.contains("a=fmtp:101 0-15"));
    let back = body(&Message::Response(ok));
    assert!(m_line(&back).ends_with("RTP/AVP 8 101"), "{back}");
}

#[test]
fn answer_back_from_a_restricted_peer_is_filtered_too() {
    // The carrier answers with a codec its own allow-list forbids (a broken peer).
    let cfg = config("", "", ", codecs: [PCMA, telephone-event]");
    let mut h = Harness::new(&cfg);
    let (_, ok) = h.answered(
        "c1",
        &sdp("127.0.0.2", 6000, "9 8 101", ""),
        &sdp("127.0.0.3", 7000, "9 8 101", ""),
    );
    let back = body(&Message::Response(ok));
    assert!(m_line(&back).ends_with("RTP/AVP 8 101"), "{back}");
    assert!(!back.contains("G722"));
}

#[test]
fn nothing_left_gets_488_and_no_ports_stay_allocated() {
    let cfg = config("", "", ", codecs: [G729, telephone-event]");
    let mut h = Harness::new(&cfg);
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "9 0 8 101", "")));
    h.take_response(PBX, 488);
    assert!(h.take(CARRIER).is_empty(), "no INVITE towards the carrier");
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(h.engine.ports.in_use(), 0);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.end_reason().as_deref(), Some("failed"));
}

#[test]
fn callers_own_list_applies_to_its_offer() {
    let cfg = config("", ", codecs: [G729]", "");
    let mut h = Harness::new(&cfg);
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "0 8", "")));
    h.take_response(PBX, 488);
}

#[test]
fn reinvite_with_nothing_left_gets_488_and_the_call_stays() {
    let cfg = config("", "", ", codecs: [PCMA]");
    let mut h = Harness::new(&cfg);
    let (_, ok) = h.answered(
        "c1",
        &sdp("127.0.0.2", 6000, "8", ""),
        &sdp("127.0.0.3", 7000, "8", ""),
    );
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("INVITE", &to, "c1", 11, &sdp("127.0.0.2", 6000, "0", "")),
    );
    h.take_response(PBX, 488);
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn no_allow_list_changes_nothing() {
    let mut h = Harness::new(&config("", "", ""));
    let (b_inv, _) = h.answered(
        "c1",
        &sdp("127.0.0.2", 6000, "9 0 8 101", ""),
        &sdp("127.0.0.3", 7000, "8 101", ""),
    );
    let offer = body(&Message::Request(b_inv));
    assert!(m_line(&offer).ends_with("RTP/AVP 9 0 8 101"));
    assert_eq!(h.opened().len(), 1);
}
