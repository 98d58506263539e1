//! Scenario tests on a fake clock: the test owns time and drives the layer exactly as the
//! shell would (input, then `poll_timeout`/`handle_timeout`, then drain).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::{HeaderName, Headers, Host, SipUri, Uri, reason_phrase};

const VIA: &str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKclient1;rport";

fn flow(transport: Transport) -> Flow {
    Flow {
        listener: 0,
        transport,
        remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5070),
        conn: None,
    }
}

fn udp() -> Flow {
    flow(Transport::Udp)
}

fn tcp() -> Flow {
    flow(Transport::Tcp)
}

fn uri(user: &str) -> Uri {
    let mut u = SipUri::new(Host::V4(Ipv4Addr::LOCALHOST), Some(5070));
    u.user = Some(user.to_string());
    Uri::Sip(u)
}

/// A request with the usual mandatory headers; `via` is the full top Via value.
fn request(method: Method, via: &str, cseq: u32) -> Request {
    let mut h = Headers::new();
    h.push(HeaderName::Via, via);
    h.push(HeaderName::MaxForwards, "70");
    h.push(HeaderName::Route, "<sip:127.0.0.1:5080;lr>");
    h.push(
        HeaderName::From,
        "\"Alice\" <sip:alice@127.0.0.1>;tag=fromtag1",
    );
    h.push(HeaderName::To, "<sip:bob@127.0.0.1>");
    h.push(HeaderName::CallId, "call-1@127.0.0.1");
    h.push(HeaderName::CSeq, format!("{cseq} {method}"));
    h.push(HeaderName::Contact, "<sip:alice@127.0.0.1:5060>");
    Request {
        method,
        uri: uri("bob"),
        headers: h,
        body: Bytes::new(),
    }
}

fn invite(via: &str) -> Request {
    request(Method::Invite, via, 1)
}

/// A response to `req`, with a To tag unless it is 100.
fn response(req: &Request, code: u16) -> Response {
    let mut resp = Response::for_request(req, code, reason_phrase(code));
    if code != 100 {
        let to = format!("{};tag=totag9", req.headers.get(&HeaderName::To).unwrap());
        resp.headers.set(HeaderName::To, to);
    }
    resp
}

/// The ACK a client sends for a non-2xx final (same branch as the INVITE).
fn ack_for(req: &Request) -> Request {
    let mut ack = request(Method::Ack, raw::top_via(&req.headers).unwrap().value, 1);
    ack.headers
        .set(HeaderName::To, "<sip:bob@127.0.0.1>;tag=totag9");
    ack
}

fn text(t: &Transmit) -> String {
    String::from_utf8_lossy(&t.data).into_owned()
}

fn first_line(t: &Transmit) -> String {
    text(t).lines().next().unwrap_or_default().to_string()
}

/// The transaction layer plus a fake clock.
struct Harness {
    tl: TransactionLayer,
    start: Instant,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        let start = Instant::now();
        Harness {
            tl: TransactionLayer::new(TxConfig::default()),
            start,
            now: start,
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.start + Duration::from_secs_f64(secs)
    }

    fn secs(&self, t: Instant) -> f64 {
        (t - self.start).as_secs_f64()
    }

    /// Fire timers in order up to `secs` after start; returns (when, transmit) for every
    /// transmission made by a timer. Earlier transmits must have been drained.
    fn run_until(&mut self, secs: f64) -> Vec<(f64, Transmit)> {
        let end = self.at(secs);
        let mut sent = Vec::new();
        while let Some(t) = self.tl.poll_timeout() {
            if t > end {
                break;
            }
            assert!(t >= self.now, "deadline in the past");
            self.now = t;
            self.tl.handle_timeout(t);
            while let Some(tx) = self.tl.poll_transmit() {
                sent.push((self.secs(t), tx));
            }
        }
        self.now = end;
        sent
    }

    fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.tl.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<TxEvent> {
        std::iter::from_fn(|| self.tl.poll_event()).collect()
    }

    fn send(&mut self, req: Request, flow: Flow) -> ClientTxId {
        self.tl.send_request(req, flow, self.now)
    }

