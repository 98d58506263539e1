//! One builder for every request veil originates: the first request of leg B, requests
//! inside a leg's dialog (`Leg::request`), relayed out-of-dialog requests
//! (`standalone.rs`) and keep-alive probes (`nat.rs`). RFC 3261 §8.1.1: a new Via with a
//! fresh branch (and `rport`), Max-Forwards, the route set, From, To, Call-ID and CSeq, in
//! that order; the caller adds what its kind of request needs after them.

use bytes::Bytes;

use crate::sip::{CSeq, HeaderName, Headers, Method, Request, Uri};

use super::ids::IdGen;
use super::leg::via;
use super::peers::Listener;

/// What identifies a request veil sends.
pub struct Outbound<'a> {
    pub method: Method,
    pub uri: Uri,
    /// Route header values, in order (empty outside a dialog with a route set).
    pub route: &'a [String],
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// 70 for veil's own requests; one less than the caller's for a relayed one.
    pub max_forwards: u32,
}

impl Outbound<'_> {
    /// The request, sent from `listener`, with a new branch from `ids`.
    pub fn build(self, listener: &Listener, ids: &mut IdGen) -> Request {
        let mut h = Headers::new();
        h.push(HeaderName::Via, via(listener, &ids.branch()));
        h.push(HeaderName::MaxForwards, self.max_forwards.to_string());
        for r in self.route {
            h.push(HeaderName::Route, r.clone());
        }
        h.push(HeaderName::From, self.from.to_string());
        h.push(HeaderName::To, self.to.to_string());
        h.push(HeaderName::CallId, self.call_id.to_string());
        h.push(HeaderName::CSeq, CSeq::value(self.cseq, &self.method));
        Request {
            method: self.method,
            uri: self.uri,
            headers: h,
            body: Bytes::new(),
        }
    }
}
