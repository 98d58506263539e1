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
