//! A new call: identify the source peer, ask the policy, originate leg B, map its answers
//! back to leg A, fail over to the next target on timeout, 408 or 5xx.

use std::time::Instant;

use bytes::Bytes;

use crate::config::{SessionTimerConfig, UnknownSource};
use crate::media::Side;
use crate::observe::CdrEvent;
use crate::policy::{Decision, Facts};
use crate::sdp::Origin;
use crate::sip::{HeaderName, Headers, Method, Request, Response, SipHeaders, Uri, reason_phrase};
use crate::transaction::{ClientTxId, Flow, ServerTxId};

use super::Output;
use super::admission::{is_sdp, response};
use super::anchor::Unusable;
use super::call::{Attempt, AwaitAck, Call, EndReason, Phase};
use super::call_timers::CallTimer;
use super::deadline::after;
use super::engine::Engine;
use super::leg::{Leg, contact, copy_record_route, via};
use super::owner::TxOwner;
use super::peers::retry_after;
use super::srtp::SdpRole;

/// Methods veil answers or relays; anything else outside a dialog gets 501.
fn known_method(m: &Method) -> bool {
    !matches!(m, Method::Other(_))
}

impl Engine {
    pub(super) fn on_request(&mut self, stx: ServerTxId, req: Request, flow: Flow, now: Instant) {
        if req.to_tag().is_some() {
            self.on_in_dialog(stx, req, flow, now);
            return;
        }
        let source = self.peers.identify(&flow);
        if source.is_none() {
            tracing::info!(remote = %flow.remote, method = %req.method, "request from unknown source refused");
            self.strike(flow.remote.ip(), now);
            if self.cfg.sip.unknown_source == UnknownSource::Reject {
                self.reply(stx, response(&req, 403), now);
            }
            return;
        }
        let req = match (source, super::standalone::relayable(&req.method)) {
            (Some(src), true) => match self.standalone_request(stx, req, src, now) {
                Some(req) => req,
                None => return,
            },
            _ => req,
        };
        match req.method {
            Method::Invite => self.new_call(stx, req, flow, source, now),
            Method::Options => {
                let mut r = response(&req, 200);
                tag_response(&mut r, &mut self.ids);
                r.headers.push(
                    HeaderName::Allow,
                    "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK",
                );
                r.headers.push(HeaderName::Accept, "application/sdp");
                r.headers.push(HeaderName::Supported, "100rel, timer");
                self.reply(stx, r, now);
            }
            Method::Bye | Method::Prack | Method::Update | Method::Info => {
                self.reply(stx, response(&req, 481), now)
            }
            ref m if !known_method(m) => self.reply(stx, response(&req, 501), now),
            _ => {
                let mut r = response(&req, 405);
                r.headers.push(
                    HeaderName::Allow,
                    "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK",
                );
                self.reply(stx, r, now);
            }
        }
    }

