//! The peers as the engine uses them: who a source address belongs to, how a peer is
//! reached (listener, transport, resolved address), and which targets are resting after
//! a 503 with Retry-After.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::source::{SourceRule, SourceTable};
use crate::config::{Config, ListenConfig, PeerConfig, Transport};
use crate::sip::uri::{write_host, write_u32};
use crate::sip::{Host, SipUri};
use crate::transaction::Flow;

use super::header_policy::HeaderFilter;
use super::targets::{PeerTarget, TargetRecord};

#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub cfg: PeerConfig,
    pub listener: usize,
    pub transport: Transport,
    /// Resolved by the shell at start; `None` = unreachable (skipped in routing).
    pub addr: Option<SocketAddr>,
    /// Where the peer is reached, as the shell's DNS resolution last found it (one record
    /// with `addr` for a peer written as an IP address); empty = no target (failed over).
    pub records: Vec<TargetRecord>,
}

impl Peer {
    pub fn flow(&self) -> Option<Flow> {
        Some(Flow {
            listener: self.listener,
            transport: self.transport,
            remote: self.addr?,
            conn: None,
        })
    }

    /// Request-URI towards this peer: the user at the peer's configured host.
    pub fn uri_for(&self, user: &str) -> SipUri {
        let mut uri = SipUri::new(self.cfg.address.host.clone(), self.cfg.address.port);
        uri.secure = self.cfg.address.secure;
        if !user.is_empty() {
            uri.user = Some(user.to_string());
        }
        match self.transport {
            Transport::Tcp => uri.params.push(("transport".into(), Some("tcp".into()))),
            // A sips: URI says TLS already; a sip: one names it (RFC 3261 §26.2.2).
            Transport::Tls if !uri.secure => {
                uri.params.push(("transport".into(), Some("tls".into())))
            }
            _ => {}
        }
        uri
    }
}

/// A listener as the engine needs it: what to write into Via/Contact.
#[derive(Debug, Clone)]
pub struct Listener {
    pub transport: Transport,
    pub host: Host,
    pub port: u16,
}

impl Listener {
    pub fn sent_by(&self) -> String {
        let mut s = String::with_capacity(24);
        self.write_sent_by(&mut s);
        s
    }

    /// `host:port`, written where it is needed (every Via and Contact veil sends).
    pub fn write_sent_by(&self, out: &mut String) {
        write_host(out, &self.host);
        out.push(':');
        write_u32(out, self.port.into());
    }
}

#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub peers: Vec<Peer>,
    pub listeners: Vec<Listener>,
    /// Who inbound traffic belongs to: every `sources` entry, and the addresses of peers
    /// named by DNS without `sources`, most specific first.
    sources: SourceTable,
    /// The listeners as configured (for rebuilding `sources` after a DNS update).
    listen: Vec<ListenConfig>,
}

/// Parse `advertise` (`host` or `host:port`, IPv6 in brackets) into host and port.
fn parse_advertise(s: &str, default_port: u16) -> Host {
    let _ = default_port;
    let host = if let Some(rest) = s.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if s.matches(':').count() == 1 {
        s.split(':').next().unwrap_or(s)
    } else {
        s
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => Host::from(ip),
        Err(_) => Host::Name(host.to_string()),
    }
}

fn advertise_port(s: &str, default_port: u16) -> u16 {
    let tail = if let Some(rest) = s.strip_prefix('[') {
        rest.split_once("]:").map(|(_, p)| p)
    } else if s.matches(':').count() == 1 {
        s.split_once(':').map(|(_, p)| p)
    } else {
        None
    };
    tail.and_then(|p| p.parse().ok()).unwrap_or(default_port)
}

