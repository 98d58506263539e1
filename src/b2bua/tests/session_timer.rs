//! Session timers, maximum call length and teardown on the fake clock, at full-length
//! values (30 min sessions, 6 h calls) without waiting.

use std::time::Duration;

use super::*;
use crate::observe::CdrEvent;
use crate::sip::{HeaderName, Message, Request, SipHeaders};

const PBX_FROM: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";

fn end_reason(h: &mut Harness) -> Option<String> {
    h.advance(Duration::from_secs(3));
    h.cdr.iter().find_map(|c| match c {
        CdrEvent::End { end_reason, .. } => Some(end_reason.clone()),
        _ => None,
    })
}

/// Requests veil sent to `to` (retransmissions folded: one per CSeq and method).
fn requests(h: &mut Harness, to: &str) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    for (m, _) in h.take(to) {
        if let Message::Request(r) = m {
            let key = |q: &Request| q.headers.get(&HeaderName::CSeq).map(str::to_string);
            if !out.iter().any(|o| key(o) == key(&r)) {
                out.push(r);
            }
        }
    }
    out
}

/// Answered call with custom INVITE and 200 extras; ACKed by the caller.
fn call_with(h: &mut Harness, invite_extra: &str, answer_extra: &str) -> (Request, String) {
    let invite = invite_from_pbx("a-call-1", "0123456").replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{invite_extra}"),
    );
    h.inject(PBX, &invite);
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, true).replace("Server:", &format!("{answer_extra}Server:")),
    );
    let ok = h.take_response(PBX, 200);
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", PBX_FROM, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    h.take(CARRIER);
    (b_inv, to_hdr)
}

#[test]
fn veil_refreshes_both_legs_when_nobody_else_does() {
    let mut h = Harness::new();
    let (b_inv, _) = call_with(&mut h, "", "");
    h.advance(Duration::from_secs(899));
    assert!(
        requests(&mut h, PBX).is_empty() && requests(&mut h, CARRIER).is_empty(),
        "nothing before half the interval"
    );
    for round in 0..3 {
        h.advance(Duration::from_secs(2));
        let to_b = requests(&mut h, CARRIER);
        let to_a = requests(&mut h, PBX);
        assert_eq!(to_b.len(), 1, "round {round}: one refresh to the carrier");
        assert_eq!(to_a.len(), 1, "round {round}: one refresh to the PBX");
        let r = &to_b[0];
        assert_eq!(
            r.method.as_str(),
            "INVITE",
            "no Allow: UPDATE, so re-INVITE"
        );
        assert_eq!(
            r.headers.get(&HeaderName::SessionExpires),
            Some("1800;refresher=uac")
        );
        assert_eq!(r.body, b_inv.body, "same SDP, same o= version");
        assert_eq!(to_a[0].call_id().unwrap(), "a-call-1");
        for (r, peer) in [(&to_b[0], CARRIER), (&to_a[0], PBX)] {
            h.inject(peer, &answer(r, 200, false));
            let ack = h.take_request(peer, "ACK");
            assert_eq!(ack.cseq().unwrap().seq, r.cseq().unwrap().seq);
        }
        h.advance(Duration::from_secs(898));
    }
    assert_eq!(h.engine.call_count(), 1, "refreshed sessions live on");
}

#[test]
fn refresh_answered_481_ends_both_legs() {
    let mut h = Harness::new();
    call_with(&mut h, "", "");
    h.advance(Duration::from_secs(901));
    let to_b = requests(&mut h, CARRIER);
    h.take(PBX);
    h.inject(CARRIER, &answer(&to_b[0], 481, false));
    h.take_request(PBX, "BYE");
    h.take_request(CARRIER, "BYE");
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(end_reason(&mut h).as_deref(), Some("session_timer"));
}

#[test]
fn unanswered_refresh_ends_the_call() {
    let mut h = Harness::new();
    call_with(&mut h, "", "");
    h.advance(Duration::from_secs(901));
    h.take(CARRIER);
    h.take(PBX);
    // Nobody answers veil's refreshes: timer B (32 s) ends the call.
    h.advance(Duration::from_secs(40));
    assert_eq!(h.engine.call_count(), 0);
    let byes: Vec<_> = [PBX, CARRIER]
        .iter()
        .map(|p| {
            requests(&mut h, p)
                .iter()
                .any(|r| r.method.as_str() == "BYE")
        })
        .collect();
    assert_eq!(byes, [true, true]);
    assert_eq!(end_reason(&mut h).as_deref(), Some("session_timer"));
}

