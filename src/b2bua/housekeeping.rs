//! Periodic sweep on the engine's clock: expired bans, stale strike windows and idle
//! per-source token buckets are forgotten even when no traffic arrives to trigger it, and
//! maps that a flood grew far beyond their live size give their memory back. Without this
//! a hostile burst left its high-water mark behind for the life of the process.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::time::{Duration, Instant};

use super::engine::{Engine, Timer};

/// How often the sweep runs.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Capacity kept without question: small maps are not worth reallocating.
const KEEP: usize = 1024;

/// Shrink `m` when its capacity is over four times what it holds (and over [`KEEP`]):
/// down to twice its size, so that steady traffic does not reallocate on every sweep.
pub(crate) fn shrink_map<K: Eq + Hash, V, S: BuildHasher>(m: &mut HashMap<K, V, S>) {
    if m.capacity() > KEEP && m.capacity() > 4 * m.len() {
        m.shrink_to((2 * m.len()).max(KEEP / 2));
    }
}

impl Engine {
    /// Arm the first sweep (from `Engine::new`).
    pub(super) fn start_housekeeping(&mut self, now: Instant) {
        self.set_timer(
            super::deadline::after(now, SWEEP_EVERY),
            0,
            Timer::Housekeeping,
        );
    }

    pub(super) fn on_housekeeping(&mut self, now: Instant) {
        let generation = self.guard.generation();
        self.guard.prune(now);
        if self.guard.generation() != generation {
            self.metrics
                .banned_sources
                .set(self.guard.banned_count() as i64);
        }
        shrink_map(&mut self.calls);
        shrink_map(&mut self.a_index);
        shrink_map(&mut self.b_index);
        shrink_map(&mut self.stx_calls);
        // An owner lives as long as its transaction: one that ended without a last event
        // for the engine (an INVITE's Accepted state running out after a 2xx) is let go.
        let tx = &self.tx;
        self.owners.retain(|id, _| tx.client_request(*id).is_some());
        shrink_map(&mut self.owners);
        shrink_map(&mut self.stream_calls);
        shrink_map(&mut self.closing);
        self.prune_registrations(now);
        self.shrink_timers();
        if self.out.capacity() > KEEP && self.out.capacity() > 4 * self.out.len() {
            self.out.shrink_to_fit();
        }
        self.tx.shrink();
        self.set_timer(
            super::deadline::after(now, SWEEP_EVERY),
            0,
            Timer::Housekeeping,
        );
    }
}
