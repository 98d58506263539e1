//! Per-message cost: parse and serialize a realistic INVITE (a PBX's, with SDP).
//! `cargo bench --bench sip_parse`; see docs/performance.md.

use std::hint::black_box;

/// The allocator of the `veil` binary (src/main.rs), so the figures match it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use veil::sip::Message;

const SDP: &str = "v=0\r\no=pbx 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=call\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

fn invite() -> String {
    format!(
        "INVITE sip:+31201234567@sbc.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKnashds8;received=10.0.0.5\r\n\
Max-Forwards: 69\r\n\
From: \"Alice Example\" <sip:+31207654321@pbx.example.com;user=phone>;tag=1928301774\r\n\
To: <sip:+31201234567@sbc.example.net;user=phone>\r\n\
Call-ID: a84b4c76e66710@pbx.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:+31207654321@192.0.2.10:5060;transport=udp>\r\n\
Record-Route: <sip:192.0.2.10;lr;ftag=1928301774>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE, PRACK\r\n\
Supported: replaces, timer, 100rel\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Min-SE: 90\r\n\
P-Asserted-Identity: \"Alice Example\" <sip:+31207654321@pbx.example.com>\r\n\
User-Agent: PBX 12.4\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn bench(c: &mut Criterion) {
    let wire = invite();
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_invite", |b| {
        b.iter(|| Message::parse(black_box(wire.as_bytes())))
    });
    let Ok(Message::Request(req)) = Message::parse(wire.as_bytes()) else {
        panic!("the bench INVITE does not parse");
    };
    g.bench_function("serialize_invite", |b| {
        b.iter(|| black_box(&req).to_bytes())
    });
    g.bench_function("parse_and_serialize_invite", |b| {
        b.iter(|| match Message::parse(black_box(wire.as_bytes())) {
            Ok(Message::Request(r)) => r.to_bytes().len(),
            _ => 0,
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