#[test]
fn silent_refresher_is_hung_up_at_expiry() {
    let mut h = Harness::new();
    let (b_inv, _) = call_with(
        &mut h,
        "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n",
        "Session-Expires: 1800;refresher=uas\r\nRequire: timer\r\n",
    );
    let inv_se = b_inv.headers.get(&HeaderName::SessionExpires);
    assert_eq!(
        inv_se,
        Some("1800"),
        "leg B gets veil's own request, not the caller's"
    );
    h.advance(Duration::from_secs(1767));
    assert_eq!(h.engine.call_count(), 1);
    assert!(
        requests(&mut h, CARRIER).is_empty(),
        "the callee refreshes leg B, not veil"
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(
        h.engine.call_count(),
        0,
        "expired 32 s before the interval ends"
    );
    assert_eq!(end_reason(&mut h).as_deref(), Some("session_timer"));
}

#[test]
fn caller_refresh_is_answered_on_its_leg_and_not_forwarded() {
    let cfg = CONFIG.replace(
        "{name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32]}",
        "{name: carrier, address: 127.0.0.3:5060, sources: [127.0.0.3/32], session_timer: {enabled: false}}",
    );
    let mut h = Harness::with(&cfg, POLICY);
    let invite = invite_from_pbx("a-call-1", "0123456").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: timer\r\nSession-Expires: 1800\r\n",
    );
    h.inject(PBX, &invite);
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(
        b_inv.headers.get(&HeaderName::SessionExpires).is_none(),
        "timers off on the carrier's leg"
    );
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    assert_eq!(
        ok.headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uac")
    );
    assert!(ok.has_option_tag(&HeaderName::Require, "timer"));
    let sdp_to_a = ok.body.clone();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", PBX_FROM, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    h.take(CARRIER);

    h.advance(Duration::from_secs(1000));
    h.inject(
        PBX,
        &in_dialog(
            "UPDATE",
            PBX_FROM,
            &to_hdr,
            "a-call-1",
            11,
            "127.0.0.2:5060",
        ),
    );
    let r = h.take_response(PBX, 200);
    assert_eq!(
        r.headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uac")
    );
    assert!(
        requests(&mut h, CARRIER).is_empty(),
        "a refresh never crosses"
    );

    // A re-INVITE with the caller's SDP unchanged is a refresh too: answered with veil's SDP.
    h.advance(Duration::from_secs(500));
    let sdp = offer_sdp("127.0.0.2", 6000, "pbxsecret");
    let reinvite = in_dialog(
        "INVITE",
        PBX_FROM,
        &to_hdr,
        "a-call-1",
        12,
        "127.0.0.2:5060",
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    h.inject(PBX, &reinvite);
    let r = h.take_response(PBX, 200);
    assert_eq!(r.body, sdp_to_a, "veil's SDP unchanged, o= version kept");
    h.inject(
        PBX,
        &in_dialog("ACK", PBX_FROM, &to_hdr, "a-call-1", 12, "127.0.0.2:5060"),
    );
    assert!(requests(&mut h, CARRIER).is_empty());
    h.advance(Duration::from_secs(1700));
    assert_eq!(
        h.engine.call_count(),
        1,
        "each refresh restarted the leg's timer"
    );
    h.advance(Duration::from_secs(100));
    assert_eq!(
        h.engine.call_count(),
        0,
        "1768 s after the last refresh it expires"
    );
}

#[test]
fn too_small_interval_gets_422() {
    let mut h = Harness::new();
    let invite = invite_from_pbx("a-call-1", "0123456").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSession-Expires: 60\r\n",
    );
    h.inject(PBX, &invite);
    let r = h.take_response(PBX, 422);
    assert_eq!(r.headers.get(&HeaderName::MinSe), Some("90"));
    assert!(requests(&mut h, CARRIER).is_empty());
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn callee_422_leads_to_one_retry_with_its_min_se() {
    // Timers off on the PBX's leg: only leg B's refreshes are looked at here.
    let cfg = CONFIG.replace(
        "sources: [127.0.0.2/32]}",
        "sources: [127.0.0.2/32], session_timer: {enabled: false}}",
    );
    let mut h = Harness::with(&cfg, POLICY);
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert_eq!(b_inv.headers.get(&HeaderName::MinSe), Some("90"));
    h.inject(
        CARRIER,
        &answer(&b_inv, 422, false).replace("Server:", "Min-SE: 3600\r\nServer:"),
    );
    let retry = requests(&mut h, CARRIER)
        .into_iter()
        .find(|r| r.method.as_str() == "INVITE")
        .expect("retried INVITE");
    assert_eq!(retry.call_id().unwrap(), b_inv.call_id().unwrap());
    assert_eq!(retry.cseq().unwrap().seq, b_inv.cseq().unwrap().seq + 1);
    assert_eq!(retry.headers.get(&HeaderName::SessionExpires), Some("3600"));
    assert_eq!(retry.headers.get(&HeaderName::MinSe), Some("3600"));
    assert!(
        h.take(PBX)
            .iter()
            .all(|(m, _)| !matches!(m, Message::Response(r) if r.code == 422)),
        "the caller never sees the 422"
    );
    h.inject(
        CARRIER,
        &answer(&retry, 200, true)
            .replace("Server:", "Session-Expires: 3600;refresher=uac\r\nServer:"),
    );
    let ok = h.take_response(PBX, 200);
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", PBX_FROM, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    h.take_request(CARRIER, "ACK");
    h.advance(Duration::from_secs(1799));
    let early = requests(&mut h, CARRIER);
    assert!(
        early.is_empty(),
        "{:?}",
        early.iter().map(|r| r.to_bytes()).collect::<Vec<_>>()
    );
    h.advance(Duration::from_secs(2));
    let r = requests(&mut h, CARRIER);
    assert_eq!(r.len(), 1, "refresh at half of the callee's 3600 s");
}

#[test]
fn refresh_uses_update_when_the_peer_allows_it() {
    let mut h = Harness::new();
    call_with(&mut h, "", "Allow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n");
    h.advance(Duration::from_secs(901));
    let r = requests(&mut h, CARRIER);
    assert_eq!(r[0].method.as_str(), "UPDATE");
    assert!(r[0].body.is_empty());
    let to_a = requests(&mut h, PBX);
    assert_eq!(
        to_a[0].method.as_str(),
        "INVITE",
        "the PBX did not allow UPDATE"
    );
}

#[test]
fn max_duration_of_six_hours_ends_both_legs() {
    let cfg = CONFIG.replace(
        "policy: policy.yaml",
        "calls: {session_timer: {enabled: false}}\npolicy: policy.yaml",
    );
    let mut h = Harness::with(&cfg, POLICY);
    call_with(&mut h, "", "");
    h.advance(Duration::from_secs(6 * 3600 - 1));
    assert_eq!(h.engine.call_count(), 1);
    assert!(
        requests(&mut h, CARRIER).is_empty(),
        "no timers: no refreshes"
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(h.engine.call_count(), 0);
    h.take_request(PBX, "BYE");
    h.take_request(CARRIER, "BYE");
    assert_eq!(end_reason(&mut h).as_deref(), Some("max_duration"));
}

#[test]
fn max_duration_per_rule_and_per_peer() {
    let policy = POLICY.replace(
        "then: {route: [carrier, backup]}",
        "then: {route: [carrier, backup], max_duration: 30s}",
    );
    let mut h = Harness::with(CONFIG, &policy);
    call_with(&mut h, "", "");
    h.advance(Duration::from_millis(29_900));
    assert_eq!(h.engine.call_count(), 1);
    h.advance(Duration::from_millis(200));
    assert_eq!(h.engine.call_count(), 0, "the rule's 30 s");

    let cfg = CONFIG.replace(
        "sources: [127.0.0.3/32]}",
        "sources: [127.0.0.3/32], max_duration: 20s}",
    );
    let mut h = Harness::with(&cfg, POLICY);
    call_with(&mut h, "", "");
    h.advance(Duration::from_millis(19_900));
    assert_eq!(h.engine.call_count(), 1);
    h.advance(Duration::from_millis(200));
    assert_eq!(h.engine.call_count(), 0, "the callee peer's 20 s");
}

#[test]
fn late_requests_for_an_ended_call_get_481() {
    let mut h = Harness::new();
    let (_, to_hdr) = call_with(&mut h, "", "");
    h.inject(
        PBX,
        &in_dialog("BYE", PBX_FROM, &to_hdr, "a-call-1", 11, "127.0.0.2:5060"),
    );
    h.take_response(PBX, 200);
    h.inject(
        PBX,
        &in_dialog(
            "INVITE",
            PBX_FROM,
            &to_hdr,
            "a-call-1",
            12,
            "127.0.0.2:5060",
        ),
    );
    h.take_response(PBX, 481);
    h.inject(
        PBX,
        &in_dialog("BYE", PBX_FROM, &to_hdr, "a-call-1", 13, "127.0.0.2:5060"),
    );
    h.take_response(PBX, 481);
}

#[test]
fn bye_without_answer_still_ends_the_call_and_its_cdr() {
    let mut h = Harness::new();
    let (_, to_hdr) = call_with(&mut h, "", "");
    h.inject(
        PBX,
        &in_dialog("BYE", PBX_FROM, &to_hdr, "a-call-1", 11, "127.0.0.2:5060"),
    );
    h.take_request(CARRIER, "BYE");
    // The carrier never answers the BYE.
    assert_eq!(h.engine.call_count(), 0);
    assert_eq!(end_reason(&mut h).as_deref(), Some("caller_bye"));
    h.advance(Duration::from_secs(120));
    assert!(
        h.engine.idle() && h.engine.transaction_count() == 0,
        "nothing of the call is left"
    );
}

#[test]
fn lab_values_below_the_rfc_minimum_need_the_lab_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let short = CONFIG.replace(
        "policy: policy.yaml",
        "calls: {session_timer: {expires: 20s, min_se: 10s}}\npolicy: policy.yaml",
    );
    std::fs::write(dir.path().join("veil.yaml"), &short).unwrap();
    let errors = crate::config::load(&dir.path().join("veil.yaml")).unwrap_err();
    assert!(
        errors.iter().any(|e| e.key == "calls.session_timer.min_se"),
        "{errors:?}"
    );
    let lab = short.replace("min_se: 10s}", "min_se: 10s, lab: true}");
    std::fs::write(dir.path().join("veil.yaml"), &lab).unwrap();
    let loaded = crate::config::load(&dir.path().join("veil.yaml")).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.key == "calls.session_timer.min_se")
    );
}

