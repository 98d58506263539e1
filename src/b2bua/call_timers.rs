//! A call's deadlines, kept with the call (quinn-proto's `TimerTable` idea): the engine's
//! timer heap only says when to look at a call; what is due is read here. A deadline that
//! was moved or cleared simply finds nothing due when its old wake-up comes, so no timer
//! needs a generation or an attempt number to be recognised as stale.

use std::time::Instant;

use crate::media::Side;

/// What a call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTimer {
    /// Leg B rang too long (`sip.timers.invite_timeout`).
    Ring,
    /// `calls.max_duration` (or the peer's, or the rule's) reached.
    MaxDuration,
    /// Look whether every stream of the call has been silent too long.
    RtpCheck,
    /// veil refreshes the session on this leg (RFC 4028).
    SessionRefresh(Side),
    /// The far end of this leg should have refreshed by now.
    SessionExpire(Side),
}

const COUNT: usize = 7;

impl CallTimer {
    fn slot(self) -> usize {
        match self {
            CallTimer::Ring => 0,
            CallTimer::MaxDuration => 1,
            CallTimer::RtpCheck => 2,
            CallTimer::SessionRefresh(Side::A) => 3,
            CallTimer::SessionRefresh(Side::B) => 4,
            CallTimer::SessionExpire(Side::A) => 5,
            CallTimer::SessionExpire(Side::B) => 6,
        }
    }

    const ALL: [CallTimer; COUNT] = [
        CallTimer::Ring,
        CallTimer::MaxDuration,
        CallTimer::RtpCheck,
        CallTimer::SessionRefresh(Side::A),
        CallTimer::SessionRefresh(Side::B),
        CallTimer::SessionExpire(Side::A),
        CallTimer::SessionExpire(Side::B),
    ];
}

/// Each timer of a call is armed at most once: arming it again moves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallDeadlines {
    at: [Option<Instant>; COUNT],
}

impl CallDeadlines {
    pub fn set(&mut self, timer: CallTimer, at: Instant) {
        self.at[timer.slot()] = Some(at);
    }

    pub fn clear(&mut self, timer: CallTimer) {
        self.at[timer.slot()] = None;
    }

    pub fn get(&self, timer: CallTimer) -> Option<Instant> {
        self.at[timer.slot()]
    }

    /// The earliest deadline due at `now`, disarmed.
    pub fn pop_due(&mut self, now: Instant) -> Option<CallTimer> {
        let timer = CallTimer::ALL
            .into_iter()
            .filter(|t| self.get(*t).is_some_and(|at| at <= now))
            .min_by_key(|t| self.get(*t))?;
        self.clear(timer);
        Some(timer)
    }

    /// How many timers there are: a bound for handling one call's wake-up.
    pub const COUNT: usize = COUNT;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn due_timers_come_earliest_first_and_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = CallDeadlines::default();
        d.set(CallTimer::MaxDuration, t0 + 3 * s);
        d.set(CallTimer::SessionRefresh(Side::B), t0 + s);
        d.set(CallTimer::Ring, t0 + 10 * s);
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(
            d.pop_due(t0 + 5 * s),
            Some(CallTimer::SessionRefresh(Side::B))
        );
        assert_eq!(d.pop_due(t0 + 5 * s), Some(CallTimer::MaxDuration));
        assert_eq!(d.pop_due(t0 + 5 * s), None);
        assert_eq!(d.get(CallTimer::Ring), Some(t0 + 10 * s));
    }

    #[test]
    fn a_moved_deadline_is_not_due_at_its_old_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = CallDeadlines::default();
        d.set(CallTimer::Ring, t0 + s);
        d.set(CallTimer::Ring, t0 + 4 * s);
        assert_eq!(d.pop_due(t0 + 2 * s), None);
        d.clear(CallTimer::Ring);
        assert_eq!(d.pop_due(t0 + 9 * s), None);
    }
}
