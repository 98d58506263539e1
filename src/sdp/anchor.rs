//! Rewriting an SDP so that every stream points at veil (topology hiding for media).
//!
//! What goes: the far side's addresses and ports (`o=`, `c=`, `m=`, `a=rtcp`), its ICE
//! state (candidates name its host, reflexive and relay addresses; ufrag/pwd/options only
//! make sense together with them), and its session name: `s=` often carries the product
//! name and version of the far side's equipment ("Acme Phone 5.1"), which is exactly the
//! kind of detail an SBC exists to hide, so it becomes `s=-`.
//! `a=ssrc:<n> cname:...` names the far side's RTCP CNAME, which phones fill with their AOR
//! and address; it becomes veil's own CNAME for the leg (RFC 7022: random per call and
//! leg, here derived from the leg's random `o=` session id).
//! What stays: everything else, including attributes veil does not know.

use std::net::IpAddr;

use crate::sip::uri::{write_ip, write_u32, write_u64};

use super::fields::{self, attribute};
use super::{Line, MediaSection, Origin, Sdp};

/// Attributes of the far side's ICE agent; meaningless (and revealing) once veil relays.
const ICE_ATTRIBUTES: [&str; 9] = [
    "candidate",
    "remote-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
    "end-of-candidates",
];

/// Session-level lines that follow `c=` in RFC 8866 order; a missing session `c=` is
/// inserted before the first of them.
const AFTER_CONNECTION: &[u8] = b"btrzka";

pub(super) fn anchor(sdp: &mut Sdp, addr: IpAddr, ports: &[u16], origin: &Origin) {
    let addrtype = if addr.is_ipv4() { "IP4" } else { "IP6" };
    let mut connection = String::with_capacity(48);
    connection.push_str("IN ");
    connection.push_str(addrtype);
    connection.push(' ');
    write_ip(&mut connection, addr);

    // Before the addresses go: a `c=0.0.0.0` hold must still reach the other side.
    super::hold::make_explicit(sdp);
    let had_session_c = sdp.session.iter().any(|l| l.kind == b'c');
    sdp.session.retain_mut(|line| match line.kind {
        b'o' => {
            let mut v = String::with_capacity(32 + connection.len());
            v.push_str("veil ");
            write_u64(&mut v, origin.session_id);
            v.push(' ');
            write_u64(&mut v, origin.version);
            v.push(' ');
            v.push_str(&connection);
            line.value = v;
            true
        }
        b's' => {
            line.value = "-".to_owned();
            true
        }
        b'c' => {
            line.value.clone_from(&connection);
            true
        }
        // `a=rtcp` is media-level only; at session level it can only leak.
        _ => !is_ice(line) && !is_rtcp(line),
    });

    let cname = cname(origin);
    for (i, section) in sdp.media.iter_mut().enumerate() {
        anchor_section(
            section,
            ports.get(i).copied().unwrap_or(0),
            &connection,
            &cname,
        );
    }

    let section_without_c = sdp
        .media
        .iter()
        .any(|m| !m.lines.iter().any(|l| l.kind == b'c'));
    if !had_session_c && section_without_c {
        let at = sdp
            .session
            .iter()
            .position(|l| AFTER_CONNECTION.contains(&l.kind))
            .unwrap_or(sdp.session.len());
        sdp.session.insert(at, Line::new(b'c', connection));
    }
}

/// veil's RTCP CNAME for a leg: 16 hex digits mixed from the leg's random session id
/// (splitmix64), so it is stable across the leg's offers and says nothing of either party.
pub(super) fn cname(origin: &Origin) -> String {
    let mut z = origin.session_id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", z ^ (z >> 31))
}

