//! One leg of a call: veil's side of one SIP dialog (RFC 3261 §12), and the requests veil
//! builds inside it. Plain data, so that call state can be serialized and replicated.

use bytes::Bytes;

use crate::config::Transport;
use crate::sdp::Origin;
use crate::sip::{CSeq, HeaderName, Headers, Method, Request, Uri, parse::parse_uri};
use crate::transaction::{ClientTxId, Flow};

use super::ids::IdGen;
use super::peers::Listener;

#[derive(Debug, Clone)]
pub struct Leg {
    /// Index of the peer on this leg.
    pub peer: usize,
    pub call_id: String,
    pub local_tag: String,
    /// The far end's tag, once known (leg A: from the INVITE; leg B: from the first
    /// dialog-creating response).
    pub remote_tag: Option<String>,
    /// Our From (leg B) / To (leg A) header value, our tag included.
    pub local_hdr: String,
    /// The far end's header value as it writes it (with its tag once known).
    pub remote_hdr: String,
    /// Next CSeq for requests veil sends on this leg.
    pub local_cseq: u32,
    /// Highest CSeq received from the far end.
    pub remote_cseq: Option<u32>,
    /// CSeq of the INVITE that created the leg (leg A: the far end's, leg B: ours), for
    /// translating RAck across legs.
    pub invite_cseq: u32,
    /// Far end's Contact: the Request-URI of requests veil sends on this leg.
    pub remote_target: String,
    /// Route set for requests on this leg (leg B: Record-Route of the answer, reversed).
    pub route_set: Vec<String>,
    /// Where requests on this leg go (leg A: where the caller's INVITE came from).
    pub flow: Flow,
    /// veil's `o=` line on this leg.
    pub origin: Origin,
    /// The last SDP body veil sent on this leg (o= version bumps only when it changes).
    pub last_sdp: Option<Bytes>,
    /// ACK veil last sent for a 2xx on this leg (re-sent when the 2xx is retransmitted).
    pub last_ack: Option<(u32, Bytes)>,
    /// Client transaction of the last INVITE veil sent on this leg.
    pub last_invite_ctx: Option<ClientTxId>,
    /// The session timer agreed on this leg (RFC 4028), once the call is answered.
    pub session: Option<super::session_timer::SessionTimer>,
    /// The last SDP received on this leg: the same body again marks a mere refresh
    /// (compared whole, since not every UA bumps its o= version on a change).
    pub last_sdp_in: Option<Bytes>,
}

/// veil's Contact on a listener.
pub fn contact(listener: &Listener) -> String {
    let mut s = String::with_capacity(48);
    s.push_str(match listener.transport {
        Transport::Tls => "<sips:",
        _ => "<sip:",
    });
    listener.write_sent_by(&mut s);
    if listener.transport == Transport::Tcp {
        s.push_str(";transport=tcp");
    }
    s.push('>');
    s
}

pub fn via(listener: &Listener, branch: &str) -> String {
    let mut s = String::with_capacity(64 + branch.len());
    s.push_str("SIP/2.0/");
    s.push_str(listener.transport.via_token());
    s.push(' ');
    listener.write_sent_by(&mut s);
    s.push_str(";branch=");
    s.push_str(branch);
    s.push_str(";rport");
    s
}

impl Leg {
    /// A request inside this leg's dialog (RFC 3261 §12.2.1.1). ACK reuses the INVITE's
    /// CSeq (`cseq`); every other method takes the next local CSeq.
    pub fn request(
        &mut self,
        method: Method,
        cseq: Option<u32>,
        listener: &Listener,
        ids: &mut IdGen,
    ) -> Request {
        let seq = match cseq {
            Some(s) => s,
            None => {
                self.local_cseq = self.local_cseq.wrapping_add(1);
                self.local_cseq
            }
        };
        let uri = parse_uri(&self.remote_target)
            .unwrap_or_else(|_| Uri::Other(self.remote_target.clone()));
        let mut h = Headers::new();
        h.push(HeaderName::Via, via(listener, &ids.branch()));
        h.push(HeaderName::MaxForwards, "70");
        for r in &self.route_set {
            h.push(HeaderName::Route, r.clone());
        }
        h.push(HeaderName::From, self.local_hdr.clone());
        h.push(HeaderName::To, self.remote_hdr.clone());
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, CSeq::value(seq, &method));
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Refer | Method::Notify
        ) {
            h.push(HeaderName::Contact, contact(listener));
        }
        Request {
            method,
            uri,
            headers: h,
            body: Bytes::new(),
        }
    }
}
