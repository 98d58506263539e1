//! What is answered before a transaction or call exists: malformed requests (400),
//! Max-Forwards exhausted (483), loops through veil (482), URI schemes veil cannot route
//! (416), extensions it does not support (420), bodies it cannot read (415), callers that
//! accept no SDP (406), SIP versions other than 2.0 (505, from the raw bytes).

use std::time::Instant;

use crate::security::valve::Verdict;
use crate::security::{DropReason, raw};
use crate::sip::header::list_items;
use crate::sip::{HeaderName, Method, Request, Response, SipHeaders, Uri, parse, reason_phrase};
use crate::transaction::Flow;

use super::engine::Engine;

/// Option tags veil can honour end to end on an initial INVITE.
const SUPPORTED: &[&str] = &["100rel", "timer", "replaces", "norefersub"];

pub(super) fn response(req: &Request, code: u16) -> Response {
    Response::for_request(req, code, reason_phrase(code))
}

/// What to do with a request before any transaction or call sees it.
pub(super) enum Admit {
    /// Go on to the transaction layer.
    Go,
    /// Answer statelessly at once.
    Answer(Response),
    /// Malformed, but not to be answered (an ACK never gets a response): counted, dropped.
    Drop,
}

/// Whether raw bytes are an ACK request (for input too broken to parse).
pub(super) fn is_ack(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data[start..].starts_with(b"ACK ")
}

/// Retry-After (seconds) of the 503 to a new INVITE over `limits.messages_per_second`:
/// like `limits.cps`, the bucket refills within a second.
const VALVE_RETRY_AFTER: &str = "1";

impl Engine {
    /// `limits.messages_per_second` of the peer the message on `flow` comes from (issue
    /// 15), before it is parsed: `false` when it is dropped (counted in
    /// `veil_sip_dropped_total{reason="peer_rate"}`; a new INVITE is answered 503 with
    /// Retry-After). Never a strike or a ban: the peer is trusted, only too loud.
    pub(super) fn peer_valve(&mut self, data: &[u8], flow: &Flow, now: Instant) -> bool {
        let Some(i) = self.peers.identify(flow) else {
            return true;
        };
        let p = &self.peers.peers[i];
        let (rate, burst) = p.cfg.limits.message_valve();
        if rate == 0 {
            return true;
        }
        let new = || raw::is_out_of_dialog_request(data);
        let Verdict::Drop { warn } = self.guard.peer_message(&p.name, rate, burst, new, now) else {
            return true;
        };
        if let Some(dropped) = warn {
            tracing::warn!(peer = %p.name, rate, burst, dropped,
                "peer over limits.messages_per_second: messages dropped");
        }
        self.metrics
            .sip_dropped
            .with_label_values(&[DropReason::PeerRate.as_str()])
            .inc();
        if raw::is_new_invite(data)
            && let Some(r) = raw::busy_503(data, VALVE_RETRY_AFTER)
        {
            self.metrics.sip_response_sent(503);
            self.tx.send_stateless(*flow, r);
        }
        false
    }

    /// Malformed requests get 400, except ACK: it is dropped (RFC 3261 §17: an ACK is never
    /// answered). Every other ACK goes on; the transaction layer drops what it cannot match.
    pub(super) fn admit(&mut self, req: &Request, flow: &Flow) -> Admit {
        let _ = flow;
        if let Err(e) = parse::check_request_sanity(req) {
            self.metrics.sip_invalid_messages.inc();
            if req.method == Method::Ack {
                return Admit::Drop;
            }
            let mut r = response(req, 400);
            r.reason = format!("Bad Request ({e})");
            return Admit::Answer(r);
        }
        if req.method == Method::Ack {
            return Admit::Go;
        }
        if let Some(Ok(0)) = req.max_forwards()
            && req.method != Method::Options
        {
            return Admit::Answer(response(req, 483));
        }
        // Every Via parsed in `check_request_sanity`.
        if req
            .headers
            .get_all(&HeaderName::Via)
            .flat_map(list_items)
            .filter_map(|v| parse::parse_via_ref(v).ok())
            .any(|v| {
                v.branch()
                    .is_some_and(|b| b.starts_with(super::ids::BRANCH_PREFIX))
                    && self.peers.is_own(&v.host.to_host(), v.port)
            })
        {
            return Admit::Answer(response(req, 482));
        }
        if req.body.len() > self.cfg.sip.max_message_size {
            return Admit::Answer(response(req, 513));
        }
        if matches!(req.uri, Uri::Other(_)) {
            return Admit::Answer(response(req, 416));
        }
        let to_tagged = req.to_tag().is_some();
        // RFC 3261 §8.2.2.3: every request but ACK and CANCEL outside a dialog (inside
        // one, the far end decides and answers across).
        if !to_tagged && req.method != Method::Cancel {
            let unsupported: Vec<&str> = req
                .headers
                .values(&HeaderName::Require)
                .into_iter()
                .chain(req.headers.values(&HeaderName::ProxyRequire))
                .filter(|t| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
                .collect();
            if !unsupported.is_empty() {
                let mut r = response(req, 420);
                r.headers
                    .push(HeaderName::Unsupported, unsupported.join(", "));
                return Admit::Answer(r);
            }
        }
        if !to_tagged && req.method == Method::Invite {
            if !req.body.is_empty() && !is_sdp(req.content_type()) {
                let mut r = response(req, 415);
                r.headers.push(HeaderName::Accept, "application/sdp");
                return Admit::Answer(r);
            }
            // The answer carries SDP: a caller that accepts no SDP cannot take it (§21.4.7).
            let accept = req.headers.values(&HeaderName::Accept);
            if !accept.is_empty() && !accept.iter().any(|a| accepts_sdp(a)) {
                let mut r = response(req, 406);
                r.headers.push(HeaderName::Accept, "application/sdp");
                return Admit::Answer(r);
            }
        }
        Admit::Go
    }
}

/// Whether one Accept media range (`type/subtype;params`) admits application/sdp.
fn accepts_sdp(range: &str) -> bool {
    let m = range.split(';').next().unwrap_or_default().trim();
    ["application/sdp", "application/*", "*/*"]
        .iter()
        .any(|t| m.eq_ignore_ascii_case(t))
}

pub(super) fn is_sdp(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/sdp"))
    })
}

/// A 400 for a request that did not parse, built from whatever Via/From/To/Call-ID/CSeq
/// lines can be read leniently, so that the sender learns why (RFC 4475 §3.1.2). `None`
/// when the bytes are not recognisably a request, or lack what a response needs.
pub(super) fn bad_request_from_raw(data: &[u8], why: &str) -> Option<Response> {
    crate::security::raw::response_from_raw(data, 400, &format!("Bad Request ({why})"))
}
