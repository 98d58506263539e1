//! Answered calls through veil: both directions, either side hanging up, over UDP and TCP,
//! and a mid-call re-INVITE. Every test checks the SIPp outcome on both sides, that neither
//! side received anything identifying the other, that SDP points at veil's relay, the CDR
//! row and the call metrics.

mod common;

use std::time::Duration;

use common::trace::Direction;
use common::{Lab, Setup, Side};

#[test]
fn udp_call_pbx_to_carrier_caller_hangs_up() {
    let lab = Lab::start(1, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
}

#[test]
fn udp_call_carrier_to_pbx() {
    let lab = Lab::start(2, &Setup::standard());
    let callee = lab.sipp(Side::Pbx, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Carrier, "uac_basic.xml")
        .service("1001")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let invite = callee.received_requests("INVITE");
    assert!(
        invite
            .first()
            .is_some_and(|m| m.first_line().starts_with("INVITE sip:1001@")),
        "the PBX should be called at the dialled user: {}",
        callee.report()
    );
}

#[test]
fn callee_hangs_up() {
    let lab = Lab::start(3, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_bye.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_wait_bye.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "callee_bye");
    // The BYE reaching the PBX belongs to the PBX's own dialog.
    let pbx_call_id = caller.first_call_id(Direction::Sent);
    let bye = caller.received_requests("BYE");
    assert_eq!(bye.len(), 1, "{}", caller.report());
    assert_eq!(
        bye[0].header("Call-ID"),
        Some(pbx_call_id.as_str()),
        "BYE towards the PBX must use the PBX's Call-ID"
    );
}

#[test]
fn tcp_call_from_pbx_to_udp_carrier() {
    let lab = Lab::start(4, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .tcp()
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    assert!(
        caller.messages.iter().all(|m| m.transport == "TCP"),
        "the PBX leg should be TCP:\n{}",
        caller.report()
    );
    assert!(
        callee.messages.iter().all(|m| m.transport == "UDP"),
        "the carrier leg should be UDP:\n{}",
        callee.report()
    );
}

#[test]
fn reinvite_with_new_sdp_reaches_the_other_leg() {
    let lab = Lab::start(5, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_reinvite.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_reinvite.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let invites = callee.received_requests("INVITE");
    assert_eq!(
        invites.len(),
        2,
        "the carrier should get the INVITE and the re-INVITE:\n{}",
        callee.report()
    );
    assert!(
        invites[1].sdp().is_some(),
        "the re-INVITE towards the carrier must carry SDP:\n{}",
        invites[1].text
    );
    assert_eq!(
        invites[0].header("Call-ID"),
        invites[1].header("Call-ID"),
        "the re-INVITE must be sent in the carrier leg's existing dialog"
    );
    let answers: Vec<_> = caller
        .received()
        .filter(|m| m.status() == Some(200) && m.method() == "INVITE")
        .collect();
    assert!(
        answers.len() >= 2 && answers.iter().all(|m| m.sdp().is_some()),
        "the PBX should get a 200 with SDP for both INVITEs:\n{}",
        caller.report()
    );
}
