//! Out-of-dialog MESSAGE, REGISTER, OPTIONS relayed through the engine: what leg B gets,
//! what leg A gets back, that nothing of either side crosses, and that rules without
//! `method` keep matching INVITE only.

use std::time::Duration;

use crate::sip::{HeaderName, Message, SipHeaders};

use super::{BACKUP, CARRIER, CONFIG, Harness, PBX, POLICY, response_head};

const RELAY_POLICY: &str = r#"
rules:
  - name: im
    when: {from_peer: pbx, method: [MESSAGE, PUBLISH]}
    then: {route: [carrier, backup]}
  - name: reg
    when: {from_peer: pbx, method: REGISTER}
    then: {route: [carrier]}
  - name: ping-carrier
    when: {from_peer: pbx, method: OPTIONS, to_user: '^carrier$'}
    then: {route: [carrier]}
  - name: no-im-from-carrier
    when: {from_peer: carrier, method: MESSAGE}
    then: {reject: 488}
  - name: out
    when: {from_peer: pbx, to_user: '^[0-9]+$'}
    then: {route: [carrier, backup]}
  - name: deny
    then: {reject: 403}
"#;

/// What must not reach the carrier from the PBX's request.
const A_SECRETS: &[&str] = &[
    "127.0.0.2",
    "pbxtag",
    "a-msg-1",
    "z9hG4bKpbxm",
    "PBX-Internal",
    "X-Secret",
];
const B_SECRETS: &[&str] = &["127.0.0.3", "127.0.0.4", "Carrier-Switch", "b-secret"];

fn assert_clean(texts: &[(Message, String)], secrets: &[&str], side: &str) {
    for (_, t) in texts {
        for s in secrets {
            assert!(!t.contains(s), "{side} received {s:?}:\n{t}");
        }
    }
}

