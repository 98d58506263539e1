//! `peers[].sources` with ports, transports and listeners (issue 14 item 8): two trunks on
//! one address load when they can be told apart, and `veil check` names file, line and
//! key of the second when they cannot.

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

/// Two listeners, `pbx`, `carrier`, and a third peer whose lines are `trunk`.
fn config(pbx_sources: &str, trunk: &str) -> String {
    format!(
        "\
instance: t
sip:
  listen:
    - {{name: a, transport: udp, address: 127.0.0.1:5060}}
    - {{name: b, transport: udp, address: 127.0.0.1:5080}}
    - {{name: t, transport: tcp, address: 127.0.0.1:5060}}
peers:
  - name: pbx
    address: 127.0.0.2:5060
    sources: {pbx_sources}
  - name: carrier
    address: 127.0.0.3
  - name: trunk
    address: 127.0.0.2:5070
{trunk}policy: policy.yaml
"
    )
}

fn load_str(config: &str) -> Result<LoadedConfig, Vec<ConfigError>> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.yaml"), config).unwrap();
    fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    load(&dir.path().join("config.yaml"))
}

fn one_error(config: &str) -> ConfigError {
    match load_str(config) {
        Ok(_) => panic!("expected an error:\n{config}"),
        Err(e) => {
            assert_eq!(e.len(), 1, "{e:#?}");
            e.into_iter().next().unwrap()
        }
    }
}

/// 1-based line of the first line of `config` containing `needle`.
fn line_of(config: &str, needle: &str) -> usize {
    config.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn peers_on_one_address_told_apart_by_port_listener_or_prefix_load() {
    for (pbx, trunk) in [
        (
            "[\"127.0.0.2:5060\"]",
            "    sources: [\"127.0.0.2:5070\"]\n",
        ),
        (
            "[127.0.0.2/32]",
            "    sources: [{address: 127.0.0.2, listen: b}]\n",
        ),
        ("[127.0.0.2/32]", "    sources: [\"127.0.0.2:5070\"]\n"),
        ("[127.0.0.0/8]", "    sources: [127.0.0.2/32]\n"),
        (
            "[{address: 127.0.0.2, transport: udp}]",
            "    sources: [{address: 127.0.0.2, transport: tcp}]\n",
        ),
    ] {
        let c = config(pbx, trunk);
        let l = load_str(&c).unwrap_or_else(|e| panic!("{c}\n{e:#?}"));
        assert_eq!(l.config.peers[2].sources.len(), 1);
    }
}

#[test]
fn same_traffic_for_two_peers_is_an_error_at_the_second_with_the_first_s_line() {
    let c = config("[127.0.0.2/32]", "    sources: [\"127.0.0.2\"]\n");
    let e = one_error(&c);
    assert_eq!(e.key, "peers[2].sources[0]");
    assert_eq!(e.line, Some(line_of(&c, "sources: [\"127.0.0.2\"]")));
    let first = line_of(&c, "sources: [127.0.0.2/32]");
    assert!(
        e.message
            .contains(&format!("peers[0].sources[0], line {first}"))
            && e.message.contains("peer `pbx`")
            && e.message.contains("neither is more specific"),
        "{}",
        e.message
    );
    let shown = e.to_string();
    assert!(
        shown.contains(&format!(
            "config.yaml:{}: peers[2].sources[0]: ",
            e.line.unwrap()
        )),
        "{shown}"
    );
}

#[test]
fn each_more_specific_in_another_part_is_ambiguous() {
    // 127.0.0.2:5070 matches both: one has the longer prefix, the other the port.
    let c = config("[127.0.0.2/32]", "    sources: [\"127.0.0.0/24:5070\"]\n");
    assert_eq!(one_error(&c).key, "peers[2].sources[0]");
    // A port against a listener.
    let c = config(
        "[\"127.0.0.2:5070\"]",
        "    sources: [{address: 127.0.0.2, listen: a}]\n",
    );
    assert_eq!(one_error(&c).key, "peers[2].sources[0]");
}

#[test]
fn peers_without_sources_on_one_address_are_reported_at_the_address() {
    let c = config("[127.0.0.9/32]", "").replace(
        "    address: 127.0.0.2:5060\n    sources: [127.0.0.9/32]\n",
        "    address: 127.0.0.2:5060\n",
    );
    let e = one_error(&c);
    assert_eq!(e.key, "peers[2].address");
    assert_eq!(e.line, Some(line_of(&c, "address: 127.0.0.2:5070")));
    assert!(e.message.contains("peers[0].address"), "{}", e.message);
}

#[test]
fn entry_shape_errors_name_their_key() {
    let c = config("[\"127.0.0.2:0\"]", "");
    let e = one_error(&c);
    assert_eq!(e.key, "peers[0].sources[0]", "{e:?}");
    assert!(e.message.contains("invalid port"), "{}", e.message);

    let c = config("[{address: 127.0.0.2, listen: nope}]", "");
    let e = one_error(&c);
    assert_eq!(e.key, "peers[0].sources[0].listen");
    assert!(
        e.message.contains("unknown listener `nope`"),
        "{}",
        e.message
    );

    let c = config("[{address: 127.0.0.2, listen: t, transport: udp}]", "");
    let e = one_error(&c);
    assert_eq!(e.key, "peers[0].sources[0].transport");

    let c = config("[{address: 127.0.0.2, port: 5060}]", "");
    let e = one_error(&c);
    assert!(e.message.contains("port"), "{e:?}");
}

#[test]
fn message_valve_defaults_and_burst() {
    let l = load_str(&config(
        "[127.0.0.2/32]",
        "    sources: [\"127.0.0.2:5070\"]\n",
    ))
    .unwrap();
    assert_eq!(l.config.peers[0].limits.message_valve(), (10_000, 20_000));
    let c = config(
        "[127.0.0.2/32]",
        "    sources: [\"127.0.0.2:5070\"]\n    limits: {messages_per_second: 50, messages_burst: 0}\n",
    );
    let e = one_error(&c);
    assert_eq!(e.key, "peers[2].limits.messages_burst");
    let c = config(
        "[127.0.0.2/32]",
        "    sources: [\"127.0.0.2:5070\"]\n    limits: {messages_per_second: 50}\n",
    );
    assert_eq!(
        load_str(&c).unwrap().config.peers[2].limits.message_valve(),
        (50, 100)
    );
}
