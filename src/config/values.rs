//! Value types written as strings in the YAML: `30s`, `30000-40000`, `10.0.0.0/8`,
//! `host[:port]` / `sip:host;transport=tcp`.
//!
//! Each type parses with `FromStr`-like `parse` returning a message fit for an operator;
//! the `Deserialize` impls wrap that so the YAML loader reports it at the value's line.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::model::Transport;
use crate::sip::Host;

/// A duration written `500ms`, `30s`, `5m`, `6h`, `90d` (a bare integer is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let bad = || format!("invalid duration `{s}` (write e.g. 500ms, 30s, 5m, 6h)");
        if num.is_empty() {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms_per_unit: u64 = match unit {
            "ms" => 1,
            "" | "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let ms = n
            .checked_mul(ms_per_unit)
            .ok_or_else(|| format!("duration `{s}` is too large"))?;
        Ok(Duration::from_millis(ms))
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
}

impl fmt::Display for Duration {
    /// The largest unit that represents the value exactly, so it reads back unchanged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) || ms == 0 {
            write!(f, "{ms}ms")
        } else if ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 30s, 5m, 6h")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                Duration::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
                n.checked_mul(1000)
                    .map(Duration::from_millis)
                    .ok_or_else(|| E::custom("duration is too large"))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
                let n = u64::try_from(n).map_err(|_| E::custom("a duration cannot be negative"))?;
                self.visit_u64(n)
            }
        }
        d.deserialize_any(V)
    }
}

/// An inclusive UDP port range for media, `first-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid port range `{s}` (write first-last, e.g. 30000-40000)");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first == 0 {
            return Err(format!("port range `{s}`: port 0 is not usable"));
        }
        if first >= last {
            return Err(format!(
                "port range `{s}`: the first port must be below the last"
            ));
        }
        Ok(PortRange { first, last })
    }

    /// Even ports in the range: RTP uses the even port, RTCP the odd one above it.
    pub fn even_ports(&self) -> usize {
        let first_even = self.first + self.first % 2;
        if first_even > self.last {
            0
        } else {
            usize::from((self.last - first_even) / 2) + 1
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PortRange::parse(&s).map_err(de::Error::custom)
    }
}

/// A source network, `a.b.c.d/len` or an address alone (a host route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(pub ipnet::IpNet);

impl Cidr {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip)
    }

    /// The host route for one address (/32 or /128).
    pub fn host(ip: IpAddr) -> Self {
        Cidr(ipnet::IpNet::from(ip))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !t.contains('/') {
            return t
                .parse::<IpAddr>()
                .map(Cidr::host)
                .map_err(|_| format!("invalid address or CIDR `{s}`"));
        }
        let net: ipnet::IpNet = t.parse().map_err(|_| format!("invalid CIDR `{s}`"))?;
        // A set host bit is almost always a typo for the network (or for a /32).
        if net.addr() != net.network() {
            return Err(format!(
                "CIDR `{s}` has host bits set; did you mean {}/{}?",
                net.network(),
                net.prefix_len()
            ));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(de::Error::custom)
    }
}

/// Where a peer is reached: a host (IP literal or DNS name) and an optional port, from
/// `host[:port]` or a `sip:`/`sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: crate::sip::Host,
    pub port: Option<u16>,
    /// `sips:` given.
    pub secure: bool,
    /// `;transport=` given in a `sip:` URI.
    pub transport: Option<Transport>,
}

impl Target {
    /// Parse `host[:port]`, `[v6][:port]`, a bare IPv6 address, or
    /// `sip:host[:port][;transport=udp|tcp|tls]` / `sips:host[:port]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let lower = t.get(..5).map(str::to_ascii_lowercase).unwrap_or_default();
        let (rest, secure, uri) = if lower.starts_with("sips:") {
            (&t[5..], true, true)
        } else if lower.starts_with("sip:") {
            (&t[4..], false, true)
        } else {
            (t, false, false)
        };
        let (hostport, params) = match rest.split_once(';') {
            Some((hp, p)) if uri => (hp, Some(p)),
            Some(_) => return Err(format!("`{s}`: parameters need a sip: URI")),
            None => (rest, None),
        };
        if hostport.contains('@') {
            return Err(format!("`{s}`: a peer address has no user part"));
        }
        let mut transport = None;
        for p in params.into_iter().flat_map(|p| p.split(';')) {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            if !name.eq_ignore_ascii_case("transport") {
                return Err(format!(
                    "`{s}`: unsupported URI parameter `{name}` (only transport=)"
                ));
            }
            transport = Some(match value.to_ascii_lowercase().as_str() {
                "udp" => Transport::Udp,
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => return Err(format!("`{s}`: transport must be udp, tcp or tls")),
            });
        }
        let (host, port) = parse_host_port(hostport).map_err(|e| format!("`{s}`: {e}"))?;
        Ok(Target {
            host,
            port,
            secure,
            transport,
        })
    }
}

