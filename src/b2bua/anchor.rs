//! SDP crossing legs: one mechanism for every message that carries SDP (INVITE, 18x, 2xx,
//! ACK, re-INVITE, UPDATE, PRACK): read where the sending side wants media, tell the relay,
//! and give the other side an SDP that points at veil's ports for it.

use std::time::Instant;

use bytes::Bytes;

use crate::media::{MediaCommand, Side, StreamId};
use crate::sdp::{CodecOutcome, Sdp};

use super::Output;
use super::call::Stream;
use super::engine::Engine;
use super::srtp::SdpRole;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AnchorError {
    /// The SDP could not be read: answer 488 (or fail the leg).
    BadSdp,
    /// No relay ports left: answer 503.
    NoPorts,
    /// The peers' `codecs:` allow-lists leave no codec: answer 488.
    NoCodecs,
    /// A leg whose peer has `srtp: required` (or that offered RTP/SAVP) brought no
    /// crypto veil can do: answer 488.
    NoCrypto,
}

/// Why a body cannot cross as SDP ([`Engine::unusable_sdp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unusable {
    /// A body that is not `application/sdp` where an answer (or offer) was due.
    NotSdp,
    /// Unreadable SDP, or an active stream without a connection line.
    BadSdp,
    NoCodecs,
    NoCrypto,
}

impl Unusable {
    /// What the party waiting for this answer is told: 502 when the peer sent no SDP at
    /// all (a bad gateway), 488 when its SDP is not acceptable.
    pub(super) fn code(self) -> u16 {
        match self {
            Unusable::NotSdp => 502,
            _ => 488,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Unusable::NotSdp => "not_sdp",
            Unusable::BadSdp => "bad_sdp",
            Unusable::NoCodecs => "no_codecs",
            Unusable::NoCrypto => "no_crypto",
        }
    }
}

