use std::fs;

use super::*;

const POLICY: &str = "\
rules:
  - name: out
    when: {from_peer: pbx}
    then: {route: [carrier]}
  - name: deny
    then: {reject: 403}
";

const CONFIG: &str = "\
instance: t
sip:
  listen:
    - name: public
      transport: udp
      address: 127.0.0.1:5060
peers:
  - name: pbx
    address: 127.0.0.2:5060
  - name: carrier
    address: 127.0.0.3
policy: policy.yaml
";

/// A temp dir holding `config.yaml` and `policy.yaml`.
fn setup(config: &str, policy: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.yaml"), config).unwrap();
    fs::write(dir.path().join("policy.yaml"), policy).unwrap();
    let path = dir.path().join("config.yaml");
    (dir, path)
}

fn errors(config: &str, policy: &str) -> Vec<ConfigError> {
    let (_dir, path) = setup(config, policy);
    match load(&path) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e,
    }
}

fn one(config: &str, policy: &str) -> ConfigError {
    let e = errors(config, policy);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

#[test]
fn valid_config_loads_with_defaults_filled_in() {
    let (dir, path) = setup(CONFIG, POLICY);
    let l = load(&path).unwrap();
    assert_eq!(l.config.instance, "t");
    assert_eq!(l.policy.rules.len(), 2);
    let pbx = &l.config.peers[0];
    assert_eq!(pbx.listen.as_deref(), Some("public"));
    assert_eq!(
        pbx.sources,
        vec![Cidr::parse("127.0.0.2/32").unwrap().into()]
    );
    assert_eq!(l.config.policy, dir.path().join("policy.yaml"));
    assert!(l.config.policy.is_absolute());
    assert!(l.warnings.is_empty());
}

#[test]
fn unknown_key_names_key_and_line() {
    let cfg = CONFIG.replace(
        "  - name: carrier\n",
        "  - name: carrier\n    adress: 1.2.3.4\n",
    );
    let e = one(&cfg, POLICY);
    assert_eq!(e.line, Some(11));
    assert_eq!(e.key, "peers[1].adress");
    assert!(e.message.contains("unknown key `adress`"), "{}", e.message);
    assert!(e.file.ends_with("config.yaml"));
}

#[test]
fn duplicate_key_is_an_error() {
    let cfg = CONFIG.replace("instance: t\n", "instance: t\ninstance: u\n");
    let e = one(&cfg, POLICY);
    assert_eq!((e.line, e.key.as_str()), (Some(2), "instance"));
    assert!(e.message.contains("duplicate key"), "{}", e.message);
}

#[test]
fn wrong_type_reports_the_value() {
    let cfg = CONFIG.replace(
        "address: 127.0.0.3\n",
        "address: 127.0.0.3\n    keepalive: soon\n",
    );
    let e = one(&cfg, POLICY);
    assert_eq!((e.line, e.key.as_str()), (Some(12), "peers[1].keepalive"));
    assert!(
        e.message.starts_with("invalid duration `soon`"),
        "{}",
        e.message
    );
    assert!(
        !e.message.contains("at line"),
        "position is not repeated: {}",
        e.message
    );
}

#[test]
fn missing_required_key() {
    let cfg = CONFIG.replace(
        "  - name: carrier\n    address: 127.0.0.3\n",
        "  - name: carrier\n",
    );
    let e = one(&cfg, POLICY);
    assert_eq!(e.key, "peers[1].address");
    assert!(
        e.message.contains("missing required key `address`"),
        "{}",
        e.message
    );
    let cfg = CONFIG.replace("policy: policy.yaml\n", "");
    let e = one(&cfg, POLICY);
    assert_eq!(e.key, "policy");
}

#[test]
fn several_shape_errors_are_all_reported() {
    let cfg = CONFIG
        .replace("instance: t\n", "instance: t\nbogus: 1\n")
        .replace("address: 127.0.0.2:5060", "address: 127.0.0.2:99999")
        .replace(
            "address: 127.0.0.3\n",
            "address: 127.0.0.3\n    srtp: maybe\n",
        );
    let e = errors(&cfg, POLICY);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["bogus", "peers[0].address", "peers[1].srtp"],
        "{e:#?}"
    );
    assert_eq!(e[1].line, Some(10));
}

#[test]
fn yaml_syntax_error_has_a_line() {
    let e = one("instance: [\n", POLICY);
    assert!(e.message.starts_with("YAML syntax"), "{}", e.message);
    assert!(e.line.is_some());
}

#[test]
fn route_to_unknown_peer_points_into_the_policy_file() {
    let policy = POLICY.replace("route: [carrier]", "route: [carrier, nobody]");
    let e = one(CONFIG, &policy);
    assert!(e.file.ends_with("policy.yaml"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(4), "rules[0].then.route[1]")
    );
    assert!(e.message.contains("unknown peer `nobody`"));
    let policy = POLICY.replace("from_peer: pbx", "from_peer: [pbx, pbz]");
    let e = one(CONFIG, &policy);
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(3), "rules[0].when.from_peer[1]")
    );
}

