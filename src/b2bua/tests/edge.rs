//! Edge scenarios: digest authentication towards a challenging carrier.

use super::*;

const CARRIER_LINE: &str = "{name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32]}";

fn with_auth() -> Harness {
    Harness::with_config(&CONFIG.replace(
        CARRIER_LINE,
        "{name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32], auth: {username: veil, password: s3cret}}",
    ))
}

/// A final response carrying a challenge header.
fn challenge(req: &Request, code: u16, header: &str) -> String {
    answer(req, code, false).replace(
        "Content-Length: 0",
        &format!("{header}\r\nContent-Length: 0"),
    )
}

const PROXY_CHALLENGE: &str = r#"Proxy-Authenticate: Digest realm="carrier.test", nonce="n0nce", qop="auth", algorithm=MD5, opaque="op""#;

fn cseq(r: &Request) -> u32 {
    r.cseq().unwrap().seq
}

#[test]
fn challenged_invite_is_sent_again_with_credentials() {
    let mut h = with_auth();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take(PBX);
    let first = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &challenge(&first, 407, PROXY_CHALLENGE));
    let sent = h.take(CARRIER);
    let ack = sent
        .iter()
        .find_map(|(m, _)| match m {
            Message::Request(r) if r.method.as_str() == "ACK" => Some(r.clone()),
            _ => None,
        })
        .expect("the 407 is acknowledged");
    assert_eq!(cseq(&ack), cseq(&first));
    let (second, text) = sent
        .iter()
        .find_map(|(m, t)| match m {
            Message::Request(r) if r.method.as_str() == "INVITE" => Some((r.clone(), t.clone())),
            _ => None,
        })
        .expect("INVITE sent again");
    assert_eq!(cseq(&second), cseq(&first) + 1);
    assert_eq!(second.call_id().unwrap(), first.call_id().unwrap());
    assert_eq!(
        second.from_hdr().unwrap().tag(),
        first.from_hdr().unwrap().tag()
    );
    assert_ne!(
        second.top_via().unwrap().branch(),
        first.top_via().unwrap().branch()
    );
    let auth = second.headers.get(&HeaderName::ProxyAuthorization).unwrap();
    assert!(auth.starts_with("Digest username=\"veil\""), "{auth}");
    assert!(auth.contains("realm=\"carrier.test\""), "{auth}");
    assert!(
        auth.contains("qop=auth") && auth.contains("nc=00000001"),
        "{auth}"
    );
    assert!(auth.contains("opaque=\"op\""), "{auth}");
    assert!(
        !text.contains("s3cret"),
        "the password itself never goes out"
    );
    // The caller heard nothing of the challenge.
    assert!(h.take(PBX).is_empty());

    h.inject(CARRIER, &answer(&second, 200, true));
    let ok = h.take_response(PBX, 200);
    assert!(ok.headers.get(&HeaderName::ProxyAuthenticate).is_none());
    let ack = h.take_request(CARRIER, "ACK");
    assert_eq!(cseq(&ack), cseq(&second), "the 2xx ACK names the new CSeq");

    // BYE from the caller; the carrier challenges the BYE too (same nonce: nc counts up).
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog(
            "BYE",
            "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag",
            &to_hdr,
            "a-call-1",
            11,
            "127.0.0.2:5060",
        ),
    );
    h.take_response(PBX, 200);
    let bye = h.take_request(CARRIER, "BYE");
    assert!(bye.headers.get(&HeaderName::ProxyAuthorization).is_none());
    h.inject(CARRIER, &challenge(&bye, 407, PROXY_CHALLENGE));
    let bye2 = h.take_request(CARRIER, "BYE");
    assert_eq!(cseq(&bye2), cseq(&bye) + 1);
    let auth = bye2.headers.get(&HeaderName::ProxyAuthorization).unwrap();
    assert!(auth.contains("nc=00000002"), "{auth}");
    h.inject(CARRIER, &answer(&bye2, 200, false));
    h.advance(Duration::from_secs(40));
    assert_eq!(h.engine.transaction_count(), 0);
}

#[test]
fn second_challenge_fails_the_call_with_403() {
    let mut h = with_auth();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take(PBX);
    let first = h.take_request(CARRIER, "INVITE");
    let www = r#"WWW-Authenticate: Digest realm="carrier.test", nonce="a", algorithm=SHA-256, qop="auth""#;
    h.inject(CARRIER, &challenge(&first, 401, www));
    let second = h.take_request(CARRIER, "INVITE");
    let auth = second.headers.get(&HeaderName::Authorization).unwrap();
    assert!(auth.contains("algorithm=SHA-256"), "{auth}");
    h.inject(CARRIER, &challenge(&second, 401, www));
    let sent = h.take(CARRIER);
    assert!(
        !sent
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "INVITE")),
        "one retry only"
    );
    let fail = h.take_response(PBX, 403);
    assert!(fail.headers.get(&HeaderName::WwwAuthenticate).is_none());
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn challenge_from_a_peer_without_credentials_is_403_for_the_caller() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take(PBX);
    let first = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &challenge(&first, 407, PROXY_CHALLENGE));
    let fail = h.take_response(PBX, 403);
    assert!(fail.headers.get(&HeaderName::ProxyAuthenticate).is_none());
    assert!(
        !h.take(CARRIER)
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "INVITE"))
    );
}

