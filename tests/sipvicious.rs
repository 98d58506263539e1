//! SIPVicious (Debian package `sipvicious`: svmap, svwar, svcrack) against veil on
//! loopback: veil reveals nothing (no device found, no extension, no password) and every
//! scanning source ends up banned. Skipped loudly when SIPVicious is not installed
//! (`.ci/run` installs it).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Lab, Setup};

fn installed() -> bool {
    let ok = Command::new("svmap")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("\n!!!! SKIPPED: SIPVicious (svmap/svwar/svcrack) is not installed\n");
    }
    ok
}

/// Runs a SIPVicious tool (bounded to 90 s) and returns its stdout and stderr.
fn run(tool: &str, args: &[String]) -> String {
    let out = Command::new("timeout")
        .arg("90")
        .arg(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_reveals_nothing(tool: &str, out: &str, port: u16) {
    for leak in [
        "veil",
        &format!("127.0.0.1:{port}"),
        "SIP/2.0",
        "reqauth",
        "weird",
        "noauth",
    ] {
        assert!(
            !out.contains(leak),
            "{tool} learned something ({leak:?}):\n{out}"
        );
    }
}

/// svmap from `map_source` (it honours `-b`); svwar and svcrack send from 127.0.0.1
/// (they ignore `-b`) with local ports `local_ports`, one apart per test.
fn scan(lab: &Lab, map_source: &str, local_ports: [u16; 2], invisible: bool) {
    let port = lab.veil_sip().port();
    let p = port.to_string();
    let map = run(
        "svmap",
        &["-b", map_source, "-p", &p, "127.0.0.1", "-t", "0.05"].map(String::from),
    );
    if invisible {
        assert_reveals_nothing("svmap", &map, port);
    }
    let war = run(
        "svwar",
        &[
            "-P",
            &local_ports[0].to_string(),
            "-p",
            &p,
            "-e",
            "100-160",
            "-m",
            "REGISTER",
            "-t",
            "0.05",
            "127.0.0.1",
        ]
        .map(String::from),
    );
    assert_reveals_nothing("svwar", &war, port);
    assert!(!war.contains("| 1"), "svwar found extensions:\n{war}");
    let crack = run(
        "svcrack",
        &[
            "-P",
            &local_ports[1].to_string(),
            "-p",
            &p,
            "-u",
            "100",
            "-r",
            "1000-1060",
            "-t",
            "0.05",
            "127.0.0.1",
        ]
        .map(String::from),
    );
    assert_reveals_nothing("svcrack", &crack, port);
    assert!(
        crack.contains("found nothing") || crack.contains("no server response"),
        "svcrack found something:\n{crack}"
    );
    std::thread::sleep(Duration::from_millis(300));
}

fn assert_banned(lab: &Lab, sources: &[&str], reason: &str) {
    let m = lab.metrics();
    let bans = m
        .sum("veil_bans_total", &[("reason", reason)])
        .unwrap_or(0.0);
    assert!(
        bans >= sources.len() as f64,
        "every scanning source banned ({reason}), got {bans} bans"
    );
    let log = lab.veil().log_tail(100_000);
    for s in sources {
        assert!(
            log.lines()
                .any(|l| l.contains("source banned") && l.contains(&format!("\"{s}\""))),
            "no ban logged for {s}"
        );
    }
}

#[test]
fn sipvicious_finds_nothing_and_is_banned_by_user_agent() {
    if !installed() {
        return;
    }
    let lab = Lab::start(73, &Setup::standard());
    scan(&lab, "127.0.0.9", [15731, 15732], true);
    assert_banned(&lab, &["127.0.0.9", "127.0.0.1"], "scanner");
}

/// With the User-Agent list off (scanners can fake any User-Agent), what the scanners
/// send still gets them banned: every request from an unknown source is a strike. Here
/// unknown sources get the default 403, so svmap does see that a SIP server answers
/// (nothing about it), and svwar/svcrack keep probing until the ban silences veil.
#[test]
fn sipvicious_is_banned_by_strikes_without_user_agent_list() {
    if !installed() {
        return;
    }
    let lab = Lab::start_edited(74, &Setup::standard(), |c| {
        c + "security:\n  scanner_user_agents: []\n  ban_after: 5\n"
    });
    scan(&lab, "127.0.0.12", [15741, 15742], false);
    assert_banned(&lab, &["127.0.0.1"], "invalid");
}
