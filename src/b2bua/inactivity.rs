//! RTP inactivity (`media.rtp_timeout`, `media.hold_timeout`) and per-stream statistics
//! coming back from the relay.
//!
//! The relay reports a stream `Idle` once it has seen no RTP from either side for
//! `rtp_timeout`, and `Active` when RTP comes back; it never decides anything. The engine
//! ends an answered call when every one of its streams is idle for the call's limit: the
//! hold limit when the last SDP put the call on hold, else `rtp_timeout`. A check also runs
//! `rtp_timeout` after the answer, so streams that went silent while ringing (and so were
//! reported before there was a call to end) still count.

use std::collections::HashMap;
use std::time::Instant;

use crate::media::StreamId;
use crate::media::rtp::DirectionStats;

use super::call::EndReason;
use super::call_timers::CallTimer;
use super::engine::Engine;

/// What the engine tracks of a call's media.
#[derive(Debug, Clone, Default)]
pub struct CallMedia {
    /// The last SDP that crossed put the call on hold.
    pub hold: bool,
    /// Streams the relay reported idle, with the time of the report.
    pub idle: HashMap<StreamId, Instant>,
}

impl Engine {
    pub(super) fn on_stream_idle(&mut self, id: StreamId, now: Instant) {
        let Some(&key) = self.stream_calls.get(&id) else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&key) {
            call.media.idle.insert(id, now);
            self.check_rtp(key, now);
        }
    }

    pub(super) fn on_stream_active(&mut self, id: StreamId) {
        if let Some(&key) = self.stream_calls.get(&id)
            && let Some(call) = self.calls.get_mut(&key)
        {
            call.media.idle.remove(&id);
        }
    }

    /// The call answered: look again once a full `rtp_timeout` has passed.
    pub(super) fn arm_rtp_check(&mut self, key: u64, now: Instant) {
        let after = self.cfg.media.rtp_timeout.0;
        self.arm(key, CallTimer::RtpCheck, super::deadline::after(now, after));
    }

    /// End the call if all its streams have been silent for its limit; otherwise, if all
    /// are idle but the (hold) limit is further away, check again then.
    pub(super) fn check_rtp(&mut self, key: u64, now: Instant) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.answered().is_none()
            || call.streams.is_empty()
            || !call
                .streams
                .iter()
                .all(|s| call.media.idle.contains_key(&s.id))
        {
            return;
        }
        let Some(since) = call.media.idle.values().max().copied() else {
            return;
        };
        let rtp = self.cfg.media.rtp_timeout.0;
        let limit = if call.media.hold {
            self.cfg.media.hold_timeout.0
        } else {
            rtp
        };
        // `since` is when the last stream was reported, i.e. `rtp` after its last packet.
        let deadline = super::deadline::after(since, limit.saturating_sub(rtp));
        if now >= deadline {
            tracing::info!(call = %call.vref, hold = call.media.hold, "no RTP: ending call");
            self.end_call(key, EndReason::RtpTimeout, None, now);
        } else {
            self.arm(key, CallTimer::RtpCheck, deadline);
        }
    }

    /// Final statistics of a closed stream: into the ended call's CDR and the metrics.
    pub(super) fn on_stream_stats(&mut self, id: StreamId, a: DirectionStats, b: DirectionStats) {
        for s in [&a, &b] {
            self.metrics.observe_media_direction(s);
        }
        let Some(key) = self.stream_calls.get(&id) else {
            return;
        };
        if let Some(c) = self.closing.get_mut(key) {
            c.a_stats.merge(&a);
            c.b_stats.merge(&b);
        }
    }
}
