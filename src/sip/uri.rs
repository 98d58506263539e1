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
        let mut out = FmtSink::new(f);
        write_host(&mut out, self);
        out.result
    }
}

/// Where veil's writers put text: a header value being built (`String`), a message's
/// bytes (`Vec<u8>`), or a `Formatter` (so that `Display` and the writers are one code).
/// Writing straight into the buffer saves `format!`'s intermediate strings on every
/// Via, Contact, CSeq and URI.
pub trait Sink {
    fn put(&mut self, s: &str);
}

impl Sink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// A `Formatter` as a [`Sink`]: the first error is kept and ends the writing.
pub struct FmtSink<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    pub result: fmt::Result,
}

impl<'a, 'b> FmtSink<'a, 'b> {
    pub fn new(f: &'a mut fmt::Formatter<'b>) -> Self {
        FmtSink { f, result: Ok(()) }
    }
}

impl Sink for FmtSink<'_, '_> {
    fn put(&mut self, s: &str) {
        if self.result.is_ok() {
            self.result = self.f.write_str(s);
        }
    }
}

/// Decimal text of `n`.
pub fn write_u32(out: &mut impl Sink, n: u32) {
    write_u64(out, n.into());
}

/// Decimal text of `n`.
pub fn write_u64(out: &mut impl Sink, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.put(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// A host as written in URIs and Vias (IPv6 in brackets).
pub fn write_host(out: &mut impl Sink, h: &Host) {
    match h {
        Host::Name(n) => out.put(n),
        Host::V4(a) => out.put(ipv4_text(a, &mut [0; 15])),
        Host::V6(a) => {
            out.put("[");
            write_ip(out, IpAddr::V6(*a));
            out.put("]");
        }
    }
}

/// An address as text (IPv6 without brackets).
pub fn write_ip(out: &mut impl Sink, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => out.put(ipv4_text(&a, &mut [0; 15])),
        IpAddr::V6(a) => {
            use std::io::Write;
            // "ffff:…" is at most 45 bytes (RFC 4291 text form with an embedded IPv4).
            let mut buf = [0u8; 64];
            let mut cur = std::io::Cursor::new(&mut buf[..]);
            if write!(cur, "{a}").is_ok() {
                let n = cur.position() as usize;
                out.put(std::str::from_utf8(&buf[..n]).unwrap_or_default());
            }
        }
    }
}

/// Dotted-quad text of `a` in `buf`. Every Via, Contact and URI veil writes holds an
/// address, and std's Display goes through the integer padding machinery four times.
fn ipv4_text<'b>(a: &Ipv4Addr, buf: &'b mut [u8; 15]) -> &'b str {
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
    // Only ASCII digits and dots were written.
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
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

pub fn write_params(out: &mut impl Sink, params: &Params) {
    for (n, v) in params {
        out.put(";");
        out.put(n);
        if let Some(v) = v {
            out.put("=");
            out.put(v);
        }
    }
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

impl SipUri {
    pub fn write_to(&self, out: &mut impl Sink) {
        out.put(if self.secure { "sips:" } else { "sip:" });
        if let Some(u) = &self.user {
            out.put(u);
            if let Some(p) = &self.password {
                out.put(":");
                out.put(p);
            }
            out.put("@");
        }
        write_host(out, &self.host);
        if let Some(p) = self.port {
            out.put(":");
            write_u32(out, p.into());
        }
        write_params(out, &self.params);
        if let Some(h) = &self.headers {
            out.put("?");
            out.put(h);
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtSink::new(f);
        self.write_to(&mut out);
        out.result
    }
}

/// RFC 3966 `tel:` URI: the number (global `+…` or local) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

impl TelUri {
    pub fn write_to(&self, out: &mut impl Sink) {
        out.put("tel:");
        out.put(&self.number);
        write_params(out, &self.params);
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtSink::new(f);
        self.write_to(&mut out);
        out.result
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

impl Uri {
    pub fn write_to(&self, out: &mut impl Sink) {
        match self {
            Uri::Sip(s) => s.write_to(out),
            Uri::Tel(t) => t.write_to(out),
            Uri::Other(s) => out.put(s),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtSink::new(f);
        self.write_to(&mut out);
        out.result
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
