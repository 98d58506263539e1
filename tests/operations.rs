//! Operations with the real binary (issue 6): reload on SIGHUP, graceful drain on SIGTERM,
//! CDR rows closed after a crash, readiness for systemd.

mod common;

use std::time::{Duration, Instant};

use common::trace::Direction;
use common::{Lab, Rule, Setup, Side};

/// PBX, carrier and backup carrier configured; PBX calls go to the carrier only.
fn carrier_only() -> Setup {
    let mut s = Setup::failover();
    s.rules[0] = Rule::route("pbx-out", "pbx", Some(common::topology::E164), &["carrier"]);
    s
}

/// The same peers, PBX calls to the backup carrier only.
fn backup_only() -> Setup {
    let mut s = Setup::failover();
    s.rules[0] = Rule::route(
        "pbx-out-v2",
        "pbx",
        Some(common::topology::E164),
        &["carrier-b"],
    );
    s
}

/// Waits until veil's CDR has a row for `a_call_id` with `answered_at` set.
fn wait_answered(lab: &Lab, a_call_id_prefix: &str) -> common::CdrRow {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(rows) = common::observe::read_cdr(&lab.veil().cdr_path())
            && let Some(r) = rows.iter().find(|r| {
                r.get("a_call_id")
                    .is_some_and(|c| c.starts_with(a_call_id_prefix))
                    && r.get("answered_at").is_some()
            })
        {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no answered call {a_call_id_prefix}* in the CDR"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reload_changes_routing_for_the_next_call_while_a_call_continues() {
    let lab = Lab::start(60, &carrier_only());
    let carrier = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let held = lab
        .sipp(Side::Pbx, "uac_hold.xml")
        .arg("-d")
        .arg("4000")
        .to(lab.veil_sip())
        .spawn();
    wait_answered(&lab, "pbx-call-");

    std::fs::write(lab.dir().join("policy.yaml"), backup_only().render_policy()).unwrap();
    lab.veil().signal("HUP");
    assert!(
        lab.veil()
            .wait_log("config reloaded", 1, Duration::from_secs(5)),
        "no reload logged:\n{}",
        lab.veil().log_tail(30)
    );

    let backup = lab.sipp(Side::Backup, "uas_basic.xml").spawn();
    let second = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .alt_ports()
        .to(lab.veil_sip())
        .run();
    let backup = backup.wait(Duration::from_secs(10));
    lab.assert_answered_call(&second, &backup, "caller_bye");

    // The call set up before the reload went on with the carrier and ended normally.
    let held = held.wait(Duration::from_secs(15));
    let carrier = carrier.wait(Duration::from_secs(10));
    lab.assert_answered_call(&held, &carrier, "caller_bye");
    let first = lab.ended_cdr(&held.first_call_id(Direction::Sent));
    first.assert_eq("dest_peer", "carrier");
    assert!(
        carrier.received_requests("INVITE").len() == 1,
        "the carrier got only the call from before the reload"
    );
}

#[test]
fn broken_config_on_reload_is_refused_and_service_continues() {
    let lab = Lab::start(61, &carrier_only());
    let config = lab.dir().join("veil.yaml");
    let good = std::fs::read_to_string(&config).unwrap();
    // An unknown key and an unknown peer in the policy: both must be reported.
    std::fs::write(&config, format!("{good}bogus_key: 1\n")).unwrap();
    std::fs::write(
        lab.dir().join("policy.yaml"),
        backup_only().render_policy().replace("carrier-b", "nobody"),
    )
    .unwrap();
    lab.veil().signal("HUP");
    assert!(
        lab.veil()
            .wait_log("reload refused", 1, Duration::from_secs(5)),
        "no refusal logged:\n{}",
        lab.veil().log_tail(30)
    );
    assert!(
        !lab.veil().log_lines("bogus_key").is_empty(),
        "the error names the key"
    );
    assert!(lab.veil().log_lines("config reloaded").is_empty());

    // Still the old routing: PBX calls reach the carrier.
    let carrier = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let carrier = carrier.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &carrier, "caller_bye");

    // A listener change is not applied (it needs a rebind) but the rest of the reload is.
    let moved = good.replace(
        &format!("address: 127.0.0.1:{}}}", lab.ports.veil_sip()),
        &format!("address: 127.0.0.1:{}}}", lab.ports.veil_sip() + 9),
    );
    assert_ne!(moved, good);
    std::fs::write(&config, moved).unwrap();
    std::fs::write(lab.dir().join("policy.yaml"), backup_only().render_policy()).unwrap();
    lab.veil().signal("HUP");
    assert!(
        lab.veil()
            .wait_log("config reloaded", 1, Duration::from_secs(5)),
        "{}",
        lab.veil().log_tail(30)
    );
    assert!(
        lab.veil()
            .log_lines("needs a restart")
            .iter()
            .any(|l| l.contains("sip.listen")),
        "{}",
        lab.veil().log_tail(30)
    );
    let backup = lab.sipp(Side::Backup, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let backup = backup.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &backup, "caller_bye");
}