    fn recv_req(&mut self, req: Request, flow: Flow) {
        self.tl.receive_request(req, flow, self.now);
    }

    fn recv_resp(&mut self, resp: Response) -> bool {
        self.tl.receive_response(resp, udp(), self.now)
    }

    fn respond(&mut self, id: ServerTxId, resp: Response) {
        self.tl.respond(id, resp, self.now);
    }

    /// Receive a new request and return the server transaction the TU was told about.
    fn new_server_tx(&mut self, req: Request, flow: Flow) -> ServerTxId {
        self.recv_req(req, flow);
        match self.events().as_slice() {
            [TxEvent::Request { id, .. }] => *id,
            other => panic!("expected one Request event, got {other:?}"),
        }
    }
}

fn times(sent: &[(f64, Transmit)]) -> Vec<f64> {
    sent.iter()
        .map(|(t, _)| (t * 1000.0).round() / 1000.0)
        .collect()
}

// ---- client INVITE ----

#[test]
fn invite_over_udp_retransmits_on_timer_a_then_times_out_on_b() {
    let mut h = Harness::new();
    let id = h.send(invite(VIA), udp());
    let initial = h.transmits();
    assert_eq!(initial.len(), 1);
    assert!(first_line(&initial[0]).starts_with("INVITE sip:bob@127.0.0.1:5070 SIP/2.0"));

    let sent = h.run_until(31.9);
    assert_eq!(times(&sent), vec![0.5, 1.5, 3.5, 7.5, 15.5, 31.5]);
    assert!(
        sent.iter()
            .all(|(_, t)| t.data == initial[0].data && t.flow == udp())
    );
    assert!(h.events().is_empty());
    assert_eq!(
        h.tl.client_request(id).map(|r| r.method.clone()),
        Some(Method::Invite)
    );

    assert!(h.run_until(32.0).is_empty());
    assert_eq!(h.events(), vec![TxEvent::Timeout { id }]);
    assert_eq!(h.tl.len(), 0);
    assert_eq!(h.tl.poll_timeout(), None);
    assert!(h.tl.client_request(id).is_none());
}

#[test]
fn invite_over_tcp_is_never_retransmitted() {
    let mut h = Harness::new();
    let id = h.send(invite(VIA), tcp());
    assert_eq!(h.transmits().len(), 1);
    assert_eq!(h.tl.poll_timeout(), Some(h.at(32.0)), "only timer B runs");
    assert!(h.run_until(40.0).is_empty());
    assert_eq!(h.events(), vec![TxEvent::Timeout { id }]);
    assert!(h.tl.is_empty());
}

#[test]
fn provisional_stops_timers_a_and_b() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.send(req.clone(), udp());
    h.transmits();
    h.run_until(0.7);
    assert!(h.recv_resp(response(&req, 180)));
    assert!(
        matches!(h.events().as_slice(), [TxEvent::Response { id: i, resp }] if *i == id && resp.code == 180)
    );
    assert!(
        h.run_until(120.0).is_empty(),
        "no retransmission once ringing"
    );
    assert!(h.events().is_empty(), "no timer B while Proceeding");
    assert_eq!(h.tl.len(), 1);
    // The TU gives up by CANCEL; the 487 finishes the INVITE.
    assert!(h.recv_resp(response(&req, 487)));
    assert_eq!(h.events().len(), 1);
    assert!(first_line(&h.transmits()[0]).starts_with("ACK "));
    h.run_until(160.0);
    assert!(h.tl.is_empty());
}