    fn new_call(
        &mut self,
        stx: ServerTxId,
        req: Request,
        flow: Flow,
        source: Option<usize>,
        now: Instant,
    ) {
        let Some(src) = source else { return };
        if self.draining {
            let mut r = response(&req, 503);
            r.headers.push(HeaderName::RetryAfter, "30");
            self.reply(stx, r, now);
            return;
        }
        if let Some((limit, retry)) = self.over_limit(src, now) {
            tracing::info!(limit, source = %self.peers.peers[src].name, "new call refused by limit");
            self.metrics.calls_limited.with_label_values(&[limit]).inc();
            self.metrics
                .calls_total
                .with_label_values(&["rejected"])
                .inc();
            let mut r = response(&req, 503);
            r.headers.push(HeaderName::RetryAfter, retry);
            tag_response(&mut r, &mut self.ids);
            self.reply(stx, r, now);
            return;
        }
        let (Ok(from), Ok(to), Ok(call_id), Ok(cseq)) =
            (req.from_hdr(), req.to_hdr(), req.call_id(), req.cseq())
        else {
            self.reply(stx, response(&req, 400), now);
            return;
        };
        let from_tag = from.tag().unwrap_or_default().to_string();
        if self
            .a_index
            .contains_key(&(call_id.to_string(), from_tag.clone()))
        {
            // Same dialog identifiers, new transaction, while the call lives: a merged or
            // looped request (RFC 3261 §8.2.2.2).
            self.reply(stx, response(&req, 482), now);
            return;
        }
        let to_user = req.uri.user().unwrap_or_default().to_string();
        let from_user = from.uri.user().unwrap_or_default().to_string();
        let ruri_host = req.uri.host().map(|h| h.to_string()).unwrap_or_default();
        let decision = {
            let facts = Facts {
                from_peer: Some(&self.peers.peers[src].name),
                to_user: &to_user,
                from_user: &from_user,
                ruri_host: &ruri_host,
                method: req.method.as_str(),
                headers: &req.headers,
            };
            self.policy.evaluate(&facts)
        };
        let route = match decision {
            Decision::Route(r) => r,
            Decision::Reject { rule, code, reason } => {
                tracing::info!(rule, code, call_id, "call rejected by policy");
                self.metrics
                    .calls_total
                    .with_label_values(&["rejected"])
                    .inc();
                let mut r = response(&req, code);
                if !reason.is_empty() {
                    r.reason = reason;
                }
                tag_response(&mut r, &mut self.ids);
                self.reply(stx, r, now);
                return;
            }
            Decision::NoMatch => {
                tracing::info!(call_id, "no policy rule matched; rejected");
                self.metrics
                    .calls_total
                    .with_label_values(&["rejected"])
                    .inc();
                let mut r = response(&req, 403);
                tag_response(&mut r, &mut self.ids);
                self.reply(stx, r, now);
                return;
            }
        };

        // A rule's session timer wins over the peer's, which wins over the global one.
        let a_timer_cfg = route
            .session_timer
            .clone()
            .or_else(|| self.peers.peers[src].cfg.session_timer.clone())
            .unwrap_or_else(|| self.cfg.calls.session_timer.clone());
        let a_session = match super::session_timer::plan_uas(&req, &a_timer_cfg) {
            Ok(s) => s,
            Err(min_se) => {
                let mut r = response(&req, 422);
                r.headers
                    .push(HeaderName::MinSe, min_se.as_secs().to_string());
                tag_response(&mut r, &mut self.ids);
                self.reply(stx, r, now);
                return;
            }
        };

        let key = self.next_key;
        self.next_key += 1;
        let local_tag = self.ids.tag();
        let mut to_hdr = to.clone();
        to_hdr.set_tag(&local_tag);
        let remote_target = req
            .contact()
            .and_then(|c| c.ok())
            .map(|c| c.uri.to_string())
            .filter(|u| super::leg::usable_target(u))
            .unwrap_or_else(|| req.uri.to_string());
        let a = Leg {
            peer: src,
            call_id: call_id.to_string(),
            local_tag,
            remote_tag: Some(from_tag.clone()),
            local_hdr: to_hdr.to_string(),
            remote_hdr: req
                .headers
                .get(&HeaderName::From)
                .unwrap_or_default()
                .to_string(),
            local_cseq: self.ids.cseq(),
            remote_cseq: Some(cseq.seq),
            invite_cseq: cseq.seq,
            remote_target,
            // An unusable Record-Route is the caller's problem, not a reason to refuse
            // the call: veil's requests to it then go without Route.
            route_set: super::leg::route_set(req.headers.values(&HeaderName::RecordRoute))
                .unwrap_or_default(),
            secure: super::leg::is_secure(&req),
            flow,
            origin: Origin {
                session_id: self.ids.u64() >> 2,
                version: 1,
            },
            last_sdp: None,
            last_ack: None,
            last_invite_ctx: None,
            session: None,
            last_sdp_in: None,
        };
        let vref = self.ids.call_ref();
        let late_offer = req.body.is_empty();
        // Leg B is filled in by the first attempt; until then it has no identity.
        let mut b = a.clone();
        b.call_id = String::new();
        b.remote_tag = None;
        let call = Call {
            key,
            peers: self.peers.clone(),
            vref: vref.clone(),
            phase: Phase::Setup(Attempt::default()),
            a,
            b,
            a_invite: req,
            a_invite_stx: stx,
            route,
            target: 0,
            hops: Vec::new(),
            hop: 0,
            attempt: 0,
            streams: Vec::new(),
            pending: Vec::new(),
            await_ack: Vec::new(),
            late_offer,
            started: now,
            started_wall: self.wall(now),
            media: Default::default(),
            srtp: Default::default(),
            a_session,
            b_min_se: None,
            b_extra_forks: Vec::new(),
            stxs: vec![stx],
            ctxs: Vec::new(),
            leak: Default::default(),
            deadlines: Default::default(),
        };
        self.a_index.insert((call.a.call_id.clone(), from_tag), key);
        self.stx_calls.insert(stx, key);
        self.out.push_back(Output::Cdr(CdrEvent::Start {
            id: vref.clone(),
            a_call_id: call.a.call_id.clone(),
            source_peer: self.peers.peers[src].name.clone(),
            from_user: call.route.from_user.clone(),
            to_user: call.route.to_user.clone(),
            started_at: call.started_wall,
        }));
        tracing::info!(call = %vref, a_call_id = %call.a.call_id, source = %self.peers.peers[src].name,
            rule = %call.route.rule, to_user = %call.route.to_user, "call setup");
        self.calls.insert(key, call);
        *self
            .calls_by_peer
            .entry(self.peers.peers[src].name.clone())
            .or_default() += 1;
        self.metrics.calls_active.inc();

        // The caller's SDP is anchored once; every attempt offers the same B-side ports.
        let body = self.calls[&key].a_invite.body.clone();
        if !body.is_empty()
            && let Err(e) = self.anchor_sdp(key, Side::A, &body, now, SdpRole::Offer)
        {
            let code = if e == super::anchor::AnchorError::NoPorts {
                503
            } else {
                488
            };
            self.fail_call(key, code, None, now);
            return;
        }
        self.next_attempt(key, None, now);
    }

    /// The addresses of `peer` a call moving to it tries, in order: its current targets
    /// (the engine's latest DNS result for that name, else the call's snapshot), weighted
    /// per call, without those resting after a 503. Empty: the peer is skipped like a dead
    /// target (logged).
    pub(super) fn draw_hops(
        &mut self,
        peer: &super::peers::Peer,
        now: Instant,
    ) -> Vec<super::targets::PeerTarget> {
        if self.down.contains(&peer.name) {
            return Vec::new();
        }
        let current = self.peers.clone();
        let records = match current.by_name(&peer.name) {
            Some(i) => &current.peers[i].records,
            None => &peer.records,
        };
        if records.is_empty() {
            tracing::warn!(peer = %peer.name, "peer has no resolved target: skipped");
            return Vec::new();
        }
        let ids = &mut self.ids;
        let mut pick = |n: u32| (ids.u64() % u64::from(n.max(1))) as u32;
        let hops: Vec<_> = super::targets::order(records, &mut pick)
            .into_iter()
            .filter(|t| !self.is_resting(&peer.name, t.addr, now))
            .collect();
        if hops.is_empty() {
            tracing::debug!(peer = %peer.name, "every target of the peer is resting");
        }
        hops
    }

