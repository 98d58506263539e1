//! Engine scenarios about media: codec policy, RTP inactivity, stream lifetimes. Own small
//! harness (config per test) in the style of `tests.rs`: scripted peers, fake clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Engine, Input, Output};
use crate::config::Transport;
use crate::media::{MediaCommand, MediaEvent, StreamId};
use crate::observe::{CdrEvent, Metrics};
use crate::sip::{HeaderName, Message, Request, Response};
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
    let out = super::tests::response_head(req, code);
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

#[test]
fn dynamic_clock_rates_reach_the_relay_narrowband_ones_do_not() {
    let mut h = Harness::new(&config("", "", ""));
    h.answered(
        "c1",
        &sdp(
            "127.0.0.2",
            6000,
            "111 8 101",
            "a=rtpmap:111 opus/48000/2\r\n",
        ),
        &sdp(
            "127.0.0.3",
            7000,
            "111 101",
            "a=rtpmap:111 opus/48000/2\r\n",
        ),
    );
    let rates: Vec<_> = h
        .media
        .iter()
        .filter_map(|c| match c {
            MediaCommand::SetClockRates { rates, .. } => Some(rates.clone()),
            _ => None,
        })
        .collect();
    // Offer and answer both carry opus (the offer may be anchored more than once).
    assert!(rates.len() >= 2, "{rates:?}");
    assert!(rates.iter().all(|r| r.contains(&(111, 48000))), "{rates:?}");
    assert!(rates[0].contains(&(8, 8000)), "{rates:?}");
    let mut h = Harness::new(&config("", "", ""));
    h.answered(
        "c2",
        &sdp("127.0.0.2", 6000, "9 0 8 101", ""),
        &sdp("127.0.0.3", 7000, "8 101", ""),
    );
    assert!(
        !h.media
            .iter()
            .any(|c| matches!(c, MediaCommand::SetClockRates { .. }))
    );
}

const TIMEOUTS: &str = "  rtp_timeout: 30s\n  hold_timeout: 300s\n";

fn idle_all(h: &mut Harness) {
    for id in h.opened() {
        h.media_event(MediaEvent::Idle { id });
    }
}

fn bye_sent_to_both(h: &mut Harness) -> bool {
    let to_a = h
        .take(PBX)
        .iter()
        .any(|m| matches!(m, Message::Request(r) if r.method.as_str() == "BYE"));
    let to_b = h
        .take(CARRIER)
        .iter()
        .any(|m| matches!(m, Message::Request(r) if r.method.as_str() == "BYE"));
    to_a && to_b
}

#[test]
fn idle_streams_end_an_answered_call_with_rtp_timeout() {
    let mut h = Harness::new(&config(TIMEOUTS, "", ""));
    h.answered(
        "c1",
        &sdp("127.0.0.2", 6000, "8", ""),
        &sdp("127.0.0.3", 7000, "8", ""),
    );
    h.advance(Duration::from_secs(31));
    assert_eq!(h.engine.call_count(), 1, "no Idle report: the call stays");
    idle_all(&mut h);
    assert!(bye_sent_to_both(&mut h));
    assert_eq!(h.engine.call_count(), 0);
    let id = h.opened()[0];
    h.media_event(MediaEvent::Stats {
        id,
        a: crate::media::rtp::DirectionStats {
            packets: 97,
            bytes: 97 * 172,
            lost: 3,
            jitter_us: 4000,
            max_jitter_us: 9000,
        },
        b: Default::default(),
    });
    h.media_event(MediaEvent::Closed {
        id,
        a_packets: 97,
        b_packets: 0,
    });
    let end = h
        .cdr
        .iter()
        .find_map(|c| match c {
            CdrEvent::End {
                end_reason,
                a_packets,
                quality,
                ..
            } => Some((end_reason.clone(), *a_packets, *quality)),
            _ => None,
        })
        .unwrap();
    assert_eq!(end.0, "rtp_timeout");
    assert_eq!(end.1, 97);
    assert_eq!(end.2.a_lost, 3);
    assert_eq!(end.2.a_jitter_us, 4000);
    assert!(
        end.2.a_mos_centi.is_some_and(|m| (380..=440).contains(&m)),
        "{end:?}"
    );
    assert_eq!(end.2.b_mos_centi, None, "B sent nothing");
    let ended = h
        .engine
        .metrics
        .calls_ended
        .with_label_values(&["rtp_timeout"])
        .get();
    assert_eq!(ended, 1);
    assert_eq!(h.engine.metrics.media_quality.packets_lost.get(), 3);
}

