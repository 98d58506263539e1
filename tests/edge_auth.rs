//! Digest authentication towards a carrier that challenges veil: SIPp's `verifyauth`
//! checks veil's answer; with a wrong password the caller gets a clean 403.

mod common;

use std::time::Duration;

use common::trace::Direction;
use common::{Lab, Setup, Side, add_peer_keys, assert_all_succeeded, assert_no_leaks};

fn with_password(password: &str) -> impl FnOnce(String) -> String {
    let line = format!("auth: {{username: veil, password: {password}}}");
    move |c| add_peer_keys(&c, Side::Carrier, &[&line])
}

#[test]
fn challenged_call_completes_with_verified_credentials() {
    let lab = Lab::start_edited(90, &Setup::standard(), with_password("s3cret"));
    let callee = lab.sipp(Side::Carrier, "uas_auth.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    assert_all_succeeded(&[&caller, &callee]);
    assert_no_leaks(&[&caller, &callee]);
    let invites = callee.received_requests("INVITE");
    assert_eq!(invites.len(), 2, "{}", callee.report());
    let auth = invites[1]
        .header("Authorization")
        .expect("credentials sent");
    assert!(
        auth.contains("qop=auth") && auth.contains("nc=00000001"),
        "{auth}"
    );
    // Nothing of the challenge or the credentials reached the caller.
    for m in caller.received() {
        let t = m.text.to_ascii_lowercase();
        assert!(
            !t.contains("authenticate") && !t.contains("digest"),
            "{}",
            m.text
        );
    }
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "200");
    cdr.assert_eq("dest_peer", "carrier");
    // The password never appears in veil's logs.
    let log = std::fs::read_to_string(lab.dir().join("veil.stderr.log")).unwrap_or_default();
    assert!(
        log.contains("answering digest challenge"),
        "retry is logged"
    );
    assert!(!log.contains("s3cret"), "password in the log");
}

#[test]
fn wrong_password_fails_cleanly_on_leg_a() {
    let lab = Lab::start_edited(91, &Setup::standard(), with_password("wrong"));
    let callee = lab.sipp(Side::Carrier, "uas_auth_wrong.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_forbidden.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    assert_all_succeeded(&[&caller, &callee]);
    assert_no_leaks(&[&caller, &callee]);
    assert_eq!(
        callee.received_requests("INVITE").len(),
        2,
        "one retry only"
    );
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "403");
    cdr.assert_eq("end_reason", "failed");
    let log = std::fs::read_to_string(lab.dir().join("veil.stderr.log")).unwrap_or_default();
    assert!(!log.contains("wrong"), "password in the log");
}