    /// Which limit a new call from peer `src` would exceed (`calls.max_calls`, the peer's
    /// `limits.max_calls` and `limits.cps`), with the Retry-After to send.
    fn over_limit(&mut self, src: usize, now: Instant) -> Option<(&'static str, &'static str)> {
        let global = self.cfg.calls.max_calls as usize;
        if global > 0 && self.calls.len() >= global {
            return Some(("max_calls", "5"));
        }
        let peer = &self.peers.peers[src];
        let limits = &peer.cfg.limits;
        let active = self.calls_by_peer.get(&peer.name).copied().unwrap_or(0);
        if limits.max_calls > 0 && active >= limits.max_calls {
            return Some(("peer_max_calls", "5"));
        }
        let (name, cps) = (peer.name.clone(), limits.cps);
        if !self.guard.peer_call_allowed(&name, cps, now) {
            return Some(("peer_cps", "1"));
        }
        None
    }

    /// Originate leg B towards the next available target of the route, or give the caller
    /// the final answer `last` (408 when nothing was tried or everything timed out).
    /// After a timeout, 408 or 503 the next address of the same peer comes first.
    fn next_attempt(&mut self, key: u64, last: Option<Response>, now: Instant) {
        let same_peer = last.as_ref().is_none_or(|r| matches!(r.code, 408 | 503));
        self.next_attempt_from(key, last, same_peer, now);
    }

    /// [`Self::next_attempt`], told whether the current peer's other addresses may be
    /// tried (not after a ring timeout: the peer is alive, its callee does not answer).
    fn next_attempt_from(
        &mut self,
        key: u64,
        last: Option<Response>,
        same_peer: bool,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let peers = call.peers.clone();
        let (attempt, route) = (call.attempt, call.route.targets.clone());
        let mut hop = None;
        if attempt > 0 && same_peer {
            let name = &peers.peers[call.b.peer].name;
            hop = (call.hop + 1..call.hops.len())
                .find(|&j| !self.is_resting(name, call.hops[j].addr, now))
                .map(|j| (call.target, call.b.peer, call.hops.clone(), j));
        }
        let mut idx = if attempt == 0 { 0 } else { call.target + 1 };
        while hop.is_none() {
            let Some(name) = route.get(idx) else {
                break;
            };
            if let Some(p) = peers.by_name(name) {
                let hops = self.draw_hops(&peers.peers[p], now);
                if !hops.is_empty() {
                    hop = Some((idx, p, hops, 0));
                }
            }
            idx += 1;
        }
        let Some((idx, peer, hops, hop)) = hop else {
            self.abandon_b_invite(key, now);
            match last {
                Some(resp) => self.fail_call(key, resp.code, Some(resp), now),
                None => self.fail_call(key, if attempt == 0 { 503 } else { 408 }, None, now),
            }
            return;
        };
        let Some(target) = hops.get(hop).copied() else {
            return;
        };
        let mut flow = Flow {
            listener: peers.peers[peer].listener,
            transport: target.transport,
            remote: target.addr,
            conn: None,
        };
        if peers.peers[peer].cfg.nat
            && let Some(src) = self.nat_sources.get(&peers.peers[peer].name)
        {
            flow.remote = *src;
        }
        let listener = peers.listeners[peers.peers[peer].listener].clone();
        let call_id = self.ids.call_id();
        let local_tag = self.ids.tag();
        let cseq = self.ids.cseq();
        let origin = Origin {
            session_id: self.ids.u64() >> 2,
            version: 1,
        };
        let src = self.calls[&key].a.peer;
        let filter = peers.filter(src, peer);
        let b_timer_cfg = self.calls[&key]
            .route
            .session_timer
            .clone()
            .or_else(|| peers.peers[peer].cfg.session_timer.clone())
            .unwrap_or_else(|| self.cfg.calls.session_timer.clone());
        self.abandon_b_invite(key, now);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.attempt > 0 {
            self.b_index.remove(&call.b.call_id);
        }
        call.target = idx;
        call.hops = hops;
        call.hop = hop;
        call.attempt += 1;
        let p = &peers.peers[peer];
        let a_from = call.a_invite.from_ref().ok();
        let a_to = call.a_invite.to_ref().ok();
        let mut from =
            crate::sip::NameAddr::new(Uri::Sip(user_uri(&call.route.from_user, &listener)));
        from.display = a_from.and_then(|f| f.display).map(str::to_owned);
        from.set_tag(&local_tag);
        let ruri = p.uri_for(&call.route.to_user);
        let mut to = crate::sip::NameAddr::new(Uri::Sip(ruri.clone()));
        to.display = a_to.and_then(|t| t.display).map(str::to_owned);
        if let Some(Uri::Sip(u)) = Some(&mut to.uri) {
            u.params.clear();
        }
        let max_fwd = match call.a_invite.max_forwards() {
            Some(Ok(n)) => n.saturating_sub(1).min(70),
            _ => 70,
        };
        call.b = Leg {
            peer,
            call_id: call_id.clone(),
            local_tag,
            remote_tag: None,
            local_hdr: from.to_string(),
            remote_hdr: to.to_string(),
            local_cseq: cseq,
            remote_cseq: None,
            invite_cseq: cseq,
            remote_target: ruri.to_string(),
            route_set: Vec::new(),
            secure: ruri.secure,
            flow,
            origin,
            last_sdp: None,
            last_ack: None,
            last_invite_ctx: None,
            session: None,
            last_sdp_in: None,
        };
        // The same builder as every in-dialog request of the leg, then what crosses.
        let mut req = call
            .b
            .request(Method::Invite, Some(cseq), &listener, &mut self.ids);
        let h = &mut req.headers;
        h.set(HeaderName::MaxForwards, max_fwd.to_string());
        filter.copy(&call.a_invite.headers, h);
        for (name, value) in &call.route.set_headers {
            h.set(HeaderName::parse(name), value.clone());
        }
        super::session_timer::offer_headers(h, &b_timer_cfg, None);
        let vref = call.vref.clone();
        let a_call_id = call.a.call_id.clone();
        let attempt = call.attempt;
        let has_offer = !call.a_invite.body.is_empty();
        // Each attempt gets the same B-side ports under a fresh o= line.
        let mut body = Bytes::new();
        if has_offer {
            let a_body = call.a_invite.body.clone();
            for s in &call.streams {
                self.out
                    .push_back(Output::Media(crate::media::MediaCommand::SetRemote {
                        id: s.id,
                        side: Side::B,
                        rtp: None,
                        rtcp: None,
                    }));
            }
            match self.anchor_sdp(key, Side::A, &a_body, now, SdpRole::Offer) {
                Ok(b) => body = b,
                Err(_) => {
                    self.fail_call(key, 488, None, now);
                    return;
                }
            }
        }
        req.body = body;
        self.b_index.insert(call_id.clone(), key);
        let ctx = self.send_request(req, flow, now);
        self.own(key, ctx, TxOwner::Invite { call: key });
        if let Some(call) = self.calls.get_mut(&key) {
            call.start_attempt(ctx);
            call.b.last_invite_ctx = Some(ctx);
        }
        self.out.push_back(Output::Cdr(CdrEvent::Route {
            id: vref.clone(),
            b_call_id: call_id.clone(),
            dest_peer: peers.peers[peer].name.clone(),
        }));
        tracing::info!(call = %vref, a_call_id = %a_call_id, b_call_id = %call_id, target = %peers.peers[peer].name, address = %target, attempt, "leg B originated");
        self.arm(
            key,
            CallTimer::Ring,
            after(now, self.cfg.sip.timers.invite_timeout.0),
        );
    }

