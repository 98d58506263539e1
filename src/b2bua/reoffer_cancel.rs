//! CANCEL of a re-INVITE veil forwarded (RFC 3261 §9): 200 to the CANCEL, CANCEL on the
//! other leg once that leg has answered provisionally, and that leg's 487 crosses back as
//! the final response. A re-INVITE or UPDATE offer that fails leaves the call on its
//! previous media: the relay goes back to the sender's earlier addresses. CANCEL of
//! anything but an INVITE has no effect (the transaction layer only matches INVITEs).

use std::time::Instant;

use bytes::Bytes;

use crate::media::{MediaCommand, Side};
use crate::sdp::Sdp;
use crate::sip::{Method, Request};
use crate::transaction::{ClientTxId, Flow, ServerTxId};

use super::Output;
use super::admission::response;
use super::engine::Engine;

impl Engine {
    /// A CANCEL matching server transaction `invite` of call `key`: `true` when it was a
    /// forwarded in-dialog INVITE of that call (and is now handled).
    pub(super) fn cancel_forwarded(
        &mut self,
        key: u64,
        invite: ServerTxId,
        id: ServerTxId,
        req: &Request,
        flow: &Flow,
        now: Instant,
    ) -> bool {
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        let Some(p) = call
            .pending
            .iter()
            .find(|p| p.stx == invite && p.req.method == Method::Invite)
        else {
            return false;
        };
        let (from, ctx, provisional) = (p.from, p.ctx, p.provisional);
        if !self.sent_by_leg_peer(key, from, flow) {
            self.reply(id, response(req, 481), now);
            return true;
        }
        self.reply(id, response(req, 200), now);
        if provisional {
            self.cancel_forwarded_on(key, ctx, from.other(), now);
        } else if let Some(p) = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.pending.iter_mut().find(|p| p.ctx == ctx))
        {
            p.cancel_owed = true;
        }
        true
    }

    /// Send CANCEL for veil's client INVITE `ctx` on leg `to`.
    pub(super) fn cancel_forwarded_on(
        &mut self,
        key: u64,
        ctx: ClientTxId,
        to: Side,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(invite) = self.tx.client_request(ctx) else {
            return;
        };
        let cancel = super::invite::cancel_request(invite, 0);
        let flow = call.leg(to).flow;
        self.tx.send_request(cancel, flow, now);
    }

    /// Point the relay at leg `from`'s addresses of `prev` (its SDP before a failed offer).
    pub(super) fn restore_media(&mut self, key: u64, from: Side, prev: Option<Bytes>) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(prev) = prev else { return };
        let Ok(sdp) = Sdp::parse(&prev) else { return };
        call.leg_mut(from).last_sdp_in = Some(prev);
        call.media.hold = sdp.on_hold();
        for (s, ep) in call.streams.iter().zip(sdp.endpoints().iter()) {
            self.out.push_back(Output::Media(MediaCommand::SetRemote {
                id: s.id,
                side: from,
                rtp: if ep.disabled { None } else { ep.rtp },
                rtcp: if ep.disabled || ep.rtcp_mux {
                    None
                } else {
                    ep.rtcp
                },
            }));
        }
    }
}