fn anchor_section(section: &mut MediaSection, port: u16, connection: &str, cname: &str) {
    let Some((m, rest)) = section.lines.split_first_mut() else {
        return;
    };
    // An unreadable port is treated as disabled (see `endpoint`), so it is written as 0.
    let port = match fields::media_port(&m.value) {
        Some(0) | None => 0,
        Some(_) => port,
    };
    m.value = fields::with_media_port(&m.value, port);
    // With rtcp-mux, RFC 5761 §5.1.3 has `a=rtcp` name the RTP port itself.
    let rtcp_port = if fields::has_attribute(rest, "rtcp-mux") {
        Some(port)
    } else {
        port.checked_add(1)
    };
    let rtcp_port = rtcp_port.filter(|_| port != 0);

    section.lines.retain_mut(|line| {
        if line.kind == b'c' {
            line.value = connection.to_owned();
            return true;
        }
        if let Some(ssrc) = ssrc_cname(line) {
            line.value = format!("ssrc:{ssrc} cname:{cname}");
            return true;
        }
        if is_rtcp(line) {
            return match rtcp_port {
                Some(p) => {
                    line.value.clear();
                    line.value.push_str("rtcp:");
                    write_u32(&mut line.value, p.into());
                    true
                }
                None => false,
            };
        }
        !is_ice(line)
    });
}