#[test]
fn one_active_stream_keeps_the_call() {
    let mut h = Harness::new(&config(TIMEOUTS, "", ""));
    let two = "v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 8\r\nm=video 6002 RTP/AVP 31\r\n";
    h.answered("c1", two, &two.replace("127.0.0.2", "127.0.0.3"));
    let ids = h.opened();
    assert_eq!(ids.len(), 2);
    h.media_event(MediaEvent::Idle { id: ids[0] });
    h.advance(Duration::from_secs(100));
    assert_eq!(h.engine.call_count(), 1);
    // Both idle, then one comes back before the check: still alive.
    h.media_event(MediaEvent::Idle { id: ids[1] });
    assert_eq!(h.engine.call_count(), 0, "both idle ends it");
}

#[test]
fn activity_after_idle_resets() {
    let mut h = Harness::new(&config(TIMEOUTS, "", ""));
    let two = "v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 8\r\nm=video 6002 RTP/AVP 31\r\n";
    h.answered("c1", two, &two.replace("127.0.0.2", "127.0.0.3"));
    let ids = h.opened();
    h.media_event(MediaEvent::Idle { id: ids[0] });
    h.media_event(MediaEvent::Active { id: ids[0] });
    h.media_event(MediaEvent::Idle { id: ids[1] });
    h.advance(Duration::from_secs(100));
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn held_call_gets_the_hold_timeout() {
    let mut h = Harness::new(&config(TIMEOUTS, "", ""));
    let (_, ok) = h.answered(
        "c1",
        &sdp("127.0.0.2", 6000, "8", ""),
        &sdp("127.0.0.3", 7000, "8", ""),
    );
    // A puts B on hold: sendonly offer, recvonly answer.
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog(
            "INVITE",
            &to,
            "c1",
            11,
            &sdp("127.0.0.2", 6000, "8", "a=sendonly\r\n"),
        ),
    );
    let re = h.take_request(CARRIER, "INVITE");
    assert!(
        body(&Message::Request(re.clone())).contains("a=sendonly"),
        "hold passes through"
    );
    h.inject(
        CARRIER,
        &answer(&re, 200, &sdp("127.0.0.3", 7000, "8", "a=recvonly\r\n")),
    );
    let ok2 = h.take_response(PBX, 200);
    assert!(body(&Message::Response(ok2)).contains("a=recvonly"));
    h.take_request(CARRIER, "ACK");
    h.inject(PBX, &in_dialog("ACK", &to, "c1", 11, ""));
    idle_all(&mut h);
    assert_eq!(h.engine.call_count(), 1, "on hold: 30s is not enough");
    h.advance(Duration::from_secs(200));
    assert_eq!(h.engine.call_count(), 1);
    h.advance(Duration::from_secs(80));
    assert_eq!(h.engine.call_count(), 0, "hold_timeout (300s) reached");
    h.advance(Duration::from_secs(3));
    assert_eq!(h.end_reason().as_deref(), Some("rtp_timeout"));
}

#[test]
fn streams_idle_while_ringing_end_the_call_after_answer() {
    let mut h = Harness::new(&config(TIMEOUTS, "", ""));
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "8", "")));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, ""));
    idle_all(&mut h);
    assert_eq!(
        h.engine.call_count(),
        1,
        "unanswered: ringing is not a timeout"
    );
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, &sdp("127.0.0.3", 7000, "8", "")),
    );
    h.advance(Duration::from_secs(29));
    assert_eq!(h.engine.call_count(), 1);
    h.advance(Duration::from_secs(2));
    assert_eq!(
        h.engine.call_count(),
        0,
        "checked rtp_timeout after the answer"
    );
}