impl Engine {
    /// Rewrite `body`, received on leg `from`, for the other leg. Allocates streams for new
    /// m= lines and updates the relay's view of `from`'s addresses (and SRTP keys).
    pub(super) fn anchor_sdp(
        &mut self,
        key: u64,
        from: Side,
        body: &[u8],
        _now: Instant,
        role: SdpRole,
    ) -> Result<Bytes, AnchorError> {
        let mut sdp = Sdp::parse(body).map_err(|_| AnchorError::BadSdp)?;
        if !sdp.connections_complete() {
            return Err(AnchorError::BadSdp);
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.leg_mut(from).last_sdp_in = Some(Bytes::copy_from_slice(body));
        }
        let Some(call) = self.calls.get(&key) else {
            return Err(AnchorError::BadSdp);
        };
        // The sender's list first (an answer coming back from a restricted peer), then the
        // receiver's, whose preference order wins.
        let to = from.other();
        for (side, reorder) in [(from, false), (to, true)] {
            let peer = call.leg(side).peer;
            if let Some(allow) = call
                .peers
                .peers
                .get(peer)
                .and_then(|p| p.cfg.codecs.as_ref())
                && sdp.filter_codecs(allow, reorder) == CodecOutcome::NothingLeft
            {
                return Err(AnchorError::NoCodecs);
            }
        }
        let mode = |side: Side| {
            call.peers
                .peers
                .get(call.leg(side).peer)
                .map(|p| p.cfg.srtp)
                .unwrap_or_default()
        };
        let modes = (mode(from), mode(to));
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(AnchorError::BadSdp);
        };
        let srtp = call
            .srtp
            .negotiate(&mut sdp, from, modes, role)
            .map_err(|_| AnchorError::NoCrypto)?;
        let endpoints = sdp.endpoints();
        let rates = sdp.clock_rates();
        let hold = sdp.on_hold();
        let have = call.streams.len();
        let mut new_streams = Vec::new();
        for _ in have..endpoints.len() {
            let Some(a_port) = self.ports.allocate() else {
                self.release_streams(&new_streams);
                return Err(AnchorError::NoPorts);
            };
            let Some(b_port) = self.ports.allocate() else {
                self.ports.release(a_port);
                self.release_streams(&new_streams);
                return Err(AnchorError::NoPorts);
            };
            let id = StreamId(self.next_stream);
            self.next_stream += 1;
            new_streams.push(Stream { id, a_port, b_port });
        }
        for s in &new_streams {
            self.stream_calls.insert(s.id, key);
            self.out.push_back(Output::Media(MediaCommand::Open {
                id: s.id,
                a_port: s.a_port,
                b_port: s.b_port,
            }));
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(AnchorError::BadSdp);
        };
        call.streams.extend(new_streams);
        call.media.hold = hold;
        for (s, ep) in call.streams.iter().zip(endpoints.iter()) {
            self.out.push_back(Output::Media(MediaCommand::SetRemote {
                id: s.id,
                side: from,
                rtp: if ep.disabled { None } else { ep.rtp },
                rtcp: if ep.disabled || ep.rtcp_mux {
                    None
                } else {
                    ep.rtcp
                },
            }));
        }
        // Each leg's signalling source IP: with `media.latching: ip` its media may latch
        // from there (a phone behind NAT whose SDP names a private address).
        let parties = [Side::A, Side::B].map(|side| (side, call.leg(side).flow.remote.ip()));
        for s in &call.streams {
            for (side, ip) in parties {
                self.out.push_back(Output::Media(MediaCommand::SetParty {
                    id: s.id,
                    side,
                    ip: Some(ip),
                }));
            }
        }
        // veil's RTCP CNAME towards each leg, the one its SDP to that leg names: relayed
        // RTCP carries it instead of the sender's. Restated like the parties, as leg B's
        // (and so its CNAME) is new with every attempt.
        let cnames = [Side::A, Side::B].map(|side| (side, call.leg(side).origin.cname()));
        for s in &call.streams {
            for (side, cname) in &cnames {
                self.out.push_back(Output::Media(MediaCommand::SetCname {
                    id: s.id,
                    side: *side,
                    cname: cname.clone(),
                }));
            }
        }
        // Clock rates only when the SDP gives some type a rate the relay would not assume
        // (opus and other dynamic types), so plain narrowband calls cost no command.
        for (s, rates) in call.streams.iter().zip(rates) {
            if rates
                .iter()
                .any(|&(pt, r)| r != crate::media::rtp::clock_rate(pt))
            {
                self.out
                    .push_back(Output::Media(MediaCommand::SetClockRates {
                        id: s.id,
                        rates,
                    }));
            }
        }
        // Source restrictions only when some peer of the call has them (leg B's peer can
        // change between attempts, so both sides are restated with every SDP).
        let sources = |side: Side| {
            call.peers
                .peers
                .get(call.leg(side).peer)
                .map(|p| p.cfg.media_sources.iter().map(|c| c.0).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let allowed = [sources(Side::A), sources(Side::B)];
        if call
            .peers
            .peers
            .iter()
            .any(|p| !p.cfg.media_sources.is_empty())
        {
            for s in &call.streams {
                for (side, allowed) in [(Side::A, &allowed[0]), (Side::B, &allowed[1])] {
                    self.out.push_back(Output::Media(MediaCommand::SetSources {
                        id: s.id,
                        side,
                        allowed: allowed.clone(),
                    }));
                }
            }
        }
        if srtp {
            for (s, keys) in call.streams.iter().zip(call.srtp.streams.iter()) {
                for side in [Side::A, Side::B] {
                    let k = keys.side(side);
                    self.out.push_back(Output::Media(MediaCommand::SetCrypto {
                        id: s.id,
                        side,
                        inbound: k.rx.clone(),
                        outbound: k.tx.clone(),
                    }));
                }
            }
        }
        let ports: Vec<u16> = call
            .streams
            .iter()
            .take(endpoints.len())
            .map(|s| s.port(to))
            .collect();
        let leg = call.leg_mut(to);
        // The leg's own address family: IPv6 signalling gets IPv6 media when configured.
        let media_ip = match self.media_ip6 {
            Some(v6) if leg.flow.remote.is_ipv6() => v6,
            _ => self.media_ip,
        };
        sdp.anchor(media_ip, &ports, &leg.origin);
        let mut out = sdp.to_bytes();
        // o= version moves only when what veil offers changes (RFC 3264 §8), so a session
        // refresh with unchanged SDP stays a no-op for the far side.
        if let Some(last) = &leg.last_sdp
            && *last != out
        {
            leg.origin.version += 1;
            sdp.anchor(media_ip, &ports, &leg.origin);
            out = sdp.to_bytes();
        }
        leg.last_sdp = Some(out.clone());
        Ok(out)
    }

    /// Why the body of a message from leg `from` cannot be relayed as SDP (issue 13: an
    /// unusable answer is refused, never forwarded empty): not SDP, SDP veil cannot read
    /// or anchor (no `c=` for an active stream), no codec left by the peers' allow-lists,
    /// or no crypto a `required` leg (or veil's RTP/SAVP offer) needs. Checked before
    /// anything is relayed, on a copy of the call's SRTP state, so that the call can be
    /// refused cleanly. An empty body is the caller's to judge (`None`).
    pub(super) fn unusable_sdp(
        &self,
        key: u64,
        from: Side,
        content_type: Option<&str>,
        body: &[u8],
        role: SdpRole,
    ) -> Option<Unusable> {
        if body.is_empty() {
            return None;
        }
        if !super::admission::is_sdp(content_type) {
            return Some(Unusable::NotSdp);
        }
        let call = self.calls.get(&key)?;
        let Ok(mut sdp) = Sdp::parse(body) else {
            return Some(Unusable::BadSdp);
        };
        if !sdp.connections_complete() {
            return Some(Unusable::BadSdp);
        }
        let to = from.other();
        let cfg = |side: Side| call.peers.peers.get(call.leg(side).peer).map(|p| &p.cfg);
        for (side, reorder) in [(from, false), (to, true)] {
            if let Some(allow) = cfg(side).and_then(|c| c.codecs.as_ref())
                && sdp.filter_codecs(allow, reorder) == CodecOutcome::NothingLeft
            {
                return Some(Unusable::NoCodecs);
            }
        }
        let mode = |side: Side| cfg(side).map(|c| c.srtp).unwrap_or_default();
        let mut srtp = call.srtp.clone();
        srtp.negotiate(&mut sdp, from, (mode(from), mode(to)), role)
            .is_err()
            .then_some(Unusable::NoCrypto)
    }

    fn release_streams(&mut self, streams: &[Stream]) {
        for s in streams {
            self.ports.release(s.a_port);
            self.ports.release(s.b_port);
        }
    }
}
