//! `veil route` on each example config and its policy: the matching rule, the rewrites,
//! the ordered targets and why the earlier rules did not match.

use std::path::PathBuf;
use std::process::Command;

fn route(example: &str, args: &[&str]) -> (i32, String, String) {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("yaml-examples")
        .join(example);
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("route")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(example: &str, args: &[&str]) -> String {
    let (code, out, err) = route(example, args);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// `lines` appear in `out` in this order.
fn assert_in_order(out: &str, lines: &[&str]) {
    let mut rest = out;
    for l in lines {
        match rest.find(l) {
            Some(i) => rest = &rest[i + l.len()..],
            None => panic!("`{l}` missing (or out of order) in:\n{out}"),
        }
    }
}

#[test]
fn quickstart_pbx_to_carriers_with_failover() {
    let out = ok(
        "quickstart.yaml",
        &["--from-peer", "pbx", "--to-user", "+31201234567"],
    );
    assert_in_order(
        &out,
        &[
            "rule 1 `pbx-to-carrier`: matches",
            "decision: route (rule `pbx-to-carrier`)",
            "to_user: `+31201234567` (unchanged)",
            "1. carrier: 127.0.0.3:5060 via udp",
            "2. carrier-backup: 127.0.0.4:5060 via udp",
        ],
    );
    let out = ok("quickstart.yaml", &["--to-user", "200"]);
    assert!(
        out.contains("no match: from_peer: request from no known peer"),
        "{out}"
    );
    assert!(out.contains("decision: reject 403"), "{out}");
}

#[test]
fn pbx_to_carriers_rewrites_and_explains_earlier_rules() {
    let out = ok(
        "pbx-to-carriers.yaml",
        &[
            "--from-peer",
            "pbx",
            "--to-user",
            "0201234567",
            "--from-user",
            "201",
        ],
    );
    assert_in_order(
        &out,
        &[
            "rule 1 `emergency`: no match: to_user: `0201234567` does not match `^(112|911)$`",
            "rule 2 `pbx-international`: no match",
            "rule 3 `pbx-national-mobile`: no match",
            "rule 4 `pbx-national`: matches",
            "to_user: `0201234567` -> `+31201234567`",
            "from_user: `201` -> `+3120123201`",
            "set header: P-Asserted-Identity: <sip:+3120123201@pbx.example.com>",
            "1. carrier-a",
            "2. carrier-b",
        ],
    );
    assert!(
        !out.contains("rule 5"),
        "evaluation stops at the match:\n{out}"
    );
    let out = ok(
        "pbx-to-carriers.yaml",
        &["--from-peer", "carrier-b", "--to-user", "+3120123201"],
    );
    assert_in_order(
        &out,
        &[
            "rule 1 `emergency`: no match: from_peer: request from carrier-b, rule wants pbx",
            "rule 7 `carriers-to-pbx`: matches",
            "to_user: `+3120123201` -> `201`",
            "1. pbx: 127.0.0.2:5060 via udp (listener inside)",
        ],
    );
    let out = ok(
        "pbx-to-carriers.yaml",
        &["--from-peer", "pbx", "--to-user", "12"],
    );
    assert!(
        out.contains("decision: reject 404 Number Not Routable (rule `pbx-unroutable`)"),
        "{out}"
    );
}

#[test]
fn residential_edge_normalises_customer_numbers_towards_the_core() {
    let out = ok(
        "residential-edge.yaml",
        &["--from-peer", "customers", "--to-user", "0031201234567"],
    );
    assert_in_order(
        &out,
        &[
            "rule 2 `customer-international`: matches",
            "to_user: `0031201234567` -> `+31201234567`",
            "1. core: 10.20.0.10:5061 via tls (listener core)",
        ],
    );
    let out = ok(
        "residential-edge.yaml",
        &["--from-peer", "core", "--to-user", "+31201234567"],
    );
    assert!(
        out.contains("decision: route (rule `core-to-customers`)"),
        "{out}"
    );
    assert!(
        out.contains("1. customers: 198.51.100.1:5060 via udp (listener access)"),
        "{out}"
    );
}

#[test]
fn header_conditions_are_evaluated_from_header_arguments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "rules:\n  - name: by-header\n    when: {headers: {X-Account: '^gold$'}}\n    then: {route: [a]}\n  - name: deny\n    then: {reject: 403}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "sip: {listen: [{name: l, transport: udp, address: 127.0.0.1:5060}]}\npeers: [{name: a, address: 127.0.0.2}]\npolicy: p.yaml\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_veil"))
            .args(["route", "--config"])
            .arg(dir.path().join("c.yaml"))
            .args(["--to-user", "1"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["--header", "X-Account: gold"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("rule 1 `by-header`: matches"), "{out}");
    let (_, out, _) = run(&["--header", "X-Account: silver"]);
    assert!(
        out.contains("no X-Account header matches `^gold$`"),
        "{out}"
    );
    let (_, out, _) = run(&[]);
    assert!(out.contains("headers: no X-Account header"), "{out}");
    let (code, _, err) = run(&["--header", "nonsense"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = run(&["--from-peer", "ghost"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ghost"), "{err}");
}