#[test]
fn policy_errors_carry_policy_file_line_and_key() {
    let policy = "\
rules:
  - name: a
    when:
      to_user: '^(unclosed'
    then: {route: [carrier]}
  - name: b
    then: {reject: 200}
  - name: c
    then: {route: [carrier], reject: 403}
  - name: a
    then: {reject: 486}
";
    let e = errors(CONFIG, policy);
    let got: Vec<(Option<usize>, &str)> = e.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(4), "rules[0].when.to_user"),
            (Some(7), "rules[1].then.reject"),
            (Some(9), "rules[2].then"),
            (Some(10), "rules[3].name"),
        ],
        "{e:#?}"
    );
    assert!(e.iter().all(|e| e.file.ends_with("policy.yaml")));
}

#[test]
fn policy_unknown_key_is_an_error() {
    let policy = POLICY.replace("when: {from_peer: pbx}", "when: {from_peer: pbx, to: x}");
    let e = one(CONFIG, &policy);
    assert!(e.file.ends_with("policy.yaml"));
    assert_eq!((e.line, e.key.as_str()), (Some(3), "rules[0].when.to"));
}

#[test]
fn missing_policy_file_is_reported_at_the_policy_key() {
    let cfg = CONFIG.replace("policy: policy.yaml", "policy: nowhere.yaml");
    let e = one(&cfg, POLICY);
    assert!(e.file.ends_with("config.yaml"));
    assert_eq!((e.line, e.key.as_str()), (Some(12), "policy"));
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("etc");
    fs::create_dir_all(&sub).unwrap();
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    fs::write(dir.path().join("policies/p.yaml"), POLICY).unwrap();
    super::tls_tests::write_pki(&sub);
    fs::rename(sub.join("a.pem"), sub.join("cert.pem")).unwrap();
    fs::rename(sub.join("a.key"), sub.join("key.pem")).unwrap();
    let cfg = CONFIG.replace(
        "policy: policy.yaml",
        "policy: ../policies/p.yaml\ncdr: {sqlite: ./cdr.sqlite}",
    ) + "";
    let cfg = cfg.replace(
        "      address: 127.0.0.1:5060\n",
        "      address: 127.0.0.1:5060\n    - name: tls\n      transport: tls\n      address: 127.0.0.1:5061\n      tls: {cert: cert.pem, key: ./key.pem}\n",
    );
    fs::write(sub.join("veil.yaml"), cfg).unwrap();
    let l = load(&sub.join("veil.yaml")).unwrap();
    assert_eq!(
        l.config.cdr.sqlite.as_deref(),
        Some(sub.join("cdr.sqlite").as_path())
    );
    let tls = l.config.sip.listen[1].tls.as_ref().unwrap();
    assert_eq!(tls.cert, sub.join("cert.pem"));
    assert_eq!(tls.key, sub.join("key.pem"));
    assert!(l.config.policy.ends_with("policies/p.yaml") && l.config.policy.is_absolute());
}

#[test]
fn tls_listener_checks() {
    let tls = |block: &str| {
        CONFIG.replace(
            "      address: 127.0.0.1:5060\n",
            &format!("      address: 127.0.0.1:5060\n    - name: tls\n      transport: tls\n      address: 127.0.0.1:5061\n{block}"),
        )
    };
    let e = one(&tls(""), POLICY);
    assert_eq!(e.key, "sip.listen[1].tls");
    let e = errors(
        &tls("      tls: {cert: missing.pem, key: missing.key}\n"),
        POLICY,
    );
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].line, e[0].key.as_str()),
        (Some(10), "sip.listen[1].tls.cert")
    );
    assert!(e[0].message.contains("missing.pem"));
    assert_eq!(e[1].key, "sip.listen[1].tls.key");
    let e = one(
        &CONFIG.replace(
            "address: 127.0.0.1:5060\n",
            "address: 127.0.0.1:5060\n      tls: {cert: c, key: k}\n",
        ),
        POLICY,
    );
    assert_eq!(e.key, "sip.listen[0].tls");
}

#[test]
fn semantic_errors_are_all_collected() {
    let cfg = "\
instance: t
sip:
  listen:
    - {name: public, transport: udp, address: 127.0.0.1:5060, advertise: 'bad host!'}
    - {name: public, transport: tcp, address: 127.0.0.1:5060}
media:
  ports: 30001-30002
peers:
  - name: pbx
    address: 127.0.0.2:5060
    listen: nope
  - name: pbx
    address: 127.0.0.3
    transport: tls
    codecs: []
policy: policy.yaml
log: {level: verbose}
";
    let e = errors(cfg, POLICY);
    // The policy's route to `carrier` (not a peer here) is reported too, in the policy file.
    assert!(e.last().unwrap().file.ends_with("policy.yaml"));
    let got: Vec<(Option<usize>, &str)> = e.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(4), "sip.listen[0].advertise"),
            (Some(5), "sip.listen[1].name"),
            (Some(7), "media.ports"),
            (Some(11), "peers[0].listen"),
            (Some(12), "peers[1].name"),
            (Some(14), "peers[1].transport"),
            (Some(15), "peers[1].codecs"),
            (Some(17), "log.level"),
            (Some(4), "rules[0].then.route[0]"),
        ],
        "{e:#?}"
    );
}