/// 10k calls of allocate/answer/idle-timeout/close through the engine: every port back
/// in the pool, no call, stream or closing state left.
#[test]
fn ten_thousand_calls_leave_nothing_behind() {
    let mut h = Harness::new(&config(TIMEOUTS, "", ""));
    for i in 0..10_000 {
        let cid = format!("bulk-{i}");
        h.media.clear();
        h.inject(PBX, &invite(&cid, &sdp("127.0.0.2", 6000, "8", "")));
        let b_inv = h.take_request(CARRIER, "INVITE");
        if i % 3 == 0 {
            // Unanswered: the callee refuses; the offer's streams must be released.
            h.inject(CARRIER, &answer(&b_inv, 486, ""));
        } else {
            h.inject(
                CARRIER,
                &answer(&b_inv, 200, &sdp("127.0.0.3", 7000, "8", "")),
            );
            idle_all(&mut h);
        }
        // The relay confirms every close.
        let closes: Vec<StreamId> = h
            .media
            .iter()
            .filter_map(|c| match c {
                MediaCommand::Close { id } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(closes, h.opened(), "call {i}: every opened stream closed");
        for id in closes {
            h.media_event(MediaEvent::Closed {
                id,
                a_packets: 0,
                b_packets: 0,
            });
        }
        h.sent.clear();
        h.cdr.clear();
    }
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(h.engine.ports.in_use(), 0);
    assert!(h.engine.stream_calls.is_empty());
    assert!(h.engine.closing.is_empty());
    // `veil_media_streams_active` is the relay's (streams with bound sockets): the engine
    // counting them too doubled the gauge.
    assert_eq!(h.engine.metrics.media_streams_active.get(), 0);
}

/// A `required` callee answering 200 without crypto: leg B is ACKed and hung up, the
/// caller gets 488 (not a 200 with a stripped body), the streams are released and the
/// CDR says failed/488.
#[test]
fn required_callee_answering_without_crypto_is_hung_up_and_refused() {
    let mut h = Harness::new(&config("", "", ", srtp: required"));
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "8", "")));
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(body(&Message::Request(b_inv.clone())).contains("RTP/SAVP"));
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, &sdp("127.0.0.3", 7000, "8", "")),
    );
    let to_carrier = h.take(CARRIER);
    let methods: Vec<String> = to_carrier
        .iter()
        .filter_map(|m| match m {
            Message::Request(r) => Some(r.method.as_str().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(methods, ["ACK", "BYE"], "leg B confirmed, then ended");
    let refused = h.take_response(PBX, 488);
    assert!(refused.body.is_empty());
    assert!(h.take(PBX).is_empty(), "no 200 to the caller");
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(h.engine.ports.in_use(), 0);
    h.advance(Duration::from_secs(3));
    let end = h.cdr.iter().find_map(|c| match c {
        CdrEvent::End {
            final_code,
            end_reason,
            ..
        } => Some((*final_code, end_reason.clone())),
        _ => None,
    });
    assert_eq!(end, Some((488, "failed".to_string())));
    let m = &h.engine.metrics;
    assert_eq!(m.calls_total.with_label_values(&["failed"]).get(), 1);
    assert_eq!(m.calls_total.with_label_values(&["answered"]).get(), 0);
    assert_eq!(m.calls_active.get(), 0);
}

/// The same in early media: a 183 without crypto from a `required` callee cancels leg B.
#[test]
fn required_callee_early_media_without_crypto_is_cancelled() {
    let mut h = Harness::new(&config("", "", ", srtp: required"));
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "8", "")));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(
        CARRIER,
        &answer(&b_inv, 183, &sdp("127.0.0.3", 7000, "8", "")),
    );
    h.take_request(CARRIER, "CANCEL");
    h.take_response(PBX, 488);
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(h.engine.ports.in_use(), 0);
    // The callee's 487 (ACKed by the transaction layer) finds no call.
    h.inject(CARRIER, &answer(&b_inv, 487, ""));
    assert!(h.take(PBX).is_empty());
}

/// An `optional` callee may answer plain: the call is answered.
#[test]
fn optional_callee_answering_plain_is_answered() {
    let mut h = Harness::new(&config("", "", ", srtp: optional"));
    let (_, ok) = h.answered(
        "c1",
        &sdp("127.0.0.2", 6000, "8", ""),
        &sdp("127.0.0.3", 7000, "8", ""),
    );
    assert!(body(&Message::Response(ok)).contains("RTP/AVP"));
    assert_eq!(h.engine.call_count(), 1);
}

mod srtp_required;

/// The CNAME of an SDP's `a=ssrc:<n> cname:` line.
fn ssrc_cname(sdp: &str) -> &str {
    sdp.lines()
        .find_map(|l| l.split_once(" cname:").map(|(_, c)| c))
        .unwrap_or_else(|| panic!("no a=ssrc cname in {sdp}"))
}

#[test]
fn the_relay_gets_the_cname_of_each_legs_sdp() {
    let mut h = Harness::new(&config("", "", ""));
    let (b_inv, ok) = h.answered(
        "c1",
        &sdp(
            "127.0.0.2",
            6000,
            "8",
            "a=ssrc:11 cname:sip:alice@127.0.0.2\r\n",
        ),
        &sdp(
            "127.0.0.3",
            7000,
            "8",
            "a=ssrc:22 cname:bob@carrier.example\r\n",
        ),
    );
    let (to_b, to_a) = (body(&Message::Request(b_inv)), body(&Message::Response(ok)));
    let id = h.opened()[0];
    let last = |side: crate::media::Side| {
        h.media
            .iter()
            .rev()
            .find_map(|c| match c {
                MediaCommand::SetCname {
                    id: i,
                    side: s,
                    cname,
                } if *i == id && *s == side => Some(cname.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no SetCname for {side:?}: {:?}", h.media))
    };
    let (a, b) = (last(crate::media::Side::A), last(crate::media::Side::B));
    assert_eq!(b, ssrc_cname(&to_b), "{to_b}");
    assert_eq!(a, ssrc_cname(&to_a), "{to_a}");
    assert_ne!(a, b, "one CNAME per leg");
    // Nothing of the parties' own CNAMEs reaches the relay.
    for c in &h.media {
        if let MediaCommand::SetCname { cname, .. } = c {
            assert!(!cname.contains('@'), "{cname}");
        }
    }
}
