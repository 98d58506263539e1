//! Topology hiding spelled out: what the carrier sees of a PBX call and what the PBX sees
//! of the carrier, beyond the generic leak check every call test runs; and the configs the
//! harness writes are valid for veil.

mod common;

use std::time::Duration;

use common::trace::{Direction, param, uri_of};
use common::{Lab, Setup, Side};

#[test]
fn carrier_sees_only_veil() {
    let lab = Lab::start(30, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "caller_bye");

    let sent = caller.sent().next().expect("the PBX sent an INVITE");
    let got = callee.received_requests("INVITE");
    let got = got.first().expect("the carrier received an INVITE");
    for name in ["X-Secret-Topology", "User-Agent"] {
        assert!(
            got.header(name).is_none(),
            "{name} must not be passed to the carrier:\n{}",
            got.text
        );
    }
    assert_ne!(
        got.header("Call-ID"),
        sent.header("Call-ID"),
        "leg B needs its own Call-ID"
    );
    let from_tag = |m: &common::trace::TracedMessage| {
        m.header("From")
            .and_then(|f| param(f, "tag"))
            .map(str::to_string)
    };
    assert_ne!(
        from_tag(got),
        from_tag(sent),
        "leg B needs its own From tag"
    );
    let via = got.headers("Via");
    assert_eq!(
        via.len(),
        1,
        "the carrier must see exactly one Via (veil's):\n{}",
        got.text
    );
    assert!(
        via[0].contains(&format!("127.0.0.1:{}", lab.ports.veil_sip())),
        "Via should be veil's: {}",
        via[0]
    );
    let contact = got.header("Contact").map(uri_of).unwrap_or_default();
    assert!(
        contact.contains("127.0.0.1"),
        "Contact should be veil's: {contact}"
    );
    assert!(
        got.header("Record-Route")
            .is_none_or(|rr| rr.contains("127.0.0.1")),
        "no foreign Record-Route:\n{}",
        got.text
    );
    assert!(
        got.first_line()
            .starts_with(&format!("INVITE sip:{}@127.0.0.3", common::CALLEE_NUMBER)),
        "the Request-URI should target the carrier with the dialled number: {}",
        got.first_line()
    );
}

#[test]
fn pbx_sees_only_veil() {
    let lab = Lab::start(31, &Setup::standard());
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    lab.assert_answered_call(&caller, &callee, "caller_bye");

    let ok = caller
        .received()
        .find(|m| m.status() == Some(200) && m.method() == "INVITE")
        .expect("the PBX received a 200 for its INVITE");
    for name in ["Server", "X-Carrier-Trace"] {
        assert!(
            ok.header(name).is_none(),
            "{name} must not be passed to the PBX:\n{}",
            ok.text
        );
    }
    let contact = ok.header("Contact").map(uri_of).unwrap_or_default();
    assert!(
        contact.contains(&format!("127.0.0.1:{}", lab.ports.veil_sip())),
        "Contact should be veil's: {contact}"
    );
    let carrier_tag = callee.sent().find_map(|m| {
        m.header("To")
            .and_then(|t| param(t, "tag"))
            .map(str::to_string)
    });
    let pbx_tag = ok
        .header("To")
        .and_then(|t| param(t, "tag"))
        .map(str::to_string);
    assert!(
        pbx_tag.is_some() && pbx_tag != carrier_tag,
        "leg A needs veil's own To tag: {pbx_tag:?} vs {carrier_tag:?}"
    );
    // The PBX's own Call-ID is kept on its leg (veil answers in the PBX's dialog).
    assert_eq!(
        ok.header("Call-ID"),
        Some(caller.first_call_id(Direction::Sent).as_str())
    );
}

#[test]
fn generated_configs_are_valid_for_veil() {
    for (slot, setup) in [
        (32, Setup::standard()),
        (33, Setup::failover()),
        (34, Setup::without_default_rule()),
    ] {
        let lab = Lab::new(slot);
        let path = lab.write_config(&setup);
        if let Err(errors) = veil::config::load(&path) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let policy = std::fs::read_to_string(lab.dir().join("policy.yaml")).unwrap_or_default();
            panic!(
                "harness config rejected by veil:\n{}\n--- veil.yaml ---\n{text}\n--- policy.yaml ---\n{policy}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
