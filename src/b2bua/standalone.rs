//! Out-of-dialog requests other than INVITE that a policy rule names (`method: MESSAGE`,
//! `PUBLISH`, `REGISTER`, `OPTIONS`), relayed B2BUA-style: leg B gets a request of its own
//! (new Call-ID, From tag, branch, CSeq; veil's Via; allow-listed headers and the body
//! only), and its final answer is mapped back onto leg A's server transaction. Failover to
//! the rule's next target on timeout, 408 or 5xx, as for calls.
//!
//! REGISTER is relayed like any other request: Contact becomes veil's (with the caller's
//! `expires`), Expires is kept, and veil keeps no binding (calls towards registered users
//! are routed by policy). A 401/407 from a target veil has no `auth` for goes back to the
//! caller with its challenge, and the caller's answer crosses on the retry (end-to-end
//! digest); a target veil has credentials for is answered by veil (`auth.rs`).
//! SUBSCRIBE is not relayed: it creates a dialog with NOTIFYs, which this does not carry.

use std::time::Instant;

use crate::policy::{Decision, Facts, Route};
use crate::sip::{HeaderName, Method, NameAddr, Request, Response, SipHeaders, Uri};
use crate::transaction::{ClientTxId, ServerTxId};

use super::admission::response;
use super::engine::Engine;
use super::leg::contact;

/// Methods a policy rule can open to relaying outside a dialog.
pub(super) fn relayable(m: &Method) -> bool {
    matches!(
        m,
        Method::Message | Method::Publish | Method::Register | Method::Options
    )
}

/// One relayed request: leg A's transaction and request, and where leg B stands.
#[derive(Debug, Clone)]
pub(super) struct Standalone {
    stx: ServerTxId,
    a_req: Request,
    /// Index of the source peer in `peers`.
    src: usize,
    peers: std::sync::Arc<super::peers::Peers>,
    route: Route,
    /// Index into `route.targets` of the attempt in flight.
    target: usize,
    /// Index in `peers` of the last target tried (whose answer maps back).
    peer: usize,
    /// The target has no `auth`: its challenges go back to the caller.
    pass_challenges: bool,
}

/// Leg B identity of one caller's registrations towards one registrar (by the caller's
/// Call-ID, From tag and the registrar's name), kept until the binding would expire.
#[derive(Debug, Clone)]
pub(super) struct RegistrationLeg {
    call_id: String,
    tag: String,
    cseq: u32,
    until: Instant,
}

/// Headers of one method that must cross even though calls do not need them.
fn method_headers(m: &Method, response: bool) -> &'static [&'static str] {
    match (m, response) {
        (Method::Publish, false) => &["SIP-If-Match"],
        (Method::Publish, true) => &["SIP-ETag", "Min-Expires"],
        (Method::Register, true) => &["Min-Expires"],
        _ => &[],
    }
}

/// The `expires` parameter of a Contact value, if any.
fn contact_expires(v: &str) -> Option<u32> {
    let params = v.rsplit_once('>').map_or(v, |(_, p)| p);
    params.split(';').find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("expires")
            .then(|| val.trim().parse().ok())?
    })
}

impl Engine {
    /// A MESSAGE, PUBLISH, REGISTER or OPTIONS outside a dialog from peer `src`: relayed or
    /// rejected when a rule naming its method matches. Returns the request back when no
    /// rule matches (the caller answers it as before: OPTIONS locally, the rest 405).
    pub(super) fn standalone_request(
        &mut self,
        stx: ServerTxId,
        req: Request,
        src: usize,
        now: Instant,
    ) -> Option<Request> {
        let Ok(from) = req.from_hdr() else {
            self.reply(stx, response(&req, 400), now);
            return None;
        };
        // A REGISTER's user is in To (the address of record); its Request-URI is a domain.
        let to_user = if req.method == Method::Register {
            req.to_hdr()
                .ok()
                .and_then(|t| t.uri.user().map(str::to_string))
        } else {
            req.uri.user().map(str::to_string)
        }
        .unwrap_or_default();
        let from_user = from.uri.user().unwrap_or_default().to_string();
        let ruri_host = req.uri.host().map(|h| h.to_string()).unwrap_or_default();
        let decision = self.policy.evaluate(&Facts {
            from_peer: Some(&self.peers.peers[src].name),
            to_user: &to_user,
            from_user: &from_user,
            ruri_host: &ruri_host,
            method: req.method.as_str(),
            headers: &req.headers,
        });
        match decision {
            Decision::NoMatch => Some(req),
            Decision::Reject { rule, code, reason } => {
                tracing::info!(rule, code, method = %req.method, "request rejected by policy");
                let mut r = response(&req, code);
                if !reason.is_empty() {
                    r.reason = reason;
                }
                super::invite::tag_response(&mut r, &mut self.ids);
                self.reply(stx, r, now);
                None
            }
            Decision::Route(route) => {
                let s = Standalone {
                    stx,
                    a_req: req,
                    src,
                    peers: self.peers.clone(),
                    route,
                    target: 0,
                    peer: src,
                    pass_challenges: false,
                };
                self.standalone_attempt(s, None, now);
                None
            }
        }
    }

