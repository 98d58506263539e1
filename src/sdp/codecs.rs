//! Codec policy: a peer's `codecs:` allow-list applied to an SDP crossing towards (or
//! coming back from) that peer.
//!
//! Payload types not allowed are removed from the `m=` line together with their
//! `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines; the kept ones are put in the allow-list's
//! order (the peer's preference). Only RTP sections are filtered: `m=image udptl t38` and
//! other non-RTP formats are not codecs. A section left without a real codec (only
//! helpers such as telephone-event or CN) is disabled with port 0, which RFC 3264 §6/§8
//! defines as "stream rejected"; when no section is left at all the caller answers 488.

use super::fields::{self, attribute};
use super::{MediaSection, Sdp};

/// What filtering did to an SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecOutcome {
    /// At least one stream still has a codec (or there was nothing to filter).
    Kept,
    /// Every stream that was enabled lost all its codecs: answer 488.
    NothingLeft,
}

/// Formats that accompany a codec but cannot carry a call on their own.
const HELPERS: [&str; 6] = [
    "telephone-event",
    "cn",
    "red",
    "rtx",
    "ulpfec",
    "flexfec-03",
];

/// RFC 3551 static payload types (encoding name, clock rate).
fn static_pt(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

/// `NAME` or `NAME/rate` from the allow-list against a format's name and rate.
fn entry_matches(entry: &str, name: &str, rate: Option<u32>) -> bool {
    let (ename, erate) = match entry.split_once('/') {
        Some((n, r)) => (n, r.split('/').next().and_then(|r| r.parse::<u32>().ok())),
        None => (entry, None),
    };
    ename.eq_ignore_ascii_case(name) && (erate.is_none() || erate == rate)
}

/// Apply `allow` to every RTP section of `sdp`. With `reorder`, kept formats follow the
/// allow-list's order (used on the SDP sent towards the peer that owns the list).
pub(super) fn filter(sdp: &mut Sdp, allow: &[String], reorder: bool) -> CodecOutcome {
    let mut had_enabled = false;
    let mut has_enabled = false;
    for section in &mut sdp.media {
        let enabled = section_port(section).is_some_and(|p| p != 0);
        had_enabled |= enabled;
        let still = if enabled && is_rtp(section) {
            filter_section(section, allow, reorder)
        } else {
            enabled
        };
        has_enabled |= still;
    }
    if had_enabled && !has_enabled {
        CodecOutcome::NothingLeft
    } else {
        CodecOutcome::Kept
    }
}

fn section_port(section: &MediaSection) -> Option<u16> {
    fields::media_port(&section.lines.first()?.value)
}

fn is_rtp(section: &MediaSection) -> bool {
    section
        .lines
        .first()
        .and_then(|m| m.value.split_ascii_whitespace().nth(2))
        .is_some_and(|proto| proto.to_ascii_uppercase().contains("RTP/"))
}

/// Filters one enabled RTP section; returns whether it still carries a codec.
fn filter_section(section: &mut MediaSection, allow: &[String], reorder: bool) -> bool {
    let Some(m) = section.lines.first() else {
        return false;
    };
    let tokens: Vec<String> = m
        .value
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    if tokens.len() < 4 {
        return false;
    }
    // (payload type text, rank in the allow-list, is a helper)
    let mut kept: Vec<(String, usize, bool)> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    for fmt in &tokens[3..] {
        let (name, rate) = match encoding(section, fmt) {
            Some((n, r)) => (n, r),
            None => {
                dropped.push(fmt.clone());
                continue;
            }
        };
        match allow.iter().position(|e| entry_matches(e, &name, rate)) {
            Some(rank) => {
                let helper = HELPERS.iter().any(|h| h.eq_ignore_ascii_case(&name));
                kept.push((fmt.clone(), rank, helper));
            }
            None => dropped.push(fmt.clone()),
        }
    }
    if !kept.iter().any(|(_, _, helper)| !helper) {
        // Rejected stream: port 0, formats left as they were (the m= line needs one).
        if let Some(m) = section.lines.first_mut() {
            m.value = fields::with_media_port(&m.value, 0);
        }
        return false;
    }
    if reorder {
        kept.sort_by_key(|(_, rank, _)| *rank);
    }
    let mut value = tokens[..3].join(" ");
    for (fmt, _, _) in &kept {
        value.push(' ');
        value.push_str(fmt);
    }
    if let Some(m) = section.lines.first_mut() {
        m.value = value;
    }
    section.lines.retain(|line| match attribute(line) {
        Some((name, Some(v)))
            if ["rtpmap", "fmtp", "rtcp-fb"]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name)) =>
        {
            let pt = v.split_ascii_whitespace().next().unwrap_or("");
            !dropped.iter().any(|d| d == pt)
        }
        _ => true,
    });
    true
}

/// Per media section, the RTP clock rate of each payload type of its `m=` line (from
/// `a=rtpmap`, else the RFC 3551 table); types with no known rate are left out, and
/// sections that are not RTP get an empty list.
pub(super) fn clock_rates(sdp: &Sdp) -> Vec<Vec<(u8, u32)>> {
    sdp.media
        .iter()
        .map(|section| {
            let Some(m) = section.lines.first().filter(|_| is_rtp(section)) else {
                return Vec::new();
            };
            m.value
                .split_ascii_whitespace()
                .skip(3)
                .filter_map(|fmt| {
                    let pt = fmt.parse::<u8>().ok().filter(|pt| *pt < 128)?;
                    let rate = encoding(section, fmt)?.1.filter(|r| *r > 0)?;
                    Some((pt, rate))
                })
                .collect()
        })
        .collect()
}