/// Parse `host[:port]`, `[v6][:port]` or a bare IPv6 address.
pub fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), String> {
    let parse_port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("invalid port `{p}`")),
            Ok(n) => Ok(n),
        }
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or("missing `]` after IPv6 address")?;
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("invalid IPv6 address `{addr}`"))?;
        let port = match after {
            "" => None,
            p => Some(parse_port(
                p.strip_prefix(':').ok_or("expected `:port` after `]`")?,
            )?),
        };
        return Ok((Host::V6(ip), port));
    }
    if s.matches(':').count() > 1 {
        let ip: Ipv6Addr = s
            .parse()
            .map_err(|_| format!("invalid IPv6 address `{s}` (write [v6]:port)"))?;
        return Ok((Host::V6(ip), None));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(parse_port(p)?)),
        None => (s, None),
    };
    Ok((parse_host(host)?, port))
}

/// An IPv4 literal or a DNS name.
fn parse_host(h: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err("missing host".into());
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return h
            .parse::<Ipv4Addr>()
            .map(Host::V4)
            .map_err(|_| format!("invalid IPv4 address `{h}`"));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("invalid host name `{h}`"));
    }
    Ok(Host::Name(h.to_ascii_lowercase()))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Target::parse(&s).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(Duration::parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(Duration::parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(Duration::parse("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(Duration::parse("45"), Ok(Duration::from_secs(45)));
        assert_eq!(Duration::parse("0s"), Ok(Duration::from_secs(0)));
        for bad in [
            "",
            "s",
            "30x",
            "-5s",
            "1.5s",
            "5 m",
            "30sec",
            "99999999999999999999h",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn duration_display_reads_back() {
        for d in ["500ms", "30s", "5m", "6h", "1500ms", "0ms"] {
            let v = Duration::parse(d).unwrap();
            assert_eq!(v.to_string(), d);
        }
    }

    #[derive(Deserialize)]
    struct D {
        d: Duration,
    }

    #[test]
    fn duration_from_yaml_string_and_integer() {
        let v: D = serde_saphyr::from_str("d: 30s\n").unwrap();
        assert_eq!(v.d, Duration::from_secs(30));
        let v: D = serde_saphyr::from_str("d: 90\n").unwrap();
        assert_eq!(v.d, Duration::from_secs(90));
        let v: D = serde_saphyr::from_str("d: '90'\n").unwrap();
        assert_eq!(v.d, Duration::from_secs(90));
        assert!(serde_saphyr::from_str::<D>("d: -3\n").is_err());
        assert!(serde_saphyr::from_str::<D>("d: 3 minutes\n").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(
            PortRange::parse("30000-40000"),
            Ok(PortRange {
                first: 30000,
                last: 40000
            })
        );
        assert_eq!(
            PortRange::parse("1000-1001"),
            Ok(PortRange {
                first: 1000,
                last: 1001
            })
        );
        for bad in [
            "40000-30000",
            "5000-5000",
            "0-10",
            "30000",
            "a-b",
            "1-70000",
            "-5",
        ] {
            assert!(PortRange::parse(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(
            PortRange {
                first: 30000,
                last: 30999
            }
            .even_ports(),
            500
        );
        assert_eq!(
            PortRange {
                first: 30001,
                last: 30002
            }
            .even_ports(),
            1
        );
        assert_eq!(
            PortRange {
                first: 30001,
                last: 30001
            }
            .even_ports(),
            0
        );
        assert_eq!(
            PortRange {
                first: 30000,
                last: 30002
            }
            .even_ports(),
            2
        );
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let h = Cidr::parse("127.0.0.2").unwrap();
        assert_eq!(h, Cidr::parse("127.0.0.2/32").unwrap());
        assert!(h.contains("127.0.0.2".parse().unwrap()));
        assert!(!h.contains("127.0.0.3".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(Cidr::parse("::1").unwrap().0.prefix_len(), 128);
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "foo", "10.0.0.0/", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad} should fail");
        }
    }

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn targets() {
        let a = t("127.0.0.2:5060");
        assert_eq!(
            (a.host, a.port, a.secure, a.transport),
            (Host::V4([127, 0, 0, 2].into()), Some(5060), false, None)
        );
        let b = t("carrier.example.net");
        assert_eq!(
            (b.host, b.port),
            (Host::Name("carrier.example.net".into()), None)
        );
        let c = t("[2001:db8::1]:5080");
        assert_eq!(
            (c.host, c.port),
            (Host::V6("2001:db8::1".parse().unwrap()), Some(5080))
        );
        let d = t("::1");
        assert_eq!((d.host, d.port), (Host::V6(Ipv6Addr::LOCALHOST), None));
        let e = t("sip:sbc.example.com:5070;transport=tcp");
        assert_eq!(
            (e.host, e.port, e.secure, e.transport),
            (
                Host::Name("sbc.example.com".into()),
                Some(5070),
                false,
                Some(Transport::Tcp)
            )
        );
        let f = t("sips:sbc.example.com");
        assert_eq!((f.port, f.secure, f.transport), (None, true, None));
        let g = t("SIP:[::1]:5062");
        assert_eq!(
            (g.host, g.port),
            (Host::V6(Ipv6Addr::LOCALHOST), Some(5062))
        );
        assert_eq!(t("10.0.0.1:5060").to_string(), "10.0.0.1:5060");
    }

    #[test]
    fn bad_targets() {
        for bad in [
            "",
            "host:0",
            "host:99999",
            "host:",
            "[::1",
            "[::1]5060",
            "sip:user@host",
            "host;transport=tcp",
            "sip:host;transport=sctp",
            "sip:host;lr",
            "300.1.1.1",
            "-bad-.example",
            "a..b",
            "under score!",
            "1:2:3:zz",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