#[test]
fn non_2xx_final_gets_hop_by_hop_ack_and_is_reported_once() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.send(req.clone(), udp());
    h.transmits();
    h.run_until(1.0);
    let busy = response(&req, 486);
    assert!(h.recv_resp(busy.clone()));
    let acks = h.transmits();
    assert_eq!(acks.len(), 1);
    let ack = text(&acks[0]);
    let lines: Vec<&str> = ack.lines().collect();
    assert_eq!(lines[0], "ACK sip:bob@127.0.0.1:5070 SIP/2.0");
    assert!(lines.contains(&format!("Via: {VIA}").as_str()), "{ack}");
    assert!(lines.contains(&"Route: <sip:127.0.0.1:5080;lr>"), "{ack}");
    assert!(
        lines.contains(&"From: \"Alice\" <sip:alice@127.0.0.1>;tag=fromtag1"),
        "{ack}"
    );
    assert!(
        lines.contains(&"To: <sip:bob@127.0.0.1>;tag=totag9"),
        "To from the response: {ack}"
    );
    assert!(lines.contains(&"Call-ID: call-1@127.0.0.1"), "{ack}");
    assert!(lines.contains(&"CSeq: 1 ACK"), "{ack}");
    assert!(!ack.contains("Contact:"), "{ack}");
    assert_eq!(ack.matches("Via:").count(), 1);
    assert_eq!(acks[0].flow, udp());
    assert_eq!(
        h.events(),
        vec![TxEvent::Response {
            id,
            resp: busy.clone()
        }]
    );

    // Retransmitted 486: ACKed again, not reported; no request retransmission either.
    h.now = h.at(2.0);
    assert!(h.recv_resp(busy.clone()));
    let again = h.transmits();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, acks[0].data);
    assert!(h.events().is_empty());
    assert!(h.run_until(32.9).is_empty(), "timer A is off in Completed");
    assert_eq!(h.tl.len(), 1, "timer D holds for 32s");
    h.run_until(33.0);
    assert!(h.tl.is_empty());
    assert!(h.events().is_empty());
    assert!(!h.recv_resp(busy), "after timer D the 486 is stray");
}

#[test]
fn non_2xx_final_over_tcp_ends_at_once() {
    let mut h = Harness::new();
    let req = invite(VIA);
    h.send(req.clone(), tcp());
    h.transmits();
    assert!(h.recv_resp(response(&req, 603)));
    assert_eq!(h.transmits().len(), 1, "the ACK");
    assert_eq!(h.events().len(), 1);
    assert!(h.tl.is_empty());
    assert_eq!(
        h.tl.poll_timeout(),
        None,
        "cancelled timers do not linger at the top"
    );
}

#[test]
fn every_2xx_to_invite_is_reported() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.send(req.clone(), udp());
    h.transmits();
    let ok = response(&req, 200);
    assert!(h.recv_resp(ok.clone()));
    assert!(h.recv_resp(ok.clone()));
    assert_eq!(
        h.events(),
        vec![
            TxEvent::Response {
                id,
                resp: ok.clone()
            };
            2
        ]
    );
    assert!(h.transmits().is_empty(), "the ACK for 2xx is the TU's");
    assert!(
        h.tl.client_request(id).is_some(),
        "the TU builds its ACK from the INVITE"
    );
    assert!(h.recv_resp(response(&req, 486)), "absorbed");
    assert!(h.events().is_empty());
    assert!(h.run_until(31.9).is_empty());
    assert_eq!(h.tl.len(), 1);
    h.run_until(32.0);
    assert!(h.tl.is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn stray_responses_are_dropped() {
    let mut h = Harness::new();
    let req = invite(VIA);
    h.send(req.clone(), udp());
    h.transmits();
    let other = invite("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKother");
    assert!(!h.recv_resp(response(&other, 200)), "unknown branch");
    let mut wrong_method = response(&req, 200);
    wrong_method.headers.set(HeaderName::CSeq, "1 BYE");
    assert!(!h.recv_resp(wrong_method), "same branch, other method");
    let mut no_via = response(&req, 200);
    no_via.headers.remove_all(&HeaderName::Via);
    assert!(!h.recv_resp(no_via));
    let mut bad_cseq = response(&req, 200);
    bad_cseq.headers.set(HeaderName::CSeq, "one INVITE");
    assert!(!h.recv_resp(bad_cseq));
    assert!(h.events().is_empty());
    assert!(h.transmits().is_empty());
}

#[test]
fn cancel_has_its_own_client_transaction() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let inv = h.send(req.clone(), udp());
    let mut cancel = request(Method::Cancel, VIA, 1);
    cancel.headers.set(HeaderName::CSeq, "1 CANCEL");
    let can = h.send(cancel.clone(), udp());
    h.transmits();
    assert!(h.recv_resp(response(&cancel, 200)));
    assert!(matches!(h.events().as_slice(), [TxEvent::Response { id, .. }] if *id == can));
    assert!(h.recv_resp(response(&req, 487)));
    assert!(
        matches!(h.events().as_slice(), [TxEvent::Response { id, resp }] if *id == inv && resp.code == 487)
    );
}

