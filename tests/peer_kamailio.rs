//! Kamailio, an independent proxy, around veil: a record-routing load balancer in front
//! (callers -> Kamailio -> veil -> callee, the sip:provider CE layout), and a forking
//! proxy behind (veil -> Kamailio -> two callees). What passes here is what works with a
//! real proxy: the LB drops an in-dialog request that does not follow its Record-Route.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::kamailio::{self, Kamailio};
use common::{Lab, Setup, Side, assert_all_succeeded, assert_no_leaks};

fn skip_without_kamailio() -> bool {
    if kamailio::available() {
        return false;
    }
    eprintln!("SKIPPED: kamailio is not installed (apt-get install kamailio); .ci/run installs it");
    true
}

/// Kamailio as the LB on the PBX's address (so that veil sees the PBX peer), spare port.
fn start_lb(lab: &Lab) -> Kamailio {
    let addr = SocketAddr::from((Side::Pbx.ip(), lab.ports.alt_sip()));
    Kamailio::start(
        lab.dir(),
        "lb",
        addr,
        &kamailio::lb_config(addr, lab.veil_sip()),
    )
}

fn assert_lb_saw_no_stray(lb: &Kamailio) {
    let stray = lb.log_lines("without Route");
    assert!(
        stray.is_empty(),
        "the LB got in-dialog requests that ignore its Record-Route:\n{}",
        stray.join("\n")
    );
}

#[test]
fn behind_a_record_routing_lb_100_calls_with_reinvite_and_caller_bye() {
    if skip_without_kamailio() {
        return;
    }
    let lab = Lab::start(103, &Setup::standard());
    let lb = start_lb(&lab);
    let callee = lab
        .sipp(Side::Carrier, "uas_reinvite.xml")
        .calls(100)
        .spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_reinvite.xml")
        .calls(100)
        // At most 15 calls at once: the slot's 100 relay ports hold 25.
        .arg("-r")
        .arg("20")
        .arg("-l")
        .arg("15")
        .to(lb.addr)
        .run();
    let callee = callee.wait(Duration::from_secs(20));
    assert_all_succeeded(&[&caller, &callee]);
    assert_lb_saw_no_stray(&lb);
    // Every 200 to the initial INVITE carried the LB's Record-Route back to the caller.
    let rr = format!("<sip:{};lr", lb.addr);
    let oks: Vec<_> = caller
        .received()
        .filter(|m| {
            m.status() == Some(200) && m.header("CSeq").is_some_and(|c| c.trim() == "1 INVITE")
        })
        .collect();
    assert!(oks.len() >= 100, "one 200 per call at least: {}", oks.len());
    for ok in &oks {
        assert!(
            ok.header("Record-Route").is_some_and(|v| v.contains(&rr)),
            "200 without the LB's Record-Route:\n{}",
            ok.text
        );
    }
    assert_no_leaks(&[&caller, &callee]);
    lab.assert_answered_call(&caller, &callee, "caller_bye");
    let m = lab.metrics();
    m.assert_at_least("veil_calls_total", &[("outcome", "answered")], 100.0);
    m.assert_at_least("veil_calls_ended_total", &[("reason", "caller_bye")], 100.0);
}

#[test]
fn behind_a_record_routing_lb_the_callee_hangs_up() {
    if skip_without_kamailio() {
        return;
    }
    let lab = Lab::start(104, &Setup::standard());
    let lb = start_lb(&lab);
    let callee = lab.sipp(Side::Carrier, "uas_bye.xml").calls(10).spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_wait_bye.xml")
        .calls(10)
        .arg("-r")
        .arg("10")
        .to(lb.addr)
        .run();
    let callee = callee.wait(Duration::from_secs(20));
    assert_all_succeeded(&[&caller, &callee]);
    assert_lb_saw_no_stray(&lb);
    // veil's BYE to the caller went through the LB, which took its own Route off.
    let byes = caller.received_requests("BYE");
    assert_eq!(byes.len(), 10);
    assert!(
        byes.iter().all(|b| b.header("Route").is_none()),
        "{}",
        byes[0].text
    );
    lab.assert_answered_call(&caller, &callee, "callee_bye");
    lab.metrics()
        .assert_at_least("veil_calls_ended_total", &[("reason", "callee_bye")], 10.0);
}

#[test]
fn a_forking_proxy_behind_veil_one_branch_answers_the_other_is_cancelled() {
    if skip_without_kamailio() {
        return;
    }
    let ports = common::Ports::new(107);
    // The carrier peer is Kamailio on the carrier's address (spare port); it forks to the
    // carrier's SIPp (answers after 200 ms) and the backup's (rings until cancelled).
    let proxy = SocketAddr::from((Side::Carrier.ip(), ports.alt_sip()));
    let carrier_line = format!("    address: {}\n", ports.sip_addr(Side::Carrier));
    let lab = Lab::start_edited(107, &Setup::standard(), |c| {
        assert!(c.contains(&carrier_line), "{c}");
        c.replacen(&carrier_line, &format!("    address: {proxy}\n"), 1)
    });
    let fork = Kamailio::start(
        lab.dir(),
        "fork",
        proxy,
        &kamailio::fork_config(
            proxy,
            &[ports.sip_addr(Side::Carrier), ports.sip_addr(Side::Backup)],
        ),
    );
    let answering = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let ringing = lab.sipp(Side::Backup, "uas_ring_cancel.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let answering = answering.wait(Duration::from_secs(15));
    let ringing = ringing.wait(Duration::from_secs(15));
    assert_all_succeeded(&[&caller, &answering, &ringing]);
    assert_eq!(ringing.received_requests("CANCEL").len(), 1);
    // veil's ACK and BYE reached the answering callee through the proxy's Route.
    assert_eq!(answering.received_requests("ACK").len(), 1);
    assert_eq!(answering.received_requests("BYE").len(), 1);
    assert!(
        fork.log_lines("ERROR").is_empty(),
        "{}",
        fork.log_lines("ERROR").join("\n")
    );
    // Nothing of the caller reached either branch, nothing of them reached the caller.
    assert_no_leaks(&[&caller, &answering]);
    assert_no_leaks(&[&caller, &ringing]);
    lab.assert_answered_call(&caller, &answering, "caller_bye");
    let m = lab.metrics();
    assert_eq!(m.sum("veil_calls_active", &[]), Some(0.0));
    assert_eq!(
        m.sum("veil_calls_total", &[("outcome", "answered")]),
        Some(1.0),
        "the cancelled branch is no second call"
    );
}