    /// A response to leg B's INVITE.
    pub(super) fn on_b_invite_response(
        &mut self,
        key: u64,
        ctx: ClientTxId,
        resp: Response,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let code = resp.code;
        if call.b_invite() != Some(ctx) {
            // The answered INVITE: a 2xx again (retransmission, or another fork).
            if (200..300).contains(&code) {
                self.on_b_answer(key, ctx, resp, now);
            }
            return;
        }
        // Any provisional makes the INVITE cancellable; a 100 is hop-by-hop, not relayed.
        let early = code < 200 && call.provisional(code != 100);
        if code == 100 {
            return;
        }
        if (101..300).contains(&code) {
            learn_remote(&mut call.b, &resp);
        }
        let answering = (101..300).contains(&code);
        // With a late offer, leg B's response carries the offer.
        let role = if call.late_offer {
            SdpRole::Offer
        } else {
            SdpRole::Answer
        };
        // A 2xx must bring the answer (or the late offer) unless the caller already has
        // one from an 18x: an empty one is a broken peer, not a call to put through.
        let missing = code >= 200 && resp.body.is_empty() && call.a.last_sdp.is_none();
        let unusable = if missing {
            Some(Unusable::NotSdp)
        } else {
            self.unusable_sdp(key, Side::B, resp.content_type(), &resp.body, role)
        };
        if answering && let Some(why) = unusable {
            self.refuse_b_answer(key, code, why, now);
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if code < 200 {
            if early {
                tracing::info!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id, code, "early");
            }
            self.relay_b_invite_response(key, resp, now);
            return;
        }
        if code < 300 {
            self.on_b_answer(key, ctx, resp, now);
            return;
        }
        // Final failure of this attempt. The transaction layer has ACKed it.
        if code == 422
            && call.b_min_se.is_none()
            && let Some(n) = super::session_timer::min_se_of(&resp.headers)
        {
            self.retry_b_422(key, n, now);
            return;
        }
        let peer_name = call.peers.peers[call.b.peer].name.clone();
        if code == 503
            && let Some(d) = resp
                .headers
                .get(&HeaderName::RetryAfter)
                .and_then(retry_after)
                .map(|d| d.min(self.cfg.sip.max_retry_after.0))
            && let Some(target) = call.hops.get(call.hop)
        {
            tracing::info!(peer = %peer_name, address = %target, secs = d.as_secs(), "target resting after 503");
            self.resting.insert((peer_name, target.addr), after(now, d));
        }
        if code == 408 || (500..600).contains(&code) {
            self.next_attempt(key, Some(resp), now);
        } else {
            self.fail_call(key, code, Some(resp), now);
        }
    }