// ---- client non-INVITE ----

#[test]
fn non_invite_timer_e_caps_at_t2_then_f_times_out() {
    let mut h = Harness::new();
    let id = h.send(request(Method::Options, VIA, 5), udp());
    assert_eq!(h.transmits().len(), 1);
    let sent = h.run_until(31.9);
    assert_eq!(
        times(&sent),
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert!(h.events().is_empty());
    h.run_until(32.0);
    assert_eq!(h.events(), vec![TxEvent::Timeout { id }]);
    assert!(h.tl.is_empty());
}

#[test]
fn non_invite_in_proceeding_retransmits_every_t2() {
    let mut h = Harness::new();
    let req = request(Method::Bye, VIA, 2);
    let id = h.send(req.clone(), udp());
    h.transmits();
    h.now = h.at(0.2);
    assert!(h.recv_resp(response(&req, 100)));
    assert_eq!(h.events().len(), 1);
    let sent = h.run_until(13.0);
    assert_eq!(times(&sent), vec![0.5, 4.5, 8.5, 12.5]);
    h.run_until(32.0);
    assert_eq!(
        h.events(),
        vec![TxEvent::Timeout { id }],
        "timer F still runs in Proceeding"
    );
}

#[test]
fn non_invite_final_lingers_for_timer_k() {
    let mut h = Harness::new();
    let req = request(Method::Bye, VIA, 2);
    let id = h.send(req.clone(), udp());
    h.transmits();
    h.now = h.at(1.0);
    let ok = response(&req, 200);
    assert!(h.recv_resp(ok.clone()));
    assert!(h.recv_resp(ok.clone()), "retransmission absorbed");
    assert_eq!(
        h.events(),
        vec![TxEvent::Response {
            id,
            resp: ok.clone()
        }]
    );
    assert!(h.run_until(5.9).is_empty(), "no more retransmissions");
    assert_eq!(h.tl.len(), 1);
    h.run_until(6.0);
    assert!(h.tl.is_empty());

    let id = h.send(
        request(
            Method::Bye,
            "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKtcp",
            3,
        ),
        tcp(),
    );
    assert!(h.recv_resp(response(
        &request(
            Method::Bye,
            "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKtcp",
            3
        ),
        481
    )));
    assert!(matches!(h.events().as_slice(), [TxEvent::Response { id: i, .. }] if *i == id));
    assert!(h.tl.is_empty(), "timer K is zero on TCP");
}

#[test]
fn ack_is_not_a_client_transaction() {
    let mut h = Harness::new();
    h.send(request(Method::Ack, VIA, 1), udp());
    assert_eq!(h.transmits().len(), 1);
    assert!(h.tl.is_empty());
    assert_eq!(h.tl.poll_timeout(), None);
}

// ---- server INVITE ----

#[test]
fn new_invite_is_answered_with_100_trying() {
    let mut h = Harness::new();
    let req = invite(VIA);
    h.recv_req(req.clone(), udp());
    let sent = h.transmits();
    assert_eq!(sent.len(), 1);
    let trying = text(&sent[0]);
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying}");
    assert!(trying.contains(&format!("Via: {VIA}\r\n")));
    assert!(
        trying.contains("To: <sip:bob@127.0.0.1>\r\n"),
        "no To tag: {trying}"
    );
    assert!(trying.contains("CSeq: 1 INVITE\r\n"));
    assert!(trying.contains("Call-ID: call-1@127.0.0.1\r\n"));
    assert_eq!(sent[0].flow, udp());
    assert_eq!(
        h.events(),
        vec![TxEvent::Request {
            id: ServerTxId(1),
            req,
            flow: udp()
        }]
    );
    assert_eq!(
        h.tl.poll_timeout(),
        None,
        "nothing to time while the TU decides"
    );
}

