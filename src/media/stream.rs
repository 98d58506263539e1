//! Forwarding decisions for one relayed stream, sans-IO: the relay task feeds it "a
//! packet arrived on socket S from address X" and sends where it says.
//!
//! Latching (symmetric RTP): a side behind NAT can only be reached at the address its
//! packets come from, so the first acceptable packet on a socket fixes that socket's
//! remote to its source, overriding the SDP address. Which sources are acceptable for the
//! first latch is `media.latching` (`Latching`): by default only the leg's signalling
//! source IP or the IP in its SDP (any port, for NAT), so a stranger who races the caller
//! to a fresh relay port ("RTP bleed") gets nothing.
//!
//! After latching only the latched address:port is forwarded and metered; anything else
//! is dropped before statistics and forwarding (the relay also drops it before SRTP). The
//! latch moves (a NAT rebinding) only to a source that would be acceptable for a first
//! latch, sending the SSRC the latch was made with, after the latched source has been
//! silent for `relatch_after`: a burst from an attacker who learnt the SSRC cannot steal
//! a live stream. A new SDP address resets the latch (the side may really have moved,
//! e.g. after a re-INVITE).
//!
//! A side may be restricted to source networks (`SetSources`): packets from outside them
//! are dropped before anything else, so they can neither latch nor re-latch.
//!
//! With `a=rtcp-mux` a side has no RTCP address: RTCP that arrives on an RTP port (told
//! apart by its packet type) goes to the other side's RTCP address when it has one, and
//! RTCP for a multiplexing side goes to its RTP address, so mux and non-mux legs mix.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::Side;
use super::rtp::{DirectionMeter, DirectionStats, RtpHeader, is_rtcp};

/// Which sources may make a socket's first latch (`media.latching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Latching {
    /// Only the exact address:port of the side's SDP (breaks NAT traversal).
    Strict,
    /// The side's signalling source IP or the IP of its SDP address, any port.
    #[default]
    Ip,
    /// Any source (unsafe: whoever sends first takes the stream).
    Any,
}

/// The relay's latching rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchPolicy {
    pub latching: Latching,
    /// Silence of the latched source after which a rebinding may move the latch.
    pub relatch_after: Duration,
}

impl Default for LatchPolicy {
    fn default() -> Self {
        LatchPolicy {
            latching: Latching::Ip,
            relatch_after: Duration::from_millis(500),
        }
    }
}

/// Why a packet was dropped (the `reason` of `veil_media_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Outside the peer's `media_sources`.
    NotAllowed,
    /// No latch yet and the source is not plausibly the side's party.
    NotParty,
    /// The socket is latched to another source, which may not take over (yet).
    UnlatchedSource,
    /// RTCP whose lengths do not add up (`rtcp_sdes::Malformed`); found after SRTCP
    /// authentication, as it needs the plain packet.
    MalformedRtcp,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::NotAllowed,
        DropReason::NotParty,
        DropReason::UnlatchedSource,
        DropReason::MalformedRtcp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NotAllowed => "not_allowed",
            DropReason::NotParty => "not_party",
            DropReason::UnlatchedSource => "unlatched_source",
            DropReason::MalformedRtcp => "malformed_rtcp",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What accepting a packet does to its socket's latch (from `StreamState::check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the latched source.
    Latched,
    /// First latch.
    Latch,
    /// NAT rebinding: the latch moves to this source.
    Relatch,
}

/// RTP or RTCP (RTCP is the socket at port + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Rtp,
    Rtcp,
}

/// One of a stream's four sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Socket {
    pub side: Side,
    pub channel: Channel,
}

impl Socket {
    /// In the order the relay binds them: A RTP, A RTCP, B RTP, B RTCP.
    pub const ALL: [Socket; 4] = [
        Socket::new(Side::A, Channel::Rtp),
        Socket::new(Side::A, Channel::Rtcp),
        Socket::new(Side::B, Channel::Rtp),
        Socket::new(Side::B, Channel::Rtcp),
    ];

    pub const fn new(side: Side, channel: Channel) -> Socket {
        Socket { side, channel }
    }

