//! Timer storage and durations. One min-heap of deadlines for all transactions, with lazy
//! cancellation: each transaction keeps its current deadline per timer kind, and a heap
//! entry only fires if it still equals that deadline. Disarming is O(1), the earliest
//! deadline is a peek, and stale entries are dropped when they reach the top.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::TxConfig;

/// A transaction, client or server (ids are unique across both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TxRef {
    Client(u64),
    Server(u64),
}

/// A transaction runs at most two timers at once: one that retransmits (A, E, G, 2xx) and
/// one that ends a state (B, D, F, H, I, J, K, L, M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKind {
    Retransmit,
    Expire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub at: Instant,
    pub tx: TxRef,
    pub kind: TimerKind,
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl TimerQueue {
    pub fn push(&mut self, entry: Entry) {
        self.heap.push(Reverse(entry));
    }

    pub fn peek(&self) -> Option<&Entry> {
        self.heap.peek().map(|Reverse(e)| e)
    }

    pub fn pop(&mut self) -> Option<Entry> {
        self.heap.pop().map(|Reverse(e)| e)
    }

    /// The earliest entry, if due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        if self.peek()?.at <= now {
            self.pop()
        } else {
            None
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keep only the entries `live` accepts (stale ones would linger until due).
    pub fn retain(&mut self, mut live: impl FnMut(&Entry) -> bool) {
        self.heap.retain(|Reverse(e)| live(e));
    }

    /// Give back spare capacity when the heap is far larger than what it holds.
    pub fn shrink(&mut self) {
        if self.heap.capacity() > 1024 && self.heap.capacity() > 4 * self.heap.len() {
            self.heap.shrink_to_fit();
        }
    }
}

/// The current deadline of each timer of one transaction: the truth heap entries are
/// checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    owner: TxRef,
    retransmit: Option<Instant>,
    expire: Option<Instant>,
}

impl Deadlines {
    pub fn new(owner: TxRef) -> Self {
        Deadlines {
            owner,
            retransmit: None,
            expire: None,
        }
    }

    fn slot(&mut self, kind: TimerKind) -> &mut Option<Instant> {
        match kind {
            TimerKind::Retransmit => &mut self.retransmit,
            TimerKind::Expire => &mut self.expire,
        }
    }

    /// Set `kind` to fire at `now + after` (replacing any earlier setting). A deadline
    /// beyond what `Instant` can represent is treated as never.
    pub fn arm(&mut self, queue: &mut TimerQueue, kind: TimerKind, now: Instant, after: Duration) {
        let at = now.checked_add(after);
        *self.slot(kind) = at;
        if let Some(at) = at {
            queue.push(Entry {
                at,
                tx: self.owner,
                kind,
            });
        }
    }

    pub fn disarm(&mut self, kind: TimerKind) {
        *self.slot(kind) = None;
    }

    pub fn disarm_all(&mut self) {
        *self = Deadlines::new(self.owner);
    }

    /// Whether `entry` is this transaction's live timer rather than a cancelled one.
    pub fn is_current(&self, entry: &Entry) -> bool {
        let at = match entry.kind {
            TimerKind::Retransmit => self.retransmit,
            TimerKind::Expire => self.expire,
        };
        at == Some(entry.at)
    }

    /// Consume the timer `entry` stands for, if it is live.
    pub fn take(&mut self, entry: &Entry) -> bool {
        let live = self.is_current(entry);
        if live {
            self.disarm(entry.kind);
        }
        live
    }
}

/// Floor for configured intervals: a zero T1 would otherwise retransmit in a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

pub(crate) fn t1(cfg: &TxConfig) -> Duration {
    cfg.t1.max(MIN_INTERVAL)
}

/// Retransmission cap; never below T1.
pub(crate) fn t2(cfg: &TxConfig) -> Duration {
    cfg.t2.max(t1(cfg))
}

/// How long a UDP transaction lingers to absorb retransmissions (timers I and K).
pub(crate) fn t4(cfg: &TxConfig) -> Duration {
    cfg.t4
}

/// 64*T1: timers B, F, H, J, L, M and the 2xx retransmission limit.
pub(crate) fn t64(cfg: &TxConfig) -> Duration {
    t1(cfg).saturating_mul(64)
}

/// Timer D: how long a client INVITE transaction absorbs retransmitted non-2xx finals over
/// UDP ("at least 32 seconds", RFC 3261 §17.1.1.2).
pub(crate) const TIMER_D: Duration = Duration::from_secs(32);

/// The next retransmission interval: doubled, capped.
pub(crate) fn backoff(current: Duration, cap: Duration) -> Duration {
    current.saturating_mul(2).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_entries_do_not_count() {
        let now = Instant::now();
        let mut q = TimerQueue::default();
        let mut d = Deadlines::new(TxRef::Client(1));
        d.arm(&mut q, TimerKind::Retransmit, now, Duration::from_secs(1));
        let first = *q.peek().unwrap();
        d.arm(&mut q, TimerKind::Retransmit, now, Duration::from_secs(2));
        assert!(!d.is_current(&first));
        assert_eq!(q.pop_due(now), None);
        let e = q.pop_due(now + Duration::from_secs(3)).unwrap();
        assert_eq!(e, first);
        assert!(!d.take(&e));
        let e = q.pop_due(now + Duration::from_secs(3)).unwrap();
        assert!(d.take(&e));
        assert!(!d.take(&e), "a timer fires once");
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn overflowing_deadline_is_never() {
        let now = Instant::now();
        let mut q = TimerQueue::default();
        let mut d = Deadlines::new(TxRef::Server(1));
        d.arm(&mut q, TimerKind::Expire, now, Duration::MAX);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn durations_are_clamped() {
        let cfg = TxConfig {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        };
        assert_eq!(t1(&cfg), MIN_INTERVAL);
        assert_eq!(t2(&cfg), MIN_INTERVAL);
        assert_eq!(t64(&cfg), MIN_INTERVAL * 64);
        let big = TxConfig {
            t1: Duration::MAX,
            ..cfg
        };
        assert_eq!(t64(&big), Duration::MAX);
        assert_eq!(
            backoff(Duration::from_secs(3), Duration::from_secs(4)),
            Duration::from_secs(4)
        );
    }
}
