//! `peers[].sources`: what identifies a peer's inbound traffic, and the one rule for
//! picking a peer when entries overlap (issue 14 item 8: two trunks on one IP).
//!
//! An entry is `ip[/len][:port]` (IPv6 in brackets when a port follows:
//! `[2001:db8::1]:5060`, `[2001:db8::/64]:5060`), or a map that also binds it to the
//! transport and/or the listener the traffic arrives on:
//! `{address: 192.0.2.10, listen: trunk-b}`. Every given part must match. Among the
//! entries that match a message, the most specific wins: each part given (a longer
//! prefix, a port, a transport, a listener) makes an entry more specific. Two entries of
//! different peers that can match the same message without one being more specific in
//! every part are ambiguous, and `veil check` refuses them (`PeerConfig::sources`).

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::model::{ListenConfig, Transport};
use super::values::Cidr;

/// One `sources` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerSource {
    pub net: Cidr,
    /// Source port of the messages (UDP: the peer's socket; TCP/TLS clients usually send
    /// from ephemeral ports, so bind those by listener instead).
    pub port: Option<u16>,
    pub transport: Option<Transport>,
    /// Name of the listener the traffic must arrive on.
    pub listen: Option<String>,
}

impl From<Cidr> for PeerSource {
    fn from(net: Cidr) -> Self {
        PeerSource {
            net,
            port: None,
            transport: None,
            listen: None,
        }
    }
}

