//! SRTP (RFC 3711) for the relay: the keys SDES negotiated (RFC 4568) and a guard around
//! the `rtc-srtp` crate.
//!
//! Why a guard: the webrtc-rs SRTP code (measured on webrtc-srtp 0.17, and still so in
//! rtc-srtp 0.21 for the last three points) panics on 4-13-byte SRTCP, accepts SRTCP with
//! the E bit 0 without checking its tag, has replay protection off unless asked, and
//! creates per-SSRC state before a packet authenticates. So here: lengths are checked
//! before the crate sees a packet, E=0 SRTCP is refused (veil never negotiates
//! `UNENCRYPTED_SRTCP`, so a peer that sends it is not one veil keyed), replay windows are
//! always on, and each SSRC gets its own crate context that is kept only once a packet
//! under it has authenticated.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use rand::RngCore;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// Replay window (packets), as libsrtp's default.
const REPLAY_WINDOW: usize = 128;
/// SSRCs one direction of one stream may carry; more is an attack or a broken peer.
const MAX_SSRCS: usize = 16;
const RTP_HEADER: usize = 12;
const RTCP_HEADER: usize = 8;
const SRTCP_INDEX: usize = 4;

/// The SDES crypto suites veil can do, in its order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
}

impl Suite {
    /// What veil offers, one `a=crypto` line each, in this order.
    pub const OFFERED: [Suite; 4] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ];

    const ALL: [Suite; 6] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
    ];

    /// The suite's name in `a=crypto` (RFC 4568, 6188, 7714).
    pub fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
        }
    }

    pub fn from_sdes_name(name: &str) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.sdes_name().eq_ignore_ascii_case(name))
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            Suite::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
            Suite::AesCm256HmacSha1_80 => ProtectionProfile::Aes256CmHmacSha1_80,
            Suite::AesCm256HmacSha1_32 => ProtectionProfile::Aes256CmHmacSha1_32,
        }
    }

    /// Master key + master salt, the length of the `inline:` material.
    pub fn material_len(self) -> usize {
        let p = self.profile();
        p.key_len() + p.salt_len()
    }

    fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// Bytes an SRTP packet adds to RTP.
    fn rtp_overhead(self) -> usize {
        let p = self.profile();
        p.rtp_auth_tag_len() + p.aead_auth_tag_len()
    }

    /// Bytes an SRTCP packet adds to RTCP (tag and E+index word).
    fn rtcp_overhead(self) -> usize {
        let p = self.profile();
        p.rtcp_auth_tag_len() + p.aead_auth_tag_len() + SRTCP_INDEX
    }
}

/// A master key and salt for one suite. `Debug` never shows the material: keys must not
/// reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    pub suite: Suite,
    material: Vec<u8>,
}

impl SrtpKey {
    /// `material` is key then salt; `None` if its length does not fit the suite.
    pub fn new(suite: Suite, material: Vec<u8>) -> Option<SrtpKey> {
        (material.len() == suite.material_len()).then_some(SrtpKey { suite, material })
    }

    /// A fresh random key (the OS-seeded CSPRNG of `rand`).
    pub fn generate(suite: Suite) -> SrtpKey {
        let mut material = vec![0u8; suite.material_len()];
        rand::rng().fill_bytes(&mut material);
        SrtpKey { suite, material }
    }

    pub fn material(&self) -> &[u8] {
        &self.material
    }

    fn context(&self) -> Option<Context> {
        let profile = self.suite.profile();
        let (key, salt) = self.material.split_at(profile.key_len());
        Context::new(
            key,
            salt,
            profile,
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            provider()?.crypto(),
        )
        .ok()
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKey")
            .field("suite", &self.suite)
            .field("material", &"<redacted>")
            .finish()
    }
}

fn provider() -> Option<&'static Arc<dyn RTCCryptoProvider>> {
    static PROVIDER: OnceLock<Option<Arc<dyn RTCCryptoProvider>>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| rtc_srtp::crypto::default_provider().ok())
        .as_ref()
}

/// Why a packet was not (un)protected; every one means "drop it".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    /// Shorter than a header plus the suite's tag.
    TooShort,
    /// SRTCP with the E bit 0: veil never agrees to unencrypted SRTCP.
    Unencrypted,
    /// Authentication failed, or a replay, or a cipher error.
    Rejected,
    /// A new SSRC beyond `MAX_SSRCS`.
    TooManySsrcs,
    /// The crypto provider could not be set up for the key.
    NoContext,
}

