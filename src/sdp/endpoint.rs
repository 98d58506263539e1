//! Where a side wants each stream delivered, read from its SDP.

use std::net::SocketAddr;

use super::fields::{self, Connection};
use super::{Endpoint, MediaSection, Sdp};

const DISABLED: Endpoint = Endpoint {
    rtp: None,
    rtcp: None,
    rtcp_mux: false,
    disabled: true,
};

/// On hold: some enabled stream does not flow both ways (`sendonly`, `recvonly`,
/// `inactive`, at media or session level) or has no usable address (RFC 2543 hold with
/// c=0.0.0.0).
pub(super) fn on_hold(sdp: &Sdp) -> bool {
    let direction = |lines: &[super::Line]| {
        lines
            .iter()
            .filter_map(fields::attribute)
            .find_map(|(n, _)| {
                ["sendonly", "recvonly", "inactive", "sendrecv"]
                    .iter()
                    .find(|d| d.eq_ignore_ascii_case(n))
                    .copied()
            })
    };
    let session = direction(&sdp.session);
    sdp.media.iter().zip(endpoints(sdp)).any(|(m, e)| {
        if e.disabled {
            return false;
        }
        let held = direction(&m.lines)
            .or(session)
            .is_some_and(|d| d != "sendrecv");
        held || e.rtp.is_none()
    })
}

pub(super) fn endpoints(sdp: &Sdp) -> Vec<Endpoint> {
    let session = fields::first(&sdp.session, b'c').map(|l| fields::connection(&l.value));
    sdp.media.iter().map(|m| endpoint(m, session)).collect()
}