/// Encoding name and clock rate of format `fmt`: its `a=rtpmap`, else the static table.
fn encoding(section: &MediaSection, fmt: &str) -> Option<(String, Option<u32>)> {
    let rtpmap = section
        .lines
        .iter()
        .filter_map(attribute)
        .find_map(|(n, v)| {
            if !n.eq_ignore_ascii_case("rtpmap") {
                return None;
            }
            let (pt, enc) = v?.trim().split_once(' ')?;
            (pt == fmt).then_some(enc.trim())
        });
    if let Some(enc) = rtpmap {
        let mut parts = enc.split('/');
        let name = parts.next()?.to_owned();
        let rate = parts.next().and_then(|r| r.parse().ok());
        return Some((name, rate));
    }
    let (name, rate) = static_pt(fmt.parse().ok()?)?;
    Some((name.to_owned(), Some(rate)))
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::*;

    fn allow(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(text: &str, list: &[&str], reorder: bool) -> (CodecOutcome, Vec<String>) {
        let mut sdp = Sdp::parse(text.as_bytes()).unwrap();
        let outcome = sdp.filter_codecs(&allow(list), reorder);
        let out = String::from_utf8(sdp.to_bytes().to_vec()).unwrap();
        (outcome, out.lines().map(str::to_owned).collect())
    }

    #[test]
    fn clock_rates_come_from_rtpmap_or_the_static_table() {
        let text = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 96 9 0 101\r\na=rtpmap:96 opus/48000/2\r\n\
            a=rtpmap:101 telephone-event/8000\r\nm=application 5002 UDP/BFCP *\r\n";
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(
            clock_rates(&sdp),
            vec![vec![(96, 48000), (9, 8000), (0, 8000), (101, 8000)], vec![]]
        );
    }

    #[test]
    fn drops_other_payload_types_with_their_lines_and_keeps_dtmf() {
        let (o, lines) = run(PHONE_ICE, &["PCMA", "PCMU", "telephone-event"], true);
        assert_eq!(o, CodecOutcome::Kept);
        assert!(
            lines.contains(&"m=audio 4002 RTP/AVP 8 0 101".to_string()),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("G722")));
        assert!(lines.contains(&"a=rtpmap:101 telephone-event/8000".to_string()));
        assert!(lines.contains(&"a=fmtp:101 0-15".to_string()));
        // Unrelated attributes stay.
        assert!(lines.contains(&"a=ptime:20".to_string()));
    }

    #[test]
    fn without_reorder_the_senders_order_is_kept() {
        let (_, lines) = run(PHONE_ICE, &["PCMA", "PCMU", "G722"], false);
        assert!(
            lines.contains(&"m=audio 4002 RTP/AVP 9 0 8".to_string()),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("telephone-event")));
        assert!(!lines.iter().any(|l| l.starts_with("a=fmtp:101")));
    }

    #[test]
    fn dtmf_alone_is_nothing_left() {
        let (o, lines) = run(PHONE_ICE, &["G729", "telephone-event"], true);
        assert_eq!(o, CodecOutcome::NothingLeft);
        assert!(
            lines.iter().any(|l| l.starts_with("m=audio 0 ")),
            "{lines:?}"
        );
    }

    #[test]
    fn rate_in_the_allow_list_must_match() {
        let text = SIPP_DEFAULT.replace("RTP/AVP 0", "RTP/AVP 96 97")
            + "a=rtpmap:96 opus/48000/2\r\na=rtpmap:97 L16/16000\r\na=fmtp:96 useinbandfec=1\r\n";
        let (o, lines) = run(&text, &["opus/48000", "L16/8000"], true);
        assert_eq!(o, CodecOutcome::Kept);
        assert!(
            lines.contains(&"m=audio 6000 RTP/AVP 96".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"a=fmtp:96 useinbandfec=1".to_string()));
        assert!(!lines.iter().any(|l| l.contains("L16")));
    }

    #[test]
    fn one_stream_rejected_other_kept_and_t38_untouched() {
        let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 8\r\nm=video 5002 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n\
            m=image 5004 udptl t38\r\na=T38FaxVersion:0\r\n";
        let (o, lines) = run(text, &["PCMA"], true);
        assert_eq!(o, CodecOutcome::Kept);
        assert!(lines.contains(&"m=audio 5000 RTP/AVP 8".to_string()));
        assert!(
            lines.contains(&"m=video 0 RTP/AVP 99".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"m=image 5004 udptl t38".to_string()));
    }

    #[test]
    fn already_disabled_streams_do_not_make_it_fail() {
        let (o, _) = run(PORT_ZERO, &["PCMA"], true);
        assert_eq!(o, CodecOutcome::Kept);
        let only_disabled = PORT_ZERO.replace("m=audio 20000", "m=audio 0");
        let (o, _) = run(&only_disabled, &["G729"], true);
        assert_eq!(o, CodecOutcome::Kept, "nothing was enabled to begin with");
    }

    #[test]
    fn unknown_dynamic_type_without_rtpmap_is_dropped() {
        let text = SIPP_DEFAULT.replace("RTP/AVP 0", "RTP/AVP 0 101");
        let (_, lines) = run(&text, &["PCMU", "telephone-event"], true);
        assert!(
            lines.contains(&"m=audio 6000 RTP/AVP 0".to_string()),
            "{lines:?}"
        );
    }
}