impl Peers {
    /// Build from a validated config; `resolved[i]` is peer i's address as resolved by the shell.
    pub fn new(cfg: &Config, resolved: &[Option<SocketAddr>]) -> Peers {
        let listeners = cfg
            .sip
            .listen
            .iter()
            .map(|l| {
                let (host, port) = match &l.advertise {
                    Some(a) => (
                        parse_advertise(a, l.address.port()),
                        advertise_port(a, l.address.port()),
                    ),
                    None => (Host::from(l.address.ip()), l.address.port()),
                };
                Listener {
                    transport: l.transport,
                    host,
                    port,
                }
            })
            .collect();
        let peers = cfg
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let listener = p
                    .listen
                    .as_ref()
                    .and_then(|n| cfg.sip.listen.iter().position(|l| &l.name == n))
                    .or_else(|| {
                        cfg.sip
                            .listen
                            .iter()
                            .position(|l| l.transport == p.transport)
                    })
                    .unwrap_or(0);
                let addr = resolved.get(i).copied().flatten();
                let records = addr
                    .map(|addr| {
                        let target = PeerTarget {
                            addr,
                            transport: p.transport,
                        };
                        vec![TargetRecord::fixed(p.address.host.to_string(), target)]
                    })
                    .unwrap_or_default();
                Peer {
                    name: p.name.clone(),
                    cfg: p.clone(),
                    listener,
                    transport: p.transport,
                    addr,
                    records,
                }
            })
            .collect();
        let mut table = Peers {
            peers,
            listeners,
            sources: SourceTable::default(),
            listen: cfg.sip.listen.clone(),
        };
        table.index_sources();
        table
    }

    /// Rebuild `sources`: the configured entries, and for a peer without any, the
    /// addresses it was last resolved to.
    fn index_sources(&mut self) {
        let derived = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.cfg.sources.is_empty())
            .flat_map(|(i, p)| {
                let mut ips: Vec<IpAddr> = p.addr.map(|a| a.ip()).into_iter().collect();
                ips.extend(
                    p.records
                        .iter()
                        .flat_map(|r| r.targets.iter().map(|t| t.addr.ip())),
                );
                ips.sort_unstable();
                ips.dedup();
                ips.into_iter().map(move |ip| SourceRule::derived(ip, i))
            })
            .collect();
        let configured = self.peers.iter().map(|p| p.cfg.sources.as_slice());
        self.sources = SourceTable::new(configured, &self.listen, derived);
    }

    /// The peer a message arriving on `flow` comes from: the most specific `sources`
    /// entry matching its source address and port, transport and listener.
    pub fn identify(&self, flow: &Flow) -> Option<usize> {
        self.sources
            .lookup(flow.remote, flow.transport, flow.listener)
    }

    /// The same table with peer `i`'s targets replaced (a DNS update): `addr` becomes the
    /// first address found, or stays as it was when nothing was found.
    pub fn with_records(&self, i: usize, records: Vec<TargetRecord>) -> Peers {
        let mut next = self.clone();
        if let Some(p) = next.peers.get_mut(i) {
            if let Some(first) = records.iter().flat_map(|r| r.targets.first()).next() {
                p.addr = Some(first.addr);
            }
            p.records = records;
        }
        next.index_sources();
        next
    }

    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.peers.iter().position(|p| p.name == name)
    }

    /// Header rules for a message from peer `from` to peer `to`.
    pub fn filter(&self, from: usize, to: usize) -> HeaderFilter {
        let (f, t) = (&self.peers[from].cfg, &self.peers[to].cfg);
        HeaderFilter {
            allow: f
                .headers
                .allow
                .iter()
                .chain(t.headers.allow.iter())
                .cloned()
                .collect(),
            strip: f
                .headers
                .strip
                .iter()
                .chain(t.headers.strip.iter())
                .cloned()
                .collect(),
            from_trusted: f.trusted,
        }
    }

    /// Is `host:port` one of veil's own advertised addresses (loop detection)?
    pub fn is_own(&self, host: &Host, port: Option<u16>) -> bool {
        self.listeners
            .iter()
            .any(|l| &l.host == host && port.unwrap_or(5060) == l.port)
    }
}

/// Parse a Retry-After value (`120`, `120;duration=60`, `120 (comment)`).
pub fn retry_after(v: &str) -> Option<Duration> {
    let digits: String = v
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_forms() {
        assert_eq!(
            parse_advertise("203.0.113.10:5080", 5060),
            Host::V4("203.0.113.10".parse().unwrap())
        );
        assert_eq!(advertise_port("203.0.113.10:5080", 5060), 5080);
        assert_eq!(advertise_port("203.0.113.10", 5060), 5060);
        assert_eq!(
            parse_advertise("[2001:db8::1]:5070", 5060),
            Host::V6("2001:db8::1".parse().unwrap())
        );
        assert_eq!(advertise_port("[2001:db8::1]:5070", 5060), 5070);
        assert_eq!(
            parse_advertise("sbc.example.com", 5060),
            Host::Name("sbc.example.com".into())
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("30;duration=10"), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("x"), None);
    }
}