#[test]
fn retransmitted_invite_is_absorbed_and_last_response_resent() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.new_server_tx(req.clone(), udp());
    let trying = h.transmits();
    h.recv_req(req.clone(), udp());
    assert!(h.events().is_empty());
    assert_eq!(h.transmits(), trying);

    h.respond(id, response(&req, 180));
    let ringing = h.transmits();
    assert!(first_line(&ringing[0]).starts_with("SIP/2.0 180"));
    h.recv_req(req.clone(), udp());
    assert!(h.events().is_empty());
    assert_eq!(h.transmits(), ringing);
    assert_eq!(h.tl.len(), 1);
}

#[test]
fn non_2xx_final_retransmitted_by_g_until_ack() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.new_server_tx(req.clone(), udp());
    h.transmits();
    h.respond(id, response(&req, 486));
    let busy = h.transmits();
    assert_eq!(busy.len(), 1);
    let sent = h.run_until(2.0);
    assert_eq!(times(&sent), vec![0.5, 1.5]);
    assert!(sent.iter().all(|(_, t)| t.data == busy[0].data));

    // Retransmitted INVITE in Completed gets the 486 again.
    h.recv_req(req.clone(), udp());
    assert_eq!(h.transmits(), busy);

    h.recv_req(ack_for(&req), udp());
    assert!(h.events().is_empty(), "ACK for a non-2xx is absorbed");
    assert!(h.run_until(6.9).is_empty(), "G stops on ACK");
    h.recv_req(ack_for(&req), udp());
    h.recv_req(req.clone(), udp());
    assert!(
        h.events().is_empty() && h.transmits().is_empty(),
        "Confirmed absorbs everything"
    );
    assert_eq!(h.tl.len(), 1, "timer I");
    h.run_until(7.0);
    assert!(h.tl.is_empty());
}

#[test]
fn timer_h_ends_a_non_2xx_without_ack() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.new_server_tx(req.clone(), udp());
    h.transmits();
    h.respond(id, response(&req, 480));
    h.transmits();
    let sent = h.run_until(31.9);
    assert_eq!(
        times(&sent),
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert_eq!(h.tl.len(), 1);
    h.run_until(32.0);
    assert!(h.tl.is_empty());
    assert!(h.events().is_empty());
    // A late ACK now belongs to nobody: it goes up as a dialog ACK.
    h.recv_req(ack_for(&req), udp());
    assert!(matches!(h.events().as_slice(), [TxEvent::Ack { .. }]));
}

#[test]
fn non_2xx_over_tcp_is_not_retransmitted_and_ack_ends_at_once() {
    let mut h = Harness::new();
    let via = "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKt";
    let req = invite(via);
    let id = h.new_server_tx(req.clone(), tcp());
    h.respond(id, response(&req, 486));
    assert_eq!(h.transmits().len(), 2);
    assert!(h.run_until(10.0).is_empty());
    h.recv_req(ack_for(&req), tcp());
    assert!(h.events().is_empty());
    assert!(h.tl.is_empty(), "timer I is zero on TCP");
}

#[test]
fn ok_retransmitted_until_ack_received() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.new_server_tx(req.clone(), udp());
    h.transmits();
    h.respond(id, response(&req, 200));
    let ok = h.transmits();
    assert_eq!(ok.len(), 1);
    let sent = h.run_until(8.0);
    assert_eq!(times(&sent), vec![0.5, 1.5, 3.5, 7.5]);
    assert!(sent.iter().all(|(_, t)| t.data == ok[0].data));

    // The dialog ACK has its own branch and goes to the TU.
    let mut ack = request(
        Method::Ack,
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack",
        1,
    );
    ack.headers
        .set(HeaderName::To, "<sip:bob@127.0.0.1>;tag=totag9");
    h.recv_req(ack.clone(), udp());
    assert_eq!(
        h.events(),
        vec![TxEvent::Ack {
            req: ack,
            flow: udp()
        }]
    );
    h.tl.ack_received(id);
    assert!(
        h.run_until(31.9).is_empty(),
        "no retransmission after the ACK"
    );
    h.recv_req(req.clone(), udp());
    assert!(
        h.events().is_empty(),
        "a late INVITE retransmission is absorbed"
    );
    assert_eq!(h.transmits(), ok);
    h.run_until(32.0);
    assert!(h.events().is_empty(), "no AckTimeout once acknowledged");
    assert!(h.tl.is_empty());
}

