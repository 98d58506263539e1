//! One leg of a call: veil's side of one SIP dialog (RFC 3261 §12), and the requests veil
//! builds inside it. Plain data, so that call state can be serialized and replicated.

use bytes::Bytes;

use crate::config::Transport;
use crate::sdp::Origin;
use crate::sip::{HeaderName, Method, Request, Uri, parse::parse_uri};
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
    /// Route set for requests on this leg (RFC 3261 §12.1: leg A: the INVITE's
    /// Record-Route in order; leg B: Record-Route of the answer, reversed).
    pub route_set: Vec<String>,
    /// The dialog is `sips:` (its Request-URI or top Route was): only then is veil's
    /// Contact `sips:` too (RFC 3261 §12.1.1, RFC 5630 §3.1.3).
    pub secure: bool,
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

impl Leg {
    /// Take `uri` from a Contact as the leg's remote target, unless it could not be a
    /// Request-URI (empty, no scheme, whitespace): a peer's broken Contact must not make
    /// veil send requests it cannot even frame (found by the engine_call fuzz target).
    pub fn set_remote_target(&mut self, uri: String) {
        if usable_target(&uri) {
            self.remote_target = uri;
        }
    }
}

/// Whether `uri` can stand as a Request-URI veil sends.
pub fn usable_target(uri: &str) -> bool {
    !uri.is_empty()
        && uri.contains(':')
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// veil's Contact on a listener: `sips:` only in a `sips:` dialog on TLS (RFC 5630: TLS
/// on one hop does not make a dialog `sips:`), else `sip:` naming the transport.
pub fn contact(listener: &Listener, secure: bool) -> String {
    let mut s = String::with_capacity(48);
    let sips = secure && listener.transport == Transport::Tls;
    s.push_str(if sips { "<sips:" } else { "<sip:" });
    listener.write_sent_by(&mut s);
    match listener.transport {
        Transport::Tcp => s.push_str(";transport=tcp"),
        Transport::Tls if !sips => s.push_str(";transport=tls"),
        _ => {}
    }
    s.push('>');
    s
}

/// Whether a request opens a `sips:` dialog: its Request-URI, or its top Route, is `sips:`
/// (RFC 3261 §12.1.1).
pub fn is_secure(req: &Request) -> bool {
    let top_route = req
        .headers
        .first_value(&HeaderName::Route)
        .map(|r| r.trim_start().trim_start_matches('<').trim_start())
        .is_some_and(|r| r.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:")));
    matches!(&req.uri, Uri::Sip(u) if u.secure) || top_route
}

/// Copy the request's Record-Route into a response that creates or refreshes a dialog
/// (RFC 3261 §12.1.1): the proxies that recorded the route then see the in-dialog
/// requests. Only this leg's own headers travel back to it, so nothing crosses legs.
pub fn copy_record_route(req: &Request, resp: &mut crate::sip::Response) {
    for v in req.headers.get_all(&HeaderName::RecordRoute) {
        resp.headers.push(HeaderName::RecordRoute, v);
    }
}

/// The route set of Record-Route `entries` (RFC 3261 §12.1), or `None` if one of them
/// is not a SIP URI (in `<>` or bare) free of control characters: a strict router's URI
/// becomes the Request-URI of veil's requests on the leg, so a peer's garbage there
/// would make veil send requests it cannot even frame (found by the engine_call fuzz
/// target). A broken set is ignored whole: dropping one entry would silently route
/// around a proxy.
pub fn route_set<'a>(entries: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    entries
        .into_iter()
        .map(|e| {
            let usable = !e.chars().any(char::is_control)
                && matches!(parse_uri(route_uri(e)), Ok(Uri::Sip(_)));
            usable.then(|| e.to_string())
        })
        .collect()
}

/// Whether a route entry is a loose router (`;lr`, RFC 3261 §16.12.1.1).
fn is_loose(route: &str) -> bool {
    let uri = route
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or(route, |(u, _)| u);
    uri.split(';').skip(1).any(|p| {
        p.trim().eq_ignore_ascii_case("lr") || p.trim().to_ascii_lowercase().starts_with("lr=")
    })
}

/// The bare URI of a route entry (`<uri>;params` or `uri`).
fn route_uri(route: &str) -> &str {
    route
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or(route.trim(), |(u, _)| u)
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
        // RFC 3261 §12.2.1.1: with a loose router first, the Request-URI is the remote
        // target and the route set goes into Route; a strict router takes the
        // Request-URI itself, and the remote target goes last into Route.
        let strict = self.route_set.first().filter(|r| !is_loose(r));
        let target = match strict {
            Some(first) => route_uri(first).to_string(),
            None => self.remote_target.clone(),
        };
        let uri = parse_uri(&target).unwrap_or(Uri::Other(target));
        let skip = usize::from(strict.is_some());
        let mut route = self.route_set.get(skip..).unwrap_or_default().to_vec();
        if strict.is_some() {
            route.push(format!("<{}>", self.remote_target));
        }
        let with_contact = matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Refer | Method::Notify
        );
        let mut req = super::outbound::Outbound {
            method,
            uri,
            route: &route,
            from: &self.local_hdr,
            to: &self.remote_hdr,
            call_id: &self.call_id,
            cseq: seq,
            max_forwards: 70,
        }
        .build(listener, ids);
        if with_contact {
            req.headers
                .push(HeaderName::Contact, contact(listener, self.secure));
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Host, Message};

    fn listener(transport: Transport) -> Listener {
        Listener {
            transport,
            host: Host::V4([127, 0, 0, 1].into()),
            port: 5061,
        }
    }

    fn request(ruri: &str, route: &str) -> Request {
        let text = format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.2;branch=z9hG4bK1\r\n{route}From: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_contact_is_sips_only_in_a_sips_dialog() {
        let tls = listener(Transport::Tls);
        assert_eq!(contact(&tls, true), "<sips:127.0.0.1:5061>");
        assert_eq!(contact(&tls, false), "<sip:127.0.0.1:5061;transport=tls>");
        // sips: needs TLS on veil's hop too.
        assert_eq!(
            contact(&listener(Transport::Udp), true),
            "<sip:127.0.0.1:5061>"
        );
        assert_eq!(
            contact(&listener(Transport::Tcp), false),
            "<sip:127.0.0.1:5061;transport=tcp>"
        );
    }

    #[test]
    fn a_dialog_is_sips_by_request_uri_or_top_route() {
        assert!(is_secure(&request("sips:b@127.0.0.1", "")));
        assert!(!is_secure(&request("sip:b@127.0.0.1;transport=tls", "")));
        assert!(is_secure(&request(
            "sip:b@127.0.0.1",
            "Route: <SIPS:127.0.0.1;lr>, <sip:x;lr>\r\n"
        )));
        assert!(!is_secure(&request(
            "sip:b@127.0.0.1",
            "Route: <sip:127.0.0.1;lr>, <sips:x;lr>\r\n"
        )));
    }

    #[test]
    fn loose_and_strict_route_entries() {
        assert!(is_loose("<sip:10.0.0.1;lr>"));
        assert!(is_loose("<sip:10.0.0.1;ftag=x;lr=on>;foo"));
        assert!(!is_loose("<sip:10.0.0.1>;lr"));
        assert!(!is_loose("<sip:lrhost.example>"));
        assert_eq!(route_uri("<sip:10.0.0.1;lr>;x"), "sip:10.0.0.1;lr");
    }

    #[test]
    fn a_route_set_takes_only_sip_uris() {
        let ok = [
            "<sip:10.0.0.1;lr>",
            "\"P\" <sips:p.example>;x=1",
            "sip:10.0.0.2;lr",
        ];
        assert_eq!(route_set(ok).map(|s| s.len()), Some(3));
        assert_eq!(route_set([]), Some(Vec::new()));
        for bad in [
            "\0\0\0\0 \0",
            "<tel:+123>",
            "<sip:>",
            "<sip:p;lr>\u{1}",
            "garbage",
        ] {
            assert_eq!(route_set(["<sip:10.0.0.1;lr>", bad]), None, "{bad:?}");
        }
    }
}
