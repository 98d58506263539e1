//! Value types written as strings in the YAML: `30s`, `30000-40000`, `10.0.0.0/8`,
//! `host[:port]` / `sip:host;transport=tcp`.
//! SKELETON: parsing implemented by the config work item.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A duration written `500ms`, `30s`, `5m`, `6h` (a bare integer is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub fn parse(_s: &str) -> Result<Self, String> {
        Err("not implemented".into())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An inclusive UDP port range for media, `first-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _s = String::deserialize(d)?;
        Err(serde::de::Error::custom("not implemented"))
    }
}

/// A source network, `a.b.c.d/len` or an address alone (a host route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl Cidr {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _s = String::deserialize(d)?;
        Err(serde::de::Error::custom("not implemented"))
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
        let _s = String::deserialize(d)?;
        Err(serde::de::Error::custom("not implemented"))
    }
}