/// One direction of one side of a stream: either decrypting what arrives (`Unprotect`) or
/// encrypting what leaves (`Protect`).
pub struct SrtpSession {
    key: SrtpKey,
    /// Per SSRC; for `Unprotect` only SSRCs that authenticated at least once.
    rtp: HashMap<u32, Context>,
    rtcp: HashMap<u32, Context>,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("key", &self.key)
            .field("rtp_ssrcs", &self.rtp.len())
            .field("rtcp_ssrcs", &self.rtcp.len())
            .finish()
    }
}

impl SrtpSession {
    pub fn new(key: SrtpKey) -> SrtpSession {
        SrtpSession {
            key,
            rtp: HashMap::new(),
            rtcp: HashMap::new(),
        }
    }

    pub fn key(&self) -> &SrtpKey {
        &self.key
    }

    /// SSRCs with state (RTP, RTCP).
    pub fn ssrcs(&self) -> (usize, usize) {
        (self.rtp.len(), self.rtcp.len())
    }

    /// SRTP -> RTP.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        if packet.len() < RTP_HEADER + self.key.suite.rtp_overhead() {
            return Err(SrtpError::TooShort);
        }
        let ssrc = be32(&packet[8..12]);
        unprotect(&self.key, &mut self.rtp, ssrc, |ctx| {
            ctx.decrypt_rtp(packet)
        })
    }

    /// SRTCP -> RTCP.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        let suite = self.key.suite;
        if packet.len() < RTCP_HEADER + suite.rtcp_overhead() {
            return Err(SrtpError::TooShort);
        }
        // The E+index word: last for AEAD (RFC 7714 §9.1), before the tag for AES-CM.
        let e_at = if suite.is_aead() {
            packet.len() - SRTCP_INDEX
        } else {
            packet.len() - suite.profile().rtcp_auth_tag_len() - SRTCP_INDEX
        };
        if packet[e_at] & 0x80 == 0 {
            return Err(SrtpError::Unencrypted);
        }
        let ssrc = be32(&packet[4..8]);
        unprotect(&self.key, &mut self.rtcp, ssrc, |ctx| {
            ctx.decrypt_rtcp(packet)
        })
    }

    /// RTP -> SRTP.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        if packet.len() < RTP_HEADER {
            return Err(SrtpError::TooShort);
        }
        let ssrc = be32(&packet[8..12]);
        protect(&self.key, &mut self.rtp, ssrc, |ctx| {
            ctx.encrypt_rtp(packet)
        })
    }

    /// RTCP -> SRTCP.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        if packet.len() < RTCP_HEADER {
            return Err(SrtpError::TooShort);
        }
        let ssrc = be32(&packet[4..8]);
        protect(&self.key, &mut self.rtcp, ssrc, |ctx| {
            ctx.encrypt_rtcp(packet)
        })
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decrypt under the SSRC's context; a context for a new SSRC is kept only if the packet
/// authenticated under it.
fn unprotect<E>(
    key: &SrtpKey,
    contexts: &mut HashMap<u32, Context>,
    ssrc: u32,
    op: impl FnOnce(&mut Context) -> Result<BytesMut, E>,
) -> Result<BytesMut, SrtpError> {
    if let Some(ctx) = contexts.get_mut(&ssrc) {
        return op(ctx).map_err(|_| SrtpError::Rejected);
    }
    if contexts.len() >= MAX_SSRCS {
        return Err(SrtpError::TooManySsrcs);
    }
    let mut ctx = key.context().ok_or(SrtpError::NoContext)?;
    let plain = op(&mut ctx).map_err(|_| SrtpError::Rejected)?;
    contexts.insert(ssrc, ctx);
    Ok(plain)
}

fn protect<E>(
    key: &SrtpKey,
    contexts: &mut HashMap<u32, Context>,
    ssrc: u32,
    op: impl FnOnce(&mut Context) -> Result<BytesMut, E>,
) -> Result<BytesMut, SrtpError> {
    if !contexts.contains_key(&ssrc) {
        if contexts.len() >= MAX_SSRCS {
            return Err(SrtpError::TooManySsrcs);
        }
        contexts.insert(ssrc, key.context().ok_or(SrtpError::NoContext)?);
    }
    let ctx = contexts.get_mut(&ssrc).ok_or(SrtpError::NoContext)?;
    op(ctx).map_err(|_| SrtpError::Rejected)
}

#[cfg(test)]
mod tests;
