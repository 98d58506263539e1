//! Out-of-dialog MESSAGE and REGISTER through veil (issue 7): allowed only by a policy rule
//! naming the method, relayed as new requests on leg B, the answer mapped back to leg A,
//! nothing of either side crossing. The REGISTER's digest challenge goes back to the
//! caller (veil has no credentials for the registrar) and the caller's answer is checked
//! by the registrar (SIPp verifyauth).

mod common;

use std::time::Duration;

use common::{Lab, Setup, Side, assert_all_succeeded, assert_no_leaks};

const POLICY: &str = "rules:
  - name: im
    when: {from_peer: pbx, method: MESSAGE}
    then: {route: [carrier]}
  - name: reg
    when: {from_peer: pbx, method: REGISTER}
    then: {route: [carrier]}
  - name: deny
    then: {reject: 403}
";

/// veil with [`POLICY`] instead of the standard one.
fn lab(slot: u16) -> (Lab, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("relay-policy.yaml");
    std::fs::write(&policy, POLICY).expect("write policy");
    let lab = Lab::start_edited(slot, &Setup::standard(), |c| {
        c.replace(
            "policy: policy.yaml",
            &format!("policy: {}", policy.display()),
        )
    });
    (lab, dir)
}

#[test]
fn message_is_relayed_without_leaks() {
    let (lab, _policy) = lab(76);
    let callee = lab.sipp(Side::Carrier, "uas_message.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_message.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &callee]);
    assert_no_leaks(&[&caller, &callee]);
    let got = callee.received_requests("MESSAGE");
    assert_eq!(got.len(), 1, "{}", callee.report());
    let text = &got[0].text;
    assert!(text.contains("hello through veil"), "body lost:\n{text}");
    assert!(
        !text.contains("X-Secret-Topology") && !text.contains("PBX-Internal"),
        "caller headers crossed:\n{text}"
    );
    // No call was made of it.
    assert_eq!(
        lab.metrics().sum("veil_calls_active", &[]).unwrap_or(0.0),
        0.0
    );
}

#[test]
fn register_is_relayed_with_end_to_end_digest_without_leaks() {
    let (lab, _policy) = lab(77);
    let registrar = lab.sipp(Side::Carrier, "uas_register.xml").spawn();
    let ua = lab
        .sipp(Side::Pbx, "uac_register.xml")
        .to(lab.veil_sip())
        .run();
    let registrar = registrar.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&ua, &registrar]);
    assert_no_leaks(&[&ua, &registrar]);
    let got = registrar.received_requests("REGISTER");
    assert_eq!(got.len(), 2, "{}", registrar.report());
    let veil = lab.veil_sip().to_string();
    for r in &got {
        assert!(
            r.text
                .contains(&format!("Contact: <sip:{veil}>;expires=600")),
            "Contact not veil's:\n{}",
            r.text
        );
    }
    assert!(
        got[1].text.contains("Authorization: Digest"),
        "{}",
        got[1].text
    );
}

#[test]
fn message_without_a_rule_gets_405() {
    let (lab, _policy) = lab(78);
    // The carrier has no rule for MESSAGE: 405, as before methods could be routed.
    let from_carrier = lab
        .sipp(Side::Carrier, "uac_message.xml")
        .to(lab.veil_sip())
        .run();
    assert!(
        !from_carrier.succeeded(),
        "MESSAGE from the carrier was relayed"
    );
    let answers: Vec<_> = from_carrier
        .received()
        .filter(|m| m.text.starts_with("SIP/2.0 405"))
        .collect();
    assert!(!answers.is_empty(), "no 405:\n{}", from_carrier.report());
}
