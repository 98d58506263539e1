//! The few SDP fields veil reads: connection addresses, `m=` ports, attribute names and
//! `a=rtcp`. Each returns `None` for anything it does not understand; callers decide.

use std::net::IpAddr;

use super::Line;

/// What a `c=` value (or the address part of `a=rtcp`) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Connection {
    Ip(IpAddr),
    /// An FQDN or anything else that is not a literal address: kept, never resolved.
    Unresolved,
}

impl Connection {
    /// The address to send to; `None` for names and for 0.0.0.0 / `::` (hold).
    pub(super) fn usable(self) -> Option<IpAddr> {
        match self {
            Connection::Ip(ip) if !ip.is_unspecified() => Some(ip),
            _ => None,
        }
    }
}

/// `IN IP4 <addr>[/ttl[/count]]` (also the tail of `a=rtcp:`).
pub(super) fn connection(value: &str) -> Connection {
    let mut it = value.split_ascii_whitespace();
    let (Some(net), Some(_addrtype), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Connection::Unresolved;
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Connection::Unresolved;
    }
    // Multicast addresses carry /ttl and /count suffixes.
    let addr = addr.split('/').next().unwrap_or(addr);
    addr.parse().map_or(Connection::Unresolved, Connection::Ip)
}

/// The transport port of an `m=` value, `<media> <port>[/<count>] <proto> <fmt>...`.
pub(super) fn media_port(value: &str) -> Option<u16> {
    let port = value.split_ascii_whitespace().nth(1)?;
    port.split('/').next()?.parse().ok()
}

/// The `m=` value with its port replaced (a `/count` suffix is dropped: veil relays one
/// port pair per section). Values without a port token are returned unchanged.
pub(super) fn with_media_port(value: &str, port: u16) -> String {
    let mut tokens = value.split_ascii_whitespace();
    let (Some(media), Some(_)) = (tokens.next(), tokens.next()) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(value.len() + 8);
    out.push_str(media);
    out.push(' ');
    crate::sip::uri::write_u32(&mut out, port.into());
    for t in tokens {
        out.push(' ');
        out.push_str(t);
    }
    out
}

/// Name and value of an `a=` line: `a=name` or `a=name:value`.
pub(super) fn attribute(line: &Line) -> Option<(&str, Option<&str>)> {
    if line.kind != b'a' {
        return None;
    }
    Some(match line.value.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (line.value.as_str(), None),
    })
}

/// True when `lines` hold an attribute called `name`.
pub(super) fn has_attribute(lines: &[Line], name: &str) -> bool {
    lines
        .iter()
        .filter_map(attribute)
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605): the port and the address if one is given.
pub(super) fn rtcp_attribute(value: &str) -> Option<(u16, Option<Connection>)> {
    let value = value.trim_start();
    let (port, rest) = value.split_once(' ').unwrap_or((value, ""));
    let port = port.parse().ok()?;
    let rest = rest.trim();
    Some((port, (!rest.is_empty()).then(|| connection(rest))))
}

/// The first line of `kind` in `lines`.
pub(super) fn first(lines: &[Line], kind: u8) -> Option<&Line> {
    lines.iter().find(|l| l.kind == kind)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn reads_connection_values() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(connection("IN IP4 10.0.0.1"), Connection::Ip(v4));
        assert_eq!(connection("in  IP4   10.0.0.1 "), Connection::Ip(v4));
        assert_eq!(
            connection("IN IP4 224.2.1.1/127/3"),
            Connection::Ip(IpAddr::V4(Ipv4Addr::new(224, 2, 1, 1)))
        );
        assert_eq!(
            connection("IN IP6 ::1"),
            Connection::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            connection("IN IP4 host.example.com"),
            Connection::Unresolved
        );
        assert_eq!(connection("IN IP4"), Connection::Unresolved);
        assert_eq!(connection("ATM NSAP 47.0005"), Connection::Unresolved);
        assert_eq!(connection("IN IP4 0.0.0.0").usable(), None);
        assert_eq!(connection("IN IP6 ::").usable(), None);
        assert_eq!(connection("IN IP4 10.0.0.1").usable(), Some(v4));
    }

    #[test]
    fn reads_and_rewrites_media_ports() {
        assert_eq!(media_port("audio 49170 RTP/AVP 0 8"), Some(49170));
        assert_eq!(media_port("video 49170/2 RTP/AVP 31"), Some(49170));
        assert_eq!(media_port("audio 0 RTP/AVP 0"), Some(0));
        assert_eq!(media_port("audio x RTP/AVP 0"), None);
        assert_eq!(media_port("audio"), None);
        assert_eq!(
            with_media_port("video 49170/2 RTP/AVP 31", 30000),
            "video 30000 RTP/AVP 31"
        );
        assert_eq!(with_media_port("audio", 30000), "audio");
    }

    #[test]
    fn reads_rtcp_attribute() {
        assert_eq!(rtcp_attribute("53020"), Some((53020, None)));
        let (port, conn) = rtcp_attribute("53020 IN IP4 126.16.64.4").unwrap();
        assert_eq!(port, 53020);
        assert_eq!(conn, Some(Connection::Ip("126.16.64.4".parse().unwrap())));
        assert_eq!(rtcp_attribute("x IN IP4 1.2.3.4"), None);
    }

    #[test]
    fn splits_attributes() {
        assert_eq!(
            attribute(&Line::new(b'a', "sendonly")),
            Some(("sendonly", None))
        );
        assert_eq!(
            attribute(&Line::new(b'a', "rtpmap:0 PCMU/8000")),
            Some(("rtpmap", Some("0 PCMU/8000")))
        );
        assert_eq!(attribute(&Line::new(b'b', "AS:64")), None);
    }
}
