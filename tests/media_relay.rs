//! Media through veil's relay: the caller plays real G.711 RTP, the callee echoes it
//! (`-rtp_echo`); packets must cross veil in both directions and be counted in the CDR.

mod common;

use std::time::Duration;

use common::{Lab, Setup, Side};

#[test]
fn rtp_is_relayed_both_ways_and_counted() {
    let lab = Lab::start(40, &Setup::standard());
    let callee = lab
        .sipp(Side::Carrier, "uas_basic.xml")
        .arg("-rtp_echo")
        .spawn();
    let caller = lab.sipp(Side::Pbx, "uac_rtp.xml").to(lab.veil_sip()).run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let a_call_id = caller.first_call_id(common::trace::Direction::Sent);
    let cdr = lab.ended_cdr(&a_call_id);
    let count = |col: &str| -> u64 { cdr.get(col).and_then(|v| v.parse().ok()).unwrap_or(0) };
    // g711a.pcap holds several seconds of 20 ms packets; the echo returns what arrives.
    assert!(
        count("a_packets") >= 50,
        "caller's RTP reached veil: {cdr:?}"
    );
    assert!(
        count("b_packets") >= 50,
        "callee's echo reached veil: {cdr:?}"
    );
    lab.metrics()
        .assert_at_least("veil_media_packets_relayed_total", &[], 100.0);
}

/// Neither side sends RTP after the answer: veil hangs up both legs after
/// `media.rtp_timeout` and records `rtp_timeout`.
#[test]
fn silent_call_is_ended_by_rtp_timeout() {
    let lab = Lab::start_edited(50, &Setup::standard(), |c| {
        c.replace("rtp_timeout: 60s", "rtp_timeout: 2s")
    });
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let started = std::time::Instant::now();
    let caller = lab
        .sipp(Side::Pbx, "uac_wait_bye.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "ended after {took:?}"
    );
    lab.assert_answered_call(&caller, &callee, "rtp_timeout");
    let a_call_id = caller.first_call_id(common::trace::Direction::Sent);
    let cdr = lab.ended_cdr(&a_call_id);
    cdr.assert_eq("a_lost", "0");
}

/// Real G.711 from SIPp's pcap: the quality columns are filled for the caller's side.
#[test]
fn quality_columns_for_relayed_rtp() {
    let lab = Lab::start(51, &Setup::standard());
    let callee = lab
        .sipp(Side::Carrier, "uas_basic.xml")
        .arg("-rtp_echo")
        .spawn();
    let caller = lab.sipp(Side::Pbx, "uac_rtp.xml").to(lab.veil_sip()).run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let a_call_id = caller.first_call_id(common::trace::Direction::Sent);
    let cdr = lab.ended_cdr(&a_call_id);
    let num = |col: &str| -> f64 {
        cdr.get(col)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{col} not a number: {cdr:?}"))
    };
    assert_eq!(num("a_lost"), 0.0, "{cdr:?}");
    assert!(num("a_jitter_ms") < 20.0, "{cdr:?}");
    let mos = num("a_mos");
    assert!((3.5..=4.5).contains(&mos), "{cdr:?}");
    lab.metrics()
        .assert_at_least("veil_media_bytes_received_total", &[], 5000.0);
}