#[test]
fn uri_address_sets_transport_and_dns_peer_warns() {
    let cfg = CONFIG
        .replace("      address: 127.0.0.1:5060\n", "      address: 127.0.0.1:5060\n    - {name: t, transport: tcp, address: 127.0.0.1:5060}\n")
        .replace("address: 127.0.0.3\n", "address: 'sip:carrier.example.net;transport=tcp'\n");
    let (_d, path) = setup(&cfg, POLICY);
    let l = load(&path).unwrap();
    let c = &l.config.peers[1];
    assert_eq!(
        (c.transport, c.listen.as_deref()),
        (Transport::Tcp, Some("t"))
    );
    assert!(c.sources.is_empty());
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].key, "peers[1].sources");
    // Written transport contradicting the URI is an error.
    let bad = cfg.replace("transport=tcp'\n", "transport=tcp'\n    transport: udp\n");
    assert_eq!(one(&bad, POLICY).key, "peers[1].transport");
}

#[test]
fn check_returns_exit_codes() {
    let (_d, path) = setup(CONFIG, POLICY);
    assert_eq!(check(&path), 0);
    let (_d, path) = setup(&CONFIG.replace("instance", "instanse"), POLICY);
    assert_eq!(check(&path), 1);
}

#[test]
fn error_display_is_file_line_key_message() {
    let e = ConfigError {
        file: "a.yaml".into(),
        line: Some(3),
        key: "peers[0].name".into(),
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "a.yaml:3: peers[0].name: m");
}

#[test]
fn bare_dash_items_are_checked_alone() {
    let cfg = CONFIG
        .replace(
            "  - name: carrier\n",
            "  -\n    name: carrier\n    srtp: maybe\n",
        )
        .replace("address: 127.0.0.2:5060", "address: 127.0.0.2:0");
    let e = errors(&cfg, POLICY);
    let got: Vec<(Option<usize>, &str)> = e.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [(Some(9), "peers[0].address"), (Some(12), "peers[1].srtp")],
        "{e:#?}"
    );
    assert!(
        e[1].message.contains("maybe") && e[1].message.contains("off"),
        "{}",
        e[1].message
    );
}

#[test]
fn dns_section_defaults_values_and_strictness() {
    let (_dir, path) = setup(CONFIG, POLICY);
    let l = load(&path).unwrap();
    assert!(l.config.dns.servers.is_empty());
    assert_eq!(l.config.dns.timeout.0, std::time::Duration::from_secs(2));
    assert_eq!(l.config.dns.attempts, 2);

    let with =
        format!("{CONFIG}dns: {{servers: [\"127.0.0.1:5353\"], timeout: 500ms, attempts: 3}}\n");
    let (_dir, path) = setup(&with, POLICY);
    let l = load(&path).unwrap();
    assert_eq!(l.config.dns.servers, ["127.0.0.1:5353".parse().unwrap()]);
    assert_eq!(
        l.config.dns.timeout.0,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(l.config.dns.attempts, 3);

    let e = one(&format!("{CONFIG}dns:\n  server: [127.0.0.1]\n"), POLICY);
    assert_eq!(e.key, "dns.server");
    assert_eq!(e.line, Some(14));
    let e = one(&format!("{CONFIG}dns: {{attempts: 0}}\n"), POLICY);
    assert_eq!(e.key, "dns.attempts");
}

#[test]
fn cdr_spool_rows_default_value_and_bounds() {
    let (_dir, path) = setup(CONFIG, POLICY);
    assert_eq!(load(&path).unwrap().config.cdr.spool_rows, 100_000);
    let (_dir, path) = setup(&format!("{CONFIG}cdr: {{spool_rows: 500}}\n"), POLICY);
    assert_eq!(load(&path).unwrap().config.cdr.spool_rows, 500);
    for bad in ["0", "10000001"] {
        let e = one(&format!("{CONFIG}cdr:\n  spool_rows: {bad}\n"), POLICY);
        assert_eq!(e.key, "cdr.spool_rows", "{bad}");
        assert_eq!(e.line, Some(14), "{bad}");
        assert!(e.message.contains("between 1 and 10000000"), "{e:?}");
    }
    let e = one(&format!("{CONFIG}cdr: {{spool_rows: -1}}\n"), POLICY);
    assert_eq!(e.key, "cdr.spool_rows");
}