    /// Position in `Socket::ALL`.
    pub const fn index(self) -> usize {
        let side = match self.side {
            Side::A => 0,
            Side::B => 2,
        };
        let channel = match self.channel {
            Channel::Rtp => 0,
            Channel::Rtcp => 1,
        };
        side + channel
    }

    /// The socket a packet received here leaves from: same channel, other side.
    pub fn peer(self) -> Socket {
        Socket::new(self.side.other(), self.channel)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Remote {
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    /// SSRC of the packet that made the latch (RTP header, or RTCP sender SSRC).
    ssrc: Option<u32>,
    /// Last packet accepted from the latched source.
    last_seen: Option<Instant>,
}

impl Remote {
    fn destination(self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }
}

/// Remotes and counters of one stream, indexed like `Socket::ALL`.
#[derive(Debug, Clone, Default)]
pub struct StreamState {
    policy: LatchPolicy,
    remotes: [Remote; 4],
    /// Each side's signalling source IP (A, B).
    party: [Option<IpAddr>; 2],
    a_packets: u64,
    b_packets: u64,
    /// Statistics of what veil received from side A and from side B.
    meters: [DirectionMeter; 2],
    /// Networks each side's packets may come from (A, B); empty: any.
    allowed: [Vec<ipnet::IpNet>; 2],
    /// Packets dropped, by `DropReason::index`.
    drops: [u64; DropReason::ALL.len()],
}

impl StreamState {
    pub fn new(policy: LatchPolicy) -> StreamState {
        StreamState {
            policy,
            ..StreamState::default()
        }
    }

    /// Where a side wants RTP and RTCP, from its SDP. An address equal to the current one
    /// keeps the latch (a re-INVITE that changes nothing must not break NAT traversal).
    pub fn set_remote(&mut self, side: Side, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        for (channel, addr) in [(Channel::Rtp, rtp), (Channel::Rtcp, rtcp)] {
            let remote = &mut self.remotes[Socket::new(side, channel).index()];
            if remote.signalled != addr {
                *remote = Remote {
                    signalled: addr,
                    ..Remote::default()
                };
            }
        }
    }

    /// The IP `side`'s signalling comes from (`None`: unknown).
    pub fn set_party(&mut self, side: Side, ip: Option<IpAddr>) {
        self.party[side_index(side)] = ip.map(|ip| ip.to_canonical());
    }

    /// Restrict where `side`'s packets may come from; empty allows any source.
    pub fn set_sources(&mut self, side: Side, allowed: Vec<ipnet::IpNet>) {
        self.allowed[side_index(side)] = allowed;
    }

    /// Clock rates of payload types from the SDPs, used by both directions' jitter.
    pub fn set_clock_rates(&mut self, rates: &[(u8, u32)]) {
        for meter in &mut self.meters {
            meter.set_clock_rates(rates);
        }
    }

    /// Whether a packet from `source` may enter on `side`'s sockets.
    pub fn admits(&self, side: Side, source: SocketAddr) -> bool {
        let allowed = &self.allowed[side_index(side)];
        allowed.is_empty() || allowed.iter().any(|net| net.contains(&source.ip()))
    }

    /// Packets refused for being outside `media_sources` so far.
    pub fn source_drops(&self) -> u64 {
        self.drops(DropReason::NotAllowed)
    }

    /// Packets dropped for `reason` so far.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Whether `source` may make `on`'s first latch (or a re-latch) under the policy.
    fn plausible(&self, on: Socket, source: SocketAddr) -> bool {
        let own = self.remotes[on.index()].signalled;
        let rtp = self.remotes[Socket::new(on.side, Channel::Rtp).index()].signalled;
        let ip = source.ip().to_canonical();
        let same_ip = |a: Option<SocketAddr>| a.is_some_and(|a| a.ip().to_canonical() == ip);
        match self.policy.latching {
            Latching::Any => true,
            Latching::Strict => own.or(rtp) == Some(source),
            Latching::Ip => {
                self.party[side_index(on.side)] == Some(ip) || same_ip(own) || same_ip(rtp)
            }
        }
    }

    /// Decides on a packet without changing anything, so the relay can drop it before
    /// SRTP and commit a latch only once the packet authenticated. `data` may be SRTP:
    /// only the SSRC is read, which SRTP leaves in the clear.
    pub fn check(
        &self,
        on: Socket,
        source: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<Verdict, DropReason> {
        if !self.admits(on.side, source) {
            return Err(DropReason::NotAllowed);
        }
        let remote = &self.remotes[on.index()];
        match remote.latched {
            Some(latched) if latched == source => Ok(Verdict::Latched),
            Some(_) => {
                let silent = remote
                    .last_seen
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.policy.relatch_after);
                let ssrc = packet_ssrc(on, data);
                if silent && ssrc.is_some() && ssrc == remote.ssrc && self.plausible(on, source) {
                    Ok(Verdict::Relatch)
                } else {
                    Err(DropReason::UnlatchedSource)
                }
            }
            None if self.plausible(on, source) => Ok(Verdict::Latch),
            None => Err(DropReason::NotParty),
        }
    }

    /// Counts a packet `check` refused.
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Accepts a packet `check` admitted (`data` decrypted): statistics, latching, and
    /// where to send it (`None`: no destination known yet).
    pub fn accept(
        &mut self,
        on: Socket,
        source: SocketAddr,
        verdict: Verdict,
        data: &[u8],
        now: Instant,
    ) -> Option<(Socket, SocketAddr)> {
        self.meters[side_index(on.side)].record(data, now);
        let ssrc = packet_ssrc(on, data);
        let remote = &mut self.remotes[on.index()];
        match verdict {
            Verdict::Latch | Verdict::Relatch => {
                remote.latched = Some(source);
                remote.ssrc = ssrc;
            }
            Verdict::Latched => {
                if remote.ssrc.is_none() {
                    remote.ssrc = ssrc;
                }
            }
        }
        remote.last_seen = Some(now);
        match on.side {
            Side::A => self.a_packets += 1,
            Side::B => self.b_packets += 1,
        }
        self.route(on, on.channel == Channel::Rtcp || is_rtcp(data))
    }

    /// `check` then `accept` (or count the drop), for plain RTP.
    pub fn on_datagram(
        &mut self,
        on: Socket,
        source: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Option<(Socket, SocketAddr)> {
        match self.check(on, source, data, now) {
            Ok(verdict) => self.accept(on, source, verdict, data, now),
            Err(reason) => {
                self.count_drop(reason);
                None
            }
        }
    }

    fn route(&self, on: Socket, rtcp: bool) -> Option<(Socket, SocketAddr)> {
        let other = on.side.other();
        let rtp_out = Socket::new(other, Channel::Rtp);
        let rtcp_out = Socket::new(other, Channel::Rtcp);
        if !rtcp {
            return self.destination(rtp_out).map(|d| (rtp_out, d));
        }
        self.destination(rtcp_out)
            .map(|d| (rtcp_out, d))
            .or_else(|| self.destination(rtp_out).map(|d| (rtp_out, d)))
    }

    /// Statistics of what veil received from `side`.
    pub fn stats(&self, side: Side) -> DirectionStats {
        self.meters[side_index(side)].stats()
    }

    /// Current destination of a socket's traffic (latched, else signalled).
    pub fn destination(&self, socket: Socket) -> Option<SocketAddr> {
        self.remotes[socket.index()].destination()
    }

    /// Packets received (and accepted) from side A and from side B.
    pub fn counters(&self) -> (u64, u64) {
        (self.a_packets, self.b_packets)
    }
}

/// The SSRC a latch is bound to: the RTP header's, or an RTCP packet's sender SSRC.
fn packet_ssrc(on: Socket, data: &[u8]) -> Option<u32> {
    if on.channel == Channel::Rtcp || is_rtcp(data) {
        let b = data.get(4..8)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    } else {
        RtpHeader::parse(data).map(|h| h.ssrc)
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_RTP: Socket = Socket::new(Side::A, Channel::Rtp);
    const A_RTCP: Socket = Socket::new(Side::A, Channel::Rtcp);
    const B_RTP: Socket = Socket::new(Side::B, Channel::Rtp);
    const B_RTCP: Socket = Socket::new(Side::B, Channel::Rtcp);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        p
    }

    /// An RTCP receiver report with no blocks from `ssrc`.
    fn rtcp(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 201, 0, 1];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p
    }

    fn with(latching: Latching) -> StreamState {
        StreamState::new(LatchPolicy {
            latching,
            ..LatchPolicy::default()
        })
    }

    /// A call between 10.0.0.1 (A, SDP 10.0.0.1:4000) and 10.0.0.2 (B, SDP 10.0.0.2:5000).
    fn call(latching: Latching) -> StreamState {
        let mut s = with(latching);
        s.set_remote(
            Side::A,
            Some(addr("10.0.0.1:4000")),
            Some(addr("10.0.0.1:4001")),
        );
        s.set_remote(
            Side::B,
            Some(addr("10.0.0.2:5000")),
            Some(addr("10.0.0.2:5001")),
        );
        s
    }

    #[test]
    fn socket_indices_match_all() {
        for (i, s) in Socket::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(s.peer().peer(), *s);
            assert_ne!(s.peer().side, s.side);
        }
    }

    #[test]
    fn drops_without_destination_but_counts() {
        let now = Instant::now();
        let mut s = with(Latching::Any);
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(1, 1), now),
            None
        );
        assert_eq!(
            s.on_datagram(A_RTCP, addr("10.0.0.1:4001"), &rtcp(1), now),
            None
        );
        assert_eq!(s.counters(), (2, 0));
    }

    #[test]
    fn forwards_to_signalled_remote_of_the_other_side() {
        let now = Instant::now();
        let mut s = call(Latching::Ip);
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(1, 1), now),
            Some((B_RTP, addr("10.0.0.2:5000")))
        );
        assert_eq!(
            s.on_datagram(A_RTCP, addr("10.0.0.1:4001"), &rtcp(1), now),
            Some((B_RTCP, addr("10.0.0.2:5001")))
        );
        assert_eq!(
            s.on_datagram(B_RTP, addr("10.0.0.2:5000"), &rtp(2, 1), now),
            Some((A_RTP, addr("10.0.0.1:4000")))
        );
        assert_eq!(s.counters(), (2, 1));
    }

    #[test]
    fn first_latch_from_the_sdp_ip_on_another_port_overrides_sdp() {
        let now = Instant::now();
        let mut s = call(Latching::Ip);
        s.on_datagram(B_RTP, addr("10.0.0.2:61000"), &rtp(2, 1), now);
        assert_eq!(s.destination(B_RTP), Some(addr("10.0.0.2:61000")));
        // RTCP latches independently of RTP.
        assert_eq!(s.destination(B_RTCP), Some(addr("10.0.0.2:5001")));
        s.on_datagram(B_RTCP, addr("10.0.0.2:61001"), &rtcp(2), now);
        assert_eq!(s.destination(B_RTCP), Some(addr("10.0.0.2:61001")));
    }

    #[test]
    fn bleed_a_stranger_first_gets_nothing_and_the_party_latches() {
        let now = Instant::now();
        let mut s = call(Latching::Ip);
        for seq in 0..20 {
            assert_eq!(
                s.on_datagram(A_RTP, addr("203.0.113.7:4000"), &rtp(666, seq), now),
                None
            );
        }
        assert_eq!(s.drops(DropReason::NotParty), 20);
        assert_eq!(s.destination(A_RTP), Some(addr("10.0.0.1:4000")));
        assert_eq!(s.stats(Side::A).packets, 0);
        assert_eq!(s.counters(), (0, 0));
        // The real caller latches; B's audio goes to it, not to the stranger.
        s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(1, 1), now);
        assert_eq!(
            s.on_datagram(B_RTP, addr("10.0.0.2:5000"), &rtp(2, 1), now),
            Some((A_RTP, addr("10.0.0.1:4000")))
        );
    }

    #[test]
    fn the_signalling_source_ip_may_latch_when_the_sdp_names_another() {
        let now = Instant::now();
        let mut s = with(Latching::Ip);
        s.set_remote(Side::A, Some(addr("192.168.1.5:4000")), None);
        s.set_party(Side::A, Some("198.51.100.9".parse().unwrap()));
        assert!(
            s.check(A_RTP, addr("198.51.100.9:61000"), &rtp(1, 1), now)
                .is_ok()
        );
        assert!(
            s.check(A_RTP, addr("192.168.1.5:1234"), &rtp(1, 1), now)
                .is_ok()
        );
        assert_eq!(
            s.check(A_RTP, addr("198.51.100.10:61000"), &rtp(1, 1), now),
            Err(DropReason::NotParty)
        );
        // IPv4-mapped IPv6 sources are the same party.
        assert!(
            s.check(A_RTP, addr("[::ffff:198.51.100.9]:61000"), &rtp(1, 1), now)
                .is_ok()
        );
        // Without any SDP or signalling address, nothing latches.
        assert_eq!(
            s.check(B_RTP, addr("10.0.0.2:5000"), &rtp(1, 1), now),
            Err(DropReason::NotParty)
        );
    }

    #[test]
    fn strict_latches_only_the_sdp_address_and_any_latches_anything() {
        let now = Instant::now();
        let s = call(Latching::Strict);
        assert_eq!(
            s.check(A_RTP, addr("10.0.0.1:4000"), &rtp(1, 1), now),
            Ok(Verdict::Latch)
        );
        assert_eq!(
            s.check(A_RTP, addr("10.0.0.1:4002"), &rtp(1, 1), now),
            Err(DropReason::NotParty)
        );
        assert_eq!(
            s.check(A_RTCP, addr("10.0.0.1:4001"), &rtcp(1), now),
            Ok(Verdict::Latch)
        );
        let s = call(Latching::Any);
        assert_eq!(
            s.check(A_RTP, addr("203.0.113.7:1"), &rtp(1, 1), now),
            Ok(Verdict::Latch)
        );
    }

    #[test]
    fn after_latching_other_sources_are_dropped_and_not_metered() {
        let now = Instant::now();
        let mut s = call(Latching::Ip);
        s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(1, 1), now);
        // A stranger and another port of the caller's own IP, random SSRCs.
        for seq in 0..50u16 {
            let t = now + Duration::from_millis(u64::from(seq) * 20);
            assert_eq!(
                s.on_datagram(A_RTP, addr("203.0.113.7:4000"), &rtp(seq.into(), seq), t),
                None
            );
            assert_eq!(
                s.on_datagram(A_RTP, addr("10.0.0.1:4002"), &rtp(9, seq), t),
                None
            );
        }
        assert_eq!(s.drops(DropReason::UnlatchedSource), 100);
        assert_eq!(s.stats(Side::A).packets, 1);
        assert_eq!(s.counters(), (1, 0));
        assert_eq!(s.destination(A_RTP), Some(addr("10.0.0.1:4000")));
    }

    #[test]
    fn rebinding_needs_same_ssrc_plausible_source_and_silence() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut s = call(Latching::Ip);
        s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(7, 1), t0);
        // Same SSRC from a new port while the latched source is live: refused.
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4010"), &rtp(7, 2), ms(100)),
            None
        );
        s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(7, 3), ms(400));
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4010"), &rtp(7, 4), ms(800)),
            None
        );
        // After 500 ms of silence: another SSRC still refused, a stranger with the right
        // SSRC refused, the same SSRC from the party's IP moves the latch.
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4010"), &rtp(8, 5), ms(900)),
            None
        );
        assert_eq!(
            s.on_datagram(A_RTP, addr("203.0.113.7:4010"), &rtp(7, 5), ms(900)),
            None
        );
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4010"), &rtp(7, 6), ms(901)),
            Some((B_RTP, addr("10.0.0.2:5000")))
        );
        assert_eq!(s.destination(A_RTP), Some(addr("10.0.0.1:4010")));
        // The old binding is now the stranger.
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(7, 7), ms(920)),
            None
        );
        assert_eq!(s.drops(DropReason::UnlatchedSource), 5);
        assert_eq!(s.stats(Side::A).packets, 3);
    }

    #[test]
    fn rtcp_relatches_on_its_sender_ssrc() {
        let t0 = Instant::now();
        let mut s = call(Latching::Ip);
        s.on_datagram(A_RTCP, addr("10.0.0.1:4001"), &rtcp(7), t0);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            s.on_datagram(A_RTCP, addr("10.0.0.1:5001"), &rtcp(8), later),
            None
        );
        assert!(
            s.on_datagram(A_RTCP, addr("10.0.0.1:5001"), &rtcp(7), later)
                .is_some()
        );
        assert_eq!(s.destination(A_RTCP), Some(addr("10.0.0.1:5001")));
        // Too short to carry an SSRC: never re-latches.
        assert_eq!(
            s.on_datagram(
                A_RTCP,
                addr("10.0.0.1:6001"),
                &[0x80, 201],
                later + Duration::from_secs(1)
            ),
            None
        );
    }

    #[test]
    fn sources_outside_the_allowed_networks_are_dropped_and_never_latch() {
        let now = Instant::now();
        let mut s = with(Latching::Any);
        s.set_remote(Side::B, Some(addr("10.0.0.2:5000")), None);
        s.set_remote(Side::A, Some(addr("192.0.2.1:4000")), None);
        s.set_sources(Side::A, vec!["198.51.100.0/24".parse().unwrap()]);
        // Outside: dropped, counted, no latch, no statistics.
        assert_eq!(
            s.on_datagram(A_RTP, addr("203.0.113.7:4000"), &rtp(7, 1), now),
            None
        );
        assert_eq!(s.source_drops(), 1);
        assert_eq!(s.destination(A_RTP), Some(addr("192.0.2.1:4000")));
        assert_eq!(s.counters(), (0, 0));
        // Inside: forwarded, and latches.
        assert_eq!(
            s.on_datagram(A_RTP, addr("198.51.100.9:61000"), &rtp(7, 2), now),
            Some((B_RTP, addr("10.0.0.2:5000")))
        );
        assert_eq!(s.destination(A_RTP), Some(addr("198.51.100.9:61000")));
        // A NAT rebinding inside the allowed network with the same SSRC re-latches...
        let later = now + Duration::from_secs(1);
        s.on_datagram(A_RTP, addr("198.51.100.10:62000"), &rtp(7, 3), later);
        assert_eq!(s.destination(A_RTP), Some(addr("198.51.100.10:62000")));
        // ...the same SSRC from outside does not, and is not forwarded.
        let later = later + Duration::from_secs(1);
        assert_eq!(
            s.on_datagram(A_RTP, addr("203.0.113.7:4000"), &rtp(7, 4), later),
            None
        );
        assert_eq!(s.destination(A_RTP), Some(addr("198.51.100.10:62000")));
        assert_eq!(s.source_drops(), 2);
        // Side B is unrestricted; other families are outside an IPv4 list.
        assert!(s.admits(Side::B, addr("[2001:db8::1]:4000")));
        assert!(!s.admits(Side::A, addr("[2001:db8::1]:4000")));
        s.set_sources(Side::A, Vec::new());
        assert!(s.admits(Side::A, addr("203.0.113.7:4000")));
        assert_eq!(s.counters(), (2, 0));
    }

    #[test]
    fn new_sdp_address_resets_latch_same_address_keeps_it() {
        let now = Instant::now();
        let mut s = with(Latching::Ip);
        s.set_remote(Side::B, Some(addr("192.168.1.5:5000")), None);
        s.set_party(Side::B, Some("198.51.100.9".parse().unwrap()));
        s.on_datagram(B_RTP, addr("198.51.100.9:61000"), &rtp(2, 1), now);
        s.set_remote(Side::B, Some(addr("192.168.1.5:5000")), None);
        assert_eq!(s.destination(B_RTP), Some(addr("198.51.100.9:61000")));
        s.set_remote(Side::B, Some(addr("192.168.1.6:5002")), None);
        assert_eq!(s.destination(B_RTP), Some(addr("192.168.1.6:5002")));
        // ...and the next packet latches again, without waiting (a new SSRC is fine).
        s.on_datagram(B_RTP, addr("198.51.100.9:63000"), &rtp(3, 1), now);
        assert_eq!(s.destination(B_RTP), Some(addr("198.51.100.9:63000")));
        // Hold (no address) also resets.
        s.set_remote(Side::B, None, None);
        assert_eq!(
            s.on_datagram(A_RTP, addr("10.0.0.1:4000"), &rtp(1, 1), now),
            None
        );
    }
}
