//! Typed views of the headers veil acts on. Parsed on demand from `Headers` values; the
//! parsers live in `parse.rs`, the writers here (Display).

use std::fmt;

use super::method::Method;
use super::uri::{FmtSink, Host, Params, Sink, Uri, param, write_host, write_params, write_u32};

/// One Via element: `SIP/2.0/UDP host:port;branch=…;rport;received=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as received, upper-cased (`UDP`, `TCP`, `TLS`, `SCTP`, or unknown).
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch").flatten()
    }
    pub fn received(&self) -> Option<&str> {
        param(&self.params, "received").flatten()
    }
    /// `Some(None)`: `rport` present without value (RFC 3581 request); `Some(Some(p))`: filled.
    pub fn rport(&self) -> Option<Option<&str>> {
        param(&self.params, "rport")
    }
}

impl Via {
    pub fn write_to(&self, out: &mut impl Sink) {
        out.put("SIP/2.0/");
        out.put(&self.transport);
        out.put(" ");
        write_host(out, &self.host);
        if let Some(p) = self.port {
            out.put(":");
            write_u32(out, p.into());
        }
        write_params(out, &self.params);
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtSink::new(f);
        self.write_to(&mut out);
        out.result
    }
}

/// `"Display" <uri>;params` as in From, To, Contact, Route, Record-Route, PAI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as received, quotes included if it was quoted.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (after `>`; or after the addr-spec when no brackets were used).
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }
    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag").flatten()
    }
    pub fn set_tag(&mut self, tag: &str) {
        self.params.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
        self.params.push(("tag".into(), Some(tag.into())));
    }
}

impl NameAddr {
    /// Always written with angle brackets, which is valid for every header that uses it.
    pub fn write_to(&self, out: &mut impl Sink) {
        if let Some(d) = &self.display {
            out.put(d);
            out.put(" ");
        }
        out.put("<");
        self.uri.write_to(out);
        out.put(">");
        write_params(out, &self.params);
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtSink::new(f);
        self.write_to(&mut out);
        out.result
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn write_to(&self, out: &mut impl Sink) {
        write_u32(out, self.seq);
        out.put(" ");
        out.put(self.method.as_str());
    }

    /// The header value `seq METHOD` (what `to_string` gives, without `format!`).
    pub fn value(seq: u32, method: &Method) -> String {
        let mut s = String::with_capacity(16);
        write_u32(&mut s, seq);
        s.push(' ');
        s.push_str(method.as_str());
        s
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtSink::new(f);
        self.write_to(&mut out);
        out.result
    }
}

/// RAck (RFC 3262): `response-num CSeq-num Method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RAck {
    pub rseq: u32,
    pub cseq: u32,
    pub method: Method,
}

impl fmt::Display for RAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rseq, self.cseq, self.method)
    }
}
