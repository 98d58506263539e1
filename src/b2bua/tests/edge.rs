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
