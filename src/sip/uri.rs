//! URIs: `sip:`/`sips:` with IPv6 literals, `tel:` (RFC 3966) and anything else kept opaque
//! (so an unknown scheme can be answered with 416 rather than failing to parse).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host part: a name, or an IP literal (IPv6 written in brackets on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
            Host::Name(_) => None,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => f.write_str(ipv4_text(a, &mut [0; 15])?),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Dotted-quad text of `a` in `buf`. Every Via, Contact and URI veil writes holds an
/// address, and std's Display goes through the integer padding machinery four times.
fn ipv4_text<'b>(a: &std::net::Ipv4Addr, buf: &'b mut [u8; 15]) -> Result<&'b str, fmt::Error> {
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)
}

/// `;name=value` or `;flag` parameters, in order, names as received.
pub type Params = Vec<(String, Option<String>)>;

/// Look up a parameter by name, case-insensitively. `Some(None)` is a flag parameter.
pub fn param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

pub fn write_params(f: &mut fmt::Formatter<'_>, params: &Params) -> fmt::Result {
    for (n, v) in params {
        match v {
            Some(v) => write!(f, ";{n}={v}")?,
            None => write!(f, ";{n}")?,
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part, still %-escaped as received (so it round-trips byte for byte).
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// `?h=v&…` URI headers, raw, without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    pub fn new(host: Host, port: Option<u16>) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port,
            params: Vec::new(),
            headers: None,
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// RFC 3966 `tel:` URI: the number (global `+…` or local) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}", self.number)?;
        write_params(f, &self.params)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// Any other absolute URI (`mailto:`, `im:`, `urn:` …), kept verbatim.
    Other(String),
}

impl Uri {
    /// The user of a sip/sips URI or the number of a tel URI.
    pub fn user(&self) -> Option<&str> {
        match self {
            Uri::Sip(s) => s.user.as_deref(),
            Uri::Tel(t) => Some(&t.number),
            Uri::Other(_) => None,
        }
    }

    pub fn host(&self) -> Option<&Host> {
        match self {
            Uri::Sip(s) => Some(&s.host),
            _ => None,
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(s) if s.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(s) => s.split(':').next().unwrap_or(""),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(s) => s.fmt(f),
            Uri::Tel(t) => t.fmt(f),
            Uri::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Host;

    #[test]
    fn ipv4_hosts_print_as_std_does() {
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "192.168.100.255",
            "255.255.255.255",
            "1.10.100.9",
        ] {
            let ip: std::net::Ipv4Addr = a.parse().unwrap();
            assert_eq!(Host::V4(ip).to_string(), ip.to_string());
        }
    }
}
