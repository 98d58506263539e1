//! What a transaction state machine produces while handling one input: bytes to send,
//! events for the TU, timers to arm. Collected here and drained by the layer's callers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timers::{Deadlines, TimerKind, TimerQueue};
use super::{Flow, Transmit, TxConfig, TxEvent};

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<TxEvent>,
    pub timers: TimerQueue,
}

impl Outbox {
    /// Give back spare capacity a burst left in the queues.
    pub fn shrink(&mut self) {
        if self.transmits.capacity() > 1024 && self.transmits.capacity() > 4 * self.transmits.len()
        {
            self.transmits.shrink_to_fit();
        }
        if self.events.capacity() > 1024 && self.events.capacity() > 4 * self.events.len() {
            self.events.shrink_to_fit();
        }
        self.timers.shrink();
    }
}

/// The environment of one state-machine step.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a TxConfig,
    pub now: Instant,
    pub out: &'a mut Outbox,
}

impl Ctx<'_> {
    pub fn send(&mut self, flow: Flow, data: Bytes) {
        self.out.transmits.push_back(Transmit { flow, data });
    }

    pub fn emit(&mut self, event: TxEvent) {
        self.out.events.push_back(event);
    }

    pub fn arm(&mut self, deadlines: &mut Deadlines, kind: TimerKind, after: Duration) {
        deadlines.arm(&mut self.out.timers, kind, self.now, after);
    }

    /// Linger in the current state for `after` (absorbing retransmissions), or end now
    /// when there is nothing to wait for (reliable transports).
    pub fn linger(&mut self, deadlines: &mut Deadlines, after: Duration) -> Status {
        if after.is_zero() {
            return Status::Terminated;
        }
        self.arm(deadlines, TimerKind::Expire, after);
        Status::Live
    }
}

/// Whether a transaction survives the step; terminated ones are removed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Status {
    Live,
    Terminated,
}
