//! A call ended before leg B sent any provisional response (relay bind failure, caller's
//! CANCEL): leg B must still be cancelled on its first provisional, or ACKed and hung up
//! if it answers, although the call itself is already forgotten.

use super::*;
use crate::media::MediaEvent;

fn stream_of(h: &Harness) -> crate::media::StreamId {
    h.media
        .iter()
        .find_map(|m| match m {
            MediaCommand::Open { id, .. } => Some(*id),
            _ => None,
        })
        .expect("an Open for the caller's offer")
}

/// Caller's INVITE crossed to the carrier; nothing heard back yet.
fn calling() -> (Harness, Request) {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    h.take(PBX);
    let b_inv = h.take_request(CARRIER, "INVITE");
    (h, b_inv)
}

fn bind_failed(h: &mut Harness) {
    let id = stream_of(h);
    h.engine
        .handle_input(Input::Media(MediaEvent::BindFailed { id }), h.now);
    h.collect();
    h.take_response(PBX, 500);
    assert_eq!(h.engine.call_count(), 0);
}

fn caller_cancels(h: &mut Harness) {
    let cancel = "CANCEL sip:0123456@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKpbxa-call-1\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag\r\nTo: <sip:0123456@127.0.0.1>\r\nCall-ID: a-call-1\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n";
    h.inject(PBX, cancel);
    h.take_response(PBX, 487);
    assert_eq!(h.engine.call_count(), 0);
}

fn expect_cancel_on_ringing(mut h: Harness, b_inv: Request) {
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    let c = h.take_request(CARRIER, "CANCEL");
    assert_eq!(c.call_id().unwrap(), b_inv.call_id().unwrap());
    assert_eq!(c.cseq().unwrap().seq, b_inv.cseq().unwrap().seq);
    // The carrier answers the CANCEL and ends the INVITE with 487, which veil ACKs.
    h.inject(CARRIER, &answer(&c, 200, false));
    h.inject(CARRIER, &answer(&b_inv, 487, false));
    h.take_request(CARRIER, "ACK");
    assert!(h.take(PBX).is_empty(), "nothing reaches the caller");
}

fn expect_ack_and_bye_on_answer(mut h: Harness, b_inv: Request) {
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let sent = h.take(CARRIER);
    let methods: Vec<String> = sent
        .iter()
        .filter_map(|(m, _)| match m {
            Message::Request(r) => Some(r.method.as_str().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(methods, ["ACK", "BYE"], "{sent:?}");
    for (m, _) in &sent {
        let Message::Request(r) = m else { continue };
        assert_eq!(r.call_id().unwrap(), b_inv.call_id().unwrap());
        assert!(
            r.headers
                .get(&HeaderName::To)
                .unwrap()
                .contains("carriertag")
        );
        assert_eq!(r.uri.to_string(), "sip:bob@127.0.0.3:5060");
    }
    let bye = sent
        .iter()
        .find_map(|(m, _)| match m {
            Message::Request(r) if r.method.as_str() == "BYE" => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert!(bye.cseq().unwrap().seq > b_inv.cseq().unwrap().seq);
    h.inject(CARRIER, &answer(&bye, 200, false));
    // A retransmitted 2xx is ACKed again but hung up only once.
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let again = h.take(CARRIER);
    assert!(
        again
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "ACK"))
    );
    assert!(
        !again
            .iter()
            .any(|(m, _)| matches!(m, Message::Request(r) if r.method.as_str() == "BYE")),
        "{again:?}"
    );
    assert!(h.take(PBX).is_empty(), "nothing reaches the caller");
}

#[test]
fn bind_failure_before_ringing_cancels_leg_b_on_its_first_provisional() {
    let (mut h, b_inv) = calling();
    bind_failed(&mut h);
    expect_cancel_on_ringing(h, b_inv);
}

#[test]
fn bind_failure_before_ringing_hangs_up_leg_b_when_it_answers() {
    let (mut h, b_inv) = calling();
    bind_failed(&mut h);
    expect_ack_and_bye_on_answer(h, b_inv);
}

#[test]
fn caller_cancel_before_ringing_cancels_leg_b_on_its_first_provisional() {
    let (mut h, b_inv) = calling();
    caller_cancels(&mut h);
    expect_cancel_on_ringing(h, b_inv);
}

#[test]
fn caller_cancel_before_ringing_hangs_up_leg_b_when_it_answers() {
    let (mut h, b_inv) = calling();
    caller_cancels(&mut h);
    expect_ack_and_bye_on_answer(h, b_inv);
}

#[test]

fn forgotten_cancels_do_not_accumulate() {
    let (mut h, _b_inv) = calling();
    caller_cancels(&mut h);
    // Leg B never answers: its INVITE transaction times out and nothing stays behind.
    h.advance(Duration::from_secs(64));
    assert!(
        !h.engine
            .owners
            .values()
            .any(|o| matches!(o, crate::b2bua::owner::TxOwner::Abandoned { .. }))
    );
}
