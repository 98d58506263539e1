//! RTP in the call flows around the answer: early media before the 200, hold by a
//! sendonly re-INVITE. Real G.711 from SIPp's `g711a.pcap`, echoed by the other side
//! (`-rtp_echo`), counted in the CDR.

mod common;

use std::time::Duration;

use common::{Lab, Setup, Side};

fn packets(cdr: &common::observe::CdrRow, col: &str) -> u64 {
    cdr.get(col).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The callee answers 183 with SDP and plays audio for 2.5 s before its 200; the caller
/// hangs up 0.5 s after the answer. Most of the audio (and its echo from the caller) can
/// only have crossed veil before the 200.
#[test]
fn early_media_flows_to_the_caller_before_the_answer() {
    let lab = Lab::start(56, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_early_media.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .arg("-rtp_echo")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let a_call_id = caller.first_call_id(common::trace::Direction::Sent);
    let cdr = lab.ended_cdr(&a_call_id);
    // 50 packets/s: 2.5 s of early media is ~125, the 0.5 s after the answer ~25.
    assert!(
        packets(&cdr, "b_packets") >= 80,
        "callee's early media reached veil: {cdr:?}"
    );
    assert!(
        packets(&cdr, "a_packets") >= 80,
        "early media reached the caller (its echo came back): {cdr:?}"
    );
}

/// A sendonly re-INVITE reaches the callee as sendonly (its scenario checks the body),
/// the recvonly answer comes back (the caller's scenario checks it), audio on hold keeps
/// flowing and the call ends normally.
#[test]
fn hold_by_sendonly_reinvite_passes_through_and_the_call_survives() {
    let lab = Lab::start(57, &Setup::standard());
    let callee = lab
        .sipp(Side::Carrier, "uas_held.xml")
        .arg("-rtp_echo")
        .spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_hold_sendonly.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let a_call_id = caller.first_call_id(common::trace::Direction::Sent);
    let cdr = lab.ended_cdr(&a_call_id);
    assert!(
        packets(&cdr, "a_packets") >= 50,
        "audio on hold reached veil: {cdr:?}"
    );
    assert!(
        packets(&cdr, "b_packets") >= 50,
        "and was relayed to the held callee: {cdr:?}"
    );
}
