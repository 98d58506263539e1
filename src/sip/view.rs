//! Borrowed views of URIs and header values: what `parse.rs` reads before anything is
//! copied. The owned types (`Uri`, `NameAddr`, `Via`) are built from these, so both agree
//! on what is valid by construction; the per-message checks and tag look-ups use the views
//! directly and allocate nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::parse::generic_params;
use super::typed::{NameAddr, Via};
use super::uri::{Host, Params, SipUri, TelUri, Uri};

/// A host part as written: a name (not copied) or an IP literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRef<'a> {
    Name(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostRef<'_> {
    pub fn to_host(self) -> Host {
        match self {
            HostRef::Name(n) => Host::Name(n.to_owned()),
            HostRef::V4(a) => Host::V4(a),
            HostRef::V6(a) => Host::V6(a),
        }
    }
}

/// `;`-separated URI parameters as written (validated, without the leading `;`).
fn uri_params(p: Option<&str>) -> impl Iterator<Item = (&str, Option<&str>)> {
    p.into_iter()
        .flat_map(|p| p.split(';'))
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        })
}

fn owned_params<'a>(it: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> Params {
    it.map(|(n, v)| (n.to_owned(), v.map(str::to_owned)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUriRef<'a> {
    pub secure: bool,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub host: HostRef<'a>,
    pub port: Option<u16>,
    /// The parameters after the first `;`, validated.
    pub(super) params: Option<&'a str>,
    pub headers: Option<&'a str>,
}

impl SipUriRef<'_> {
    pub fn to_owned_uri(self) -> SipUri {
        SipUri {
            secure: self.secure,
            user: self.user.map(str::to_owned),
            password: self.password.map(str::to_owned),
            host: self.host.to_host(),
            port: self.port,
            params: owned_params(uri_params(self.params)),
            headers: self.headers.map(str::to_owned),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriRef<'a> {
    Sip(SipUriRef<'a>),
    /// A `tel:` number and its parameters (validated, without the leading `;`).
    Tel(&'a str, Option<&'a str>),
    Other(&'a str),
}

impl UriRef<'_> {
    pub fn to_owned_uri(self) -> Uri {
        match self {
            UriRef::Sip(s) => Uri::Sip(s.to_owned_uri()),
            UriRef::Tel(number, params) => Uri::Tel(TelUri {
                number: number.to_owned(),
                params: owned_params(uri_params(params)),
            }),
            UriRef::Other(s) => Uri::Other(s.to_owned()),
        }
    }
}

/// Value of the first generic parameter named `name` (case-insensitive) in `params`, a
/// string the parser has validated; `None` when absent or a flag.
fn generic_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    generic_params(params)
        .find_map(|p| p.ok().filter(|(n, _)| n.eq_ignore_ascii_case(name)))
        .and_then(|(_, v)| v)
}

fn owned_generic(params: &str) -> Params {
    owned_params(generic_params(params).filter_map(Result::ok))
}

/// A name-addr (From, To, Contact, …) as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrRef<'a> {
    pub display: Option<&'a str>,
    pub uri: UriRef<'a>,
    /// The header parameters, validated.
    pub(super) params: &'a str,
}

impl<'a> NameAddrRef<'a> {
    /// The `tag` parameter, as `NameAddr::tag` finds it.
    pub fn tag(&self) -> Option<&'a str> {
        generic_param(self.params, "tag")
    }

    pub fn to_owned_name_addr(self) -> NameAddr {
        NameAddr {
            display: self.display.map(str::to_owned),
            uri: self.uri.to_owned_uri(),
            params: owned_generic(self.params),
        }
    }
}

/// One Via element as written (transport not yet upper-cased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaRef<'a> {
    pub transport: &'a str,
    pub host: HostRef<'a>,
    pub port: Option<u16>,
    pub(super) params: &'a str,
}

impl<'a> ViaRef<'a> {
    pub fn branch(&self) -> Option<&'a str> {
        generic_param(self.params, "branch")
    }

    pub fn to_owned_via(self) -> Via {
        Via {
            transport: self.transport.to_ascii_uppercase(),
            host: self.host.to_host(),
            port: self.port,
            params: owned_generic(self.params),
        }
    }
}