    /// Leg B answered (18x or 2xx) with SDP veil cannot relay ([`Unusable`]: none where a
    /// 2xx needs it, not SDP, unreadable, no codec, no crypto its `srtp:` mode requires):
    /// the call cannot be anchored. Leg B is cancelled (provisional) or ACKed and hung up
    /// (2xx), the caller gets 488 (502 when leg B sent no SDP); the CDR records a failed
    /// call with that final code.
    fn refuse_b_answer(&mut self, key: u64, code: u16, why: Unusable, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        tracing::warn!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id, code,
            why = why.as_str(), "leg B's answer cannot be relayed; refusing the call");
        // A provisional one: ending the call cancels leg B's INVITE (`forget`).
        if code >= 200 {
            // Answered: nothing to cancel; a retransmission of the 2xx gets ACK and BYE.
            if let Some(ctx) = call.leave_attempt().and_then(|a| a.invite) {
                self.owners
                    .insert(ctx, TxOwner::Abandoned { cancel_owed: false });
            }
            let cseq = call.b.invite_cseq;
            self.ack_leg(key, Side::B, cseq, Bytes::new());
            self.bye_leg(key, Side::B, now);
        }
        self.fail_call(key, why.code(), None, now);
    }

    fn on_b_answer(&mut self, key: u64, ctx: ClientTxId, resp: Response, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let cseq = call.b.invite_cseq;
        let tag = resp.to_tag().map(str::to_string);
        if call.answered().is_some() {
            if tag.is_some() && tag != call.b.remote_tag {
                self.on_b_extra_fork(key, ctx, &resp, tag.unwrap_or_default(), now);
            } else if let Some((seq, ack)) = call.b.last_ack.clone()
                && seq == cseq
            {
                // A retransmitted 2xx is ACKed again.
                let flow = call.b.flow;
                self.send_raw(flow, ack);
            }
            return;
        }
        learn_remote(&mut call.b, &resp);
        call.answer(now);
        let (src, dst) = (
            &call.peers.peers[call.a.peer].cfg,
            &call.peers.peers[call.b.peer].cfg,
        );
        let b_timer_cfg = call
            .route
            .session_timer
            .clone()
            .or_else(|| dst.session_timer.clone())
            .unwrap_or_else(|| self.cfg.calls.session_timer.clone());
        // Rule, then the stricter of the two peers, then the global limit.
        let max = call
            .route
            .max_duration
            .or_else(|| match (src.max_duration, dst.max_duration) {
                (Some(a), Some(b)) => Some(a.min(b).0),
                (a, b) => a.or(b).map(|d| d.0),
            })
            .unwrap_or(self.cfg.calls.max_duration.0);
        let b_min_se = call.b_min_se.unwrap_or(b_timer_cfg.min_se.0);
        call.b.session = super::session_timer::plan_uac(&resp, &b_timer_cfg, b_min_se);
        call.a.session = call.a_session;
        let vref = call.vref.clone();
        let (a_call_id, b_call_id) = (call.a.call_id.clone(), call.b.call_id.clone());
        let late_offer = call.late_offer;
        let a_stx = call.a_invite_stx;
        let a_cseq = call.a.invite_cseq;
        self.metrics
            .calls_total
            .with_label_values(&["answered"])
            .inc();
        let wall = self.wall(now);
        self.out.push_back(Output::Cdr(CdrEvent::Answer {
            id: vref.clone(),
            answered_at: wall,
        }));
        tracing::info!(call = %vref, %a_call_id, %b_call_id, "answered");
        self.arm(key, CallTimer::MaxDuration, after(now, max));
        self.arm_rtp_check(key, now);
        let offer_in_answer = late_offer && !resp.body.is_empty();
        if !offer_in_answer {
            self.ack_leg(key, Side::B, cseq, Bytes::new());
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.await_ack.push(AwaitAck {
                from: Side::A,
                cseq: a_cseq,
                stx: a_stx,
                ack_other: offer_in_answer.then_some(cseq),
            });
        }
        self.relay_b_invite_response(key, resp, now);
        self.schedule_session(key, Side::A, now);
        self.schedule_session(key, Side::B, now);
    }

    /// A 2xx from a second fork of the callee after leg B is answered (another To tag):
    /// ACKed in its own dialog and hung up (RFC 3261 §13.2.2.4); the caller sees nothing.
    /// A retransmission of it is ACKed again, not hung up again.
    fn on_b_extra_fork(
        &mut self,
        key: u64,
        ctx: ClientTxId,
        resp: &Response,
        tag: String,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(invite) = self.tx.client_request(ctx) else {
            return;
        };
        let flow = call.b.flow;
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(call.b.invite_cseq);
        let ack = orphan_dialog_request(invite, resp, Method::Ack, seq, self.ids.branch());
        let hang_up = !call.b_extra_forks.contains(&tag);
        let bye = hang_up
            .then(|| orphan_dialog_request(invite, resp, Method::Bye, seq + 1, self.ids.branch()));
        tracing::info!(call = %call.vref, b_call_id = %call.b.call_id, fork_tag = %tag, "extra 2xx fork of leg B; hanging it up");
        // Bounded: a callee sending endless forks gets them hung up again on retransmission.
        if hang_up && call.b_extra_forks.len() < 16 {
            call.b_extra_forks.push(tag);
        }
        self.send_raw(flow, ack.to_bytes());
        if let Some(bye) = bye {
            self.send_request(bye, flow, now);
        }
    }

    /// Leg B answered 422 (Session Interval Too Small): send the INVITE again, once, in the
    /// same dialog-to-be with the interval the callee demands (RFC 4028 §7.4).
    fn retry_b_422(&mut self, key: u64, min_se: std::time::Duration, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(ctx) = call.b_invite() else { return };
        let Some(mut req) = self.tx.client_request(ctx).cloned() else {
            return;
        };
        let listener = call.peers.listeners[call.b.flow.listener].clone();
        call.b_min_se = Some(min_se);
        call.b.local_cseq = call.b.local_cseq.wrapping_add(1);
        call.b.invite_cseq = call.b.local_cseq;
        req.headers.pop_first_value(&HeaderName::Via);
        req.headers
            .push_front(HeaderName::Via, via(&listener, &self.ids.branch()));
        req.headers
            .set(HeaderName::CSeq, format!("{} INVITE", call.b.invite_cseq));
        let cfg = SessionTimerConfig {
            expires: crate::config::Duration(min_se),
            min_se: crate::config::Duration(min_se),
            ..Default::default()
        };
        super::session_timer::offer_headers(&mut req.headers, &cfg, Some(min_se));
        let flow = call.b.flow;
        tracing::info!(call = %call.vref, min_se = min_se.as_secs(), "leg B asked for a longer session interval; retrying");
        let new_ctx = self.send_request(req, flow, now);
        self.owners.remove(&ctx);
        self.own(key, new_ctx, TxOwner::Invite { call: key });
        if let Some(call) = self.calls.get_mut(&key) {
            call.start_attempt(new_ctx);
            call.b.last_invite_ctx = Some(new_ctx);
        }
    }

    /// Give leg A the response of leg B's INVITE (provisional or 2xx), rewritten.
    fn relay_b_invite_response(&mut self, key: u64, resp: Response, now: Instant) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let stx = call.a_invite_stx;
        let mut r = self.cross_response(key, Side::B, &call.a_invite.clone(), &resp, now);
        if let Some(call) = self.calls.get(&key) {
            set_local_to(&mut r, &call.a.local_hdr);
            if (200..300).contains(&r.code)
                && let Some(st) = call.a.session
            {
                super::session_timer::write_headers(&mut r.headers, &st, false);
            }
            // A 2xx without SDP after an 18x that brought it: the answer belongs in the
            // 2xx (RFC 3261 §13.2.1), and the caller may not take an unreliable 18x's
            // SDP for it, so the 2xx repeats what veil sent then, o= version unchanged
            // (no change, RFC 3264 §8) for a caller that had it reliably (engine_call).
            if (200..300).contains(&r.code)
                && r.body.is_empty()
                && !call.late_offer
                && let Some(sdp) = call.a.last_sdp.clone()
            {
                r.headers.push(HeaderName::ContentType, "application/sdp");
                r.body = sdp;
            }
        }
        self.reply(stx, r, now);
    }

    /// Build the response for leg `to` of a response received on the other leg: leg `to`'s
    /// request gives Via/From/To/Call-ID/CSeq, the allow-list gives the rest, SDP anchored.
    pub(super) fn cross_response(
        &mut self,
        key: u64,
        from: Side,
        req: &Request,
        resp: &Response,
        now: Instant,
    ) -> Response {
        let code = resp.code;
        let reason = match reason_phrase(code) {
            "Unknown" => resp.reason.clone(),
            r => r.to_string(),
        };
        let mut r = Response::for_request(req, code, &reason);
        let Some(call) = self.calls.get(&key) else {
            return r;
        };
        let (fp, tp) = (call.leg(from).peer, call.leg(from.other()).peer);
        let to_side = from.other();
        let listener = call.peers.listeners[call.leg(to_side).flow.listener].clone();
        let filter = call.peers.filter(fp, tp);
        if (101..300).contains(&code)
            && matches!(
                req.method,
                Method::Invite | Method::Update | Method::Subscribe
            )
        {
            r.headers.push(
                HeaderName::Contact,
                contact(&listener, call.leg(to_side).secure),
            );
            copy_record_route(req, &mut r);
        }
        let mut extra = Headers::new();
        filter.copy(&resp.headers, &mut extra);
        let session = matches!(req.method, Method::Invite | Method::Update | Method::Prack);
        if code >= 300 || !session || !is_sdp(resp.content_type()) {
            // A failure carries no offer or answer (RFC 3261 §13.2.1, RFC 3264); what its
            // body may hold is the far side's capabilities (488, 606: §21.4.26, §21.6.4)
            // or alternatives (3xx: §21.3), its addresses in either case. veil neither
            // anchors nor copies it: the failure crosses without a body. So does any
            // body but SDP in an answer to INVITE/UPDATE/PRACK, and any body in the
            // answer to another method (an OPTIONS 200's capabilities, a 183 to OPTIONS
            // with SDP and no Content-Type: engine_call fuzz target): veil relays
            // session descriptions it anchored, nothing it cannot read.
            for name in [
                HeaderName::ContentType,
                HeaderName::ContentDisposition,
                HeaderName::ContentEncoding,
            ] {
                extra.remove_all(&name);
            }
        } else if !resp.body.is_empty() {
            // A response carries the offer when the request had none (late offer).
            let role = if req.body.is_empty() {
                SdpRole::Offer
            } else {
                SdpRole::Answer
            };
            match self.anchor_sdp(key, from, &resp.body, now, role) {
                Ok(body) => r.body = body,
                Err(_) => extra.remove_all(&HeaderName::ContentType),
            }
        } else {
            extra.remove_all(&HeaderName::ContentType);
        }
        super::session_timer::strip_option_tag(&mut extra, "timer");
        for h in extra.0 {
            r.headers.push(h.name, h.value);
        }
        r
    }

    /// The caller cancelled (CANCEL on the INVITE, or BYE in the early dialog).
    pub(super) fn on_cancel(
        &mut self,
        id: ServerTxId,
        invite: Option<ServerTxId>,
        req: Request,
        flow: Flow,
        now: Instant,
    ) {
        if let Some(i) = invite
            && let Some(&k) = self.stx_calls.get(&i)
            && self.cancel_forwarded(k, i, id, &req, &flow, now)
        {
            return;
        }
        let key = invite
            .and_then(|i| self.stx_calls.get(&i).copied())
            .filter(|&k| self.sent_by_leg_peer(k, Side::A, &flow));
        let Some(key) = key else {
            self.reply(id, response(&req, 481), now);
            return;
        };
        let mut ok = response(&req, 200);
        if let Some(call) = self.calls.get(&key) {
            set_local_to(&mut ok, &call.a.local_hdr);
        }
        self.reply(id, ok, now);
        self.cancel_call(key, now);
    }

    pub(super) fn cancel_call(&mut self, key: u64, now: Instant) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.answered().is_some() {
            return;
        }
        tracing::info!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id, "cancelled by caller");
        self.fail_call_for(key, 487, None, EndReason::Cancelled, now);
    }

    /// The call moves on from leg B's current INVITE (next attempt, or no attempt left, or
    /// the call ends unanswered): if that INVITE still awaits its final response it becomes
    /// [`TxOwner::Abandoned`], cancelled now if it has had a provisional response, else on
    /// its first one; a 2xx it sends anyway gets ACK and BYE.
    pub(super) fn abandon_b_invite(&mut self, key: u64, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(attempt) = call.leave_attempt() else {
            return;
        };
        let Some(old) = attempt.invite else { return };
        if self.owners.contains_key(&old) {
            if attempt.provisional
                && let Some(invite) = self.tx.client_request(old)
            {
                let cancel = cancel_request(invite, call.b.invite_cseq);
                let flow = call.b.flow;
                self.send_request(cancel, flow, now);
            }
            self.owners.insert(
                old,
                TxOwner::Abandoned {
                    cancel_owed: !attempt.provisional,
                },
            );
        }
    }

    pub(super) fn on_ring_timeout(&mut self, key: u64, now: Instant) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.answered().is_some() {
            return;
        }
        tracing::info!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id, "ring timeout");
        // The attempt still ringing is cancelled by `abandon_b_invite` as the next starts.
        self.next_attempt_from(key, None, false, now);
    }

    /// Client transaction timeout (timer B/F).
    /// Client transaction timeout (timer B/F): to its owner.
    pub(super) fn on_client_timeout(&mut self, ctx: ClientTxId, now: Instant) {
        match self.owners.remove(&ctx) {
            Some(TxOwner::Invite { call: key }) => {
                let Some(call) = self.calls.get(&key) else {
                    return;
                };
                if call.b_invite() == Some(ctx) {
                    tracing::info!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id, "leg B timed out");
                    self.next_attempt(key, None, now);
                }
            }
            Some(TxOwner::Refresh { call, .. }) => self.on_refresh_timeout(call, now),
            Some(TxOwner::Forward { call }) => self.on_forward_timeout(call, ctx, now),
            Some(TxOwner::Probe { peer }) => self.on_probe_result(&peer, None),
            Some(TxOwner::Standalone(s)) => self.on_standalone_timeout(*s, now),
            Some(TxOwner::Acked { .. } | TxOwner::Abandoned { .. }) | None => {}
        }
    }

    /// A response to a request of veil's: to the owner of its transaction.
    pub(super) fn on_response(&mut self, ctx: ClientTxId, resp: Response, now: Instant) {
        let owner = match self.owners.get(&ctx) {
            Some(o) => o.call().filter(|k| self.calls.contains_key(k)).map(|_| o),
            None => None,
        };
        match owner {
            Some(&TxOwner::Invite { call }) => {
                if resp.code >= 300 {
                    self.owners.remove(&ctx);
                }
                self.on_b_invite_response(call, ctx, resp, now)
            }
            Some(&TxOwner::Refresh { call, side }) => {
                self.on_refresh_response(call, ctx, side, resp, now)
            }
            Some(&TxOwner::Forward { call }) => self.on_forward_response(call, ctx, resp, now),
            Some(&TxOwner::Acked { call, side }) => self.ack_again(call, side, &resp),
            _ => match self.owners.get(&ctx) {
                Some(TxOwner::Probe { .. }) if resp.code >= 200 => {
                    if let Some(TxOwner::Probe { peer }) = self.owners.remove(&ctx) {
                        self.on_probe_result(&peer, Some(resp.code));
                    }
                }
                Some(TxOwner::Probe { .. }) => {}
                Some(TxOwner::Standalone(_)) => self.on_standalone_response(ctx, resp, now),
                _ => self.on_orphan_response(ctx, &resp, now),
            },
        }
    }

    /// A 2xx to an INVITE of veil's on leg `side` again: the ACK it got, again.
    fn ack_again(&mut self, key: u64, side: Side, resp: &Response) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if !(200..300).contains(&resp.code) {
            return;
        }
        let Ok(c) = resp.cseq() else { return };
        if let Some((seq, ack)) = call.leg(side).last_ack.clone()
            && seq == c.seq
        {
            let flow = call.leg(side).flow;
            self.send_raw(flow, ack);
        }
    }

    /// Note that `ctx` belongs to `owner`, a part of call `key`: the call's own list of
    /// its transactions lets [`Self::forget`] drop them without a scan of every call's.
    /// Ids no longer owned by the call are dropped whenever the list is full, so a long
    /// call's list stays about as short as its live transactions (amortised O(1)).
    pub(super) fn own(&mut self, key: u64, ctx: ClientTxId, owner: TxOwner) {
        self.owners.insert(ctx, owner);
        if let Some(call) = self.calls.get_mut(&key) {
            let ids = &mut call.ctxs;
            if ids.len() >= 8 && ids.len() == ids.capacity() {
                let owners = &self.owners;
                ids.retain(|i| owners.get(i).and_then(|o| o.call()) == Some(key));
            }
            ids.push(ctx);
        }
    }

    /// A response to an INVITE of veil's whose call has ended meanwhile. A 2xx still gets
    /// its ACK (RFC 3261 §13.2.2.4), built from the INVITE. If the call ended before leg B
    /// answered ([`TxOwner::Abandoned`]: caller's CANCEL, relay bind failure, ring timeout), leg
    /// B knows nothing of it yet: its first provisional gets the CANCEL the call owed, its
    /// 2xx a BYE after the ACK. Otherwise (a refresh or re-INVITE crossing the BYE) the far
    /// end already has, or will get, veil's BYE.
    fn on_orphan_response(&mut self, ctx: ClientTxId, resp: &Response, now: Instant) {
        let Some(flow) = self.tx.client_flow(ctx) else {
            self.owners.remove(&ctx);
            return;
        };
        let abandoned = self.owners.get_mut(&ctx).and_then(|o| match o {
            TxOwner::Abandoned { cancel_owed } => Some(cancel_owed),
            _ => None,
        });
        if resp.code < 200 {
            if let Some(owed) = abandoned
                && std::mem::take(owed)
                && let Some(invite) = self.tx.client_request(ctx)
            {
                let cancel = cancel_request(invite, 0);
                self.send_request(cancel, flow, now);
            }
            return;
        }
        let hang_up = abandoned.is_some();
        self.owners.remove(&ctx);
        if resp.code >= 300 {
            return;
        }
        let Some(invite) = self.tx.client_request(ctx) else {
            return;
        };
        if invite.method != Method::Invite {
            return;
        }
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(0);
        let ack = orphan_dialog_request(invite, resp, Method::Ack, seq, self.ids.branch());
        let bye = hang_up
            .then(|| orphan_dialog_request(invite, resp, Method::Bye, seq + 1, self.ids.branch()));
        self.send_raw(flow, ack.to_bytes());
        if let Some(bye) = bye {
            self.send_request(bye, flow, now);
        }
    }

    /// Send an ACK for a 2xx on leg `side` (CSeq of its INVITE), remembered for re-sending.
    pub(super) fn ack_leg(&mut self, key: u64, side: Side, cseq: u32, body: Bytes) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let listener = call.peers.listeners[call.leg(side).flow.listener].clone();
        let leg = call.leg_mut(side);
        let mut ack = leg.request(Method::Ack, Some(cseq), &listener, &mut self.ids);
        if !body.is_empty() {
            ack.headers.push(HeaderName::ContentType, "application/sdp");
            ack.body = body;
        }
        let data = ack.to_bytes();
        leg.last_ack = Some((cseq, data.clone()));
        let flow = leg.flow;
        self.send_raw(flow, data);
    }
}

