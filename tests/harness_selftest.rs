//! Checks of the harness itself, without veil: the SIPp scenarios run against each other
//! directly (so that a veil test failure is never a broken scenario), and the leak
//! checker, trace parser and metrics parser catch what they should.

mod common;

use common::leak::{find_leaks, identity_of};
use common::observe::parse_sample;
use common::sipp::SippOutcome;
use common::trace::{Direction, parse_trace};
use common::{Lab, Side, assert_all_succeeded};

/// Runs `uac` on the PBX address straight at `uas` on the carrier address.
fn direct_pair(slot: u16, uac: &str, uas: &str, tcp: bool) -> (SippOutcome, SippOutcome) {
    let lab = Lab::new(slot);
    let mut callee = lab.sipp(Side::Carrier, uas);
    let mut caller = lab
        .sipp(Side::Pbx, uac)
        .to(lab.ports.sip_addr(Side::Carrier));
    if tcp {
        callee = callee.tcp();
        caller = caller.tcp();
    }
    let callee = callee.spawn();
    let caller = caller.run();
    let callee = callee.wait(std::time::Duration::from_secs(10));
    (caller, callee)
}

/// Without a B2BUA in between, each side sees the other's identity: the leak checker must
/// say so (negative control for every veil test's leak assertion).
fn assert_leaks_detected(caller: &SippOutcome, callee: &SippOutcome) {
    let pbx = find_leaks(callee, &identity_of(caller));
    let carrier = find_leaks(caller, &identity_of(callee));
    for (leaks, ip) in [(&pbx, "127.0.0.2"), (&carrier, "127.0.0.3")] {
        assert!(
            leaks.iter().any(|l| l.needle.text == ip),
            "leak checker missed {ip}: {leaks:#?}"
        );
    }
    assert!(
        pbx.iter().any(|l| l.needle.what.contains("Call-ID")),
        "leak checker missed the pbx Call-ID"
    );
}

#[test]
fn basic_call_scenarios_work_directly() {
    let (caller, callee) = direct_pair(40, "uac_basic.xml", "uas_basic.xml", false);
    assert_all_succeeded(&[&caller, &callee]);
    assert_leaks_detected(&caller, &callee);
    let pbx = identity_of(&caller);
    for want in [
        "pbx-internal",
        "PBX-Internal/1.0",
        "X-Secret-Topology",
        "o=callermedia-internal ",
    ] {
        assert!(
            pbx.iter().any(|n| n.text == want),
            "pbx identity lacks {want:?}: {pbx:#?}"
        );
    }
    let carrier = identity_of(&callee);
    for want in [
        "Carrier-Core/9.9",
        "o=carrier-internal ",
        "carrier-secret-route",
    ] {
        assert!(
            carrier.iter().any(|n| n.text == want),
            "carrier identity lacks {want:?}: {carrier:#?}"
        );
    }
    // Identifiers the callee merely echoed (the caller's Call-ID) are not the callee's own.
    let call_id = caller.first_call_id(Direction::Sent);
    assert!(
        call_id.starts_with("pbx-call-"),
        "Call-ID format: {call_id}"
    );
    assert!(
        !carrier.iter().any(|n| n.text == call_id),
        "echoed Call-ID counted as carrier's own"
    );
}

#[test]
fn callee_bye_scenarios_work_directly() {
    let (caller, callee) = direct_pair(41, "uac_wait_bye.xml", "uas_bye.xml", false);
    assert_all_succeeded(&[&caller, &callee]);
    let bye = caller.received_requests("BYE");
    assert_eq!(bye.len(), 1, "{}", caller.report());
    // The BYE must be a well-formed in-dialog request: tags swapped relative to the INVITE.
    let invite = caller.sent().next().expect("INVITE sent");
    assert_eq!(
        bye[0]
            .header("To")
            .and_then(|v| common::trace::param(v, "tag")),
        invite
            .header("From")
            .and_then(|v| common::trace::param(v, "tag"))
    );
}

