//! Edge protection before a message costs anything: per-source rate limits, bans, and
//! scanner recognition. Sans-IO like the engine: time comes in as `now`, and governor's
//! token buckets run on a [`FakeRelativeClock`] advanced to it, so tests are exact.
//!
//! The engine asks [`Guard::check`] with the source address and the first bytes of every
//! datagram before parsing it; a banned or over-rate source is dropped there. Invalid or
//! unauthorized requests are reported with [`Guard::strike`]; `ban_after` strikes within
//! `ban_window` ban the source for `ban_time`. Exempt sources (trusted peers, `never_ban`)
//! are never limited or banned, so a busy PBX cannot lock itself out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::FakeRelativeClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;

use crate::config::SecurityConfig;

type PeerLimiter = RateLimiter<
    governor::state::direct::NotKeyed,
    governor::state::InMemoryState,
    FakeRelativeClock,
    NoOpMiddleware<Nanos>,
>;

type Limiter =
    RateLimiter<IpAddr, HashMapStateStore<IpAddr>, FakeRelativeClock, NoOpMiddleware<Nanos>>;

/// Sources tracked for strikes at once; beyond this, idle entries are pruned first and
/// then new sources are not tracked (a spoofed flood cannot grow memory without bound).
const MAX_TRACKED: usize = 100_000;
/// How often expired bans and idle entries are swept.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// Why a message was dropped unread (label of `veil_sip_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source is banned.
    Banned,
    /// Over the per-source request or INVITE rate (the source is banned by it).
    RateLimited,
    /// User-Agent of a known scanner.
    Scanner,
    /// The signalling queue was saturated (shell, new INVITEs only).
    Overload,
    /// Over the peer's `limits.messages_per_second` (never a ban).
    PeerRate,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::Banned,
        DropReason::RateLimited,
        DropReason::Scanner,
        DropReason::Overload,
        DropReason::PeerRate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Banned => "banned",
            DropReason::RateLimited => "rate_limited",
            DropReason::Scanner => "scanner",
            DropReason::Overload => "overload",
            DropReason::PeerRate => "peer_rate",
        }
    }
}

/// Why a source was banned (label of `veil_bans_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    RequestRate,
    InviteRate,
    Invalid,
    Scanner,
}

impl BanReason {
    pub const ALL: [BanReason; 4] = [
        BanReason::RequestRate,
        BanReason::InviteRate,
        BanReason::Invalid,
        BanReason::Scanner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BanReason::RequestRate => "request_rate",
            BanReason::InviteRate => "invite_rate",
            BanReason::Invalid => "invalid",
            BanReason::Scanner => "scanner",
        }
    }
}

/// A drop, and the ban it caused if this message was the one that tipped the source over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub reason: DropReason,
    pub banned: Option<BanReason>,
}

/// Strikes of one source inside the current window.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    since: Instant,
    count: u32,
}

pub struct Guard {
    exempt: Vec<IpNet>,
    scanners: Vec<String>,
    requests: Option<Limiter>,
    invites: Option<Limiter>,
    clock: FakeRelativeClock,
    /// The instant the fake clock's zero stands for.
    epoch: Instant,
    clock_at: Duration,
    ban_after: u32,
    ban_window: Duration,
    ban_time: Duration,
    strikes: HashMap<IpAddr, Strikes>,
    /// New-call rate per source peer (`limits.cps`), by peer name, with the rate it has.
    peer_cps: HashMap<String, (u32, PeerLimiter)>,
    /// Message valves per source peer (`limits.messages_per_second`), by peer name.
    valves: HashMap<String, valve::Valve>,
    banned: HashMap<IpAddr, Instant>,
    /// Bumped whenever the banned set changes (the shell mirrors it to its sockets).
    generation: u64,
    last_prune: Instant,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("banned", &self.banned.len())
            .field("tracked", &self.strikes.len())
            .finish()
    }
}

fn limiter(rate: u32, burst: u32, clock: &FakeRelativeClock) -> Option<Limiter> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    let quota = Quota::per_second(rate).allow_burst(burst);
    Some(RateLimiter::hashmap_with_clock(quota, clock.clone()))
}

impl Guard {
    /// `exempt`: sources never limited or banned (trusted peers' sources, `never_ban`).
    pub fn new(cfg: &SecurityConfig, exempt: Vec<IpNet>, now: Instant) -> Guard {
        let clock = FakeRelativeClock::default();
        Guard {
            exempt,
            scanners: cfg
                .scanner_user_agents
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            requests: limiter(cfg.requests_per_second, cfg.requests_burst, &clock),
            invites: limiter(cfg.invites_per_second, cfg.invites_burst, &clock),
            clock,
            epoch: now,
            clock_at: Duration::ZERO,
            ban_after: cfg.ban_after,
            ban_window: cfg.ban_window.0,
            ban_time: cfg.ban_time.0,
            strikes: HashMap::new(),
            peer_cps: HashMap::new(),
            valves: HashMap::new(),
            banned: HashMap::new(),
            generation: 0,
            last_prune: now,
        }
    }