const BACKUP_LINE: &str = "{name: backup, address: 127.0.0.4:5060, sources: [127.0.0.4/32]}";

fn with_keepalive() -> Harness {
    Harness::with_config(&CONFIG.replace(
        CARRIER_LINE,
        "{name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32], keepalive: 30s}",
    ))
}

fn peer_up(h: &Harness, peer: &str) -> Option<String> {
    let text = h.engine.metrics.render();
    text.lines()
        .find(|l| l.starts_with("veil_peer_up") && l.contains(&format!("peer=\"{peer}\"")))
        .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
}

fn answer_options(h: &mut Harness, to: &str) -> Request {
    let probe = h.take_request(to, "OPTIONS");
    h.inject(to, &answer(&probe, 200, false));
    probe
}

#[test]
fn keepalive_takes_a_silent_peer_out_of_routing_and_back() {
    let mut h = with_keepalive();
    h.advance(Duration::from_millis(1));
    let probe = answer_options(&mut h, CARRIER);
    assert_eq!(probe.uri.to_string(), "sip:127.0.0.3:5060");
    assert_eq!(peer_up(&h, "carrier").as_deref(), Some("1"));
    assert!(
        h.take(BACKUP).is_empty(),
        "no keepalive configured for backup"
    );

    // The next probe goes unanswered: after timer F the carrier is down.
    h.advance(Duration::from_secs(30));
    h.take_request(CARRIER, "OPTIONS");
    h.advance(Duration::from_secs(33));
    h.take(CARRIER); // retransmissions and the next probe
    assert_eq!(peer_up(&h, "carrier").as_deref(), Some("0"));

    // A call now skips the carrier and goes straight to the backup.
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take_request(BACKUP, "INVITE");
    assert!(
        !h.take(CARRIER)
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "INVITE"))
    );

    // It answers a probe again: back in routing.
    h.advance(Duration::from_secs(31));
    answer_options(&mut h, CARRIER);
    assert_eq!(peer_up(&h, "carrier").as_deref(), Some("1"));
    h.inject(PBX, &invite_from_pbx("a-call-2", "0123456"));
    h.take_request(CARRIER, "INVITE");
}

#[test]
fn received_and_rport_are_added_to_the_callers_via() {
    let mut h = Harness::new();
    let invite = invite_from_pbx("a-call-1", "0123456").replace(
        "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxa-call-1",
        "Via: SIP/2.0/UDP 10.1.1.1:5062;branch=z9hG4bKpbxa-call-1;rport",
    );
    h.inject(PBX, &invite);
    let trying = h.take_response(PBX, 100);
    assert_eq!(
        trying.headers.get(&HeaderName::Via).unwrap(),
        "SIP/2.0/UDP 10.1.1.1:5062;branch=z9hG4bKpbxa-call-1;received=127.0.0.2;rport=5060"
    );
}

#[test]
fn nat_peer_is_reached_where_its_traffic_comes_from() {
    let mut h = Harness::with_config(&CONFIG.replace(
        BACKUP_LINE,
        "{name: backup, address: 127.0.0.4:5060, sources: [127.0.0.4/32], nat: true}",
    ));
    // The backup's calls come from a NATed source port, not its configured 5060.
    let natted = "127.0.0.4:41000";
    let invite = invite_from_pbx("b-call-1", "0123456")
        .replace("127.0.0.2:5060;branch", "192.168.1.10:5060;branch")
        .replace(
            "<sip:alice@127.0.0.2:5060>",
            "<sip:alice@192.168.1.10:5060>",
        );
    h.inject(natted, &invite);
    let b_inv = h.take_request(PBX, "INVITE");
    h.inject(PBX, &answer(&b_inv, 200, true));
    let ok = h.take_response(natted, 200);
    h.take(PBX);
    // The binding moves (NAT rebinding); an in-dialog request comes from the new port.
    let moved = "127.0.0.4:41999";
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from_hdr = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    h.inject(
        moved,
        &in_dialog(
            "INFO",
            from_hdr,
            &to_hdr,
            "b-call-1",
            11,
            "192.168.1.10:5060",
        ),
    );
    let info = h.take_request(PBX, "INFO");
    h.inject(PBX, &answer(&info, 200, false));
    h.take_response(moved, 200);
    // veil ends the call (shutdown): the BYE goes to the latest source, not to the
    // Contact (192.168.1.10) nor the configured address.
    h.engine.shutdown(h.now);
    h.collect();
    h.take_request(moved, "BYE");
}