/// Learn the far end of leg B from a dialog-creating response: tag, Contact, route set.
fn learn_remote(leg: &mut Leg, resp: &Response) {
    if let Some(tag) = resp.to_tag()
        && leg.remote_tag.as_deref() != Some(tag)
    {
        leg.remote_tag = Some(tag.to_string());
        if let Some(v) = resp.headers.get(&HeaderName::To) {
            leg.remote_hdr = v.to_string();
        }
    }
    if let Some(Ok(c)) = resp.contact() {
        leg.set_remote_target(c.uri.to_string());
    }
    let rr = resp.headers.values(&HeaderName::RecordRoute);
    if !rr.is_empty()
        && let Some(set) = super::leg::route_set(rr.iter().rev().copied())
    {
        leg.route_set = set;
    } else if !rr.is_empty() {
        tracing::info!(b_call_id = %leg.call_id, "leg B's Record-Route is unusable; ignored");
    }
}

/// veil's To (with veil's tag) on a response to leg A.
pub(super) fn set_local_to(r: &mut Response, local_hdr: &str) {
    r.headers.set(HeaderName::To, local_hdr.to_string());
}

/// A To tag for a response veil gives outside any dialog.
pub(super) fn tag_response(r: &mut Response, ids: &mut super::ids::IdGen) {
    if let Some(to) = r.headers.get(&HeaderName::To)
        && !to.contains("tag=")
    {
        let v = format!("{to};tag={}", ids.tag());
        r.headers.set(HeaderName::To, v);
    }
}