    /// Replace the exempt sources (a reload changed the peers); bans and buckets stay.
    pub fn set_exempt(&mut self, exempt: Vec<IpNet>) {
        self.exempt = exempt;
    }

    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|n| n.contains(&ip))
    }

    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.banned.get(&ip).is_some_and(|until| now < *until)
    }

    /// Whether `user_agent` names a known scanner (substring, case-insensitive).
    pub fn is_scanner(&self, user_agent: &str) -> bool {
        if self.scanners.is_empty() {
            return false;
        }
        let ua = user_agent.to_ascii_lowercase();
        self.scanners.iter().any(|s| ua.contains(s.as_str()))
    }

    /// First look at a message from `ip`: `Err` when it must be dropped unread. Only the
    /// start of `data` is read (is it an INVITE?).
    pub fn check(&mut self, ip: IpAddr, data: &[u8], now: Instant) -> Result<(), Dropped> {
        self.tick(now);
        if self.is_exempt(ip) {
            return Ok(());
        }
        if self.is_banned(ip, now) {
            return Err(Dropped {
                reason: DropReason::Banned,
                banned: None,
            });
        }
        let over = |l: &Option<Limiter>| l.as_ref().is_some_and(|l| l.check_key(&ip).is_err());
        let why = if over(&self.requests) {
            Some(BanReason::RequestRate)
        } else if data.starts_with(b"INVITE ") && over(&self.invites) {
            Some(BanReason::InviteRate)
        } else {
            None
        };
        match why {
            None => Ok(()),
            Some(why) => Err(Dropped {
                reason: DropReason::RateLimited,
                banned: self.ban(ip, why, now).then_some(why),
            }),
        }
    }

    /// Whether peer `peer` may start one more call now under `limits.cps` = `cps`
    /// (0 = unlimited; a burst of one second's worth is allowed).
    pub fn peer_call_allowed(&mut self, peer: &str, cps: u32, now: Instant) -> bool {
        let Some(rate) = NonZeroU32::new(cps) else {
            return true;
        };
        self.tick(now);
        if self.peer_cps.get(peer).is_none_or(|(r, _)| *r != cps) {
            let l = RateLimiter::direct_with_clock(Quota::per_second(rate), self.clock.clone());
            self.peer_cps.insert(peer.to_string(), (cps, l));
        }
        self.peer_cps
            .get(peer)
            .is_none_or(|(_, l)| l.check().is_ok())
    }

    /// One message from peer `peer` under `limits.messages_per_second` = `rate` (above 0)
    /// with `burst`; `new` says whether it is a request outside a dialog (asked only when
    /// it matters, see [`valve::Valve::check_with`]). Never bans.
    pub fn peer_message(
        &mut self,
        peer: &str,
        rate: u32,
        burst: u32,
        new: impl FnOnce() -> bool,
        now: Instant,
    ) -> valve::Verdict {
        match self.valves.get_mut(peer) {
            Some(v) if v.params() == (rate, burst) => v.check_with(new, now),
            _ => {
                let mut v = valve::Valve::new(rate, burst, now);
                let verdict = v.check_with(new, now);
                self.valves.insert(peer.to_string(), v);
                verdict
            }
        }
    }

    /// An invalid or unauthorized request from `ip`. `Some` when it got the source banned.
    pub fn strike(&mut self, ip: IpAddr, now: Instant) -> Option<BanReason> {
        if self.ban_after == 0 || self.is_exempt(ip) || self.is_banned(ip, now) {
            return None;
        }
        if !self.strikes.contains_key(&ip) && self.strikes.len() >= MAX_TRACKED {
            self.prune(now);
            if self.strikes.len() >= MAX_TRACKED {
                return None;
            }
        }
        let s = self.strikes.entry(ip).or_insert(Strikes {
            since: now,
            count: 0,
        });
        if now.saturating_duration_since(s.since) > self.ban_window {
            *s = Strikes {
                since: now,
                count: 0,
            };
        }
        s.count += 1;
        if s.count >= self.ban_after {
            self.strikes.remove(&ip);
            return self
                .ban(ip, BanReason::Invalid, now)
                .then_some(BanReason::Invalid);
        }
        None
    }

    /// Ban `ip` for `ban_time`; `false` if it is exempt or already banned.
    pub fn ban(&mut self, ip: IpAddr, _why: BanReason, now: Instant) -> bool {
        if self.is_exempt(ip) || self.is_banned(ip, now) {
            return false;
        }
        self.banned
            .insert(ip, crate::b2bua::deadline::after(now, self.ban_time));
        self.generation += 1;
        true
    }

    /// Sources banned now, with the instant each ban ends.
    pub fn banned(&self, now: Instant) -> impl Iterator<Item = (IpAddr, Instant)> + '_ {
        self.banned
            .iter()
            .filter(move |(_, until)| now < **until)
            .map(|(ip, until)| (*ip, *until))
    }

    pub fn banned_count(&self) -> usize {
        self.banned.len()
    }

    /// Changes whenever a source is banned or a ban expires.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Advance the buckets' clock to `now`; sweep now and then.
    fn tick(&mut self, now: Instant) {
        let at = now.saturating_duration_since(self.epoch);
        if at > self.clock_at {
            self.clock.advance(at - self.clock_at);
            self.clock_at = at;
        }
        if now.saturating_duration_since(self.last_prune) >= PRUNE_EVERY
            || self.tracked() > MAX_TRACKED
        {
            self.prune(now);
        }
    }

    /// Forget expired bans, stale strike windows and full buckets.
    pub fn prune(&mut self, now: Instant) {
        self.last_prune = now;
        let before = self.banned.len();
        self.banned.retain(|_, until| now < *until);
        if self.banned.len() != before {
            self.generation += 1;
        }
        let window = self.ban_window;
        self.strikes
            .retain(|_, s| now.saturating_duration_since(s.since) <= window);
        for l in [&self.requests, &self.invites].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Sources with live rate-limit state (for tests: memory stays bounded).
    pub fn tracked(&self) -> usize {
        let buckets = [&self.requests, &self.invites]
            .into_iter()
            .flatten()
            .map(|l| l.len())
            .max()
            .unwrap_or(0);
        buckets.max(self.strikes.len())
    }
}

pub mod raw;
pub mod valve;

#[cfg(test)]
mod tests;
