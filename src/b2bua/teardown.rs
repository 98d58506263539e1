//! Ending calls: BYE (or a final response and CANCEL) on every leg that needs it, streams
//! closed and ports freed, the CDR completed once the relay has reported packet counts.
//! Nothing of an ended call stays in memory: a late BYE or re-INVITE gets 481.

use std::time::{Duration, Instant, SystemTime};

use crate::fastmap::FastMap;
use crate::media::rtp::DirectionStats;
use crate::media::{MediaCommand, Side, StreamId};
use crate::observe::CdrEvent;
use crate::observe::cdr::CallQuality;
use crate::sip::{Method, Response};

use super::Output;
use super::admission::response;
use super::call::EndReason;
use super::engine::{Engine, Timer};
use super::invite::set_local_to;
use super::owner::TxOwner;

/// How long the CDR of an ended call waits for the relay's packet counters.
const COUNTER_WAIT: Duration = Duration::from_secs(2);

/// An ended call waiting for the relay's counters before its CDR row is completed.
#[derive(Debug, Clone)]
pub struct Closing {
    pub vref: String,
    pub remaining: Vec<StreamId>,
    pub a_packets: u64,
    pub b_packets: u64,
    pub ended_at: SystemTime,
    pub final_code: u16,
    pub reason: &'static str,
    /// What each side sent, summed over the call's streams (from the relay at close).
    pub a_stats: DirectionStats,
    pub b_stats: DirectionStats,
}

impl Engine {
    /// Give the caller a final failure (`resp` from leg B, rewritten, or a plain `code`) and
    /// forget the unanswered call.
    pub(super) fn fail_call(&mut self, key: u64, code: u16, resp: Option<Response>, now: Instant) {
        self.fail_call_for(key, code, resp, EndReason::Failed, now);
    }

    /// [`Self::fail_call`] for `reason` (a caller's CANCEL, a shutdown, an error).
    pub(super) fn fail_call_for(
        &mut self,
        key: u64,
        code: u16,
        resp: Option<Response>,
        reason: EndReason,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.answered().is_some() {
            return;
        }
        let stx = call.a_invite_stx;
        let req = call.a_invite.clone();
        let local_to = call.a.local_hdr.clone();
        let mut r = match resp {
            // A redirect names the far side's targets: it never crosses (480 instead).
            Some(ref b) if (300..400).contains(&b.code) => response(&req, 480),
            Some(b) => self.cross_response(key, Side::B, &req, &b, now),
            None => response(&req, code),
        };
        set_local_to(&mut r, &local_to);
        let final_code = r.code;
        self.reply(stx, r, now);
        self.forget(key, reason, final_code, now);
    }

    /// End a call for `reason`. Answered calls get BYE on the legs that did not end it;
    /// unanswered ones get a final response (`code`, default 503/500) and leg B a CANCEL.
    pub(super) fn end_call(
        &mut self,
        key: u64,
        reason: EndReason,
        code: Option<u16>,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.answered().is_none() {
            let code = code.unwrap_or(if reason == EndReason::Shutdown {
                503
            } else {
                500
            });
            self.fail_call_for(key, code, None, reason, now);
            return;
        }
        match reason {
            EndReason::CallerBye => self.bye_leg(key, Side::B, now),
            EndReason::CalleeBye => self.bye_leg(key, Side::A, now),
            _ => {
                self.bye_leg(key, Side::A, now);
                self.bye_leg(key, Side::B, now);
            }
        }
        self.forget(key, reason, 200, now);
    }