#[test]
fn cancel_scenarios_work_directly() {
    let (caller, callee) = direct_pair(42, "uac_cancel.xml", "uas_ring_cancel.xml", false);
    assert_all_succeeded(&[&caller, &callee]);
    assert!(caller.received().any(|m| m.status() == Some(487)));
    assert_eq!(callee.received_requests("CANCEL").len(), 1);
}

#[test]
fn busy_scenarios_work_directly() {
    let (caller, callee) = direct_pair(43, "uac_busy.xml", "uas_486.xml", false);
    assert_all_succeeded(&[&caller, &callee]);
    assert_eq!(callee.received_requests("ACK").len(), 1);
}

#[test]
fn forbidden_scenario_works_directly() {
    let (caller, callee) = direct_pair(44, "uac_forbidden.xml", "uas_403.xml", false);
    assert_all_succeeded(&[&caller, &callee]);
}

#[test]
fn basic_caller_fails_on_503() {
    // The failover test relies on uas_503 really failing a call that nobody retries.
    let (caller, callee) = direct_pair(45, "uac_basic.xml", "uas_503.xml", false);
    assert!(callee.succeeded(), "{}", callee.report());
    assert!(
        !caller.succeeded(),
        "uac_basic must fail on a 503:\n{}",
        caller.report()
    );
}

#[test]
fn options_scenarios_work_directly() {
    let (caller, callee) = direct_pair(46, "uac_options.xml", "uas_options.xml", false);
    assert_all_succeeded(&[&caller, &callee]);
}

#[test]
fn reinvite_scenarios_work_directly() {
    let (caller, callee) = direct_pair(47, "uac_reinvite.xml", "uas_reinvite.xml", false);
    assert_all_succeeded(&[&caller, &callee]);
    let invites = callee.received_requests("INVITE");
    assert_eq!(invites.len(), 2, "{}", callee.report());
    let port = |m: &common::trace::TracedMessage| {
        m.sdp()
            .and_then(|s| s.lines().find(|l| l.starts_with("m=")).map(str::to_string))
    };
    assert_ne!(
        port(invites[0]),
        port(invites[1]),
        "the re-INVITE must move the media port"
    );
}

#[test]
fn basic_call_scenarios_work_over_tcp() {
    let (caller, callee) = direct_pair(48, "uac_basic.xml", "uas_basic.xml", true);
    assert_all_succeeded(&[&caller, &callee]);
    assert!(
        caller.messages.iter().all(|m| m.transport == "TCP"),
        "{}",
        caller.report()
    );
}

#[test]
fn trace_parser_reads_sipp_format() {
    let trace = "----------------------------------------------- 2026-01-01 00:00:00.000\n\
UDP message sent (10 bytes):\n\nINVITE sip:1@127.0.0.1 SIP/2.0\nCall-ID: x\ni: y\n\nv=0\nc=IN IP4 1.2.3.4\n\n\
----------------------------------------------- 2026-01-01 00:00:00.001\n\
UDP message received [5] bytes :\n\nSIP/2.0 200 OK\nCSeq: 1 INVITE\nContent-Length: 0\n\n\n";
    let m = parse_trace(trace);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].direction, Direction::Sent);
    assert_eq!(m[0].headers("call-id"), vec!["x", "y"]);
    assert_eq!(m[0].sdp(), Some("v=0\nc=IN IP4 1.2.3.4"));
    assert_eq!(m[1].direction, Direction::Received);
    assert_eq!(m[1].status(), Some(200));
    assert_eq!(m[1].method(), "INVITE");
}

#[test]
fn metrics_parser_reads_labels() {
    let s = parse_sample(r#"veil_calls_total{instance="itest-1",outcome="answered"} 3"#)
        .expect("sample");
    assert_eq!(s.name, "veil_calls_total");
    assert_eq!(
        s.labels.get("outcome").map(String::as_str),
        Some("answered")
    );
    assert_eq!(s.value, 3.0);
    let s = parse_sample("veil_calls_active 0").expect("sample");
    assert_eq!((s.name.as_str(), s.value), ("veil_calls_active", 0.0));
    assert!(parse_sample("# TYPE veil_calls_active gauge").is_none());
}
