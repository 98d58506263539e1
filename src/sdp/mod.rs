//! SDP (RFC 4566/8866), line-preserving: every line is kept as received unless veil
//! rewrites it, so unknown attributes survive (sdp-rs drops them; see README).
//!
//! `parse` holds the line syntax, `fields` reads the few fields veil understands
//! (`c=`, `m=` port, `a=rtcp`), `endpoint` derives where each side wants media and
//! `anchor` rewrites an SDP so that every stream points at veil.

mod anchor;
mod codecs;
pub mod crypto;
mod endpoint;
mod fields;
mod hold;
mod parse;

#[cfg(test)]
mod mutation_tests;
#[cfg(test)]
mod samples;

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

pub use codecs::CodecOutcome;

/// One `x=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: u8,
    pub value: String,
}

/// A media section: its `m=` line first, then its lines in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level lines, `v=` first.
    pub session: Vec<Line>,
    pub media: Vec<MediaSection>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotUtf8,
    #[error("SDP line {0} is malformed")]
    BadLine(usize),
    #[error("SDP has no v=0 or no o= line")]
    MissingRequired,
}

/// Where one side wants to receive a stream, read from its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// RTP destination; `None` when the connection address is unspecified (0.0.0.0 / ::,
    /// old-style hold) or a name that veil does not resolve.
    pub rtp: Option<SocketAddr>,
    /// RTCP destination (`a=rtcp:` or RTP port + 1); `None` with `rtcp_mux`.
    pub rtcp: Option<SocketAddr>,
    pub rtcp_mux: bool,
    /// `m=` port 0: stream rejected/disabled; veil keeps it at 0.
    pub disabled: bool,
}

/// veil's own `o=` line for one leg: session id fixed per leg, version bumped on change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    pub session_id: u64,
    pub version: u64,
}

impl Origin {
    /// veil's RTCP CNAME for the leg (its `a=ssrc` lines; the relay's rewritten SDES).
    pub fn cname(&self) -> String {
        anchor::cname(self)
    }
}

impl Sdp {
    /// Parse an SDP body. Lines may end in CRLF or LF; trailing empty lines are ignored.
    pub fn parse(data: &[u8]) -> Result<Sdp, SdpError> {
        parse::parse(data)
    }

    /// The SDP as text, every line ending in CRLF.
    pub fn to_bytes(&self) -> Bytes {
        parse::to_bytes(self)
    }

    /// One endpoint per media section, in order.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        endpoint::endpoints(self)
    }

    /// Point every stream at veil: `c=` (session and media level) and `o=` address to
    /// `addr`, `o=` username/session-id/version from `origin`, media section `i` to port
    /// `ports[i]` (0 stays 0), `a=rtcp:` rewritten to port+1, ICE candidates and other
    /// address-bearing attributes of the far side removed.
    pub fn anchor(&mut self, addr: IpAddr, ports: &[u16], origin: &Origin) {
        anchor::anchor(self, addr, ports, origin)
    }

    /// Per media section, the RTP clock rate of each payload type it lists (rtpmap, else
    /// RFC 3551); what the relay needs to measure jitter in the codec's own units.
    pub fn clock_rates(&self) -> Vec<Vec<(u8, u32)>> {
        codecs::clock_rates(self)
    }

    /// Whether this SDP puts the session on hold (some stream not sendrecv, or c=0.0.0.0).
    /// RFC 4566 §5.7: every stream that is not disabled (port 0) has a connection line,
    /// at session or media level. An offer without one cannot be answered usefully: veil
    /// would have to invent where the party's media goes.
    pub fn connections_complete(&self) -> bool {
        fields::first(&self.session, b'c').is_some()
            || self.media.iter().all(|m| {
                let port = m.lines.first().and_then(|l| fields::media_port(&l.value));
                port == Some(0) || fields::first(&m.lines, b'c').is_some()
            })
    }

    pub fn on_hold(&self) -> bool {
        endpoint::on_hold(self)
    }

    /// Apply a peer's `codecs:` allow-list: other payload types go with their
    /// rtpmap/fmtp/rtcp-fb lines; with `reorder` the kept ones follow the list's order.
    /// Streams left without a codec get port 0.
    pub fn filter_codecs(&mut self, allow: &[String], reorder: bool) -> CodecOutcome {
        codecs::filter(self, allow, reorder)
    }
}

impl Line {
    pub fn new(kind: u8, value: impl Into<String>) -> Line {
        Line {
            kind,
            value: value.into(),
        }
    }
}