    /// Remove every trace of the call; close its streams; complete its CDR. Leg B's
    /// INVITE, if it is still waiting for its final response, is abandoned (cancelled).
    pub(super) fn forget(&mut self, key: u64, reason: EndReason, final_code: u16, now: Instant) {
        self.abandon_b_invite(key, now);
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        self.metrics.calls_active.dec();
        if let Some(p) = call.peers.peers.get(call.a.peer)
            && let Some(n) = self.calls_by_peer.get_mut(&p.name)
        {
            *n = n.saturating_sub(1);
        }
        if call.answered().is_some() {
            self.metrics
                .calls_ended
                .with_label_values(&[reason.as_str()])
                .inc();
        } else {
            let outcome = if reason == EndReason::Cancelled {
                "cancelled"
            } else {
                "failed"
            };
            self.metrics.calls_total.with_label_values(&[outcome]).inc();
        }
        tracing::info!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id,
            reason = reason.as_str(), final_code, "call ended");
        self.a_index.remove(&(
            call.a.call_id.clone(),
            call.a.remote_tag.clone().unwrap_or_default(),
        ));
        if self.b_index.get(&call.b.call_id) == Some(&key) {
            self.b_index.remove(&call.b.call_id);
        }
        self.settle_outstanding(&call, now);
        for stx in &call.stxs {
            if self.stx_calls.get(stx) == Some(&key) {
                self.stx_calls.remove(stx);
            }
        }
        for ctx in &call.ctxs {
            if self.owners.get(ctx).and_then(|o| o.call()) == Some(key) {
                self.owners.remove(ctx);
            }
        }
        let mut closing = Closing {
            vref: call.vref.clone(),
            remaining: Vec::new(),
            a_packets: 0,
            b_packets: 0,
            ended_at: self.wall(now),
            final_code,
            reason: reason.as_str(),
            a_stats: DirectionStats::default(),
            b_stats: DirectionStats::default(),
        };
        for s in &call.streams {
            self.out
                .push_back(Output::Media(MediaCommand::Close { id: s.id }));
            self.ports.release(s.a_port);
            self.ports.release(s.b_port);
            closing.remaining.push(s.id);
        }
        if closing.remaining.is_empty() {
            self.write_end(closing);
        } else {
            self.closing.insert(key, closing);
            self.set_timer(
                super::deadline::after(now, COUNTER_WAIT),
                key,
                Timer::CloseCdr,
            );
        }
    }

    /// What an ending call still has in flight besides leg B's first INVITE. Requests
    /// it was forwarding get 487 (RFC 3261 §15.1.2). veil's INVITEs (forwarded
    /// re-INVITEs, session refreshes) still awaiting a final response are cancelled, at
    /// once if they had a provisional (the transaction then ends 64·T1 later, §9.1), else
    /// on their first one ([`TxOwner::Abandoned`]): a peer that answers 100 and nothing more
    /// must not keep them for ever (found by the engine_call fuzz target).
    fn settle_outstanding(&mut self, call: &super::call::Call, now: Instant) {
        for p in &call.pending {
            let mut r = response(&p.req, 487);
            set_local_to(&mut r, &call.leg(p.from).local_hdr);
            self.reply(p.stx, r, now);
        }
        for &ctx in &call.ctxs {
            // Leg B's first INVITE of an unanswered call was abandoned already (`forget`).
            if matches!(self.owners.get(&ctx), Some(TxOwner::Abandoned { .. })) {
                continue;
            }
            let Some(invite) = self.tx.client_request(ctx) else {
                continue;
            };
            if invite.method != Method::Invite || !self.tx.client_awaiting_final(ctx) {
                continue;
            }
            if self.tx.client_proceeding(ctx) {
                let cancel = super::invite::cancel_request(invite, 0);
                if let Some(flow) = self.tx.client_flow(ctx) {
                    self.tx.send_request(cancel, flow, now);
                }
            } else {
                self.owners
                    .insert(ctx, TxOwner::Abandoned { cancel_owed: true });
            }
        }
    }

    pub(super) fn on_stream_closed(
        &mut self,
        id: StreamId,
        a_packets: u64,
        b_packets: u64,
        now: Instant,
    ) {
        let Some(key) = self.stream_calls.remove(&id) else {
            return;
        };
        let Some(c) = self.closing.get_mut(&key) else {
            return;
        };
        c.a_packets += a_packets;
        c.b_packets += b_packets;
        c.remaining.retain(|s| *s != id);
        if c.remaining.is_empty() {
            self.finish_closing(key, now);
        }
    }

    /// Complete the CDR (all counters in, or waited long enough).
    pub(super) fn finish_closing(&mut self, key: u64, _now: Instant) {
        let Some(c) = self.closing.remove(&key) else {
            return;
        };
        for id in &c.remaining {
            self.stream_calls.remove(id);
        }
        self.write_end(c);
    }

    fn write_end(&mut self, c: Closing) {
        self.out.push_back(Output::Cdr(CdrEvent::End {
            id: c.vref,
            ended_at: c.ended_at,
            final_code: c.final_code,
            end_reason: c.reason.to_string(),
            a_packets: c.a_packets,
            b_packets: c.b_packets,
            quality: CallQuality {
                a_lost: c.a_stats.lost,
                b_lost: c.b_stats.lost,
                a_jitter_us: c.a_stats.jitter_us,
                b_jitter_us: c.b_stats.jitter_us,
                a_mos_centi: c.a_stats.mos().map(centi),
                b_mos_centi: c.b_stats.mos().map(centi),
            },
        }));
    }
}

/// Map transaction `id` to call `key` in `map` (`stx_calls`) and note it in
/// the call's own list `ids`, which [`Engine::forget`] walks instead of the whole map.
/// Ids no longer mapped to the call are dropped whenever the list is full, so a long
/// call's list stays about as short as its live transactions (amortised O(1)).
pub(super) fn track<T: Eq + std::hash::Hash + Copy>(
    map: &mut FastMap<T, u64>,
    ids: &mut Vec<T>,
    key: u64,
    id: T,
) {
    if ids.len() >= 8 && ids.len() == ids.capacity() {
        ids.retain(|i| map.get(i) == Some(&key));
    }
    map.insert(id, key);
    ids.push(id);
}

/// MOS (1.0..=4.5) as hundredths.
fn centi(mos: f64) -> u16 {
    (mos * 100.0).round().clamp(0.0, 1000.0) as u16
}