fn request_in(sent: &[(Message, String)], method: &str) -> crate::sip::Request {
    sent.iter()
        .find_map(|(m, _)| match m {
            Message::Request(r) if r.method.as_str() == method => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {method} in {sent:?}"))
}

fn message_from_pbx(method: &str, user: &str, cseq: u32, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:{user}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxm{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:{user}@127.0.0.1>\r\n\
         Call-ID: a-msg-1\r\nCSeq: {cseq} {method}\r\nUser-Agent: PBX-Internal\r\nX-Secret: topology\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The far end's final answer to `req`, with a header of its own and `extra` lines.
fn far_answer(req: &crate::sip::Request, code: u16, extra: &str) -> String {
    format!(
        "{}Server: Carrier-Switch 9\r\nX-B: b-secret\r\n{extra}Content-Length: 0\r\n\r\n",
        response_head(req, code).replace("Contact: <sip:bob@127.0.0.3:5060>\r\n", "")
    )
}

#[test]
fn message_crosses_as_a_new_request_and_its_answer_comes_back() {
    let mut h = Harness::with(CONFIG, RELAY_POLICY);
    let body = "hello from alice";
    h.inject(
        PBX,
        &message_from_pbx(
            "MESSAGE",
            "4930123456",
            7,
            "Contact: <sip:alice@127.0.0.2:5060>\r\nContent-Type: text/plain\r\n",
            body,
        ),
    );
    let sent = h.take(CARRIER);
    assert_clean(&sent, A_SECRETS, "carrier");
    let b = request_in(&sent, "MESSAGE");
    assert_eq!(b.uri.to_string(), "sip:4930123456@127.0.0.3:5060");
    assert_ne!(b.call_id().unwrap(), "a-msg-1");
    assert_eq!(&b.body[..], body.as_bytes());
    assert_eq!(b.content_type(), Some("text/plain"));
    assert!(
        b.headers
            .get(&HeaderName::Via)
            .unwrap()
            .starts_with("SIP/2.0/UDP 127.0.0.1:5060;")
    );
    assert_eq!(b.cseq().unwrap().method.as_str(), "MESSAGE");
    assert!(
        !b.headers.contains(&HeaderName::Contact),
        "no caller Contact"
    );
    assert_eq!(b.max_forwards(), Some(Ok(69)));

    h.inject(CARRIER, &far_answer(&b, 202, ""));
    let back = h.take(PBX);
    assert_clean(&back, B_SECRETS, "pbx");
    let r = back
        .iter()
        .find_map(|(m, _)| match m {
            Message::Response(r) => Some(r.clone()),
            _ => None,
        })
        .expect("an answer to the PBX");
    assert_eq!(r.code, 202);
    assert_eq!(r.call_id().unwrap(), "a-msg-1");
    assert!(
        r.headers
            .get(&HeaderName::Via)
            .unwrap()
            .contains("z9hG4bKpbxm7")
    );
    assert!(r.to_hdr().unwrap().tag().is_some(), "final answer tagged");
    assert!(
        !h.engine
            .owners
            .values()
            .any(|o| matches!(o, crate::b2bua::owner::TxOwner::Standalone(_))),
        "nothing kept after the answer"
    );
}

#[test]
fn message_fails_over_on_timeout_and_maps_the_last_answer() {
    let mut h = Harness::with(CONFIG, RELAY_POLICY);
    h.inject(PBX, &message_from_pbx("MESSAGE", "4930123456", 1, "", ""));
    let first = h.take_request(CARRIER, "MESSAGE");
    h.advance(Duration::from_secs(40)); // timer F on the carrier
    let second = h.take_request(BACKUP, "MESSAGE");
    assert_ne!(first.call_id().unwrap(), second.call_id().unwrap());
    h.inject(BACKUP, &far_answer(&second, 503, "Retry-After: 10\r\n"));
    let r = h.take_response(PBX, 503);
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some("10"));
    assert!(
        !h.engine
            .owners
            .values()
            .any(|o| matches!(o, crate::b2bua::owner::TxOwner::Standalone(_)))
    );
}

#[test]
fn rules_without_method_match_invite_only() {
    // The engine tests' standard policy names no method: MESSAGE keeps its 405.
    let mut h = Harness::with(CONFIG, POLICY);
    h.inject(PBX, &message_from_pbx("MESSAGE", "4930123456", 1, "", "hi"));
    let r = h.take_response(PBX, 405);
    assert!(r.headers.get(&HeaderName::Allow).is_some());
    assert!(h.take(CARRIER).is_empty(), "nothing relayed");
    // A rule naming the method can reject it.
    let mut h = Harness::with(CONFIG, RELAY_POLICY);
    h.inject(
        CARRIER,
        &message_from_pbx("MESSAGE", "1", 1, "", "")
            .replace("127.0.0.2:5060;branch", "127.0.0.3:5060;branch"),
    );
    h.take_response(CARRIER, 488);
    // OPTIONS to veil itself (no rule for its user) is still answered by veil.
    h.inject(PBX, &message_from_pbx("OPTIONS", "veil", 2, "", ""));
    h.take_response(PBX, 200);
    assert!(h.take(CARRIER).is_empty());
}

#[test]
fn options_to_a_peer_is_relayed() {
    let mut h = Harness::with(CONFIG, RELAY_POLICY);
    h.inject(PBX, &message_from_pbx("OPTIONS", "carrier", 3, "", ""));
    let b = h.take_request(CARRIER, "OPTIONS");
    h.inject(CARRIER, &far_answer(&b, 200, "Allow: INVITE, ACK, BYE\r\n"));
    let r = h.take_response(PBX, 200);
    assert_eq!(r.headers.get(&HeaderName::Allow), Some("INVITE, ACK, BYE"));
}

#[test]
fn register_is_relayed_with_veils_contact_and_end_to_end_digest() {
    let mut h = Harness::with(CONFIG, RELAY_POLICY);
    let reg = |cseq: u32, extra: &str| {
        message_from_pbx("REGISTER", "", cseq, extra, "")
            .replace(
                "REGISTER sip:@127.0.0.1:5060",
                "REGISTER sip:127.0.0.1:5060",
            )
            .replace("To: <sip:@127.0.0.1>", "To: <sip:alice@127.0.0.1>")
    };
    let contact = "Contact: <sip:alice@127.0.0.2:5060>;expires=600\r\nExpires: 600\r\n";
    h.inject(PBX, &reg(1, contact));
    let sent = h.take(CARRIER);
    assert_clean(&sent, A_SECRETS, "registrar");
    let b = request_in(&sent, "REGISTER");
    assert_eq!(
        b.uri.to_string(),
        "sip:127.0.0.3:5060",
        "the registrar's domain"
    );
    assert!(
        b.to_hdr()
            .unwrap()
            .uri
            .to_string()
            .starts_with("sip:alice@")
    );
    assert_eq!(
        b.headers.get(&HeaderName::Contact),
        Some("<sip:127.0.0.1:5060>;expires=600")
    );
    assert_eq!(b.headers.get(&HeaderName::Expires), Some("600"));

    // No credentials for the carrier: its challenge goes back to the caller.
    let challenge = r#"WWW-Authenticate: Digest realm="reg", nonce="n1", algorithm=MD5"#;
    h.inject(CARRIER, &far_answer(&b, 401, &format!("{challenge}\r\n")));
    let r = h.take_response(PBX, 401);
    assert!(
        r.headers
            .get(&HeaderName::WwwAuthenticate)
            .unwrap()
            .contains("nonce=\"n1\"")
    );

    let auth = r#"Authorization: Digest username="alice", realm="reg", nonce="n1", uri="sip:127.0.0.1:5060", response="0123456789abcdef0123456789abcdef""#;
    h.inject(PBX, &reg(2, &format!("{contact}{auth}\r\n")));
    let b2 = h.take_request(CARRIER, "REGISTER");
    assert_eq!(
        b2.call_id().unwrap(),
        b.call_id().unwrap(),
        "one UA to the registrar"
    );
    assert_eq!(b2.from_hdr().unwrap().tag(), b.from_hdr().unwrap().tag());
    assert_eq!(b2.cseq().unwrap().seq, b.cseq().unwrap().seq + 1);
    assert!(
        b2.headers
            .get(&HeaderName::Authorization)
            .unwrap()
            .contains("username=\"alice\"")
    );
    h.inject(
        CARRIER,
        &far_answer(&b2, 200, "Contact: <sip:127.0.0.1:5060>;expires=300\r\n"),
    );
    let back = h.take(PBX);
    assert_clean(&back, B_SECRETS, "pbx");
    let ok = back
        .iter()
        .find_map(|(m, _)| match m {
            Message::Response(r) if r.code == 200 => Some(r.clone()),
            _ => None,
        })
        .expect("200 to the REGISTER");
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some("<sip:alice@127.0.0.2:5060>;expires=600"),
        "the caller's own binding comes back"
    );
    assert_eq!(
        ok.headers.get(&HeaderName::Expires),
        Some("300"),
        "what was granted"
    );
}

#[test]
fn challenge_from_a_peer_veil_has_credentials_for_is_answered_by_veil() {
    let config = CONFIG.replace(
        "- {name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32]}",
        "- {name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32], auth: {username: veil, password: pw}}",
    );
    let mut h = Harness::with(&config, RELAY_POLICY);
    h.inject(PBX, &message_from_pbx("MESSAGE", "4930123456", 1, "", "x"));
    let b = h.take_request(CARRIER, "MESSAGE");
    let challenge = r#"WWW-Authenticate: Digest realm="c", nonce="n9", algorithm=MD5"#;
    h.inject(CARRIER, &far_answer(&b, 401, &format!("{challenge}\r\n")));
    assert!(
        h.take(PBX)
            .iter()
            .all(|(m, _)| !matches!(m, Message::Response(r) if r.code == 401))
    );
    let b2 = h.take_request(CARRIER, "MESSAGE");
    assert!(
        b2.headers
            .get(&HeaderName::Authorization)
            .unwrap()
            .contains("username=\"veil\"")
    );
    h.inject(CARRIER, &far_answer(&b2, 200, ""));
    h.take_response(PBX, 200);
    assert!(
        !h.engine
            .owners
            .values()
            .any(|o| matches!(o, crate::b2bua::owner::TxOwner::Standalone(_)))
    );
}