/// `sip:user@veil` for leg B's From: the caller's user, veil's host.
pub(super) fn user_uri(user: &str, listener: &super::peers::Listener) -> crate::sip::SipUri {
    let mut u = crate::sip::SipUri::new(listener.host.clone(), Some(listener.port));
    if !user.is_empty() {
        u.user = Some(user.to_string());
    }
    u
}

/// CANCEL for a pending INVITE of veil's (RFC 3261 §9.1): its top Via, Route, From, To,
/// Call-ID and CSeq number (`fallback_seq` if the INVITE's CSeq cannot be read).
pub(super) fn cancel_request(invite: &Request, fallback_seq: u32) -> Request {
    let mut h = Headers::new();
    for name in [
        HeaderName::Via,
        HeaderName::Route,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
    ] {
        if name == HeaderName::Via {
            if let Some(v) = invite.headers.values(&HeaderName::Via).first() {
                h.push(HeaderName::Via, *v);
            }
            continue;
        }
        for v in invite.headers.get_all(&name) {
            h.push(name.clone(), v);
        }
    }
    h.push(HeaderName::MaxForwards, "70");
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(fallback_seq);
    h.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers: h,
        body: Bytes::new(),
    }
}

/// ACK or BYE in the dialog a 2xx to `invite` created, for a call veil no longer holds:
/// headers from the INVITE, To (with the callee's tag) and target from the 2xx.
fn orphan_dialog_request(
    invite: &Request,
    resp: &Response,
    method: Method,
    seq: u32,
    branch: String,
) -> Request {
    let mut h = Headers::new();
    if let Some(v) = invite.headers.values(&HeaderName::Via).first() {
        let branch_free = v.split(";branch=").next().unwrap_or(v);
        h.push(HeaderName::Via, format!("{branch_free};branch={branch}"));
    }
    h.push(HeaderName::MaxForwards, "70");
    for r in invite.headers.get_all(&HeaderName::Route) {
        h.push(HeaderName::Route, r);
    }
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            h.push(name, v);
        }
    }
    if let Some(to) = resp.headers.get(&HeaderName::To) {
        h.push(HeaderName::To, to);
    }
    h.push(HeaderName::CSeq, format!("{seq} {}", method.as_str()));
    let uri = resp
        .contact()
        .and_then(|c| c.ok())
        .map(|c| c.uri)
        .unwrap_or_else(|| invite.uri.clone());
    Request {
        method,
        uri,
        headers: h,
        body: Bytes::new(),
    }
}
