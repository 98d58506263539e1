//! Forwarding decisions for one relayed stream, sans-IO: the relay task feeds it "a
//! packet arrived on socket S from address X" and sends where it says.
//!
//! Latching (symmetric RTP): the first packet received on a socket fixes that socket's
//! remote to the packet's source, overriding the SDP address, because a side behind NAT
//! can only be reached at the address its packets come from. A new SDP address resets
//! the latch (the side may really have moved, e.g. after a re-INVITE). Packets from other
//! sources after latching are still forwarded; only the return path is latched, and it
//! moves to a new source only when that source sends the SSRC the latch was made with (a
//! NAT rebinding keeps the SSRC; a stray or spoofed stream does not know it).
//!
//! A side may be restricted to source networks (`SetSources`): packets from outside them
//! are dropped before anything else, so they can neither latch nor re-latch; re-latching
//! after a NAT rebinding works within the allowed networks.
//!
//! With `a=rtcp-mux` a side has no RTCP address: RTCP that arrives on an RTP port (told
//! apart by its packet type) goes to the other side's RTCP address when it has one, and
//! RTCP for a multiplexing side goes to its RTP address, so mux and non-mux legs mix.

use std::net::SocketAddr;
use std::time::Instant;

use super::Side;
use super::rtp::{DirectionMeter, DirectionStats, RtpHeader, is_rtcp};

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
    /// SSRC of the packet that made the latch (RTP only).
    ssrc: Option<u32>,
}

impl Remote {
    fn destination(self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }
}

/// Remotes and counters of one stream, indexed like `Socket::ALL`.
#[derive(Debug, Clone, Default)]
pub struct StreamState {
    remotes: [Remote; 4],
    a_packets: u64,
    b_packets: u64,
    /// Statistics of what veil received from side A and from side B.
    meters: [DirectionMeter; 2],
    /// Networks each side's packets may come from (A, B); empty: any.
    allowed: [Vec<ipnet::IpNet>; 2],
    /// Packets dropped because their source was not allowed.
    source_drops: u64,
}

