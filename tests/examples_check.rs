//! Every example config must load and validate, with the policy it references: the
//! examples are what operators copy, so a broken one is a bug.

use std::path::PathBuf;

#[test]
fn every_example_config_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml-examples");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    examples.sort();
    assert!(!examples.is_empty(), "no examples in {}", dir.display());
    let mut failures = Vec::new();
    for path in &examples {
        match veil::config::load(path) {
            Ok(loaded) => assert!(
                !loaded.policy.rules.is_empty(),
                "{}: empty policy",
                path.display()
            ),
            Err(errors) => failures.extend(errors.iter().map(|e| e.to_string())),
        }
    }
    assert!(
        failures.is_empty(),
        "example errors:\n{}",
        failures.join("\n")
    );
}

#[test]
fn quickstart_routes_pbx_calls_to_the_carriers() {
    use veil::policy::{Decision, Facts};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml-examples/quickstart.yaml");
    let loaded = veil::config::load(&path).unwrap();
    let headers = veil::sip::Headers::new();
    let facts = |from_peer, to_user| Facts {
        from_peer,
        to_user,
        from_user: "200",
        ruri_host: "127.0.0.1",
        method: "INVITE",
        headers: &headers,
    };
    match loaded.policy.evaluate(&facts(Some("pbx"), "+31201234567")) {
        Decision::Route(r) => assert_eq!(r.targets, ["carrier", "carrier-backup"]),
        other => panic!("{other:?}"),
    }
    match loaded
        .policy
        .evaluate(&facts(Some("carrier-backup"), "200"))
    {
        Decision::Route(r) => assert_eq!(r.targets, ["pbx"]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        loaded.policy.evaluate(&facts(None, "200")),
        Decision::Reject { code: 403, .. }
    ));
}

#[test]
fn pbx_to_carriers_normalises_numbers_and_picks_carriers() {
    use veil::policy::{Decision, Facts};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml-examples/pbx-to-carriers.yaml");
    let loaded = veil::config::load(&path).unwrap();
    assert_eq!(
        loaded.config.peers[2].transport,
        veil::config::Transport::Tcp
    );
    assert_eq!(
        loaded.config.peers[2].listen.as_deref(),
        Some("outside-tcp")
    );
    let headers = veil::sip::Headers::new();
    let eval = |from_peer, to_user| {
        loaded.policy.evaluate(&Facts {
            from_peer,
            to_user,
            from_user: "201",
            ruri_host: "127.0.0.1",
            method: "INVITE",
            headers: &headers,
        })
    };
    let route = |d: Decision| match d {
        Decision::Route(r) => r,
        other => panic!("{other:?}"),
    };
    let r = route(eval(Some("pbx"), "0612345678"));
    assert_eq!(
        (r.rule.as_str(), r.to_user.as_str()),
        ("pbx-national-mobile", "+31612345678")
    );
    assert_eq!(r.targets, ["carrier-b", "carrier-a"]);
    assert_eq!(r.from_user, "+3120123201");
    assert_eq!(r.set_headers[0].1, "<sip:+3120123201@pbx.example.com>");
    let r = route(eval(Some("pbx"), "0201234567"));
    assert_eq!(
        (r.to_user.as_str(), r.targets[0].as_str()),
        ("+31201234567", "carrier-a")
    );
    let r = route(eval(Some("pbx"), "004420123456"));
    assert_eq!(r.to_user, "+4420123456");
    let r = route(eval(Some("carrier-b"), "+3120123201"));
    assert_eq!(
        (r.to_user.as_str(), r.targets.as_slice()),
        ("201", &["pbx".to_string()][..])
    );
    assert!(matches!(
        eval(Some("pbx"), "12"),
        Decision::Reject { code: 404, .. }
    ));
    assert!(matches!(
        eval(Some("carrier-a"), "+4420123456"),
        Decision::Reject { code: 403, .. }
    ));
}

fn files_in(dir: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    out.sort();
    out
}

/// The binary, as operators run it: `veil check` exits 0 and says OK for every example,
/// and every policy file in policies/ is used (and so checked) by at least one example.
#[test]
fn veil_check_binary_accepts_every_example_and_policy() {
    let mut used_policies = std::collections::BTreeSet::new();
    for path in files_in("yaml-examples") {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veil"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "veil check {}: {:?}\n{}{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK"));
        let loaded = veil::config::load(&path).unwrap();
        used_policies.insert(std::fs::canonicalize(&loaded.config.policy).unwrap());
    }
    for policy in files_in("policies") {
        // Each policy compiles on its own too (errors would name the policy file).
        if let Err(e) = veil::config::load::load_policy_file(&policy) {
            panic!("{}: {e:?}", policy.display());
        }
        assert!(
            used_policies.contains(&std::fs::canonicalize(&policy).unwrap()),
            "{} is not referenced by any example in yaml-examples/, so `veil check` never \
             validates it against a peer list",
            policy.display()
        );
    }
}

/// `veil check` on a broken example fails with the file, line and key.
#[test]
fn veil_check_binary_reports_errors_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml-examples/quickstart.yaml");
    let text = std::fs::read_to_string(src)
        .unwrap()
        .replace("policy: ../policies/default.yaml", "policy: default.yaml")
        .replace(
            "  max_duration: 6h",
            "  max_duration: 6h\n  drain_timout: 5s",
        );
    std::fs::write(dir.path().join("veil.yaml"), text).unwrap();
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies/default.yaml"),
        dir.path().join("default.yaml"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["check", "--config"])
        .arg(dir.path().join("veil.yaml"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("veil.yaml:") && text.contains("drain_timout"),
        "{text}"
    );
}

/// Every metric the Grafana dashboard queries is one veil registers.
#[test]
fn grafana_dashboard_queries_only_existing_metrics() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dash = std::fs::read_to_string(root.join("docs/grafana-dashboard.json")).unwrap();
    let source = std::fs::read_to_string(root.join("src/observe/metrics.rs")).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for (i, _) in dash.match_indices("veil_") {
        let name: String = dash[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        names.insert(name.trim_end_matches("_bucket").to_string());
    }
    names.remove("veil_"); // the dashboard's uid / tags
    assert!(names.len() >= 9, "{names:?}");
    for n in &names {
        assert!(
            source.contains(&format!("\"{n}\"")),
            "dashboard uses unknown metric {n}"
        );
    }
}