#[test]
fn ack_timeout_without_ack() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.new_server_tx(req.clone(), udp());
    h.transmits();
    h.respond(id, response(&req, 200));
    h.transmits();
    let sent = h.run_until(31.9);
    assert_eq!(
        times(&sent),
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert!(h.events().is_empty());
    h.run_until(32.0);
    assert_eq!(h.events(), vec![TxEvent::AckTimeout { id }]);
    assert!(h.tl.is_empty());
}

#[test]
fn ok_over_tcp_is_still_retransmitted() {
    let mut h = Harness::new();
    let req = invite("SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKt");
    let id = h.new_server_tx(req.clone(), tcp());
    h.respond(id, response(&req, 200));
    assert_eq!(h.transmits().len(), 2);
    assert_eq!(times(&h.run_until(2.0)), vec![0.5, 1.5]);
}

#[test]
fn responses_after_the_final_are_dropped() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let id = h.new_server_tx(req.clone(), udp());
    h.transmits();
    h.respond(id, response(&req, 486));
    h.transmits();
    h.respond(id, response(&req, 200));
    h.respond(id, response(&req, 180));
    assert!(h.transmits().is_empty());
    h.respond(ServerTxId(999), response(&req, 200));
    assert!(h.transmits().is_empty());
    h.tl.ack_received(ServerTxId(999));
}

// ---- CANCEL ----

fn cancel_of(req: &Request) -> Request {
    let mut c = req.clone();
    c.method = Method::Cancel;
    c.headers.set(HeaderName::CSeq, "1 CANCEL");
    c
}

#[test]
fn cancel_matches_its_pending_invite() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let inv = h.new_server_tx(req.clone(), udp());
    h.transmits();
    h.recv_req(cancel_of(&req), udp());
    let cancel_id = match h.events().as_slice() {
        [
            TxEvent::Cancel {
                id,
                invite,
                req: c,
                flow,
            },
        ] => {
            assert_eq!(*invite, Some(inv));
            assert_eq!(c.method, Method::Cancel);
            assert_eq!(*flow, udp());
            *id
        }
        other => panic!("{other:?}"),
    };
    assert_ne!(cancel_id, inv);
    assert!(h.transmits().is_empty(), "no automatic 100 for CANCEL");
    h.respond(cancel_id, response(&cancel_of(&req), 200));
    h.respond(inv, response(&req, 487));
    let sent = h.transmits();
    assert_eq!(sent.len(), 2);
    assert!(text(&sent[0]).contains("CSeq: 1 CANCEL"));
    assert!(text(&sent[1]).starts_with("SIP/2.0 487"));

    // Retransmitted CANCEL: its own transaction answers with the 200 again.
    h.recv_req(cancel_of(&req), udp());
    assert!(h.events().is_empty());
    assert_eq!(h.transmits(), vec![sent[0].clone()]);
}

#[test]
fn cancel_without_pending_invite() {
    let mut h = Harness::new();
    let req = invite(VIA);
    let inv = h.new_server_tx(req.clone(), udp());
    h.respond(inv, response(&req, 200));
    h.recv_req(cancel_of(&req), udp());
    assert!(
        matches!(
            h.events().as_slice(),
            [TxEvent::Cancel { invite: None, .. }]
        ),
        "INVITE already answered"
    );

    let other = invite("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnobody");
    h.recv_req(cancel_of(&other), udp());
    assert!(
        matches!(
            h.events().as_slice(),
            [TxEvent::Cancel { invite: None, .. }]
        ),
        "no such INVITE"
    );

    // Same branch from another sent-by is another client's transaction.
    let mut h = Harness::new();
    h.new_server_tx(req.clone(), udp());
    let foreign = cancel_of(&invite("SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKclient1"));
    h.recv_req(foreign, udp());
    assert!(matches!(
        h.events().as_slice(),
        [TxEvent::Cancel { invite: None, .. }]
    ));
}