/// A media-level `c=` wins over the session one, even when it is a name veil cannot use.
/// An `m=` port veil cannot read is treated like port 0: the stream is not relayed (and
/// `anchor` writes 0 for it).
fn endpoint(section: &MediaSection, session: Option<Connection>) -> Endpoint {
    let Some(m) = section.lines.first() else {
        return DISABLED;
    };
    let port = match fields::media_port(&m.value) {
        None | Some(0) => return DISABLED,
        Some(port) => port,
    };
    let lines = &section.lines[1..];
    let conn = fields::first(lines, b'c')
        .map(|l| fields::connection(&l.value))
        .or(session);
    let ip = conn.and_then(Connection::usable);
    let rtp = ip.map(|ip| SocketAddr::new(ip, port));
    let rtcp_mux = fields::has_attribute(lines, "rtcp-mux");
    let rtcp = if rtcp_mux {
        None
    } else {
        let attr = lines
            .iter()
            .filter_map(fields::attribute)
            .find(|(name, _)| name.eq_ignore_ascii_case("rtcp"))
            .and_then(|(_, value)| fields::rtcp_attribute(value?));
        match attr {
            Some((port, Some(addr))) => addr.usable().map(|ip| SocketAddr::new(ip, port)),
            Some((port, None)) => ip.map(|ip| SocketAddr::new(ip, port)),
            None => ip
                .zip(port.checked_add(1))
                .map(|(ip, p)| SocketAddr::new(ip, p)),
        }
    };
    Endpoint {
        rtp,
        rtcp,
        rtcp_mux,
        disabled: false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::*;

    #[test]
    fn hold_detection() {
        let held = |t: &str| on_hold(&Sdp::parse(t.as_bytes()).unwrap());
        assert!(held(HOLD));
        assert!(!held(SIPP_DEFAULT));
        assert!(!held(PORT_ZERO), "a disabled stream is not hold");
        assert!(held(&(SIPP_DEFAULT.to_owned() + "a=inactive\r\n")));
        assert!(held(&(SIPP_DEFAULT.to_owned() + "a=recvonly\r\n")));
        assert!(!held(&(SIPP_DEFAULT.to_owned() + "a=sendrecv\r\n")));
        let session_level = SIPP_DEFAULT.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        assert!(held(&session_level));
        let c0 = SIPP_DEFAULT.replace("c=IN IP4 192.168.50.7", "c=IN IP4 0.0.0.0");
        assert!(held(&c0));
    }

    fn eps(text: &str) -> Vec<Endpoint> {
        Sdp::parse(text.as_bytes()).unwrap().endpoints()
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn plain(rtp: &str, rtcp: &str) -> Endpoint {
        Endpoint {
            rtp: addr(rtp),
            rtcp: addr(rtcp),
            rtcp_mux: false,
            disabled: false,
        }
    }

    #[test]
    fn session_level_connection() {
        assert_eq!(
            eps(SIPP_DEFAULT),
            vec![plain("192.168.50.7:6000", "192.168.50.7:6001")]
        );
    }

    #[test]
    fn ipv6() {
        assert_eq!(
            eps(IPV6),
            vec![plain("[2001:db8::20]:49172", "[2001:db8::20]:49173")]
        );
    }

    #[test]
    fn media_level_connections_per_section() {
        assert_eq!(
            eps(TWO_STREAMS),
            vec![
                plain("10.47.16.5:49170", "10.47.16.5:49171"),
                plain("10.47.16.6:51372", "10.47.16.6:51373"),
            ]
        );
    }

    #[test]
    fn media_level_connection_overrides_session_level() {
        let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 0\r\nm=audio 6000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n\
            m=audio 7000 RTP/AVP 0\r\nc=IN IP4 media.example.com\r\n";
        let e = eps(text);
        assert_eq!(e[0].rtp, addr("10.0.0.1:5000"));
        assert_eq!(e[1].rtp, addr("10.0.0.2:6000"));
        // A name at media level is not replaced by the session address.
        assert_eq!(e[2].rtp, None);
    }

    #[test]
    fn port_zero_is_disabled() {
        let e = eps(PORT_ZERO);
        assert_eq!(e[0], plain("172.16.0.9:20000", "172.16.0.9:20001"));
        assert_eq!(e[1], DISABLED);
    }

    #[test]
    fn unreadable_port_is_disabled() {
        let e = eps(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 10.0.0.1\r\nm=audio x RTP/AVP 0\r\nm=audio\r\n",
        );
        assert_eq!(e, vec![DISABLED, DISABLED]);
    }

    #[test]
    fn hold_with_unspecified_address() {
        let e = eps(HOLD);
        assert_eq!(
            e,
            vec![Endpoint {
                rtp: None,
                rtcp: None,
                rtcp_mux: false,
                disabled: false
            }]
        );
        let v6 = IPV6.replace("c=IN IP6 2001:db8::20", "c=IN IP6 ::");
        assert_eq!(eps(&v6)[0].rtp, None);
    }

    #[test]
    fn rtcp_attribute_with_address() {
        assert_eq!(
            eps(RTCP_ADDR),
            vec![plain("10.9.8.7:49170", "126.16.64.4:53020")]
        );
    }

    #[test]
    fn rtcp_attribute_port_only_uses_connection_address() {
        let text = SIPP_DEFAULT.to_owned() + "a=rtcp:7777\r\n";
        assert_eq!(
            eps(&text),
            vec![plain("192.168.50.7:6000", "192.168.50.7:7777")]
        );
    }

    #[test]
    fn rtcp_mux() {
        assert_eq!(
            eps(RTCP_MUX),
            vec![Endpoint {
                rtp: addr("10.9.8.6:38000"),
                rtcp: None,
                rtcp_mux: true,
                disabled: false
            }]
        );
    }

    #[test]
    fn fqdn_is_not_resolved() {
        let e = eps(FQDN);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].rtp, e[0].rtcp, e[0].disabled), (None, None, false));
    }

    #[test]
    fn port_count_form_uses_the_port() {
        let text = SIPP_DEFAULT.replace("m=audio 6000 ", "m=audio 6000/2 ");
        assert_eq!(eps(&text)[0].rtp, addr("192.168.50.7:6000"));
    }

    #[test]
    fn ice_phone() {
        assert_eq!(
            eps(PHONE_ICE),
            vec![plain("192.168.1.20:4002", "192.168.1.20:4003")]
        );
    }

    #[test]
    fn no_connection_anywhere() {
        let e = eps("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 0\r\n");
        assert_eq!((e[0].rtp, e[0].rtcp, e[0].disabled), (None, None, false));
    }
}
