//! SDES (RFC 4568): reading a peer's `a=crypto` lines and writing veil's own.
//!
//! veil terminates SRTP, so a peer's crypto lines never cross to the other leg: they are
//! read (the peer's key for what it sends), removed, and replaced by lines carrying veil's
//! keys. A line is acceptable only when veil can honour all of it: a suite the relay does,
//! one key without MKI, a lifetime of at least 2^31 packets (veil does not rekey on its
//! own) and no session parameters (`UNENCRYPTED_SRTCP` and friends would weaken what the
//! relay enforces; `KDR`, `FEC_ORDER` are not implemented). Anything else is skipped, as
//! RFC 4568 §6.1 lets an answerer do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::fields::attribute;
use super::{Line, MediaSection};
use crate::media::srtp::{SrtpKey, Suite};

/// One acceptable `a=crypto` line of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoOffer {
    pub tag: u32,
    pub key: SrtpKey,
}

/// The transport protocol of a media section (`RTP/AVP`, `RTP/SAVP`, `udptl`...).
pub fn proto(section: &MediaSection) -> Option<&str> {
    section
        .lines
        .first()
        .and_then(|m| m.value.split_ascii_whitespace().nth(2))
}

/// RTP profiles veil can convert between plain and secure.
pub fn is_rtp(section: &MediaSection) -> bool {
    proto(section).is_some_and(|p| {
        ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(p))
    })
}

/// `RTP/SAVP` or `RTP/SAVPF`.
pub fn is_secure(section: &MediaSection) -> bool {
    proto(section).is_some_and(|p| p.to_ascii_uppercase().starts_with("RTP/SAVP"))
}

/// Switch an RTP profile between `RTP/AVP(F)` and `RTP/SAVP(F)`.
pub fn set_secure(section: &mut MediaSection, secure: bool) {
    if !is_rtp(section) {
        return;
    }
    let Some(m) = section.lines.first_mut() else {
        return;
    };
    let feedback = proto_of(&m.value).is_some_and(|p| p.to_ascii_uppercase().ends_with('F'));
    let new = match (secure, feedback) {
        (true, true) => "RTP/SAVPF",
        (true, false) => "RTP/SAVP",
        (false, true) => "RTP/AVPF",
        (false, false) => "RTP/AVP",
    };
    let fields: Vec<&str> = m.value.split_ascii_whitespace().collect();
    let rebuilt: Vec<&str> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| if i == 2 { new } else { f })
        .collect();
    m.value = rebuilt.join(" ");
}

fn proto_of(m: &str) -> Option<&str> {
    m.split_ascii_whitespace().nth(2)
}

/// The acceptable `a=crypto` lines of a section, in the peer's order.
pub fn acceptable(section: &MediaSection) -> Vec<CryptoOffer> {
    section
        .lines
        .iter()
        .filter_map(crypto_value)
        .filter_map(parse_line)
        .collect()
}

/// Whether the section has any `a=crypto` line at all.
pub fn has_crypto(section: &MediaSection) -> bool {
    section.lines.iter().any(|l| crypto_value(l).is_some())
}

/// Remove every `a=crypto` line.
pub fn strip(section: &mut MediaSection) {
    section.lines.retain(|l| crypto_value(l).is_none());
}

/// Append veil's lines (after the section's other lines, as their order is free).
pub fn add(section: &mut MediaSection, lines: &[(u32, &SrtpKey)]) {
    for (tag, key) in lines {
        section.lines.push(Line::new(
            b'a',
            format!(
                "crypto:{tag} {} inline:{}",
                key.suite.sdes_name(),
                STANDARD.encode(key.material())
            ),
        ));
    }
}

fn crypto_value(line: &Line) -> Option<&str> {
    match attribute(line)? {
        (name, Some(value)) if name.eq_ignore_ascii_case("crypto") => Some(value),
        _ => None,
    }
}

/// `<tag> <suite> inline:<key||salt>[|<lifetime>][|<mki>:<len>]` and nothing more.
fn parse_line(value: &str) -> Option<CryptoOffer> {
    let mut fields = value.split_ascii_whitespace();
    let tag = fields.next()?.parse::<u32>().ok()?;
    let suite = Suite::from_sdes_name(fields.next()?)?;
    let key_params = fields.next()?;
    if fields.next().is_some() || key_params.contains(';') {
        return None;
    }
    let inline = key_params.strip_prefix("inline:")?;
    let mut parts = inline.split('|');
    let material = STANDARD.decode(parts.next()?).ok()?;
    for part in parts {
        if part.contains(':') || !long_lifetime(part) {
            return None;
        }
    }
    let key = SrtpKey::new(suite, material)?;
    Some(CryptoOffer { tag, key })
}

/// `2^n` with n >= 31, or a decimal at least that large.
fn long_lifetime(value: &str) -> bool {
    const MIN: u64 = 1 << 31;
    match value.strip_prefix("2^") {
        Some(exp) => exp.parse::<u32>().is_ok_and(|n| (31..64).contains(&n)),
        None => value.parse::<u64>().is_ok_and(|n| n >= MIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Sdp;

    fn section(lines: &str) -> MediaSection {
        let text = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{lines}");
        Sdp::parse(text.as_bytes()).unwrap().media.remove(0)
    }

    const KEY30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn reads_acceptable_lines_and_skips_the_rest() {
        let s = section(&format!(
            "m=audio 4000 RTP/SAVP 0\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20|1:4\r\n\
             a=crypto:2 F8_128_HMAC_SHA1_80 inline:{KEY30}\r\n\
             a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} UNENCRYPTED_SRTCP\r\n\
             a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20\r\n\
             a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY30};inline:{KEY30}\r\n\
             a=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n\
             a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}|2^31\r\n\
             a=crypto:8 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}\r\n"
        ));
        let tags: Vec<u32> = acceptable(&s).iter().map(|c| c.tag).collect();
        assert_eq!(tags, [7, 8]);
        assert_eq!(acceptable(&s)[0].key.suite, Suite::AesCm128HmacSha1_32);
        assert!(is_secure(&s) && has_crypto(&s));
    }

    #[test]
    fn writes_lines_that_read_back_and_switches_profiles() {
        let mut s = section("m=audio 4000 RTP/AVPF 0 8\r\na=crypto:1 X inline:abc\r\n");
        strip(&mut s);
        assert!(!has_crypto(&s));
        let k1 = SrtpKey::generate(Suite::AeadAes256Gcm);
        let k2 = SrtpKey::generate(Suite::AesCm128HmacSha1_80);
        add(&mut s, &[(1, &k1), (2, &k2)]);
        set_secure(&mut s, true);
        assert_eq!(s.lines[0].value, "audio 4000 RTP/SAVPF 0 8");
        let read = acceptable(&s);
        assert_eq!(read[0], CryptoOffer { tag: 1, key: k1 });
        assert_eq!(read[1], CryptoOffer { tag: 2, key: k2 });
        set_secure(&mut s, false);
        assert_eq!(s.lines[0].value, "audio 4000 RTP/AVPF 0 8");
        let mut t = section("m=image 4000 udptl t38\r\n");
        set_secure(&mut t, true);
        assert_eq!(t.lines[0].value, "image 4000 udptl t38");
    }
}