impl PeerSource {
    /// Parse `ip[/len][:port]`; a bare IPv6 address or network takes no port.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (addr, port) = if let Some(rest) = t.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: `[` without `]`"))?;
            // `[v6]/len[:port]` is accepted as well as `[v6/len][:port]`.
            let (len, after) = match after.strip_prefix('/') {
                Some(a) => {
                    let end = a.find(':').unwrap_or(a.len());
                    (Some(&a[..end]), &a[end..])
                }
                None => (None, after),
            };
            let port = match after {
                "" => None,
                a => Some(
                    a.strip_prefix(':')
                        .ok_or_else(|| format!("`{s}`: expected `:port` after `]`"))?,
                ),
            };
            let addr = match len {
                Some(len) => format!("{inside}/{len}"),
                None => inside.to_string(),
            };
            (addr, port)
        } else if t.matches(':').count() == 1 {
            let (a, p) = t.split_once(':').unwrap_or((t, ""));
            (a.to_string(), Some(p))
        } else {
            (t.to_string(), None)
        };
        let net = Cidr::parse(&addr)?;
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{s}`: invalid port `{p}`"))?,
            ),
        };
        Ok(PeerSource {
            net,
            port,
            transport: None,
            listen: None,
        })
    }
}

impl fmt::Display for PeerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.net.0) {
            (None, _) => write!(f, "{}", self.net)?,
            (Some(p), ipnet::IpNet::V6(_)) => write!(f, "[{}]:{p}", self.net)?,
            (Some(p), _) => write!(f, "{}:{p}", self.net)?,
        }
        if let Some(t) = self.transport {
            write!(f, " over {}", t.via_token())?;
        }
        if let Some(l) = &self.listen {
            write!(f, " on listener `{l}`")?;
        }
        Ok(())
    }
}

/// The map form of an entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceMap {
    address: String,
    #[serde(default)]
    transport: Option<Transport>,
    #[serde(default)]
    listen: Option<String>,
}

impl<'de> Deserialize<'de> for PeerSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PeerSource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`ip[/len][:port]` or {address, transport, listen}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PeerSource, E> {
                PeerSource::parse(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<PeerSource, A::Error> {
                let m = SourceMap::deserialize(de::value::MapAccessDeserializer::new(m))?;
                let mut s = PeerSource::parse(&m.address).map_err(de::Error::custom)?;
                s.transport = m.transport;
                s.listen = m.listen;
                Ok(s)
            }
        }
        d.deserialize_any(V)
    }
}

/// An entry with its listener resolved to an index, as matching uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRule {
    pub net: ipnet::IpNet,
    pub port: Option<u16>,
    /// Given, or implied by the listener.
    pub transport: Option<Transport>,
    pub listener: Option<usize>,
    /// Index of the peer in the config.
    pub peer: usize,
    /// Which of the peer's entries (for messages); `usize::MAX` for an address derived at
    /// run time (a peer named by DNS without `sources`).
    pub entry: usize,
}

impl SourceRule {
    /// `None` when the entry names a listener that does not exist (`veil check` says so).
    pub fn new(
        s: &PeerSource,
        peer: usize,
        entry: usize,
        listeners: &[ListenConfig],
    ) -> Option<SourceRule> {
        let listener = match &s.listen {
            Some(name) => Some(listeners.iter().position(|l| &l.name == name)?),
            None => None,
        };
        Some(SourceRule {
            net: s.net.0,
            port: s.port,
            transport: listener
                .and_then(|i| listeners.get(i))
                .map(|l| l.transport)
                .or(s.transport),
            listener,
            peer,
            entry,
        })
    }

    /// A host entry for an address found at run time (no port, transport or listener).
    pub fn derived(ip: std::net::IpAddr, peer: usize) -> SourceRule {
        SourceRule {
            net: ipnet::IpNet::from(ip),
            port: None,
            transport: None,
            listener: None,
            peer,
            entry: usize::MAX,
        }
    }

    pub fn matches(&self, remote: SocketAddr, transport: Transport, listener: usize) -> bool {
        self.net.contains(&remote.ip())
            && self.port.is_none_or(|p| p == remote.port())
            && self.transport.is_none_or(|t| t == transport)
            && self.listener.is_none_or(|l| l == listener)
    }

    /// Parts given, for ordering: any strictly more specific entry has a larger sum.
    fn weight(&self) -> u32 {
        u32::from(self.net.prefix_len())
            + u32::from(self.port.is_some())
            + u32::from(self.transport.is_some())
            + u32::from(self.listener.is_some())
    }

    /// Whether some message could match both.
    pub fn overlaps(&self, o: &SourceRule) -> bool {
        let nets = self.net.contains(&o.net.network()) || o.net.contains(&self.net.network());
        let same_family = self.net.addr().is_ipv4() == o.net.addr().is_ipv4();
        fn agree<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
        }
        same_family
            && nets
            && agree(&self.port, &o.port)
            && agree(&self.transport, &o.transport)
            && agree(&self.listener, &o.listener)
    }

    /// At least as specific as `o` in every part, and more in one (meaningful for
    /// overlapping entries, where a longer prefix is a narrower network).
    pub fn dominates(&self, o: &SourceRule) -> bool {
        let ge = self.net.prefix_len() >= o.net.prefix_len()
            && (self.port.is_some() || o.port.is_none())
            && (self.transport.is_some() || o.transport.is_none())
            && (self.listener.is_some() || o.listener.is_none());
        ge && self.weight() > o.weight()
    }

    /// Entries of different peers that the most-specific rule cannot tell apart.
    pub fn ambiguous_with(&self, o: &SourceRule) -> bool {
        self.peer != o.peer && self.overlaps(o) && !self.dominates(o) && !o.dominates(self)
    }
}

/// Every source entry, most specific first: the first match names the peer.
#[derive(Debug, Clone, Default)]
pub struct SourceTable {
    rules: Vec<SourceRule>,
}

impl SourceTable {
    /// The entries of `peers` (as validated; entries naming an unknown listener are left
    /// out) plus `extra` (addresses found at run time).
    pub fn new<'a>(
        peers: impl Iterator<Item = &'a [PeerSource]>,
        listeners: &[ListenConfig],
        extra: Vec<SourceRule>,
    ) -> Self {
        let rules: Vec<SourceRule> = peers
            .enumerate()
            .flat_map(|(i, sources)| {
                sources
                    .iter()
                    .enumerate()
                    .filter_map(move |(j, s)| SourceRule::new(s, i, j, listeners))
            })
            .chain(extra)
            .collect();
        Self::sorted(rules)
    }

    /// Most specific first; stable, so equal weights keep configured entries before
    /// derived ones, then config order.
    fn sorted(mut rules: Vec<SourceRule>) -> Self {
        rules.sort_by_key(|r| (std::cmp::Reverse(r.weight()), r.entry == usize::MAX));
        SourceTable { rules }
    }

    /// The peer (config index) a message from `remote` over `transport`, arriving on
    /// listener `listener`, belongs to.
    pub fn lookup(
        &self,
        remote: SocketAddr,
        transport: Transport,
        listener: usize,
    ) -> Option<usize> {
        self.rules
            .iter()
            .find(|r| r.matches(remote, transport, listener))
            .map(|r| r.peer)
    }

    pub fn rules(&self) -> &[SourceRule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests;
