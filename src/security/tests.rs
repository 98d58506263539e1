use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::config::{Duration as CfgDuration, SecurityConfig};

fn cfg() -> SecurityConfig {
    SecurityConfig {
        requests_per_second: 10,
        requests_burst: 5,
        invites_per_second: 2,
        invites_burst: 2,
        ban_after: 3,
        ban_window: CfgDuration::from_secs(10),
        ban_time: CfgDuration::from_secs(60),
        ..SecurityConfig::default()
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

const OPTIONS: &[u8] = b"OPTIONS sip:x SIP/2.0\r\n";
const INVITE: &[u8] = b"INVITE sip:x SIP/2.0\r\n";

#[test]
fn request_burst_then_ban_until_ban_time_passes() {
    let t0 = Instant::now();
    let mut g = Guard::new(&cfg(), vec![], t0);
    for _ in 0..5 {
        assert_eq!(g.check(ip(1), OPTIONS, t0), Ok(()));
    }
    let d = g.check(ip(1), OPTIONS, t0).unwrap_err();
    assert_eq!(d.reason, DropReason::RateLimited);
    assert_eq!(d.banned, Some(BanReason::RequestRate));
    assert!(g.is_banned(ip(1), t0));
    assert_eq!(
        g.banned(t0).map(|(a, _)| a).collect::<Vec<_>>(),
        vec![ip(1)]
    );
    // Other sources are unaffected.
    assert_eq!(g.check(ip(2), OPTIONS, t0), Ok(()));
    // Still banned later, even though the bucket refilled.
    let t1 = t0 + Duration::from_secs(30);
    let d = g.check(ip(1), OPTIONS, t1).unwrap_err();
    assert_eq!(d.reason, DropReason::Banned);
    assert_eq!(d.banned, None);
    let gen_before = g.generation();
    let t2 = t0 + Duration::from_secs(61);
    assert_eq!(g.check(ip(1), OPTIONS, t2), Ok(()));
    assert!(
        g.generation() > gen_before,
        "expiry is visible to the shell"
    );
    assert_eq!(g.banned_count(), 0);
}

#[test]
fn steady_rate_below_the_limit_passes_forever() {
    let t0 = Instant::now();
    let mut g = Guard::new(&cfg(), vec![], t0);
    for i in 0..1000u64 {
        // 5 per second against a limit of 10.
        let now = t0 + Duration::from_millis(200 * i);
        assert_eq!(g.check(ip(3), OPTIONS, now), Ok(()), "request {i}");
    }
}

#[test]
fn invites_have_their_own_tighter_bucket() {
    let t0 = Instant::now();
    let mut g = Guard::new(&cfg(), vec![], t0);
    assert!(g.check(ip(1), INVITE, t0).is_ok());
    assert!(g.check(ip(1), INVITE, t0).is_ok());
    let d = g.check(ip(1), INVITE, t0).unwrap_err();
    assert_eq!(d.banned, Some(BanReason::InviteRate));
}

#[test]
fn strikes_ban_within_window_only() {
    let t0 = Instant::now();
    let mut g = Guard::new(&cfg(), vec![], t0);
    assert_eq!(g.strike(ip(1), t0), None);
    assert_eq!(g.strike(ip(1), t0), None);
    // The window restarts after 10 s: two old strikes do not count.
    let t1 = t0 + Duration::from_secs(11);
    assert_eq!(g.strike(ip(1), t1), None);
    assert_eq!(g.strike(ip(1), t1), None);
    assert_eq!(g.strike(ip(1), t1), Some(BanReason::Invalid));
    assert!(g.is_banned(ip(1), t1));
    assert_eq!(g.strike(ip(1), t1), None, "already banned: no second ban");
}

#[test]
fn exempt_sources_are_never_limited_or_banned() {
    let t0 = Instant::now();
    let net: IpNet = "192.0.2.0/28".parse().unwrap();
    let mut g = Guard::new(&cfg(), vec![net], t0);
    for _ in 0..100 {
        assert_eq!(g.check(ip(1), INVITE, t0), Ok(()));
        assert_eq!(g.strike(ip(1), t0), None);
    }
    assert!(!g.ban(ip(1), BanReason::Scanner, t0));
    assert!(!g.is_banned(ip(1), t0));
    // Outside the exempt net the limits apply.
    assert!(g.check(ip(200), INVITE, t0).is_ok());
}

#[test]
fn scanner_user_agents_match_substrings_case_insensitively() {
    let g = Guard::new(&SecurityConfig::default(), vec![], Instant::now());
    assert!(g.is_scanner("friendly-scanner"));
    assert!(g.is_scanner("SIPVicious 0.3.4"));
    assert!(g.is_scanner("sipcli/v1.8"));
    assert!(g.is_scanner("VaxSIPUserAgent/3.1"));
    assert!(!g.is_scanner("Asterisk PBX 20.1"));
    let off = SecurityConfig {
        scanner_user_agents: vec![],
        ..SecurityConfig::default()
    };
    assert!(!Guard::new(&off, vec![], Instant::now()).is_scanner("friendly-scanner"));
}

#[test]
fn state_of_many_sources_is_pruned() {
    let t0 = Instant::now();
    let mut g = Guard::new(&cfg(), vec![], t0);
    for i in 0..5000u32 {
        let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let _ = g.check(a, OPTIONS, t0);
        let _ = g.strike(a, t0);
    }
    assert!(g.tracked() >= 5000);
    let later = t0 + Duration::from_secs(20);
    let _ = g.check(ip(1), OPTIONS, later);
    assert!(
        g.tracked() <= 1,
        "idle sources forgotten, got {}",
        g.tracked()
    );
}

#[test]
fn zero_rates_disable_limits() {
    let c = SecurityConfig {
        requests_per_second: 0,
        invites_per_second: 0,
        ..cfg()
    };
    let t0 = Instant::now();
    let mut g = Guard::new(&c, vec![], t0);
    for _ in 0..10_000 {
        assert_eq!(g.check(ip(1), INVITE, t0), Ok(()));
    }
}

#[test]
fn peer_cps_limits_new_calls_per_second() {
    let t0 = Instant::now();
    let mut g = Guard::new(&cfg(), vec![], t0);
    let ok = (0..10)
        .filter(|_| g.peer_call_allowed("pbx", 3, t0))
        .count();
    assert_eq!(ok, 3);
    assert!(g.peer_call_allowed("other", 3, t0), "per peer");
    assert!(g.peer_call_allowed("pbx", 3, t0 + Duration::from_secs(1)));
    assert!(
        (0..100).all(|_| g.peer_call_allowed("pbx", 0, t0)),
        "0 = unlimited"
    );
}
