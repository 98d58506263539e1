//! Call supervision through the real binary with short lab timers: session refreshes on
//! each leg as negotiated (re-INVITE or UPDATE), a refused refresh and a silent refresher
//! end both legs, a 422 leads to a retry, the maximum call length ends calls on time, and
//! nothing of a thousand calls stays behind.

mod common;

use std::time::Duration;

use common::trace::Direction;
use common::{Lab, Setup, Side};

/// 4 s sessions (refresh at 2 s): far below the RFC minimum, so `lab: true`.
const LAB_TIMERS: &str = "{session_timer: {expires: 4s, min_se: 2s, lab: true}}";

#[test]
fn refreshes_reach_each_leg_as_negotiated() {
    let lab = Lab::start(41, &Setup::standard().with_calls(LAB_TIMERS));
    let callee = lab.sipp(Side::Carrier, "uas_refreshed_update.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_refreshed.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    // Leg A: the caller allows no UPDATE, so veil refreshes with re-INVITE.
    let reinvites = caller.received_requests("INVITE");
    assert_eq!(reinvites.len(), 1, "{}", caller.report());
    assert_eq!(
        reinvites[0].header("Session-Expires"),
        Some("4;refresher=uac"),
        "{}",
        reinvites[0].describe()
    );
    // Leg B: the callee allows UPDATE.
    let updates = callee.received_requests("UPDATE");
    assert_eq!(updates.len(), 1, "{}", callee.report());
    assert_eq!(
        updates[0].header("Session-Expires"),
        Some("4;refresher=uac")
    );
    // The refresh of one leg never reached the other.
    assert!(
        callee.received_requests("INVITE").len() == 1,
        "only the initial INVITE crossed"
    );
}

#[test]
fn refresh_refused_with_481_ends_both_legs() {
    let setup = Setup::standard()
        .with_calls(LAB_TIMERS)
        .with_peer(Side::Pbx, "session_timer: {enabled: false}");
    let lab = Lab::start(42, &setup);
    let callee = lab.sipp(Side::Carrier, "uas_refresh_481.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_wait_bye.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "session_timer");
}

#[test]
fn silent_refresher_is_hung_up_before_expiry() {
    let setup = Setup::standard()
        .with_calls(LAB_TIMERS)
        .with_peer(Side::Carrier, "session_timer: {enabled: false}");
    let lab = Lab::start(43, &setup);
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_silent_refresher.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "session_timer");
    let ok = caller
        .received()
        .find(|m| m.status() == Some(200))
        .expect("200 to the caller");
    assert_eq!(
        ok.header("Session-Expires"),
        Some("4;refresher=uac"),
        "{}",
        ok.describe()
    );
    assert!(ok.headers("Require").iter().any(|r| r.contains("timer")));
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    let ms: u64 = cdr
        .get("duration_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Expiry is the interval minus a third of it (RFC 4028 §10): 2.67 s of 4 s.
    assert!((2_400..=3_200).contains(&ms), "hung up after {ms} ms");
}

#[test]
fn callee_422_leads_to_a_retry() {
    let setup = Setup::standard().with_calls(LAB_TIMERS);
    let lab = Lab::start(44, &setup);
    let callee = lab.sipp(Side::Carrier, "uas_422.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let invites = callee.received_requests("INVITE");
    assert_eq!(invites.len(), 2, "{}", callee.report());
    assert_eq!(invites[0].header("Session-Expires"), Some("4"));
    assert_eq!(
        invites[1].header("Session-Expires"),
        Some("6"),
        "retried with the callee's Min-SE"
    );
    assert_eq!(invites[0].header("Call-ID"), invites[1].header("Call-ID"));
    assert!(
        caller.received().all(|m| m.status() != Some(422)),
        "the caller never sees the 422"
    );
}

#[test]
fn max_duration_ends_both_legs_on_time() {
    let setup = Setup::standard().with_calls("{max_duration: 3s, session_timer: {enabled: false}}");
    let lab = Lab::start(45, &setup);
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_wait_bye.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "max_duration");
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    let ms: u64 = cdr
        .get("duration_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        (2_500..=3_500).contains(&ms),
        "ended after {ms} ms, wanted 3000 ± 500"
    );
}

#[test]
fn nothing_stays_after_a_thousand_calls() {
    // 250 calls/s of ~0.7 s each: ~175 calls up at once, 4 relay ports each.
    let mut setup = Setup::standard();
    setup.media_ports = Some((30000, 31999));
    let lab = Lab::start(46, &setup);
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").calls(1000).spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .calls(1000)
        .arg("-r")
        .arg("250")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(30));
    common::sipp::assert_all_succeeded(&[&caller, &callee]);
    std::thread::sleep(Duration::from_millis(500));
    let m = lab.metrics();
    assert_eq!(
        m.sum("veil_calls_active", &[]),
        Some(0.0),
        "no call left in memory"
    );
    assert_eq!(
        m.sum("veil_media_streams_active", &[]),
        Some(0.0),
        "no relay stream left"
    );
    m.assert_at_least("veil_calls_total", &[("outcome", "answered")], 1000.0);
    m.assert_at_least(
        "veil_calls_ended_total",
        &[("reason", "caller_bye")],
        1000.0,
    );
}