impl StreamState {
    /// Where a side wants RTP and RTCP, from its SDP. An address equal to the current one
    /// keeps the latch (a re-INVITE that changes nothing must not break NAT traversal).
    pub fn set_remote(&mut self, side: Side, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        for (channel, addr) in [(Channel::Rtp, rtp), (Channel::Rtcp, rtcp)] {
            let remote = &mut self.remotes[Socket::new(side, channel).index()];
            if remote.signalled != addr {
                *remote = Remote {
                    signalled: addr,
                    latched: None,
                    ssrc: None,
                };
            }
        }
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

    /// Packets refused for their source so far.
    pub fn source_drops(&self) -> u64 {
        self.source_drops
    }

    /// A packet arrived on `on` from `source`: counts it, latches, and returns the socket
    /// to send it from and the destination, or `None` to drop it (no known destination).
    pub fn on_packet(&mut self, on: Socket, source: SocketAddr) -> Option<(Socket, SocketAddr)> {
        match on.side {
            Side::A => self.a_packets += 1,
            Side::B => self.b_packets += 1,
        }
        let remote = &mut self.remotes[on.index()];
        if remote.latched.is_none() {
            remote.latched = Some(source);
        }
        let out = on.peer();
        self.remotes[out.index()]
            .destination()
            .map(|dest| (out, dest))
    }

    /// `on_packet` with the packet itself: statistics, SSRC-bound re-latching and
    /// RTP/RTCP demultiplexing for `a=rtcp-mux` sides.
    pub fn on_datagram(
        &mut self,
        on: Socket,
        source: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Option<(Socket, SocketAddr)> {
        if !self.admits(on.side, source) {
            self.source_drops += 1;
            return None;
        }
        let side = side_index(on.side);
        self.meters[side].record(data, now);
        let rtcp = on.channel == Channel::Rtcp || is_rtcp(data);
        let ssrc = if rtcp {
            None
        } else {
            RtpHeader::parse(data).map(|h| h.ssrc)
        };
        let remote = &mut self.remotes[on.index()];
        match remote.latched {
            None => {
                remote.latched = Some(source);
                remote.ssrc = ssrc;
            }
            Some(latched) if latched != source => {
                if ssrc.is_some() && ssrc == remote.ssrc {
                    remote.latched = Some(source);
                }
            }
            Some(_) => {
                if remote.ssrc.is_none() {
                    remote.ssrc = ssrc;
                }
            }
        }
        let res = self.on_packet_counted(on, rtcp);
        match on.side {
            Side::A => self.a_packets += 1,
            Side::B => self.b_packets += 1,
        }
        res
    }

    fn on_packet_counted(&self, on: Socket, rtcp: bool) -> Option<(Socket, SocketAddr)> {
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
        match side {
            Side::A => self.meters[0].stats(),
            Side::B => self.meters[1].stats(),
        }
    }

    /// Current destination of a socket's traffic (latched, else signalled).
    pub fn destination(&self, socket: Socket) -> Option<SocketAddr> {
        self.remotes[socket.index()].destination()
    }

    /// Packets received from side A and from side B.
    pub fn counters(&self) -> (u64, u64) {
        (self.a_packets, self.b_packets)
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
        let mut s = StreamState::default();
        assert_eq!(s.on_packet(A_RTP, addr("10.0.0.1:4000")), None);
        assert_eq!(s.on_packet(A_RTCP, addr("10.0.0.1:4001")), None);
        assert_eq!(s.counters(), (2, 0));
    }

    #[test]
    fn forwards_to_signalled_remote_of_the_other_side() {
        let mut s = StreamState::default();
        s.set_remote(
            Side::B,
            Some(addr("10.0.0.2:5000")),
            Some(addr("10.0.0.2:5001")),
        );
        assert_eq!(
            s.on_packet(A_RTP, addr("10.0.0.1:4000")),
            Some((B_RTP, addr("10.0.0.2:5000")))
        );
        assert_eq!(
            s.on_packet(A_RTCP, addr("10.0.0.1:4001")),
            Some((B_RTCP, addr("10.0.0.2:5001")))
        );
        // A latched from its packets, so B's replies go there.
        assert_eq!(
            s.on_packet(B_RTP, addr("10.0.0.2:5000")),
            Some((A_RTP, addr("10.0.0.1:4000")))
        );
        assert_eq!(s.counters(), (2, 1));
    }

    #[test]
    fn first_source_latches_and_overrides_sdp() {
        let mut s = StreamState::default();
        s.set_remote(Side::B, Some(addr("192.168.1.5:5000")), None);
        s.on_packet(B_RTP, addr("198.51.100.9:61000"));
        s.on_packet(B_RTP, addr("198.51.100.9:62000"));
        assert_eq!(
            s.on_packet(A_RTP, addr("10.0.0.1:4000")),
            Some((B_RTP, addr("198.51.100.9:61000")))
        );
        // RTCP latches independently of RTP.
        assert_eq!(s.destination(B_RTCP), None);
        s.on_packet(B_RTCP, addr("198.51.100.9:61001"));
        assert_eq!(s.destination(B_RTCP), Some(addr("198.51.100.9:61001")));
    }

    fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        p
    }

    #[test]
    fn sources_outside_the_allowed_networks_are_dropped_and_never_latch() {
        let now = Instant::now();
        let mut s = StreamState::default();
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
        s.on_datagram(A_RTP, addr("198.51.100.10:62000"), &rtp(7, 3), now);
        assert_eq!(s.destination(A_RTP), Some(addr("198.51.100.10:62000")));
        // ...the same SSRC from outside does not, and is not forwarded.
        assert_eq!(
            s.on_datagram(A_RTP, addr("203.0.113.7:4000"), &rtp(7, 4), now),
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
        let mut s = StreamState::default();
        s.set_remote(Side::B, Some(addr("192.168.1.5:5000")), None);
        s.on_packet(B_RTP, addr("198.51.100.9:61000"));
        s.set_remote(Side::B, Some(addr("192.168.1.5:5000")), None);
        assert_eq!(s.destination(B_RTP), Some(addr("198.51.100.9:61000")));
        s.set_remote(Side::B, Some(addr("192.168.1.6:5002")), None);
        assert_eq!(s.destination(B_RTP), Some(addr("192.168.1.6:5002")));
        // ...and the next packet latches again.
        s.on_packet(B_RTP, addr("198.51.100.9:63000"));
        assert_eq!(s.destination(B_RTP), Some(addr("198.51.100.9:63000")));
        // Hold (no address) also resets.
        s.set_remote(Side::B, None, None);
        assert_eq!(s.on_packet(A_RTP, addr("10.0.0.1:4000")), None);
    }
}
