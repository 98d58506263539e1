//! `peers[].limits.messages_per_second`: a safety valve for peers the per-source limits
//! and bans leave alone (exempt peers). A looping or compromised PBX must not saturate
//! the engine, yet must never be banned for it: excess is dropped and counted only.
//!
//! One token bucket per peer, refilled at the rate up to the burst. Half of the burst is
//! kept for responses and in-dialog requests, so that a flood of new requests from a peer
//! cannot cut its own established calls: a new request passes only while more than that
//! reserve is left.

use std::time::{Duration, Instant};

/// How often a peer's drops are logged at most.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// What the valve says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over the rate. `warn`: log now, with the number dropped since the last log.
    Drop {
        warn: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub struct Valve {
    rate: u32,
    burst: u32,
    tokens: f64,
    last: Instant,
    last_warn: Option<Instant>,
    unlogged: u64,
}

impl Valve {
    /// A full bucket: `rate` messages per second, `burst` at once (both above 0).
    pub fn new(rate: u32, burst: u32, now: Instant) -> Valve {
        Valve {
            rate,
            burst,
            tokens: f64::from(burst),
            last: now,
            last_warn: None,
            unlogged: 0,
        }
    }

    pub fn params(&self) -> (u32, u32) {
        (self.rate, self.burst)
    }

    /// One message; `new`: a request outside a dialog (it may not use the reserve).
    pub fn check(&mut self, new: bool, now: Instant) -> Verdict {
        self.check_with(|| new, now)
    }

    /// [`Self::check`] that asks `new` only when the reserve is reached: reading the
    /// message's To header costs more than the bucket, and is rarely needed.
    pub fn check_with(&mut self, new: impl FnOnce() -> bool, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * f64::from(self.rate)).min(f64::from(self.burst));
        let reserve = f64::from(self.burst / 2);
        let passes = self.tokens >= 1.0 + reserve || (self.tokens >= 1.0 && !new());
        if passes {
            self.tokens -= 1.0;
            return Verdict::Pass;
        }
        self.unlogged += 1;
        let due = self
            .last_warn
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
        if !due {
            return Verdict::Drop { warn: None };
        }
        self.last_warn = Some(now);
        let n = std::mem::take(&mut self.unlogged);
        Verdict::Drop { warn: Some(n) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(v: &mut Valve, new: bool, n: u32, now: Instant) -> u32 {
        (0..n)
            .filter(|_| v.check(new, now) == Verdict::Pass)
            .count() as u32
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut v = Valve::new(100, 200, t0);
        assert_eq!(passed(&mut v, false, 500, t0), 200);
        // 100 ms later: 10 more.
        assert_eq!(
            passed(&mut v, false, 500, t0 + Duration::from_millis(100)),
            10
        );
        // A full second refills no more than the burst.
        assert_eq!(
            passed(&mut v, false, 500, t0 + Duration::from_secs(10)),
            200
        );
    }

    #[test]
    fn new_requests_leave_half_the_burst_to_dialogs() {
        let t0 = Instant::now();
        let mut v = Valve::new(100, 200, t0);
        assert_eq!(
            passed(&mut v, true, 10_000, t0),
            100,
            "new requests stop at half"
        );
        assert_eq!(
            passed(&mut v, false, 10_000, t0),
            100,
            "dialogs get the rest"
        );
        // Under a steady flood of new requests, in-dialog traffic at the rate still passes.
        let mut dialog = 0;
        for ms in 1..=1000u64 {
            let now = t0 + Duration::from_millis(ms);
            passed(&mut v, true, 100, now);
            dialog += passed(&mut v, false, 1, now);
        }
        assert!(dialog >= 95, "in-dialog messages passed: {dialog}");
    }

    #[test]
    fn drops_are_logged_at_most_once_a_second_with_their_count() {
        let t0 = Instant::now();
        let mut v = Valve::new(1, 1, t0);
        assert_eq!(v.check(false, t0), Verdict::Pass);
        assert_eq!(v.check(false, t0), Verdict::Drop { warn: Some(1) });
        let ms = |m| t0 + Duration::from_millis(m);
        assert_eq!(v.check(false, ms(100)), Verdict::Drop { warn: None });
        assert_eq!(v.check(false, ms(200)), Verdict::Drop { warn: None });
        // 1 s later a token is back: it passes, and the next drop logs the two before.
        assert_eq!(v.check(false, ms(1000)), Verdict::Pass);
        assert_eq!(v.check(false, ms(1001)), Verdict::Drop { warn: Some(3) });
    }
}
