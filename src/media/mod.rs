//! Media anchoring: the port pool (plain data, owned by the engine) and the commands the
//! engine gives the relay (tokio, in `relay.rs`).

pub mod ports;
pub mod relay;
pub mod rtcp_sdes;
pub mod rtp;
pub mod srtp;
pub mod stream;

#[cfg(test)]
mod relay_tests;

use std::net::SocketAddr;

/// One relayed stream (one m= line of one call).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct StreamId(pub u64);

/// Which leg: A is the caller side, B the callee side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What the engine asks of the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// Bind a stream: on side A veil receives at `a_port` (RTP) and `a_port + 1` (RTCP),
    /// on side B at `b_port`/`b_port + 1`, all on `media.address`. What arrives on one side
    /// is sent out of the other side's sockets to that side's remote.
    Open {
        id: StreamId,
        a_port: u16,
        b_port: u16,
    },
    /// Where a side wants its media (from its SDP). Latching to the first plausible
    /// source overrides this (see `stream`); a new SDP address resets the latch.
    SetRemote {
        id: StreamId,
        side: Side,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
    },
    /// The IP a side's signalling comes from: with `media.latching: ip` (the default) its
    /// media may latch from there as well as from its SDP address's IP.
    SetParty {
        id: StreamId,
        side: Side,
        ip: Option<std::net::IpAddr>,
    },
    /// SRTP for one side (SDES-negotiated): `inbound` decrypts what that side sends,
    /// `outbound` encrypts what veil sends to it; `None` is plain RTP. A key equal to the
    /// one in use keeps its state (rollover counters, replay windows); a new key starts
    /// fresh (rekeying).
    SetCrypto {
        id: StreamId,
        side: Side,
        inbound: Option<srtp::SrtpKey>,
        outbound: Option<srtp::SrtpKey>,
    },
    /// Restrict the sources a side's packets may come from (the peer's `media_sources`);
    /// empty: any source. Packets from elsewhere are dropped before latching, SRTP and
    /// counting.
    SetSources {
        id: StreamId,
        side: Side,
        allowed: Vec<ipnet::IpNet>,
    },
    /// RTP clock rates of payload types (from the SDPs' `a=rtpmap`), for jitter in the
    /// codec's units; merged into what the stream knows, latest wins. Types not listed
    /// use the RFC 3551 static rate (8000 Hz for unknown dynamic ones).
    SetClockRates { id: StreamId, rates: Vec<(u8, u32)> },
    /// The RTCP CNAME veil uses towards a side (its SDP's `a=ssrc` cname): relayed RTCP
    /// going to that side carries it in every SDES chunk instead of the sender's (see
    /// `rtcp_sdes`). At most 255 octets.
    SetCname {
        id: StreamId,
        side: Side,
        cname: String,
    },
    /// Unbind and forget the stream. The sockets are closed before the relay executes the
    /// next command, so the ports can be reused at once.
    Close { id: StreamId },
}

/// What the relay reports back to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A port of the stream could not be bound: the call cannot be anchored.
    BindFailed { id: StreamId },
    /// No RTP from either side for the relay's idle period (`media.rtp_timeout`); sent
    /// once per silence.
    Idle { id: StreamId },
    /// RTP again after an `Idle`.
    Active { id: StreamId },
    /// Per-direction statistics at close time, just before `Closed` (`a`: what side A
    /// sent, `b`: what side B sent).
    Stats {
        id: StreamId,
        a: rtp::DirectionStats,
        b: rtp::DirectionStats,
    },
    /// Packet counters at close time (for the CDR).
    Closed {
        id: StreamId,
        a_packets: u64,
        b_packets: u64,
    },
}
