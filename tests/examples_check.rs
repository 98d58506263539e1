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