#[test]
fn a_2xx_to_a_refresh_that_crossed_the_bye_is_still_acked() {
    let mut h = Harness::new();
    let (_, to_hdr) = call_with(&mut h, "", "");
    h.advance(Duration::from_secs(901));
    let refresh = requests(&mut h, CARRIER).remove(0);
    h.take(PBX);
    h.inject(
        PBX,
        &in_dialog("BYE", PBX_FROM, &to_hdr, "a-call-1", 11, "127.0.0.2:5060"),
    );
    h.take_request(CARRIER, "BYE");
    assert_eq!(h.engine.call_count(), 0);
    h.inject(CARRIER, &answer(&refresh, 200, true));
    let ack = h.take_request(CARRIER, "ACK");
    assert_eq!(ack.cseq().unwrap().seq, refresh.cseq().unwrap().seq);
    assert_eq!(ack.call_id().unwrap(), refresh.call_id().unwrap());
}

#[test]
fn a_policy_rule_sets_the_session_timer_of_both_legs() {
    let policy = POLICY.replace(
        "then: {route: [carrier, backup]}",
        "then: {route: [carrier, backup], session_timer: {expires: 600s, min_se: 300s}}",
    );
    let mut h = Harness::with(CONFIG, &policy);
    let (b_inv, _) = call_with(&mut h, "", "");
    assert_eq!(b_inv.headers.get(&HeaderName::SessionExpires), Some("600"));
    assert_eq!(b_inv.headers.get(&HeaderName::MinSe), Some("300"));
    h.advance(Duration::from_secs(299));
    assert!(requests(&mut h, CARRIER).is_empty() && requests(&mut h, PBX).is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(
        requests(&mut h, CARRIER).len(),
        1,
        "refresh at 300 s on leg B"
    );
    assert_eq!(requests(&mut h, PBX).len(), 1, "and on leg A");
    // Too short for the rule's Min-SE: 422 before anything is routed.
    let invite = invite_from_pbx("a-call-2", "0123456").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSession-Expires: 200\r\n",
    );
    h.inject(PBX, &invite);
    let r = h.take_response(PBX, 422);
    assert_eq!(r.headers.get(&HeaderName::MinSe), Some("300"));
}