// ---- server non-INVITE ----

#[test]
fn non_invite_server_resends_last_response_then_timer_j() {
    let mut h = Harness::new();
    let req = request(Method::Bye, VIA, 7);
    let id = h.new_server_tx(req.clone(), udp());
    assert!(h.transmits().is_empty(), "no 100 for non-INVITE");
    h.recv_req(req.clone(), udp());
    assert!(
        h.events().is_empty() && h.transmits().is_empty(),
        "retransmission in Trying absorbed"
    );
    h.respond(id, response(&req, 200));
    let ok = h.transmits();
    assert_eq!(ok.len(), 1);
    assert!(
        h.run_until(31.9).is_empty(),
        "non-INVITE finals are not retransmitted by timer"
    );
    h.recv_req(req.clone(), udp());
    assert!(h.events().is_empty());
    assert_eq!(h.transmits(), ok);
    h.run_until(32.0);
    assert!(h.tl.is_empty());
    h.recv_req(req, udp());
    assert_eq!(h.events().len(), 1, "after timer J it is a new request");
}

#[test]
fn non_invite_server_over_tcp_ends_on_final() {
    let mut h = Harness::new();
    let req = request(
        Method::Options,
        "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKo",
        1,
    );
    let id = h.new_server_tx(req.clone(), tcp());
    h.respond(id, response(&req, 200));
    assert_eq!(h.transmits()[0].flow, tcp());
    assert!(h.tl.is_empty());
}

#[test]
fn responses_go_to_the_request_flow() {
    let mut h = Harness::new();
    let mut f = udp();
    f.remote = "127.0.0.9:40000".parse().unwrap();
    f.listener = 3;
    let req = invite(VIA);
    let id = h.new_server_tx(req.clone(), f);
    h.respond(id, response(&req, 486));
    let sent = h.transmits();
    assert!(sent.iter().all(|t| t.flow == f));
    assert!(h.run_until(2.0).iter().all(|(_, t)| t.flow == f));
}

// ---- matching edge cases ----