#[test]
fn sigterm_refuses_new_calls_and_exits_0_when_the_last_call_ends() {
    let mut lab = Lab::start(62, &Setup::standard().with_calls("{drain_timeout: 30s}"));
    let carrier = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let held = lab
        .sipp(Side::Pbx, "uac_hold.xml")
        .arg("-d")
        .arg("3000")
        .to(lab.veil_sip())
        .spawn();
    wait_answered(&lab, "pbx-call-");
    let t0 = Instant::now();
    lab.veil().signal("TERM");
    assert!(
        lab.veil()
            .wait_log("shutting down gracefully", 1, Duration::from_secs(5))
    );

    let refused = lab
        .sipp(Side::Pbx, "uac_503.xml")
        .alt_ports()
        .to(lab.veil_sip())
        .run();
    common::assert_all_succeeded(&[&refused]);
    let r503 = refused
        .received()
        .find(|m| m.status() == Some(503))
        .expect("503 received");
    assert!(
        r503.header("Retry-After").is_some(),
        "503 without Retry-After:\n{}",
        r503.text
    );

    let held = held.wait(Duration::from_secs(15));
    let carrier = carrier.wait(Duration::from_secs(10));
    common::assert_all_succeeded(&[&held, &carrier]);
    let status = lab.veil_mut().wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "veil exit status");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "veil waited for the drain timeout"
    );
    let cdr = lab.ended_cdr(&held.first_call_id(Direction::Sent));
    cdr.assert_eq("end_reason", "caller_bye");
    cdr.assert_eq("final_code", "200");
}

#[test]
fn sigterm_with_calls_up_ends_them_after_the_drain_timeout_with_cdrs() {
    let mut lab = Lab::start(63, &Setup::standard().with_calls("{drain_timeout: 1s}"));
    let carrier = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_wait_bye.xml")
        .to(lab.veil_sip())
        .spawn();
    wait_answered(&lab, "pbx-call-");
    let t0 = Instant::now();
    lab.veil().signal("TERM");
    let caller = caller.wait(Duration::from_secs(10));
    let carrier = carrier.wait(Duration::from_secs(10));
    common::assert_all_succeeded(&[&caller, &carrier]);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "BYE before the drain timeout"
    );
    assert_eq!(
        caller.received_requests("BYE").len(),
        1,
        "{}",
        caller.report()
    );
    assert_eq!(
        carrier.received_requests("BYE").len(),
        1,
        "{}",
        carrier.report()
    );
    let status = lab.veil_mut().wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "veil exit status");
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("end_reason", "shutdown");
    cdr.assert_eq("final_code", "200");
    cdr.assert_set("duration_ms");
}

#[test]
fn kill_9_mid_call_then_restart_closes_the_open_row() {
    let mut lab = Lab::start(64, &Setup::standard());
    let carrier = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_hold.xml")
        .arg("-d")
        .arg("20000")
        .to(lab.veil_sip())
        .spawn();
    let row = wait_answered(&lab, "pbx-call-");
    row.assert_null("ended_at");
    // Let at least one heartbeat pass with the call up (5 s), so the last known time is
    // later than the answer.
    std::thread::sleep(Duration::from_millis(5600));
    lab.veil_mut().kill9();
    drop(caller);
    drop(carrier);
    let open = common::observe::read_cdr(&lab.veil().cdr_path()).unwrap();
    assert!(
        open[0].get("ended_at").is_none(),
        "row open after the crash: {open:?}"
    );

    lab.restart_veil();
    let rows = common::observe::read_cdr(&lab.veil().cdr_path()).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    r.assert_eq("end_reason", "error");
    r.assert_eq("final_code", "200");
    let (answered, ended) = (r.get("answered_at").unwrap(), r.get("ended_at").unwrap());
    assert!(
        ended > answered,
        "ended_at {ended} should be the last heartbeat, after {answered}"
    );
    let ms: i64 = r.get("duration_ms").unwrap().parse().unwrap();
    assert!((4_000..30_000).contains(&ms), "duration {ms} ms");
    assert!(
        lab.veil()
            .wait_log("closed with end_reason error", 1, Duration::from_secs(2)),
        "{}",
        lab.veil().log_tail(20)
    );
}

#[test]
fn readiness_is_notified_after_the_listeners_are_bound() {
    let lab = Lab::new(65);
    let config = lab.write_config(&Setup::standard());
    let sock_path = lab.dir().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut veil = common::Veil::start_env(
        lab.dir(),
        &config,
        &lab.ports,
        &[("NOTIFY_SOCKET", sock_path.as_os_str())],
    );
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 10 s");
    assert_eq!(&buf[..n], b"READY=1");
    // By then SIP answers (Veil::start already probed it) and a reload says so too.
    veil.signal("HUP");
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"RELOADING=1");
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    veil.signal("TERM");
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(
        veil.wait_exit(Duration::from_secs(5))
            .and_then(|s| s.code()),
        Some(0)
    );
}