fn is_ice(line: &Line) -> bool {
    attribute(line)
        .is_some_and(|(name, _)| ICE_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

/// The SSRC of an `a=ssrc:<n> cname:<cname>` line.
fn ssrc_cname(line: &Line) -> Option<&str> {
    let (name, value) = attribute(line)?;
    if !name.eq_ignore_ascii_case("ssrc") {
        return None;
    }
    let (ssrc, rest) = value?.split_once(' ')?;
    let is_cname = rest
        .trim_start()
        .get(..6)
        .is_some_and(|a| a.eq_ignore_ascii_case("cname:"));
    (is_cname && !ssrc.is_empty() && ssrc.bytes().all(|b| b.is_ascii_digit())).then_some(ssrc)
}

fn is_rtcp(line: &Line) -> bool {
    attribute(line).is_some_and(|(name, _)| name.eq_ignore_ascii_case("rtcp"))
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::super::{Endpoint, Sdp};
    use super::*;

    const ORIGIN: Origin = Origin {
        session_id: 424242,
        version: 17,
    };

    fn anchored(text: &str, addr: &str, ports: &[u16]) -> (Sdp, String) {
        let mut sdp = Sdp::parse(text.as_bytes()).unwrap();
        sdp.anchor(addr.parse().unwrap(), ports, &ORIGIN);
        let bytes = sdp.to_bytes();
        let out = String::from_utf8(bytes.to_vec()).unwrap();
        // The output is always valid SDP again.
        assert_eq!(Sdp::parse(out.as_bytes()).unwrap(), sdp);
        (sdp, out)
    }

    /// The topology-hiding property: none of `secrets` appears anywhere in `out`.
    fn assert_hidden(out: &str, secrets: &[&str]) {
        for s in secrets {
            assert!(!out.contains(s), "{s:?} leaked into:\n{out}");
        }
    }

    #[test]
    fn ssrc_cname_becomes_veils_per_leg_cname() {
        let text = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
                    m=audio 6000 RTP/AVP 8\r\na=ssrc:12345 cname:sip:alice@127.0.0.2\r\n\
                    a=ssrc:12345 msid:x y\r\na=ssrc:99 CNAME:{alice-uuid}\r\n";
        let (_, out) = anchored(text, "203.0.113.10", &[30000]);
        let ours = cname(&ORIGIN);
        assert!(
            out.contains(&format!("a=ssrc:12345 cname:{ours}\r\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("a=ssrc:99 cname:{ours}\r\n")),
            "{out}"
        );
        assert!(out.contains("a=ssrc:12345 msid:x y\r\n"), "{out}");
        assert_hidden(&out, &["alice", "127.0.0.2"]);
        // Per leg: another session id, another CNAME.
        let other = cname(&Origin {
            session_id: 424243,
            version: 1,
        });
        assert_ne!(ours, other);
        assert_eq!(ours.len(), 16);
    }

    #[test]
    fn sipp_default() {
        let (_, out) = anchored(SIPP_DEFAULT, "203.0.113.10", &[30000]);
        assert_eq!(
            out,
            "v=0\r\n\
             o=veil 424242 17 IN IP4 203.0.113.10\r\n\
             s=-\r\n\
             c=IN IP4 203.0.113.10\r\n\
             t=0 0\r\n\
             m=audio 30000 RTP/AVP 0\r\n\
             a=rtpmap:0 PCMU/8000\r\n"
        );
        assert_hidden(
            &out,
            &[
                "192.168.50.7",
                "6000",
                "6001",
                "user1",
                "53655765",
                "2353687637",
            ],
        );
    }

    #[test]
    fn phone_with_ice() {
        let (sdp, out) = anchored(PHONE_ICE, "203.0.113.10", &[30002]);
        assert_hidden(
            &out,
            &[
                "192.168.1.20",
                "198.51.100.33",
                "198.51.100.77",
                "4002",
                "4003",
                "61002",
                "62000",
                "Acme",
                "3912345678",
                "ice",
                "candidate",
            ],
        );
        let media: Vec<&str> = sdp.media[0]
            .lines
            .iter()
            .map(|l| l.value.as_str())
            .collect();
        assert_eq!(
            media,
            [
                "audio 30002 RTP/AVP 9 0 8 101",
                "rtpmap:9 G722/8000",
                "rtpmap:101 telephone-event/8000",
                "fmtp:101 0-15",
                "ptime:20",
                "rtcp:30003",
                "sendrecv",
                "x-acme-feature:on",
            ]
        );
        assert!(out.contains("\r\nc=IN IP4 203.0.113.10\r\n"));
    }

    #[test]
    fn ipv6_to_ipv4_and_back() {
        let (_, out) = anchored(IPV6, "203.0.113.10", &[30004]);
        assert_hidden(&out, &["2001:db8::20", "49172", "IP6", "bob"]);
        assert!(out.contains("o=veil 424242 17 IN IP4 203.0.113.10\r\n"));

        let (_, out) = anchored(SIPP_DEFAULT, "2001:db8::1", &[30004]);
        assert!(out.contains("o=veil 424242 17 IN IP6 2001:db8::1\r\n"));
        assert!(out.contains("c=IN IP6 2001:db8::1\r\n"));
        assert_hidden(&out, &["IP4", "192.168.50.7"]);
    }

    #[test]
    fn two_streams_with_media_level_connections() {
        let (sdp, out) = anchored(TWO_STREAMS, "203.0.113.10", &[30006, 30008]);
        assert_hidden(
            &out,
            &[
                "10.47.16.5",
                "10.47.16.6",
                "49170",
                "51372",
                "Seminar",
                "jdoe",
            ],
        );
        assert_eq!(sdp.media[0].lines[0].value, "audio 30006 RTP/AVP 0 8 101");
        assert_eq!(sdp.media[1].lines[0].value, "video 30008 RTP/AVP 99");
        assert_eq!(
            sdp.media[1].lines[1],
            Line::new(b'c', "IN IP4 203.0.113.10")
        );
        // Every section has its own c=, so none is added at session level.
        assert!(sdp.session.iter().all(|l| l.kind != b'c'));
        let e = sdp.endpoints();
        assert_eq!(e[0].rtp, Some("203.0.113.10:30006".parse().unwrap()));
        assert_eq!(e[1].rtcp, Some("203.0.113.10:30009".parse().unwrap()));
    }

    #[test]
    fn adds_session_connection_when_a_section_lacks_one() {
        let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=x\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
            m=audio 5000 RTP/AVP 0\r\nc=IN IP4 10.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\n";
        let (sdp, _) = anchored(text, "203.0.113.10", &[30010, 30012]);
        let kinds: Vec<u8> = sdp.session.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, b"voscta");
        assert_eq!(sdp.session[3].value, "IN IP4 203.0.113.10");
        let e = sdp.endpoints();
        assert_eq!(e[1].rtp, Some("203.0.113.10:30012".parse().unwrap()));
    }

    #[test]
    fn port_zero_stays_zero_and_missing_ports_become_zero() {
        let (sdp, out) = anchored(PORT_ZERO, "203.0.113.10", &[30014, 30016]);
        assert_eq!(sdp.media[0].lines[0].value, "audio 30014 RTP/AVP 8");
        assert_eq!(sdp.media[1].lines[0].value, "video 0 RTP/AVP 31");
        assert_hidden(&out, &["172.16.0.9", "20000", "30016"]);

        let (sdp, _) = anchored(TWO_STREAMS, "203.0.113.10", &[30018]);
        assert_eq!(sdp.media[1].lines[0].value, "video 0 RTP/AVP 99");
        assert!(sdp.endpoints()[1].disabled);
    }

    #[test]
    fn hold_keeps_direction_and_hides_the_address() {
        let (sdp, out) = anchored(HOLD, "203.0.113.10", &[30020]);
        assert_hidden(&out, &["172.16.0.10", "16384", "0.0.0.0"]);
        assert!(sdp.media[0].lines.contains(&Line::new(b'a', "sendonly")));
    }

    #[test]
    fn rtcp_with_address() {
        let (sdp, out) = anchored(RTCP_ADDR, "203.0.113.10", &[30022]);
        assert_hidden(
            &out,
            &["126.16.64.4", "53020", "10.9.8.7", "49170", "49171"],
        );
        assert!(sdp.media[0].lines.contains(&Line::new(b'a', "rtcp:30023")));
    }

    #[test]
    fn rtcp_mux_names_the_rtp_port() {
        let (sdp, out) = anchored(RTCP_MUX, "203.0.113.10", &[30024]);
        assert_hidden(&out, &["10.9.8.6", "38000"]);
        let e = sdp.endpoints();
        assert_eq!(
            e,
            vec![Endpoint {
                rtp: Some("203.0.113.10:30024".parse().unwrap()),
                rtcp: None,
                rtcp_mux: true,
                disabled: false
            }]
        );
        assert!(sdp.media[0].lines.contains(&Line::new(b'a', "rtcp:30024")));
    }

    #[test]
    fn fqdn_replaced() {
        let (_, out) = anchored(FQDN, "203.0.113.10", &[30026]);
        assert_hidden(&out, &["example.com", "31000", "alice"]);
    }

    #[test]
    fn rtcp_dropped_for_disabled_stream() {
        let text = PORT_ZERO.to_owned() + "a=rtcp:9 IN IP4 172.16.0.9\r\n";
        let (sdp, out) = anchored(&text, "203.0.113.10", &[30028, 30030]);
        assert_hidden(&out, &["172.16.0.9"]);
        assert!(sdp.media[1].lines.iter().all(|l| !is_rtcp(l)));
    }

    #[test]
    fn session_level_ice_and_rtcp_removed_but_other_attributes_kept() {
        let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            a=ice-ufrag:abcd\r\na=ICE-PWD:secret\r\na=rtcp:5001 IN IP4 10.0.0.1\r\na=tool:foo\r\n\
            m=audio 5000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY\r\n";
        let (sdp, out) = anchored(text, "203.0.113.10", &[30032]);
        assert_hidden(&out, &["abcd", "secret", "10.0.0.1", "5000", "5001"]);
        assert!(sdp.session.contains(&Line::new(b'a', "tool:foo")));
        assert!(out.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY\r\n"));
    }

    #[test]
    fn every_sample_hides_every_original_address_and_port() {
        for text in ALL {
            let sdp = Sdp::parse(text.as_bytes()).unwrap();
            let mut secrets: Vec<String> = Vec::new();
            for e in sdp.endpoints() {
                for a in [e.rtp, e.rtcp].into_iter().flatten() {
                    secrets.push(a.ip().to_string());
                    secrets.push(a.port().to_string());
                }
            }
            let (_, out) = anchored(text, "203.0.113.10", &[30100, 30102]);
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            assert_hidden(&out, &secrets);
        }
    }
}
