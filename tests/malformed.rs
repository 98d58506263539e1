//! Robustness at the edge: OPTIONS is answered, and garbage or broken SIP is answered with
//! 400 or dropped, never forwarded, never fatal; a good call still works afterwards.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::leak::assert_not_received;
use common::{Lab, Setup, Side, assert_all_succeeded};

#[test]
fn options_is_answered_200() {
    let lab = Lab::start(20, &Setup::standard());
    let pinger = lab
        .sipp(Side::Pbx, "uac_options.xml")
        .to(lab.veil_sip())
        .run();
    assert_all_succeeded(&[&pinger]);
    assert_not_received(&pinger, &[("127.0.0.3", "carrier IP address")]);
    lab.metrics().assert_at_least(
        "veil_sip_requests_received_total",
        &[("method", "OPTIONS")],
        1.0,
    );
}

/// Datagrams that are not acceptable SIP, each with what it tests.
fn bad_datagrams(veil: &str, local: &str) -> Vec<(&'static str, Vec<u8>)> {
    let head = |n: u32, cl: &str| {
        format!(
            "INVITE sip:4930123456@{veil} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKmalformed{n};rport\r\n\
             From: <sip:1001@127.0.0.2>;tag=mal{n}\r\n\
             To: <sip:4930123456@{veil}>\r\n\
             Call-ID: malformed-{n}@127.0.0.2\r\n\
             CSeq: 1 INVITE\r\n\
             Max-Forwards: 70\r\n\
             Contact: <sip:1001@{local}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {cl}\r\n"
        )
    };
    let sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0\r\n";
    vec![
        ("binary garbage", vec![0x00, 0xff, 0x13, 0x37, 0x80, 0x00, 0x0d, 0x0a, 0xfe]),
        ("text that is not SIP", b"hello veil, this is not SIP\r\n\r\n".to_vec()),
        ("headers without the blank line", head(1, "0").into_bytes()),
        ("Content-Length larger than the datagram", format!("{}\r\n{sdp}", head(2, "900")).into_bytes()),
        ("non-numeric Content-Length", format!("{}\r\n{sdp}", head(3, "abc")).into_bytes()),
        (
            "request without Call-ID and CSeq",
            format!(
                "INVITE sip:4930123456@{veil} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKmalformed4\r\n\
                 From: <sip:1001@127.0.0.2>;tag=mal4\r\nTo: <sip:4930123456@{veil}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        ),
        ("a start line with a bad SIP version", format!("INVITE sip:4930123456@{veil} SIP/7.0\r\n\r\n").into_bytes()),
    ]
}

#[test]
fn malformed_messages_are_rejected_or_dropped_then_calls_work() {
    let mut lab = Lab::start(21, &Setup::standard());
    // Nothing of the junk may be forwarded to the carrier.
    let carrier = UdpSocket::bind(lab.ports.sip_addr(Side::Carrier)).expect("bind carrier watcher");
    carrier
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let sock = UdpSocket::bind((Side::Pbx.ip(), 0)).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let local = sock.local_addr().expect("local addr").to_string();
    let veil = lab.veil_sip();
    for (what, datagram) in bad_datagrams(&veil.to_string(), &local) {
        sock.send_to(&datagram, veil).expect("send");
        let mut buf = [0u8; 65535];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let reply = String::from_utf8_lossy(&buf[..n]);
            assert!(
                reply.starts_with("SIP/2.0 400"),
                "for {what}, veil must answer 400 or nothing, it answered:\n{reply}"
            );
        }
        assert!(
            lab.veil_mut().is_running(),
            "veil died after receiving {what}"
        );
    }
    let mut buf = [0u8; 65535];
    if let Ok((n, _)) = carrier.recv_from(&mut buf) {
        panic!(
            "veil forwarded a malformed message to the carrier:\n{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    drop(carrier);
    lab.metrics()
        .assert_at_least("veil_sip_invalid_messages_total", &[], 1.0);

    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab.sipp(Side::Pbx, "uac_basic.xml").to(veil).run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}
