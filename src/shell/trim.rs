//! Giving memory back after a burst. A flood makes the allocator touch tens of MiB (queued
//! datagrams, parsed messages, lingering transactions); once that is freed, the allocator
//! keeps the pages for reuse, partly in per-thread free lists that only their owner thread
//! collects. So after a burst the shell asks the allocator to collect, once on every
//! runtime worker thread, and again when the burst's transactions have expired.
//!
//! The library does not know the allocator: the binary registers a collector
//! ([`set_collector`]; `veil` calls mimalloc's `mi_collect`).

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Messages handled, or queued, in one tick from which the load counts as a burst.
pub(super) const BURST: usize = 4096;
/// How often the shell samples the load.
pub(super) const TICK: Duration = Duration::from_secs(1);
/// Collections at most this often: collecting walks every page of a heap.
const MIN_GAP: Duration = Duration::from_secs(10);

static COLLECTOR: OnceLock<fn()> = OnceLock::new();
/// Bumped for each collection due; each worker thread collects once per value.
static EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// Register the function that returns free memory to the system (e.g. `mi_collect(true)`);
/// it runs on the thread whose heap it should collect. Only the first registration counts.
pub fn set_collector(collect: fn()) {
    let _ = COLLECTOR.set(collect);
}

/// Ask every worker thread to collect (on its next [`on_park`]).
pub(super) fn request() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// A runtime worker thread is going idle: collect its heap if a collection is due and it
/// has not collected for it yet. Cheap otherwise (one atomic load).
pub(super) fn on_park() {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if SEEN.with(|s| s.replace(epoch)) != epoch
        && let Some(collect) = COLLECTOR.get()
    {
        collect();
    }
}

/// When to collect, from the load seen each tick: once a burst (at least [`BURST`]
/// messages in a tick) has fallen to a quarter of its peak, and again `linger` later, when
/// the burst's transactions and their buffers are gone.
#[derive(Debug)]
pub(super) struct Trim {
    linger: Duration,
    /// The highest load of the burst in progress (0: none).
    peak: usize,
    /// A follow-up collection, after the linger.
    again_at: Option<Instant>,
    last: Option<Instant>,
}

impl Trim {
    pub(super) fn new(linger: Duration) -> Trim {
        Trim {
            linger,
            peak: 0,
            again_at: None,
            last: None,
        }
    }

    /// One tick's load (the larger of messages handled and messages queued); true when
    /// the allocator should collect now.
    pub(super) fn tick(&mut self, load: usize, now: Instant) -> bool {
        if load >= BURST {
            self.peak = self.peak.max(load);
        }
        let spaced = self.last.is_none_or(|t| now >= t + MIN_GAP);
        if self.peak > 0 && load <= self.peak / 4 && spaced {
            self.peak = 0;
            self.again_at = Some(crate::b2bua::deadline::after(now, self.linger));
            self.last = Some(now);
            return true;
        }
        if self.peak == 0 && spaced && self.again_at.is_some_and(|t| now >= t) {
            self.again_at = None;
            self.last = Some(now);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_secs(40);

    #[test]
    fn collects_once_a_burst_has_fallen_to_a_quarter_and_after_the_linger() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut trim = Trim::new(LINGER);
        // Ordinary load never collects.
        assert!((0..60).all(|s| !trim.tick(BURST - 1, at(s))));
        // A burst: nothing while it lasts or while it is above a quarter of its peak.
        assert!(!trim.tick(20_000, at(60)));
        assert!(!trim.tick(40_000, at(61)));
        assert!(!trim.tick(10_001, at(62)));
        assert!(trim.tick(10_000, at(63)), "fell to a quarter");
        assert!(!trim.tick(10, at(64)), "once per burst");
        // The follow-up after the linger, then nothing more.
        assert!((64..103).all(|s| !trim.tick(10, at(s))));
        assert!(trim.tick(10, at(103)));
        assert!((104..200).all(|s| !trim.tick(10, at(s))));
    }

    #[test]
    fn collections_are_spaced() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut trim = Trim::new(LINGER);
        assert!(!trim.tick(50_000, at(0)));
        assert!(trim.tick(0, at(1000)));
        // A second burst right away waits for the gap, then collects (and re-arms).
        assert!(!trim.tick(50_000, at(2000)));
        assert!(!trim.tick(0, at(3000)));
        assert!(trim.tick(0, at(11_000)));
    }

    #[test]
    fn each_thread_collects_once_per_request() {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        fn count() {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        set_collector(count);
        on_park(); // in step with requests so far
        let before = COUNT.load(Ordering::Relaxed);
        request();
        on_park();
        on_park();
        assert_eq!(COUNT.load(Ordering::Relaxed) - before, 1);
        std::thread::spawn(on_park).join().ok();
        assert_eq!(COUNT.load(Ordering::Relaxed) - before, 2);
    }
}
