//! Requests inside a call: BYE ends both legs; re-INVITE, UPDATE, INFO, PRACK and the rest
//! cross to the other leg with that leg's CSeq, identifiers and anchored SDP; their answers
//! cross back. Target refreshes update each leg's remote target.

use std::time::Instant;

use bytes::Bytes;

use crate::media::Side;
use crate::sip::{HeaderName, Method, Request, Response, SipHeaders};
use crate::transaction::{ClientTxId, Flow, ServerTxId};

use super::admission::{is_sdp, response};
use super::anchor::Unusable;
use super::call::{AwaitAck, EndReason, Pending};
use super::engine::Engine;
use super::invite::set_local_to;
use super::owner::TxOwner;
use super::srtp::SdpRole;

impl Engine {
    /// Find the call and the leg a request or ACK belongs to, by Call-ID (and the caller's
    /// tag on leg A, since callers choose their Call-IDs).
    pub(super) fn find_dialog(&self, req: &Request) -> Option<(u64, Side)> {
        let call_id = req.call_id().ok()?;
        if let Some(&key) = self.b_index.get(call_id) {
            return Some((key, Side::B));
        }
        let from_tag = req.from_ref().ok()?.tag().unwrap_or_default().to_string();
        let key = *self.a_index.get(&(call_id.to_string(), from_tag))?;
        Some((key, Side::A))
    }

    /// Whether `flow` comes from the peer of the call's leg `side`: knowing a dialog's
    /// identifiers is not enough to act in it (no path from another source to a peer).
    pub(super) fn sent_by_leg_peer(&self, key: u64, side: Side, flow: &Flow) -> bool {
        self.calls
            .get(&key)
            .is_some_and(|c| c.peers.identify(flow) == Some(c.leg(side).peer))
    }

    /// Whether a request of the callee's names leg B's dialog: its From tag is the one
    /// leg B learnt from the callee's responses. Before any tagged response there is no
    /// dialog to be in (RFC 3261 §12.2.2: 481); leg A's index already has the caller's tag.
    fn names_leg_dialog(&self, key: u64, side: Side, req: &Request) -> bool {
        side == Side::A
            || self.calls.get(&key).is_some_and(|c| {
                c.b.remote_tag.is_some()
                    && req.from_ref().ok().and_then(|f| f.tag()) == c.b.remote_tag.as_deref()
            })
    }

    pub(super) fn on_in_dialog(&mut self, stx: ServerTxId, req: Request, flow: Flow, now: Instant) {
        let Some((key, side)) = self.find_dialog(&req).filter(|&(key, side)| {
            self.sent_by_leg_peer(key, side, &flow) && self.names_leg_dialog(key, side, &req)
        }) else {
            let known = self.peers.identify(&flow).is_some();
            if !known {
                self.strike(flow.remote.ip(), now);
            }
            self.reply(stx, response(&req, if known { 481 } else { 403 }), now);
            return;
        };
        let seq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let nat = call
            .peers
            .peers
            .get(call.leg(side).peer)
            .is_some_and(|p| p.cfg.nat);
        let leg = call.leg_mut(side);
        if let Some(last) = leg.remote_cseq
            && seq <= last
        {
            let mut r = response(&req, 500);
            r.reason = "CSeq Out of Order".into();
            self.reply(stx, r, now);
            return;
        }
        leg.remote_cseq = Some(seq);
        if nat {
            // Behind NAT: answer and send where it comes from now (RFC 3581 spirit).
            leg.flow = flow;
        }
        let local_hdr = leg.local_hdr.clone();
        let answered = call.answered().is_some();
        match req.method {
            Method::Bye => {
                let mut ok = response(&req, 200);
                set_local_to(&mut ok, &local_hdr);
                self.reply(stx, ok, now);
                if !answered {
                    if side == Side::A {
                        self.cancel_call(key, now);
                    } else {
                        // A callee must not BYE an early dialog (RFC 3261 §15); its INVITE
                        // is still pending, so it is cancelled, not left open for ever.
                        self.end_call(key, EndReason::Failed, Some(480), now);
                    }
                    return;
                }
                let reason = if side == Side::A {
                    EndReason::CallerBye
                } else {
                    EndReason::CalleeBye
                };
                self.end_call(key, reason, None, now);
            }
            _ => self.forward(key, side, stx, req, now),
        }
    }