#[test]
fn rfc2543_requests_match_without_magic_cookie() {
    let mut h = Harness::new();
    let via = "SIP/2.0/UDP 127.0.0.1:5060;branch=old1";
    let req = invite(via);
    let id = h.new_server_tx(req.clone(), udp());
    h.transmits();
    h.recv_req(req.clone(), udp());
    assert!(
        h.events().is_empty(),
        "retransmission matched on Call-ID, CSeq, From tag, Via"
    );
    assert_eq!(h.transmits().len(), 1);
    h.respond(id, response(&req, 486));
    h.transmits();
    h.recv_req(ack_for(&req), udp());
    assert!(h.events().is_empty(), "ACK matched and absorbed");
    assert!(h.run_until(4.0).is_empty(), "and G stopped");

    let second = invite("SIP/2.0/UDP 127.0.0.1:5060;branch=old2");
    let mut second_cancel = cancel_of(&second);
    let second_id = h.new_server_tx(second, udp());
    h.recv_req(second_cancel.clone(), udp());
    assert!(
        matches!(h.events().as_slice(), [TxEvent::Cancel { invite: Some(i), .. }] if *i == second_id),
        "CANCEL matched to its INVITE without a magic cookie"
    );
    second_cancel
        .headers
        .set(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5060;branch=old3");
    h.recv_req(second_cancel, udp());
    assert!(
        matches!(
            h.events().as_slice(),
            [TxEvent::Cancel { invite: None, .. }]
        ),
        "other top Via"
    );

    let mut next = request(Method::Invite, via, 2);
    next.headers.set(HeaderName::CallId, "call-2@127.0.0.1");
    h.recv_req(next, udp());
    assert_eq!(
        h.events().len(),
        1,
        "another Call-ID is another transaction"
    );
}

#[test]
fn same_branch_different_method_is_another_transaction() {
    let mut h = Harness::new();
    h.new_server_tx(request(Method::Options, VIA, 1), udp());
    h.new_server_tx(request(Method::Info, VIA, 1), udp());
    assert_eq!(h.tl.len(), 2);
}

#[test]
fn garbage_never_panics() {
    let mut h = Harness::new();
    let bare = Request {
        method: Method::Other("X".into()),
        uri: Uri::Other("x:".into()),
        headers: Headers::new(),
        body: Bytes::new(),
    };
    h.recv_req(bare.clone(), udp());
    h.recv_req(bare.clone(), udp());
    assert_eq!(h.events().len(), 2, "unmatchable requests are always new");
    let mut junk = bare.clone();
    for (name, v) in [
        (HeaderName::Via, ";;=;,,"),
        (HeaderName::CSeq, "99999999999999 X"),
        (HeaderName::From, ">>;tag"),
    ] {
        junk.headers.push(name, v);
    }
    h.recv_req(junk.clone(), udp());
    junk.method = Method::Ack;
    h.recv_req(junk.clone(), udp());
    junk.method = Method::Cancel;
    h.recv_req(junk.clone(), udp());
    let id = h.send(junk.clone(), udp());
    for code in [0, 99, 100, 200, 700, u16::MAX] {
        let resp = Response {
            code,
            reason: String::new(),
            headers: junk.headers.clone(),
            body: Bytes::new(),
        };
        h.recv_resp(resp.clone());
        h.respond(ServerTxId(1), resp);
    }
    h.run_until(100.0);
    h.tl.client_request(id);
    let zero = TxConfig {
        t1: Duration::ZERO,
        t2: Duration::ZERO,
        t4: Duration::ZERO,
    };
    let mut tl = TransactionLayer::new(zero);
    tl.send_request(invite(VIA), udp(), h.now);
    tl.handle_timeout(h.now + Duration::from_secs(1));
    assert!(tl.is_empty());
}

#[test]
fn ids_increase_monotonically() {
    let mut h = Harness::new();
    let a = h
        .send(
            request(Method::Options, "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa", 1),
            udp(),
        )
        .0;
    let b = h.new_server_tx(request(Method::Options, VIA, 1), udp()).0;
    let c = h
        .send(
            request(Method::Options, "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKc", 1),
            udp(),
        )
        .0;
    assert!(a < b && b < c);
}

// ---- memory ----

#[test]
fn all_transactions_are_freed_after_their_timers() {
    let mut h = Harness::new();
    for i in 0..10_000u32 {
        let via = format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{i}");
        let flow = if i % 7 == 0 { tcp() } else { udp() };
        h.events();
        h.transmits();
        match i % 8 {
            0 => {
                h.send(invite(&via), flow);
            }
            1 => {
                let req = invite(&via);
                h.send(req.clone(), flow);
                h.recv_resp(response(&req, if (i / 8) % 2 == 0 { 200 } else { 486 }));
            }
            2 => {
                let req = request(Method::Options, &via, i);
                h.send(req.clone(), flow);
                h.recv_resp(response(&req, 200));
            }
            3 => {
                h.send(request(Method::Register, &via, i), flow);
            }
            4 => {
                let req = invite(&via);
                let id = h.new_server_tx(req.clone(), flow);
                h.respond(id, response(&req, 486));
            }
            5 => {
                let req = invite(&via);
                let id = h.new_server_tx(req.clone(), flow);
                h.respond(id, response(&req, 200));
                if i % 3 == 0 {
                    h.tl.ack_received(id);
                }
            }
            6 => {
                let req = request(Method::Bye, &via, i);
                let id = h.new_server_tx(req.clone(), flow);
                h.respond(id, response(&req, 200));
            }
            _ => {
                let req = invite(&via);
                let id = h.new_server_tx(req.clone(), flow);
                h.respond(id, response(&req, 603));
                h.recv_req(ack_for(&req), flow);
            }
        }
    }
    assert!(h.tl.len() > 5_000);
    h.transmits();
    h.events();
    h.run_until(100.0);
    assert_eq!(h.tl.len(), 0);
    assert_eq!(h.tl.poll_timeout(), None);
    assert_eq!(
        h.tl.out.timers.len(),
        0,
        "no stale timer entries left behind"
    );
    assert!(h.tl.client_index.is_empty() && h.tl.server_index.is_empty());
}
