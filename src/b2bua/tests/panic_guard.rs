//! A panic in an engine step (the test hook `set_panic_header`) is caught by
//! `Engine::guarded`: counted, the call it belonged to ended (BYE both legs, CDR
//! `error`, the request that hit it answered 500), every other call untouched.

use super::*;
use crate::b2bua::panic_guard::StepInput;

const HOOK: &str = "X-Test-Panic";

/// `inject` through the guard, as the shell runs every step; returns whether it panicked.
fn inject_guarded(h: &mut Harness, from: &str, text: &str) -> bool {
    let flow = Flow {
        listener: 0,
        transport: Transport::Udp,
        remote: from.parse().unwrap(),
        conn: None,
    };
    let input = Input::Sip {
        data: text.as_bytes(),
        flow,
    };
    let now = h.now;
    let panicked = h
        .engine
        .guarded(StepInput::of(&input), now, |e| e.handle_input(input, now));
    h.collect();
    panicked
}

/// Answered call `n` (Call-ID `a-call-<n>`): leg B's INVITE and the To of the 200 to A.
fn up(h: &mut Harness, n: u32) -> (Request, String) {
    let call_id = format!("a-call-{n}");
    h.inject(
        PBX,
        &invite_from_pbx(&call_id, "0123456").replace("pbxtag", &format!("pbxtag{n}")),
    );
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let from = format!("\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag{n}");
    h.inject(
        PBX,
        &in_dialog("ACK", &from, &to, &call_id, 10, "127.0.0.2:5060"),
    );
    h.take(CARRIER);
    h.take(PBX);
    (b_inv, to)
}

fn end_reasons(h: &Harness) -> Vec<String> {
    h.cdr
        .iter()
        .filter_map(|e| match e {
            CdrEvent::End { end_reason, .. } => Some(end_reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_panicking_step_ends_its_call_and_spares_the_others() {
    let mut h = Harness::new();
    h.engine.set_panic_header(Some(HOOK.to_string()));
    let (_, to1) = up(&mut h, 1);
    let (b_inv2, _) = up(&mut h, 2);
    assert_eq!(h.engine.call_count(), 2);

    let from1 = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag1";
    let info = in_dialog("INFO", from1, &to1, "a-call-1", 11, "127.0.0.2:5060").replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{HOOK}: 1\r\n"),
    );
    assert!(inject_guarded(&mut h, PBX, &info), "the hook did not panic");
    assert_eq!(h.engine.metrics.engine_panics.get(), 1);

    // The request that hit the bug is answered 500, then its call ends on both legs.
    let to_a = h.take(PBX);
    assert!(
        to_a.iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code == 500)),
        "no 500 to the INFO: {to_a:?}"
    );
    assert!(
        to_a.iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "BYE")),
        "no BYE to leg A"
    );
    let bye_b = h.take_request(CARRIER, "BYE");
    assert_ne!(
        bye_b.call_id().unwrap(),
        b_inv2.call_id().unwrap(),
        "the other call was hung up"
    );
    h.advance(Duration::from_secs(5));
    assert_eq!(end_reasons(&h), vec!["error".to_string()]);
    assert_eq!(h.engine.call_count(), 1, "the other call must stay up");

    // The engine goes on: the other call still works, and a new call completes.
    up(&mut h, 3);
    assert_eq!(h.engine.call_count(), 2);
}

#[test]
fn a_step_without_a_call_is_counted_and_nothing_is_ended() {
    let mut h = Harness::new();
    h.engine.set_panic_header(Some(HOOK.to_string()));
    up(&mut h, 1);
    let invite = invite_from_pbx("a-call-9", "0123456")
        .replace("pbxtag", "pbxtag9")
        .replace(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\n{HOOK}: 1\r\n"),
        );
    assert!(inject_guarded(&mut h, PBX, &invite));
    assert!(
        h.take(PBX)
            .iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code == 500)),
        "the new INVITE that hit the bug gets 500"
    );
    assert!(
        h.take(CARRIER).is_empty(),
        "nothing sent on the standing call"
    );
    assert_eq!(h.engine.call_count(), 1);
    assert_eq!(h.engine.metrics.engine_panics.get(), 1);
}
