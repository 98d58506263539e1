//! Call flows of issue 14 through the binary: CANCEL once leg B has said only 100 Trying,
//! hold by c=0.0.0.0, malformed ACKs dropped unanswered.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::trace::Direction;
use common::{Lab, Setup, Side, assert_all_succeeded, assert_no_leaks};

/// RFC 3261 §9.1: any provisional response, 100 included, lets veil pass the caller's
/// CANCEL on. The callee never rings; without the fix it never sees a CANCEL.
#[test]
fn cancel_after_only_100_trying_reaches_the_callee() {
    let lab = Lab::start(93, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_trying_cancel.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_cancel_trying.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &callee]);
    assert_no_leaks(&[&caller, &callee]);
    assert_eq!(
        callee.received_requests("CANCEL").len(),
        1,
        "the CANCEL must be passed on after a 100:\n{}",
        callee.report()
    );
    assert!(
        !caller.received().any(|m| m.status() == Some(180)),
        "nothing rang"
    );
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "487");
    cdr.assert_eq("end_reason", "cancelled");
    cdr.assert_null("answered_at");
}

/// An ACK never gets a response (RFC 3261 §17): a malformed one is counted and dropped.
#[test]
fn malformed_acks_are_dropped_unanswered() {
    let lab = Lab::start(94, &Setup::standard());
    let sock = UdpSocket::bind((Side::Pbx.ip(), 0)).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let local = sock.local_addr().expect("local addr").to_string();
    let veil = lab.veil_sip();
    let acks = [
        // Parses, fails the sanity checks: no Call-ID.
        format!(
            "ACK sip:4930123456@{veil} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKbadack1\r\n\
             From: <sip:1001@127.0.0.2>;tag=a1\r\nTo: <sip:4930123456@{veil}>;tag=b1\r\n\
             CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ),
        // Does not parse: a broken header line and a Content-Length beyond the datagram.
        format!(
            "ACK sip:4930123456@{veil} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKbadack2\r\n\
             From <broken\r\nCall-ID: badack2@127.0.0.2\r\nCSeq: x ACK\r\nContent-Length: 999\r\n\r\n"
        ),
    ];
    for ack in &acks {
        sock.send_to(ack.as_bytes(), veil).expect("send");
        let mut buf = [0u8; 65535];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            panic!(
                "veil answered an ACK:\n{ack}\nwith:\n{}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }
    lab.metrics()
        .assert_at_least("veil_sip_invalid_messages_total", &[], 2.0);
}

/// A `c=0.0.0.0` hold reaches the callee as veil's address with `a=sendonly` (its scenario
/// checks the body) and a new o= version; the recvonly answer gets back to the caller.
#[test]
fn zero_address_hold_reaches_the_callee_as_sendonly() {
    let lab = Lab::start(95, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_held.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_hold_zero.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let invites = callee.received_requests("INVITE");
    assert!(invites.len() >= 2, "{}", callee.report());
    let version = |body: &str| -> u64 {
        body.lines()
            .find(|l| l.starts_with("o="))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .expect("o= version")
    };
    let (first, held) = (invites[0].body(), invites[invites.len() - 1].body());
    assert!(held.contains("a=sendonly"), "{held}");
    assert!(!held.contains("0.0.0.0"), "{held}");
    assert_eq!(version(held), version(first) + 1, "{held}");
}
