//! SRTP termination per leg (SDES): which keys each leg's peer and veil use, per stream,
//! kept across offer/answer exchanges. Sans-IO: an SDP goes in, its crypto lines are
//! rewritten for the other leg, and the keys the relay needs come out.
//!
//! The peer's `srtp:` mode says what a leg speaks: `off` plain RTP/AVP (when both legs are
//! `off` veil leaves crypto lines alone, as before SRTP termination existed), `optional`
//! SRTP when the peer offers or accepts it, `required` SRTP or 488. veil never forwards a
//! peer's keys: it answers a peer's offer with the first line it can do, under its own
//! fresh key, and offers its own keys (one per suite of `Suite::OFFERED`) to a peer.

use crate::config::SrtpMode;
use crate::media::Side;
use crate::media::srtp::{SrtpKey, Suite};
use crate::sdp::{Sdp, crypto};

/// Whether an SDP crossing legs is an offer or an answer (RFC 3264).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpRole {
    Offer,
    Answer,
}

/// A leg (or an answer) without crypto veil can accept, where the mode asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoCrypto;

/// Crypto state of every stream of a call, by m= line.
#[derive(Debug, Clone, Default)]
pub struct CallSrtp {
    pub streams: Vec<StreamSrtp>,
}

#[derive(Debug, Clone, Default)]
pub struct StreamSrtp {
    pub a: SideSrtp,
    pub b: SideSrtp,
}

impl StreamSrtp {
    pub fn side(&self, side: Side) -> &SideSrtp {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut SideSrtp {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }
}

/// One leg of one stream.
#[derive(Debug, Clone, Default)]
pub struct SideSrtp {
    /// veil's outstanding offer to this leg: tag and key per line.
    offered: Vec<(u32, SrtpKey)>,
    /// This leg's last offer that veil accepted; veil's answer key is made once per offer
    /// so that repeated answers (183 then 200) carry the same key.
    peer_offer: Option<PeerOffer>,
    /// What the leg's peer encrypts with (the relay's inbound key for this side).
    pub rx: Option<SrtpKey>,
    /// What veil encrypts with towards the leg (the relay's outbound key).
    pub tx: Option<SrtpKey>,
}

#[derive(Debug, Clone)]
struct PeerOffer {
    tag: u32,
    suite: Suite,
    secure_profile: bool,
    our_key: Option<SrtpKey>,
}

impl CallSrtp {
    /// Read `from`'s crypto in `sdp` and rewrite `sdp`'s crypto for `to`. `Ok(false)`:
    /// both legs are `off`, nothing was touched and the relay needs no keys.
    pub fn negotiate(
        &mut self,
        sdp: &mut Sdp,
        from: Side,
        modes: (SrtpMode, SrtpMode),
        role: SdpRole,
    ) -> Result<bool, NoCrypto> {
        let (from_mode, to_mode) = modes;
        if from_mode == SrtpMode::Off && to_mode == SrtpMode::Off {
            return Ok(false);
        }
        let to = from.other();
        if self.streams.len() < sdp.media.len() {
            self.streams
                .resize_with(sdp.media.len(), StreamSrtp::default);
        }
        for (section, stream) in sdp.media.iter_mut().zip(self.streams.iter_mut()) {
            if !crypto::is_rtp(section) {
                continue;
            }
            let disabled = section
                .lines
                .first()
                .and_then(|m| m.value.split_ascii_whitespace().nth(1))
                .is_some_and(|port| port == "0");
            if from_mode != SrtpMode::Off {
                read(stream.side_mut(from), section, from_mode, role, disabled)?;
            } else {
                let side = stream.side_mut(from);
                (side.rx, side.tx) = (None, None);
            }
            let secure_in = crypto::is_secure(section);
            crypto::strip(section);
            write(stream.side_mut(to), section, to_mode, role, secure_in);
        }
        Ok(true)
    }
}

/// What the sending leg's SDP says about its keys.
fn read(
    side: &mut SideSrtp,
    section: &crate::sdp::MediaSection,
    mode: SrtpMode,
    role: SdpRole,
    disabled: bool,
) -> Result<(), NoCrypto> {
    let lines = crypto::acceptable(section);
    match role {
        SdpRole::Offer => {
            // A new offer from the peer supersedes veil's own outstanding one (glare).
            side.offered.clear();
            if let Some(first) = lines.first() {
                side.peer_offer = Some(PeerOffer {
                    tag: first.tag,
                    suite: first.key.suite,
                    secure_profile: crypto::is_secure(section),
                    our_key: None,
                });
                side.rx = Some(first.key.clone());
            } else if disabled {
                side.peer_offer = None;
            } else if crypto::is_secure(section) || mode == SrtpMode::Required {
                return Err(NoCrypto);
            } else {
                side.peer_offer = None;
                (side.rx, side.tx) = (None, None);
            }
        }
        SdpRole::Answer => {
            let chosen = lines.iter().find_map(|line| {
                side.offered
                    .iter()
                    .find(|(tag, key)| *tag == line.tag && key.suite == line.key.suite)
                    .map(|(_, ours)| (line.key.clone(), ours.clone()))
            });
            match chosen {
                Some((theirs, ours)) => {
                    side.rx = Some(theirs);
                    side.tx = Some(ours);
                }
                None if disabled => {}
                None if mode == SrtpMode::Required => return Err(NoCrypto),
                None => (side.rx, side.tx) = (None, None),
            }
        }
    }
    Ok(())
}

/// veil's crypto for the receiving leg.
fn write(
    side: &mut SideSrtp,
    section: &mut crate::sdp::MediaSection,
    mode: SrtpMode,
    role: SdpRole,
    secure_in: bool,
) {
    if mode == SrtpMode::Off {
        crypto::set_secure(section, false);
        (side.rx, side.tx) = (None, None);
        return;
    }
    match role {
        SdpRole::Offer => {
            side.peer_offer = None;
            side.offered = (1..)
                .zip(Suite::OFFERED)
                .map(|(tag, suite)| (tag, SrtpKey::generate(suite)))
                .collect();
            let lines: Vec<(u32, &SrtpKey)> = side.offered.iter().map(|(t, k)| (*t, k)).collect();
            crypto::add(section, &lines);
            // `optional` towards a peer: RTP/AVP with crypto lines (best-effort SRTP) unless
            // the offer veil relays was secure already.
            crypto::set_secure(section, mode == SrtpMode::Required || secure_in);
        }
        SdpRole::Answer => match &mut side.peer_offer {
            Some(offer) => {
                let suite = offer.suite;
                let key = offer
                    .our_key
                    .get_or_insert_with(|| SrtpKey::generate(suite))
                    .clone();
                crypto::add(section, &[(offer.tag, &key)]);
                crypto::set_secure(section, offer.secure_profile);
                side.tx = Some(key);
            }
            None => {
                crypto::set_secure(section, false);
                (side.rx, side.tx) = (None, None);
            }
        },
    }
}

#[cfg(test)]
mod tests;
