//! Numeric header values no sane peer sends (issue 13): a 20-digit Retry-After on a 503
//! and a 20-digit Session-Expires on the 2xx once panicked the engine (`Instant`
//! overflow) and with it every call of the process. veil must answer the caller and serve
//! the next call.

mod common;

use std::time::Duration;

use common::trace::Direction;
use common::{Lab, Setup, Side, assert_all_succeeded, assert_no_leaks};

#[test]
fn twenty_digit_retry_after_and_session_expires_do_not_stop_veil() {
    let lab = Lab::start(6, &Setup::failover());
    let first = lab
        .sipp(Side::Carrier, "uas_503_huge_retry_after.xml")
        .spawn();
    let backup = lab
        .sipp(Side::Backup, "uas_huge_session_expires.xml")
        .spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let first = first.wait(Duration::from_secs(10));
    let backup = backup.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &first, &backup]);
    assert_no_leaks(&[&caller, &first, &backup]);
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "200");
    cdr.assert_eq("dest_peer", "carrier-b");
    let ok = caller
        .received()
        .find(|m| m.status() == Some(200))
        .expect("the caller got its 200");
    let se = ok.header("Session-Expires").unwrap_or_default();
    assert!(
        !se.contains("18446744073709551615"),
        "the callee's value must not cross: {se}"
    );

    // Still up: the next call is served (by the backup, the carrier rests after its 503).
    let backup = lab.sipp(Side::Backup, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let backup = backup.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &backup]);
    lab.metrics()
        .assert_at_least("veil_calls_total", &[("outcome", "answered")], 2.0);
}
