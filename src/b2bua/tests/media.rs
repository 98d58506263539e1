//! Engine scenarios about media: codec policy, RTP inactivity, stream lifetimes, on the
//! engine harness (`harness.rs`) with a config per test.

use std::time::Duration;

use crate::media::{MediaCommand, MediaEvent, StreamId};
use crate::observe::CdrEvent;
use crate::sip::{HeaderName, Message, Request, Response};

const POLICY: &str = r#"
rules:
  - name: out
    when: {from_peer: pbx}
    then: {route: [carrier]}
  - name: in
    when: {from_peer: carrier}
    then: {route: [pbx]}
"#;

use crate::b2bua::harness::{CARRIER, Harness, PBX};
const FROM_A: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";

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
    let out = super::response_head(req, code);
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

/// The one engine harness (`harness.rs`) on a config of this file's two peers.
fn harness(config: &str) -> Harness {
    Harness::with(config, POLICY)
}

/// An answered, confirmed call pbx -> carrier; returns (leg B INVITE, 200 to A).
fn answered(h: &mut Harness, call_id: &str, offer: &str, answer_sdp: &str) -> (Request, Response) {
    h.inject(PBX, &invite(call_id, offer));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 200, answer_sdp));
    let ok = h.take_response(PBX, 200);
    h.take_request(CARRIER, "ACK");
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(PBX, &in_dialog("ACK", &to, call_id, 10, ""));
    (b_inv, ok)
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
    let mut h = harness(&cfg);
    let (b_inv, ok) = answered(
        &mut h,
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
    let mut h = harness(&cfg);
    let (_, ok) = answered(
        &mut h,
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
    let mut h = harness(&cfg);
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "9 0 8 101", "")));
    h.take_response(PBX, 488);
    assert!(
        h.take_messages(CARRIER).is_empty(),
        "no INVITE towards the carrier"
    );
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(h.engine.ports.in_use(), 0);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.end_reason().as_deref(), Some("failed"));
}

#[test]
fn callers_own_list_applies_to_its_offer() {
    let cfg = config("", ", codecs: [G729]", "");
    let mut h = harness(&cfg);
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "0 8", "")));
    h.take_response(PBX, 488);
}

#[test]
fn reinvite_with_nothing_left_gets_488_and_the_call_stays() {
    let cfg = config("", "", ", codecs: [PCMA]");
    let mut h = harness(&cfg);
    let (_, ok) = answered(
        &mut h,
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
    let mut h = harness(&config("", "", ""));
    let (b_inv, _) = answered(
        &mut h,
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
    let mut h = harness(&config("", "", ""));
    answered(
        &mut h,
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
    let mut h = harness(&config("", "", ""));
    answered(
        &mut h,
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
        .take_messages(PBX)
        .iter()
        .any(|m| matches!(m, Message::Request(r) if r.method.as_str() == "BYE"));
    let to_b = h
        .take_messages(CARRIER)
        .iter()
        .any(|m| matches!(m, Message::Request(r) if r.method.as_str() == "BYE"));
    to_a && to_b
}

#[test]
fn idle_streams_end_an_answered_call_with_rtp_timeout() {
    let mut h = harness(&config(TIMEOUTS, "", ""));
    answered(
        &mut h,
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
    let mut h = harness(&config(TIMEOUTS, "", ""));
    let two = "v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 8\r\nm=video 6002 RTP/AVP 31\r\n";
    answered(&mut h, "c1", two, &two.replace("127.0.0.2", "127.0.0.3"));
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
    let mut h = harness(&config(TIMEOUTS, "", ""));
    let two = "v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 8\r\nm=video 6002 RTP/AVP 31\r\n";
    answered(&mut h, "c1", two, &two.replace("127.0.0.2", "127.0.0.3"));
    let ids = h.opened();
    h.media_event(MediaEvent::Idle { id: ids[0] });
    h.media_event(MediaEvent::Active { id: ids[0] });
    h.media_event(MediaEvent::Idle { id: ids[1] });
    h.advance(Duration::from_secs(100));
    assert_eq!(h.engine.call_count(), 1);
}

#[test]
fn held_call_gets_the_hold_timeout() {
    let mut h = harness(&config(TIMEOUTS, "", ""));
    let (_, ok) = answered(
        &mut h,
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
    let mut h = harness(&config(TIMEOUTS, "", ""));
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
    let mut h = harness(&config(TIMEOUTS, "", ""));
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
    let mut h = harness(&config("", "", ", srtp: required"));
    h.inject(PBX, &invite("c1", &sdp("127.0.0.2", 6000, "8", "")));
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(body(&Message::Request(b_inv.clone())).contains("RTP/SAVP"));
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, &sdp("127.0.0.3", 7000, "8", "")),
    );
    let to_carrier = h.take_messages(CARRIER);
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
    assert!(h.take_messages(PBX).is_empty(), "no 200 to the caller");
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
    let mut h = harness(&config("", "", ", srtp: required"));
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
    assert!(h.take_messages(PBX).is_empty());
}

/// An `optional` callee may answer plain: the call is answered.
#[test]
fn optional_callee_answering_plain_is_answered() {
    let mut h = harness(&config("", "", ", srtp: optional"));
    let (_, ok) = answered(
        &mut h,
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
    let mut h = harness(&config("", "", ""));
    let (b_inv, ok) = answered(
        &mut h,
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
