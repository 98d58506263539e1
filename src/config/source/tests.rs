use super::*;

fn listeners() -> Vec<ListenConfig> {
    let l = |name: &str, transport, port: u16| ListenConfig {
        name: name.into(),
        transport,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        advertise: None,
        tls: None,
    };
    vec![
        l("a", Transport::Udp, 5060),
        l("b", Transport::Udp, 5080),
        l("t", Transport::Tcp, 5060),
    ]
}

fn rule(s: &str, listen: Option<&str>, peer: usize) -> SourceRule {
    let mut src = PeerSource::parse(s).unwrap();
    src.listen = listen.map(Into::into);
    SourceRule::new(&src, peer, 0, &listeners()).unwrap()
}

fn at(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn entry_forms() {
    let p = PeerSource::parse("192.0.2.10:5070").unwrap();
    assert_eq!(
        (p.net.to_string(), p.port),
        ("192.0.2.10/32".into(), Some(5070))
    );
    let p = PeerSource::parse("10.0.0.0/24:5060").unwrap();
    assert_eq!(
        (p.net.to_string(), p.port),
        ("10.0.0.0/24".into(), Some(5060))
    );
    let p = PeerSource::parse("[2001:db8::1]:5060").unwrap();
    assert_eq!(
        (p.net.to_string(), p.port),
        ("2001:db8::1/128".into(), Some(5060))
    );
    let p = PeerSource::parse("[2001:db8::/64]:5060").unwrap();
    assert_eq!(p.to_string(), "[2001:db8::/64]:5060");
    let p = PeerSource::parse("[2001:db8::]/64:5060").unwrap();
    assert_eq!(p.to_string(), "[2001:db8::/64]:5060");
    assert_eq!(PeerSource::parse("2001:db8::/64").unwrap().port, None);
    assert_eq!(PeerSource::parse("10.0.0.1").unwrap().port, None);
    for bad in [
        "10.0.0.1:0",
        "10.0.0.1:70000",
        "10.0.0.1:x",
        "[::1",
        "[::1]5060",
        "10.0.0.1/24:5060",
        "nohost:5060",
    ] {
        assert!(PeerSource::parse(bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn most_specific_entry_wins_whatever_the_order() {
    let rules = vec![
        rule("10.0.0.0/8", None, 0),
        rule("10.0.0.5", None, 1),
        rule("10.0.0.5:5070", None, 2),
        rule("10.0.0.5:5070", Some("b"), 3),
    ];
    for order in [rules.clone(), rules.iter().rev().cloned().collect()] {
        let t = SourceTable::sorted(order);
        assert_eq!(t.lookup(at("10.9.9.9:1"), Transport::Udp, 0), Some(0));
        assert_eq!(t.lookup(at("10.0.0.5:5060"), Transport::Udp, 0), Some(1));
        assert_eq!(t.lookup(at("10.0.0.5:5070"), Transport::Udp, 0), Some(2));
        assert_eq!(t.lookup(at("10.0.0.5:5070"), Transport::Udp, 1), Some(3));
        assert_eq!(t.lookup(at("192.0.2.1:5070"), Transport::Udp, 1), None);
    }
}

#[test]
fn transport_and_listener_bind() {
    let mut over_tcp = PeerSource::parse("10.0.0.5").unwrap();
    over_tcp.transport = Some(Transport::Tcp);
    let r = SourceRule::new(&over_tcp, 0, 0, &listeners()).unwrap();
    assert!(r.matches(at("10.0.0.5:40000"), Transport::Tcp, 2));
    assert!(!r.matches(at("10.0.0.5:40000"), Transport::Udp, 0));
    // A listener implies its transport.
    let l = rule("10.0.0.5", Some("t"), 0);
    assert_eq!(l.transport, Some(Transport::Tcp));
    assert!(!l.matches(at("10.0.0.5:40000"), Transport::Udp, 0));
    let mut unknown = PeerSource::parse("10.0.0.5").unwrap();
    unknown.listen = Some("nope".into());
    assert!(SourceRule::new(&unknown, 0, 0, &listeners()).is_none());
}

#[test]
fn ambiguity() {
    let amb = |a: SourceRule, b: SourceRule| a.ambiguous_with(&b) && b.ambiguous_with(&a);
    // Same entry, two peers.
    assert!(amb(rule("10.0.0.5", None, 0), rule("10.0.0.5", None, 1)));
    // One more specific in every part: fine.
    assert!(!amb(rule("10.0.0.0/8", None, 0), rule("10.0.0.5", None, 1)));
    assert!(!amb(
        rule("10.0.0.5", None, 0),
        rule("10.0.0.5:5070", None, 1)
    ));
    assert!(!amb(
        rule("10.0.0.5", None, 0),
        rule("10.0.0.5", Some("b"), 1)
    ));
    // Different ports or listeners never meet.
    assert!(!amb(
        rule("10.0.0.5:5060", None, 0),
        rule("10.0.0.5:5070", None, 1)
    ));
    assert!(!amb(
        rule("10.0.0.5", Some("a"), 0),
        rule("10.0.0.5", Some("b"), 1)
    ));
    assert!(!amb(rule("10.0.0.5", None, 0), rule("10.0.0.6", None, 1)));
    // Each more specific in a different part: 10.0.0.5:5060 on listener a matches both.
    assert!(amb(
        rule("10.0.0.5", None, 0),
        rule("10.0.0.0/24:5060", None, 1)
    ));
    assert!(amb(
        rule("10.0.0.5:5060", None, 0),
        rule("10.0.0.5", Some("a"), 1)
    ));
    // The same peer twice is not ambiguous.
    assert!(!amb(rule("10.0.0.5", None, 0), rule("10.0.0.5", None, 0)));
    // Families never overlap.
    assert!(!amb(rule("::/0", None, 0), rule("0.0.0.0/0", None, 1)));
}
