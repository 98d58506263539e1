//! Route sets (RFC 3261 §12.1, §12.2.1.1): a caller behind record-routing proxies gets
//! their Record-Route back in every dialog-creating response, and veil's own requests on
//! each leg follow that leg's route set.

use super::*;

/// Two record-routing proxies in front of the caller (the first is the load balancer next
/// to veil), one of them with the parameters Kamailio writes.
const A_RR: &str =
    "Record-Route: <sip:127.0.0.2:5070;lr;ftag=pbxtag>\r\nRecord-Route: <sip:10.1.1.1;lr>";

fn invite_via_lb(call_id: &str) -> String {
    invite_from_pbx(call_id, "0123456").replace("Record-Route: <sip:127.0.0.2;lr>", A_RR)
}

fn record_routes(r: &Response) -> Vec<String> {
    r.headers
        .values(&HeaderName::RecordRoute)
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn routes(r: &Request) -> Vec<String> {
    r.headers
        .values(&HeaderName::Route)
        .iter()
        .map(|s| s.to_string())
        .collect()
}

const A_ROUTE: [&str; 2] = ["<sip:127.0.0.2:5070;lr;ftag=pbxtag>", "<sip:10.1.1.1;lr>"];

/// A call from behind the LB, answered; returns (harness, leg B INVITE, 180, 200 to A).
fn answered_via_lb() -> (Harness, Request, Response, Response) {
    let mut h = Harness::new();
    h.inject(PBX, &invite_via_lb("rr-1"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    assert!(
        routes(&b_inv).is_empty() && record_routes_of(&b_inv).is_empty(),
        "leg A's route set must not reach leg B:\n{b_inv:?}"
    );
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    let ringing = h.take_response(PBX, 180);
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    h.take_request(CARRIER, "ACK");
    (h, b_inv, ringing, ok)
}

fn record_routes_of(r: &Request) -> Vec<String> {
    r.headers
        .values(&HeaderName::RecordRoute)
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn record_route_of_the_invite_comes_back_in_18x_and_2xx_in_order() {
    let (_h, _b, ringing, ok) = answered_via_lb();
    assert_eq!(record_routes(&ringing), A_ROUTE);
    assert_eq!(record_routes(&ok), A_ROUTE);
    // The callee's own Record-Route (127.0.0.3) stays on its leg.
    assert!(!format!("{ok:?}").contains("127.0.0.3"));
}

#[test]
fn no_record_route_in_the_request_means_none_in_the_response() {
    let mut h = Harness::new();
    let inv =
        invite_from_pbx("rr-0", "0123456").replace("Record-Route: <sip:127.0.0.2;lr>\r\n", "");
    h.inject(PBX, &inv);
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    assert!(record_routes(&ok).is_empty());
}

#[test]
fn veils_bye_to_the_caller_follows_the_recorded_route_loosely() {
    let (mut h, b_inv, _r, _ok) = answered_via_lb();
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    h.inject(
        CARRIER,
        &in_dialog(
            "BYE",
            &b_to,
            &b_from,
            b_inv.call_id().unwrap(),
            1,
            "127.0.0.3:5060",
        ),
    );
    h.take_response(CARRIER, 200);
    let bye = h.take_request(PBX, "BYE");
    // Loose routing: the Request-URI stays the caller's Contact, the route set in Route.
    assert_eq!(bye.uri.to_string(), "sip:alice@127.0.0.2:5060");
    assert_eq!(routes(&bye), A_ROUTE);
}

#[test]
fn a_strict_router_first_takes_the_request_uri() {
    let mut h = Harness::new();
    let inv = invite_from_pbx("rr-s", "0123456").replace(
        "Record-Route: <sip:127.0.0.2;lr>",
        "Record-Route: <sip:127.0.0.2:5070>, <sip:10.1.1.1;lr>",
    );
    h.inject(PBX, &inv);
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    h.take_response(PBX, 200);
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    h.inject(
        CARRIER,
        &in_dialog(
            "BYE",
            &b_to,
            &b_from,
            b_inv.call_id().unwrap(),
            1,
            "127.0.0.3:5060",
        ),
    );
    let bye = h.take_request(PBX, "BYE");
    assert_eq!(bye.uri.to_string(), "sip:127.0.0.2:5070");
    assert_eq!(
        routes(&bye),
        ["<sip:10.1.1.1;lr>", "<sip:alice@127.0.0.2:5060>"]
    );
}

#[test]
fn caller_requests_with_a_route_to_veil_are_accepted_and_the_callee_route_is_used() {
    let (mut h, _b_inv, _r, ok) = answered_via_lb();
    let a_to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let a_from = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";
    let with_route = |m: &str, cseq: u32| {
        in_dialog(m, a_from, &a_to, "rr-1", cseq, "127.0.0.2:5060").replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:5060;lr>\r\n",
        )
    };
    h.inject(PBX, &with_route("ACK", 10));
    assert!(h.take(PBX).is_empty(), "an ACK gets no response");
    h.inject(PBX, &with_route("BYE", 11));
    h.take_response(PBX, 200);
    let bye = h.take_request(CARRIER, "BYE");
    // Leg B's route set is the answer's Record-Route, reversed (here one entry).
    assert_eq!(routes(&bye), ["<sip:127.0.0.3;lr>"]);
    assert!(!format!("{bye:?}").contains("10.1.1.1"));
    assert_eq!(h.engine.call_count(), 0);
}

#[test]
fn a_reinvite_from_the_callee_reaches_the_caller_through_the_lb() {
    let (mut h, b_inv, _r, _ok) = answered_via_lb();
    let b_to = format!(
        "{};tag=carriertag",
        b_inv.headers.get(&HeaderName::To).unwrap()
    );
    let b_from = b_inv.headers.get(&HeaderName::From).unwrap().to_string();
    let sdp = offer_sdp("127.0.0.3", 7002, "carriersecret");
    let reinv = in_dialog("INVITE", &b_to, &b_from, b_inv.call_id().unwrap(), 2, "127.0.0.3:5060")
        .replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Contact: <sip:c@127.0.0.3:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()),
        );
    h.inject(CARRIER, &reinv);
    let a_reinv = h.take_request(PBX, "INVITE");
    assert_eq!(a_reinv.uri.to_string(), "sip:alice@127.0.0.2:5060");
    assert_eq!(routes(&a_reinv), A_ROUTE);
}

#[test]
fn a_callee_behind_two_proxies_gets_the_answers_record_route_reversed() {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("rr-b", "0123456"));
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(
        CARRIER,
        &answer(&b_inv, 200, true).replace(
            "Record-Route: <sip:127.0.0.3;lr>",
            "Record-Route: <sip:10.7.7.7;lr>, <sip:127.0.0.3;lr;r2=on>",
        ),
    );
    let ok = h.take_response(PBX, 200);
    assert!(!format!("{ok:?}").contains("10.7.7.7"));
    let ack = h.take_request(CARRIER, "ACK");
    let reversed = ["<sip:127.0.0.3;lr;r2=on>", "<sip:10.7.7.7;lr>"];
    assert_eq!(routes(&ack), reversed);
    let a_to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog(
            "BYE",
            "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag",
            &a_to,
            "rr-b",
            11,
            "127.0.0.2:5060",
        ),
    );
    let bye = h.take_request(CARRIER, "BYE");
    assert_eq!(routes(&bye), reversed);
}
