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