    /// Send `s` to its next available target (from `s.target` on), or answer leg A with
    /// `last` (408 when nothing answered, 503 when no target was available).
    fn standalone_attempt(&mut self, mut s: Standalone, last: Option<Response>, now: Instant) {
        let peers = s.peers.clone();
        // The first target with an address to try now (resolved, not down or resting).
        let mut found = None;
        for i in s.target..s.route.targets.len() {
            let Some(p) = peers.by_name(&s.route.targets[i]) else {
                continue;
            };
            if let Some(hop) = self.draw_hops(&peers.peers[p], now).first().copied() {
                found = Some((i, p, hop));
                break;
            }
        }
        let Some((idx, peer, hop)) = found else {
            let r = match last {
                Some(b) => self.standalone_answer(&s, b),
                None => response(&s.a_req, if s.target == 0 { 503 } else { 408 }),
            };
            self.reply(s.stx, r, now);
            return;
        };
        let p = &peers.peers[peer];
        let mut flow = crate::transaction::Flow {
            listener: p.listener,
            transport: hop.transport,
            remote: hop.addr,
            conn: None,
        };
        if p.cfg.nat
            && let Some(src) = self.nat_sources.get(&p.name)
        {
            flow.remote = *src;
        }
        let listener = peers.listeners[p.listener].clone();
        s.target = idx;
        s.peer = peer;
        s.pass_challenges = p.cfg.auth.is_none();
        let a = &s.a_req;
        let register = a.method == Method::Register;
        // REGISTER: the address of record on the registrar's domain, in To and From.
        let ruri = if register {
            p.uri_for("")
        } else {
            p.uri_for(&s.route.to_user)
        };
        let secure = ruri.secure;
        let mut to_uri = p.uri_for(&s.route.to_user);
        to_uri.params.clear();
        let mut to = NameAddr::new(Uri::Sip(to_uri.clone()));
        to.display = a.to_hdr().ok().and_then(|t| t.display);
        let from_uri = if register {
            to_uri
        } else {
            super::invite::user_uri(&s.route.from_user, &listener)
        };
        let mut from = NameAddr::new(Uri::Sip(from_uri));
        from.display = a.from_hdr().ok().and_then(|f| f.display);
        // A REGISTER refresh of the same binding keeps leg B's Call-ID and From tag, with
        // CSeq going up, as a registrar expects of one UA (RFC 3261 §10.2.4).
        let reg_key = register.then(|| {
            let a_call = a.call_id().unwrap_or_default().to_string();
            let a_tag = a
                .from_hdr()
                .ok()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default();
            (a_call, a_tag, p.name.clone())
        });
        let (call_id, tag, cseq) =
            match reg_key.as_ref().and_then(|k| self.registrations.get_mut(k)) {
                Some(r) => {
                    r.cseq = r.cseq.wrapping_add(1);
                    (r.call_id.clone(), r.tag.clone(), r.cseq)
                }
                None => (self.ids.call_id(), self.ids.tag(), self.ids.cseq()),
            };
        if let Some(k) = reg_key {
            let expires = a
                .headers
                .get_all(&HeaderName::Contact)
                .find_map(contact_expires)
                .or_else(|| a.headers.get(&HeaderName::Expires)?.trim().parse().ok())
                .unwrap_or(3600)
                .min(86_400);
            let until = super::deadline::after(
                now,
                std::time::Duration::from_secs(u64::from(expires).saturating_add(60)),
            );
            self.registrations.insert(
                k,
                RegistrationLeg {
                    call_id: call_id.clone(),
                    tag: tag.clone(),
                    cseq,
                    until,
                },
            );
        }
        from.set_tag(&tag);
        let max_fwd = match a.max_forwards() {
            Some(Ok(n)) => n.saturating_sub(1).min(70),
            _ => 70,
        };
        let method = a.method.clone();
        let (from, to) = (from.to_string(), to.to_string());
        let mut req = super::outbound::Outbound {
            method: method.clone(),
            uri: Uri::Sip(ruri),
            route: &[],
            from: &from,
            to: &to,
            call_id: &call_id,
            cseq,
            max_forwards: max_fwd,
        }
        .build(&listener, &mut self.ids);
        let h = &mut req.headers;
        if register {
            // veil's own Contact, one per binding asked for, with the caller's expires.
            for c in a.headers.get_all(&HeaderName::Contact) {
                let v = if c.trim() == "*" {
                    "*".to_string()
                } else {
                    match contact_expires(c) {
                        Some(e) => format!("{};expires={e}", contact(&listener, secure)),
                        None => contact(&listener, secure),
                    }
                };
                h.push(HeaderName::Contact, v);
            }
        }
        peers.filter(s.src, peer).copy(&a.headers, h);
        for name in method_headers(&method, false) {
            let name = HeaderName::parse(name);
            for v in a.headers.get_all(&name) {
                h.push(name.clone(), v);
            }
        }
        if s.pass_challenges {
            // End-to-end digest: the caller answers the target's challenge itself.
            for name in [HeaderName::Authorization, HeaderName::ProxyAuthorization] {
                for v in a.headers.get_all(&name) {
                    h.push(name.clone(), v);
                }
            }
        }
        for (name, value) in &s.route.set_headers {
            h.set(HeaderName::parse(name), value.clone());
        }
        req.body = a.body.clone();
        tracing::info!(method = %req.method, rule = %s.route.rule, target = %p.name, "request relayed");
        let ctx = self.tx.send_request(req, flow, now);
        self.owners
            .insert(ctx, super::owner::TxOwner::Standalone(Box::new(s)));
    }

