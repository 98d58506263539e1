//! Calls that are not answered: cancelled while ringing, busy, failed over, refused. The
//! final response must reach the caller, nothing may leak, and the CDR/metrics say why.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::leak::assert_not_received;
use common::trace::Direction;
use common::{Lab, Setup, Side, assert_all_succeeded, assert_no_leaks};

/// Binds a plain socket where a peer would listen, to prove veil sends it nothing.
fn silent_peer(lab: &Lab, side: Side) -> UdpSocket {
    let s = UdpSocket::bind(lab.ports.sip_addr(side)).expect("bind silent peer");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s
}

fn assert_silent(s: &UdpSocket, side: Side) {
    let mut buf = [0u8; 65535];
    if let Ok((n, from)) = s.recv_from(&mut buf) {
        panic!(
            "the {} should have received nothing, got from {from}:\n{}",
            side.label(),
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[test]
fn cancel_while_ringing() {
    let lab = Lab::start(10, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_ring_cancel.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_cancel.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &callee]);
    assert_no_leaks(&[&caller, &callee]);
    assert_eq!(
        callee.received_requests("CANCEL").len(),
        1,
        "the CANCEL must be passed on:\n{}",
        callee.report()
    );
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "487");
    cdr.assert_eq("end_reason", "cancelled");
    cdr.assert_null("answered_at");
    lab.metrics()
        .assert_at_least("veil_calls_total", &[("outcome", "cancelled")], 1.0);
}

#[test]
fn busy_486_is_passed_back() {
    let lab = Lab::start(11, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_486.xml").spawn();
    let caller = lab.sipp(Side::Pbx, "uac_busy.xml").to(lab.veil_sip()).run();
    let callee = callee.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &callee]);
    assert_no_leaks(&[&caller, &callee]);
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "486");
    cdr.assert_eq("end_reason", "failed");
    cdr.assert_eq("dest_peer", "carrier");
    cdr.assert_null("answered_at");
    lab.metrics()
        .assert_at_least("veil_calls_total", &[("outcome", "failed")], 1.0);
}

#[test]
fn failover_from_503_to_backup_carrier() {
    let lab = Lab::start(12, &Setup::failover());
    let first = lab.sipp(Side::Carrier, "uas_503.xml").spawn();
    let backup = lab.sipp(Side::Backup, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let first = first.wait(Duration::from_secs(10));
    let backup = backup.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &first, &backup]);
    assert_no_leaks(&[&caller, &first, &backup]);
    common::assert_sdp_anchored(&caller, &lab.ports);
    common::assert_sdp_anchored(&backup, &lab.ports);
    assert!(
        !caller.received().any(|m| m.status() == Some(503)),
        "the 503 of the first carrier must not reach the PBX:\n{}",
        caller.report()
    );
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "200");
    cdr.assert_eq("dest_peer", "carrier-b");
    cdr.assert_eq("end_reason", "caller_bye");
    cdr.assert_eq("b_call_id", &backup.first_call_id(Direction::Received));
    lab.metrics()
        .assert_at_least("veil_calls_total", &[("outcome", "answered")], 1.0);
}

#[test]
fn untrusted_source_gets_403() {
    let lab = Lab::start(13, &Setup::without_default_rule());
    let carrier = silent_peer(&lab, Side::Carrier);
    let caller = lab
        .sipp(Side::Outsider, "uac_forbidden.xml")
        .to(lab.veil_sip())
        .run();
    assert_all_succeeded(&[&caller]);
    assert_not_received(
        &caller,
        &[
            ("127.0.0.2", "pbx IP address"),
            ("127.0.0.3", "carrier IP address"),
        ],
    );
    assert_silent(&carrier, Side::Carrier);
    lab.metrics()
        .assert_at_least("veil_sip_responses_sent_total", &[("code", "403")], 1.0);
}

#[test]
fn number_outside_policy_is_rejected_with_403() {
    let lab = Lab::start(14, &Setup::standard());
    let carrier = silent_peer(&lab, Side::Carrier);
    // "0" does not match the E.164 rule, so the default-deny rule answers.
    let caller = lab
        .sipp(Side::Pbx, "uac_forbidden.xml")
        .service("0")
        .to(lab.veil_sip())
        .run();
    assert_all_succeeded(&[&caller]);
    assert_not_received(&caller, &[("127.0.0.3", "carrier IP address")]);
    assert_silent(&carrier, Side::Carrier);
    lab.metrics()
        .assert_at_least("veil_calls_total", &[("outcome", "rejected")], 1.0);
}