#[test]
fn ring_timeout_cancels_leg_b_and_fails_over_then_408() {
    let cfg = CONFIG.replace("policy: policy.yaml", "policy: policy.yaml\n").replace(
        "    - {name: public, transport: udp, address: 127.0.0.1:5060}",
        "    - {name: public, transport: udp, address: 127.0.0.1:5060}\n  timers: {invite_timeout: 120s}",
    );
    let mut h = Harness::with(&cfg, POLICY);
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let b1 = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b1, 180, false));
    h.take_response(PBX, 180);
    h.advance(Duration::from_secs(119));
    assert!(requests(&mut h, CARRIER).is_empty());
    h.advance(Duration::from_secs(2));
    let cancel = requests(&mut h, CARRIER)
        .into_iter()
        .find(|r| r.method.as_str() == "CANCEL")
        .expect("CANCEL to the ringing carrier");
    assert_eq!(cancel.call_id().unwrap(), b1.call_id().unwrap());
    let b2 = h.take_request(BACKUP, "INVITE");
    h.inject(
        BACKUP,
        &answer(&b2, 180, false).replace("127.0.0.3", "127.0.0.4"),
    );
    h.advance(Duration::from_secs(121));
    h.take_request(BACKUP, "CANCEL");
    h.take_response(PBX, 408);
    assert_eq!(h.engine.call_count(), 0);
}