    /// Leg A's answer for leg B's final response `b`.
    fn standalone_answer(&mut self, s: &Standalone, b: Response) -> Response {
        let mut r = response(&s.a_req, b.code);
        r.reason = b.reason.clone();
        s.peers
            .filter(s.peer, s.src)
            .copy(&b.headers, &mut r.headers);
        for name in method_headers(&s.a_req.method, true) {
            let name = HeaderName::parse(name);
            for v in b.headers.get_all(&name) {
                r.headers.push(name.clone(), v);
            }
        }
        if matches!(b.code, 401 | 407) && s.pass_challenges {
            for name in [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate] {
                for v in b.headers.get_all(&name) {
                    r.headers.push(name.clone(), v);
                }
            }
        }
        if s.a_req.method == Method::Register && (200..300).contains(&b.code) {
            // The caller's own bindings, with what the registrar granted veil's.
            let granted = b
                .headers
                .get_all(&HeaderName::Contact)
                .find_map(contact_expires);
            for c in s.a_req.headers.get_all(&HeaderName::Contact) {
                if c.trim() != "*" {
                    r.headers.push(HeaderName::Contact, c);
                }
            }
            if let Some(e) = granted
                && !r.headers.contains(&HeaderName::Expires)
            {
                r.headers.push(HeaderName::Expires, e.to_string());
            }
        }
        r.body = b.body;
        if r.body.is_empty() {
            r.headers.remove_all(&HeaderName::ContentType);
        }
        super::invite::tag_response(&mut r, &mut self.ids);
        r
    }

    /// Whether a challenge to client transaction `id` goes back to the caller as it is.
    pub(super) fn standalone_passes_challenge(&self, id: ClientTxId) -> bool {
        matches!(self.owners.get(&id), Some(super::owner::TxOwner::Standalone(s)) if s.pass_challenges)
    }

    /// A response to the relayed request on client transaction `id` (provisional ones
    /// stay on leg B).
    pub(super) fn on_standalone_response(&mut self, id: ClientTxId, resp: Response, now: Instant) {
        if resp.code < 200 {
            return;
        }
        let Some(super::owner::TxOwner::Standalone(s)) = self.owners.remove(&id) else {
            return;
        };
        let mut s = *s;
        if resp.code == 408 || resp.code >= 500 {
            s.target += 1;
            self.standalone_attempt(s, Some(resp), now);
            return;
        }
        let r = self.standalone_answer(&s, resp);
        self.reply(s.stx, r, now);
    }

    /// No answer to a relayed request: the next target, or 408.
    pub(super) fn on_standalone_timeout(&mut self, mut s: Standalone, now: Instant) {
        s.target += 1;
        self.standalone_attempt(s, None, now);
    }

    /// Forget registration legs whose binding has expired (housekeeping).
    pub(super) fn prune_registrations(&mut self, now: Instant) {
        self.registrations.retain(|_, r| now < r.until);
        super::housekeeping::shrink_map(&mut self.registrations);
    }
}

#[cfg(test)]
mod tests {
    use super::contact_expires;

    #[test]
    fn expires_parameter_of_a_contact() {
        assert_eq!(
            contact_expires("<sip:a@h;expires=5>;expires=300"),
            Some(300)
        );
        assert_eq!(contact_expires("<sip:a@h;expires=5>"), None);
        assert_eq!(contact_expires("sip:a@h;Expires=60"), Some(60));
        assert_eq!(contact_expires("<sip:a@h>;q=0.5"), None);
        assert_eq!(contact_expires("<sip:a@h>;expires=x"), None);
    }
}
