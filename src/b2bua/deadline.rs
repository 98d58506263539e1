//! Deadlines from durations the engine does not control: values read from the wire
//! (Retry-After, Session-Expires, Min-SE, Expires) and from config. `Instant + Duration`
//! panics on overflow, so every engine deadline goes through `after`, which caps the wait
//! (as the transaction layer's `Deadlines::arm` treats an unrepresentable one as never).

use std::time::{Duration, Instant};

/// No engine timer waits longer than this (ten years: "never" for a call, and far inside
/// what `Instant` represents on every platform).
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `now + d`, with `d` capped at `MAX_WAIT`; never panics.
pub fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(MAX_WAIT)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_are_capped() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::MAX), now + MAX_WAIT);
        assert_eq!(
            after(now, Duration::from_secs(u64::MAX / 2)),
            now + MAX_WAIT
        );
        assert_eq!(
            after(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
    }
}
