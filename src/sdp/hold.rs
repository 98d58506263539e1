//! RFC 2543 hold (`c=0.0.0.0`) made explicit. veil replaces every address with its own, so
//! a held stream's meaning would be lost: the offerer asks not to receive media. RFC 3264
//! §8.4 expresses that with a direction attribute, which the rewritten SDP then carries:
//! sendrecv (or none) becomes `sendonly`, recvonly becomes `inactive`; sendonly and
//! inactive already say it.

use std::net::IpAddr;

use super::fields::{self, Connection};
use super::{Line, MediaSection, Sdp};

const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];

fn direction(lines: &[Line]) -> Option<&'static str> {
    lines
        .iter()
        .filter_map(fields::attribute)
        .find_map(|(n, _)| {
            DIRECTIONS
                .iter()
                .find(|d| d.eq_ignore_ascii_case(n))
                .copied()
        })
}

fn is_unspecified(section: &MediaSection, session: &[Line]) -> bool {
    let c = fields::first(&section.lines, b'c').or_else(|| fields::first(session, b'c'));
    matches!(c.map(|l| fields::connection(&l.value)), Some(Connection::Ip(ip)) if is_zero(ip))
}

fn is_zero(ip: IpAddr) -> bool {
    ip.is_unspecified()
}

/// Before anchoring: give every active stream held by a `c=0.0.0.0` the media-level
/// direction attribute that says the same.
pub(super) fn make_explicit(sdp: &mut Sdp) {
    let session_dir = direction(&sdp.session);
    for section in &mut sdp.media {
        let port = section
            .lines
            .first()
            .and_then(|m| fields::media_port(&m.value));
        if matches!(port, Some(0) | None) || !is_unspecified(section, &sdp.session) {
            continue;
        }
        let held = match direction(&section.lines).or(session_dir) {
            Some("recvonly") | Some("inactive") => "inactive",
            _ => "sendonly",
        };
        section.lines.retain(|l| {
            fields::attribute(l)
                .is_none_or(|(n, _)| !DIRECTIONS.iter().any(|d| d.eq_ignore_ascii_case(n)))
        });
        section.lines.push(Line::new(b'a', held));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(text: &str) -> Vec<Vec<String>> {
        let mut sdp = Sdp::parse(text.as_bytes()).unwrap();
        make_explicit(&mut sdp);
        sdp.media
            .iter()
            .map(|m| {
                m.lines
                    .iter()
                    .filter_map(fields::attribute)
                    .map(|(n, _)| n.to_string())
                    .filter(|n| DIRECTIONS.contains(&n.as_str()))
                    .collect()
            })
            .collect()
    }

    const HEAD: &str = "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\n";

    #[test]
    fn zero_address_with_sendrecv_or_nothing_becomes_sendonly() {
        let t =
            format!("{HEAD}c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n");
        assert_eq!(held(&t), [["sendonly"]]);
        let t = format!("{HEAD}c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n");
        assert_eq!(held(&t), [["sendonly"]]);
        let t = format!("{HEAD}t=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::\r\n");
        assert_eq!(held(&t), [["sendonly"]]);
    }

    #[test]
    fn zero_address_with_recvonly_or_inactive_becomes_inactive() {
        let t =
            format!("{HEAD}c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n");
        assert_eq!(held(&t), [["inactive"]]);
        let t =
            format!("{HEAD}c=IN IP4 0.0.0.0\r\nt=0 0\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\n");
        assert_eq!(held(&t), [["inactive"]]);
    }

    #[test]
    fn real_address_and_disabled_streams_are_left_alone() {
        let t =
            format!("{HEAD}c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n");
        assert_eq!(held(&t), [["sendrecv"]]);
        let t = format!("{HEAD}c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n");
        assert_eq!(held(&t), [Vec::<String>::new()]);
    }
}
