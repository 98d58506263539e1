//! rsip as an oracle: on ordinary well-formed messages veil's own parser must agree with
//! an independent implementation on the fields the engine keys on.

use rsip::prelude::*;
use veil::sip::{Message, SipHeaders, parse::parse_message};

const SDP: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn invite_with_sdp() -> String {
    format!(
        "INVITE sip:bob@127.0.0.1:5070;transport=udp SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK74bf9;rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=9fxced76sl\r\n\
         To: <sip:bob@127.0.0.1:5070>\r\n\
         Call-ID: 3848276298220188511@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:5060>\r\n\
         Supported: timer, 100rel\r\n\
         Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn messages() -> Vec<String> {
    vec![
        invite_with_sdp(),
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK74bf9;received=127.0.0.1;rport=5060\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=9fxced76sl\r\n\
         To: <sip:bob@127.0.0.1:5070>;tag=8321234356\r\n\
         Call-ID: 3848276298220188511@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:bob@127.0.0.1:5070>\r\n\
         Record-Route: <sip:127.0.0.2;lr>\r\n\
         Content-Length: 0\r\n\r\n"
            .into(),
        "SIP/2.0 180 Ringing\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK74bf9\r\n\
         From: <sip:alice@127.0.0.1>;tag=9fxced76sl\r\n\
         To: <sip:bob@127.0.0.1:5070>;tag=8321234356\r\n\
         Call-ID: ring-1@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
            .into(),
        "BYE sip:bob@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKnashds7\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=9fxced76sl\r\n\
         To: <sip:bob@127.0.0.1:5070>;tag=8321234356\r\n\
         Call-ID: 3848276298220188511@127.0.0.1\r\n\
         CSeq: 2 BYE\r\n\
         Content-Length: 0\r\n\r\n"
            .into(),
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKreg1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=r1\r\n\
         To: <sip:alice@127.0.0.1>\r\n\
         Call-ID: reg-1@127.0.0.1\r\n\
         CSeq: 7 REGISTER\r\n\
         Contact: <sip:alice@127.0.0.1:40000>;expires=3600\r\n\
         Expires: 3600\r\n\
         User-Agent: test/1.0\r\n\
         Content-Length: 0\r\n\r\n"
            .into(),
        "ACK sip:bob@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=9fxced76sl\r\n\
         To: <sip:bob@127.0.0.1:5070>;tag=8321234356\r\n\
         Call-ID: 3848276298220188511@127.0.0.1\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
            .into(),
        "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKopt1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=p1\r\n\
         To: <sip:127.0.0.1:5060>\r\n\
         Call-ID: opt-1@127.0.0.1\r\n\
         CSeq: 100 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
            .into(),
    ]
}

#[test]
fn veil_agrees_with_rsip_on_ordinary_messages() {
    for text in messages() {
        let ours = parse_message(text.as_bytes()).unwrap_or_else(|e| panic!("veil: {e:?}\n{text}"));
        let theirs = rsip::SipMessage::try_from(text.as_str())
            .unwrap_or_else(|e| panic!("rsip: {e:?}\n{text}"));

        // veil consumes Content-Length into the body; rsip keeps it as a header.
        let their_count = theirs
            .headers()
            .iter()
            .filter(|h| !matches!(h, rsip::Header::ContentLength(_)))
            .count();
        assert_eq!(ours.headers().0.len(), their_count, "header count\n{text}");
        assert_eq!(
            ours.headers().get(&veil::sip::HeaderName::CallId),
            Some(theirs.call_id_header().unwrap().value())
        );
        assert_eq!(&ours_body(&ours)[..], &theirs.body()[..]);

        let their_cseq = theirs.cseq_header().unwrap().typed().unwrap();
        match (&ours, &theirs) {
            (Message::Request(r), rsip::SipMessage::Request(t)) => {
                assert_eq!(r.method.as_str(), t.method.to_string());
                // rsip upper-cases `transport=` values; URI comparison ignores their case
                // anyway (RFC 3261 §19.1.4).
                let (a, b) = (r.uri.to_string(), t.uri.to_string());
                assert!(a.eq_ignore_ascii_case(&b), "request-URI {a} vs {b}");
                let c = r.cseq().unwrap();
                assert_eq!(
                    (c.seq, c.method.to_string()),
                    (their_cseq.seq, their_cseq.method.to_string())
                );
            }
            (Message::Response(r), rsip::SipMessage::Response(t)) => {
                assert_eq!(r.code, t.status_code.code());
                let c = r.cseq().unwrap();
                assert_eq!(
                    (c.seq, c.method.to_string()),
                    (their_cseq.seq, their_cseq.method.to_string())
                );
            }
            _ => panic!("request/response disagreement\n{text}"),
        }
    }
}

fn ours_body(m: &Message) -> bytes::Bytes {
    match m {
        Message::Request(r) => r.body.clone(),
        Message::Response(r) => r.body.clone(),
    }
}

/// Our serialization must also be acceptable to the oracle.
#[test]
fn rsip_accepts_what_veil_writes() {
    for text in messages() {
        let wire = match parse_message(text.as_bytes()).unwrap() {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        };
        let theirs = rsip::SipMessage::try_from(&wire[..]).unwrap();
        let original = rsip::SipMessage::try_from(text.as_str()).unwrap();
        assert_eq!(
            theirs.call_id_header().unwrap().value(),
            original.call_id_header().unwrap().value()
        );
        assert_eq!(theirs.body(), original.body());
    }
}