    /// Re-originate an in-dialog request on the other leg.
    fn forward(&mut self, key: u64, from: Side, stx: ServerTxId, req: Request, now: Instant) {
        if self.calls.get(&key).is_some_and(|c| c.answered().is_some())
            && self.is_refresh(key, from, &req)
        {
            self.answer_refresh(key, from, stx, req, now);
            return;
        }
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let to = from.other();
        if call.leg(to).remote_tag.is_none() {
            // The other leg has no dialog yet (nothing answered): nowhere to send it.
            let mut r = response(&req, 491);
            set_local_to(&mut r, &call.leg(from).local_hdr);
            self.reply(stx, r, now);
            return;
        }
        if req.method == Method::Update
            && from == Side::B
            && !req.body.is_empty()
            && call.answered().is_none()
            && call.a.last_sdp.is_none()
        {
            // RFC 3311 §5.2: veil's offer to the callee (or the offer it expects from it)
            // is outstanding; an UPDATE offer now is refused with 491. Forwarded, it let
            // an answerless 2xx through as the caller's answer (engine_call fuzz target).
            let mut r = response(&req, 491);
            set_local_to(&mut r, &call.leg(from).local_hdr);
            self.reply(stx, r, now);
            return;
        }
        if req.method == Method::Invite && call.answered().is_none() {
            // RFC 3261 §14.2: the dialog's first INVITE is still in progress. The callee
            // gets 491 (veil's INVITE on its leg is pending), the caller 500 with a
            // Retry-After of 0-10 s (its own first INVITE has no final response yet).
            // Forwarded, the INVITE would meet a leg without a confirmed dialog
            // (found by the engine_call fuzz target).
            let mut r = if from == Side::B {
                response(&req, 491)
            } else {
                let mut r = response(&req, 500);
                let secs = self.ids.u64() % 11;
                r.headers.push(HeaderName::RetryAfter, secs.to_string());
                r
            };
            set_local_to(&mut r, &call.leg(from).local_hdr);
            self.reply(stx, r, now);
            return;
        }
        if req.method == Method::Invite
            && call.pending.iter().any(|p| p.req.method == Method::Invite)
        {
            let mut r = response(&req, 491);
            set_local_to(&mut r, &call.leg(from).local_hdr);
            self.reply(stx, r, now);
            return;
        }
        let filter = call.peers.filter(call.leg(from).peer, call.leg(to).peer);
        let listener = call.peers.listeners[call.leg(to).flow.listener].clone();
        // RAck names the CSeq of the INVITE on its own leg (RFC 3262 §7.2).
        let rack = req.rack().and_then(|r| r.ok()).map(|mut r| {
            r.cseq = call.leg(to).invite_cseq;
            r
        });
        let target_refresh = matches!(req.method, Method::Invite | Method::Update);
        let prev_sdp_in = call.leg(from).last_sdp_in.clone();
        let contact = req
            .contact()
            .and_then(|c| c.ok())
            .map(|c| c.uri.to_string());
        let body = if is_sdp(req.content_type()) && !req.body.is_empty() {
            let role = if matches!(req.method, Method::Invite | Method::Update) {
                SdpRole::Offer
            } else {
                SdpRole::Answer
            };
            match self.anchor_sdp(key, from, &req.body, now, role) {
                Ok(b) => Some(b),
                Err(e) => {
                    let code = if e == super::anchor::AnchorError::NoPorts {
                        503
                    } else {
                        488
                    };
                    let mut r = response(&req, code);
                    if let Some(call) = self.calls.get(&key) {
                        set_local_to(&mut r, &call.leg(from).local_hdr);
                    }
                    self.reply(stx, r, now);
                    return;
                }
            }
        } else if req.body.is_empty() {
            None
        } else if matches!(req.method, Method::Invite | Method::Update | Method::Prack) {
            // Their body is a session description, and veil speaks only SDP (RFC 3261
            // §21.4.13): relayed as it came, another Content-Type carried the sender's
            // addresses to the other leg unanchored (engine_call fuzz target).
            let mut r = response(&req, 415);
            r.headers.push(HeaderName::Accept, "application/sdp");
            if let Some(call) = self.calls.get(&key) {
                set_local_to(&mut r, &call.leg(from).local_hdr);
            }
            self.reply(stx, r, now);
            return;
        } else {
            Some(req.body.clone())
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if target_refresh && let Some(c) = contact {
            call.leg_mut(from).set_remote_target(c);
        }
        let leg = call.leg_mut(to);
        let mut out = leg.request(req.method.clone(), None, &listener, &mut self.ids);
        filter.copy(&req.headers, &mut out.headers);
        super::session_timer::strip_option_tag(&mut out.headers, "timer");
        if target_refresh && let Some(st) = leg.session {
            super::session_timer::write_headers(&mut out.headers, &st, true);
        }
        if let Some(r) = rack {
            out.headers.set(HeaderName::RAck, r.to_string());
        }
        match body {
            Some(b) => out.body = b,
            None => out.headers.remove_all(&HeaderName::ContentType),
        }
        let flow = leg.flow;
        let is_invite = out.method == Method::Invite;
        let ctx = self.send_request(out, flow, now);
        if is_invite {
            self.replace_last_invite(key, to, ctx);
        }
        self.own(key, ctx, TxOwner::Forward { call: key });
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        super::teardown::track(&mut self.stx_calls, &mut call.stxs, key, stx);
        call.pending.push(Pending {
            ctx,
            stx,
            from,
            req,
            provisional: false,
            cancel_owed: false,
            prev_sdp_in,
        });
    }

    /// The answer to a request veil forwarded.
    pub(super) fn on_forward_response(
        &mut self,
        key: u64,
        ctx: ClientTxId,
        resp: Response,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(pos) = call.pending.iter().position(|p| p.ctx == ctx) else {
            return;
        };
        if resp.code < 200 {
            let p = &mut call.pending[pos];
            p.provisional = true;
            if std::mem::take(&mut p.cancel_owed) {
                let (ctx, to) = (p.ctx, p.from.other());
                self.cancel_forwarded_on(key, ctx, to, now);
            }
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if resp.code == 100 {
            return;
        }
        let pending = if resp.code >= 200 {
            call.pending.remove(pos)
        } else {
            call.pending[pos].clone()
        };
        let from = pending.from;
        let to = from.other();
        let is_invite = pending.req.method == Method::Invite;
        if resp.code >= 300
            && matches!(pending.req.method, Method::Invite | Method::Update)
            && !pending.req.body.is_empty()
        {
            self.restore_media(key, from, pending.prev_sdp_in.clone());
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if resp.code >= 200
            && resp.code < 300
            && matches!(pending.req.method, Method::Invite | Method::Update)
            && let Some(Ok(c)) = resp.contact()
        {
            call.leg_mut(to).set_remote_target(c.uri.to_string());
        }
        // Done with it, but a re-INVITE's 2xx may come again and wants its ACK again.
        if (200..300).contains(&resp.code) && is_invite {
            self.owners.insert(
                ctx,
                TxOwner::Acked {
                    call: key,
                    side: to,
                },
            );
        } else if resp.code >= 200 {
            self.owners.remove(&ctx);
        }
        if (200..300).contains(&resp.code)
            && matches!(pending.req.method, Method::Invite | Method::Update)
        {
            // An offer-less re-INVITE gets the offer in the 2xx.
            let role = if pending.req.body.is_empty() {
                SdpRole::Offer
            } else {
                SdpRole::Answer
            };
            // An offer needs its answer, and an offer-less re-INVITE an offer, in the 2xx.
            let missing = resp.body.is_empty() && (is_invite || !pending.req.body.is_empty());
            let unusable = if missing {
                Some(Unusable::NotSdp)
            } else {
                self.unusable_sdp(key, to, resp.content_type(), &resp.body, role)
            };
            if let Some(why) = unusable {
                self.refuse_crossed_answer(key, &pending, &resp, why, now);
                return;
            }
        }
        let mut r = self.cross_response(key, to, &pending.req, &resp, now);
        if let Some(call) = self.calls.get(&key)
            && r.code > 100
        {
            set_local_to(&mut r, &call.leg(from).local_hdr);
        }
        // A successful re-INVITE/UPDATE that crossed refreshes both legs' sessions.
        let refreshed = (200..300).contains(&resp.code)
            && matches!(pending.req.method, Method::Invite | Method::Update);
        if refreshed {
            if let Some(st) = self.calls.get(&key).and_then(|c| c.leg(from).session) {
                super::session_timer::write_headers(&mut r.headers, &st, false);
            }
            self.schedule_session(key, from, now);
            self.schedule_session(key, to, now);
        }
        if is_invite && (200..300).contains(&resp.code) {
            let their_cseq = resp.cseq().map(|c| c.seq).unwrap_or(0);
            let offer_in_answer = pending.req.body.is_empty() && !resp.body.is_empty();
            if !offer_in_answer {
                self.ack_leg(key, to, their_cseq, Bytes::new());
            }
            let x_cseq = pending.req.cseq().map(|c| c.seq).unwrap_or(0);
            if let Some(call) = self.calls.get_mut(&key) {
                call.await_ack.push(AwaitAck {
                    from,
                    cseq: x_cseq,
                    stx: pending.stx,
                    ack_other: offer_in_answer.then_some(their_cseq),
                });
            }
        }
        // A 2xx to a re-INVITE keeps its server transaction mapped to the call until the
        // ACK (`on_ack`), so that an ACK timeout ends the call.
        if resp.code >= 300 || (resp.code >= 200 && !is_invite) {
            self.stx_calls.remove(&pending.stx);
        }
        self.reply(pending.stx, r, now);
    }

    /// The 2xx to a forwarded re-INVITE/UPDATE brings SDP veil cannot relay
    /// ([`Unusable`]); relaying it stripped would leave the legs with different ideas of
    /// the media. The answerer's INVITE is ACKed and the offerer gets 488 (502 when the
    /// answerer sent no SDP). The call stays on its previous media, except when the
    /// answer lacks the crypto a `required` leg needs: the answerer has then moved to
    /// media veil cannot secure, and both legs are hung up.
    fn refuse_crossed_answer(
        &mut self,
        key: u64,
        pending: &Pending,
        resp: &Response,
        why: Unusable,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let (from, to) = (pending.from, pending.from.other());
        tracing::warn!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id,
            method = pending.req.method.as_str(), why = why.as_str(), "answer cannot be relayed; refused");
        let mut r = response(&pending.req, why.code());
        set_local_to(&mut r, &call.leg(from).local_hdr);
        if pending.req.method == Method::Invite {
            let their_cseq = resp.cseq().map(|c| c.seq).unwrap_or(0);
            self.ack_leg(key, to, their_cseq, Bytes::new());
        }
        self.stx_calls.remove(&pending.stx);
        self.reply(pending.stx, r, now);
        if why == Unusable::NoCrypto {
            self.end_call(key, EndReason::Error, None, now);
        } else if !pending.req.body.is_empty() {
            self.restore_media(key, from, pending.prev_sdp_in.clone());
        }
    }

    /// A forwarded request got no answer: tell its sender 408.
    pub(super) fn on_forward_timeout(&mut self, key: u64, ctx: ClientTxId, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(pos) = call.pending.iter().position(|p| p.ctx == ctx) else {
            return;
        };
        let p = call.pending.remove(pos);
        let mut r = response(&p.req, 408);
        set_local_to(&mut r, &call.leg(p.from).local_hdr);
        self.stx_calls.remove(&p.stx);
        self.reply(p.stx, r, now);
    }

    /// An ACK for a 2xx: stop the 2xx retransmissions; pass a held-back ACK (with the SDP
    /// answer it brings) to the other leg.
    pub(super) fn on_ack(&mut self, req: Request, flow: Flow, now: Instant) {
        let Some((key, side)) = self
            .find_dialog(&req)
            .filter(|&(key, side)| self.sent_by_leg_peer(key, side, &flow))
        else {
            return;
        };
        let Ok(cseq) = req.cseq() else { return };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(pos) = call
            .await_ack
            .iter()
            .position(|w| w.from == side && w.cseq == cseq.seq)
        else {
            return;
        };
        let w = call.await_ack.remove(pos);
        if side == Side::A && call.confirm() {
            tracing::info!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id, "confirmed");
        }
        self.tx.ack_received(w.stx);
        self.stx_calls.remove(&w.stx);
        if let Some(other_cseq) = w.ack_other {
            let body = if !req.body.is_empty() {
                let anchored = match self.unusable_sdp(
                    key,
                    side,
                    req.content_type(),
                    &req.body,
                    SdpRole::Answer,
                ) {
                    Some(why) => Err(why.as_str()),
                    None => self
                        .anchor_sdp(key, side, &req.body, now, SdpRole::Answer)
                        .map_err(|_| "anchor"),
                };
                match anchored {
                    Ok(body) => body,
                    // An ACK cannot be refused: the call it would set up cannot be
                    // anchored, so it ends (the other leg's 2xx is ACKed first).
                    Err(why) => {
                        if let Some(c) = self.calls.get(&key) {
                            tracing::warn!(call = %c.vref, a_call_id = %c.a.call_id, b_call_id = %c.b.call_id,
                                why, "answer in ACK cannot be relayed; ending the call");
                        }
                        self.ack_leg(key, side.other(), other_cseq, Bytes::new());
                        self.end_call(key, EndReason::Error, None, now);
                        return;
                    }
                }
            } else {
                Bytes::new()
            };
            self.ack_leg(key, side.other(), other_cseq, body);
        }
    }

    /// A leg never acknowledged veil's 2xx (initial or re-INVITE; an ACK with another CSeq
    /// does not count): the call cannot be trusted to exist (RFC 3261 §13.3.1.4).
    pub(super) fn on_ack_timeout(&mut self, stx: ServerTxId, now: Instant) {
        let Some(key) = self.stx_calls.remove(&stx) else {
            return;
        };
        tracing::warn!("2xx never acknowledged; ending call");
        self.end_call(key, EndReason::NoAck, None, now);
    }

    /// Leg `side` got a new INVITE of veil's, `ctx`: the one before it (not leg B's
    /// initial INVITE, which stays for its own 2xx retransmissions) is let go.
    pub(super) fn replace_last_invite(&mut self, key: u64, side: Side, ctx: ClientTxId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(old) = call.leg_mut(side).last_invite_ctx.replace(ctx)
            && !matches!(self.owners.get(&old), Some(TxOwner::Invite { .. }))
        {
            self.owners.remove(&old);
        }
    }

    /// Send BYE on one leg (veil's own transaction; its answer is not waited for).
    pub(super) fn bye_leg(&mut self, key: u64, side: Side, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.leg(side).remote_tag.is_none() {
            return;
        }
        let listener = call.peers.listeners[call.leg(side).flow.listener].clone();
        let leg = call.leg_mut(side);
        let bye = leg.request(Method::Bye, None, &listener, &mut self.ids);
        let flow = leg.flow;
        self.send_request(bye, flow, now);
    }
}
