//! Peer names resolved per RFC 3263 (hickory-resolver): a name with no port and no
//! transport in its URI goes NAPTR -> SRV -> A/AAAA, a name with a transport but no port
//! SRV -> A/AAAA, a name with a port A/AAAA only. The result (targets with SRV priority
//! and weight) is handed to the engine, which orders it per call; each name is resolved
//! again when the shortest TTL of its answers runs out, and after a failure with backoff.
//! Resolution runs in tasks of its own: the engine is never blocked on DNS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{Name, TokioResolver};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ShellEvent;
use crate::b2bua::targets::{PeerTarget, TargetRecord};
use crate::config::{Config, DnsConfig, PeerConfig, Transport};
use crate::sip::Host;

/// Re-resolve no sooner than this after a success, whatever the TTL (a TTL of 0 would
/// otherwise mean a query loop).
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// ... and no later than this.
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// Retry after a failure: doubling from the first up to the last.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// What one resolution of a peer found, and until when it holds.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub records: Vec<TargetRecord>,
    pub valid_until: Instant,
}

/// The result of resolving one peer, as the engine takes it.
pub(crate) type DnsResult = Result<Vec<TargetRecord>, String>;

/// Build a resolver from `dns:` (the system's resolv.conf when no servers are given).
pub(crate) fn resolver(cfg: &DnsConfig) -> Result<TokioResolver, String> {
    let provider = TokioConnectionProvider::default();
    let mut builder = if cfg.servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| format!("dns: system resolver: {e}"))?
    } else {
        let mut rc = ResolverConfig::new();
        for s in &cfg.servers {
            rc.add_name_server(NameServerConfig::new(*s, Protocol::Udp));
            rc.add_name_server(NameServerConfig::new(*s, Protocol::Tcp));
        }
        TokioResolver::builder_with_config(rc, provider).with_options(ResolverOpts::default())
    };
    let opts = builder.options_mut();
    opts.timeout = cfg.timeout.0;
    opts.attempts = cfg.attempts as usize;
    opts.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
    Ok(builder.build())
}

/// The port a peer is reached at when neither the config nor SRV gives one.
fn default_port(p: &PeerConfig) -> u16 {
    if p.address.secure || p.transport == Transport::Tls {
        5061
    } else {
        5060
    }
}

/// NAPTR service and SRV prefix for the peer's transport (RFC 3263 §4.1, RFC 3261 §19.1.2
/// for sips).
fn service(t: Transport) -> (&'static str, &'static str) {
    match t {
        Transport::Udp => ("SIP+D2U", "_sip._udp"),
        Transport::Tcp => ("SIP+D2T", "_sip._tcp"),
        Transport::Tls => ("SIPS+D2T", "_sips._tcp"),
    }
}

/// An absolute name, so that no search domain is appended.
fn fqdn(name: &str) -> Result<Name, String> {
    let abs = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    Name::from_ascii(&abs).map_err(|e| format!("`{name}`: {e}"))
}

/// Resolve peer `p` (whose host is the name `host`) per RFC 3263.
pub(crate) async fn resolve_name(
    r: &TokioResolver,
    p: &PeerConfig,
    host: &str,
) -> Result<Resolved, String> {
    let name = fqdn(host)?;
    let t = p.transport;
    if let Some(port) = p.address.port {
        return address_records(r, &name, host, port, t).await;
    }
    let (naptr_service, srv_prefix) = service(t);
    let mut srv_name = None;
    let mut valid_until = None;
    if p.address.transport.is_none() {
        // NAPTR: only "S" records of the service the peer's transport allows; the one
        // with the lowest order, then preference, names the SRV to look up.
        if let Ok(lookup) = r.lookup(name.clone(), RecordType::NAPTR).await {
            let mut found: Vec<_> = lookup
                .iter()
                .filter_map(|rd| match rd {
                    RData::NAPTR(n)
                        if n.flags().eq_ignore_ascii_case(b"s")
                            && n.services().eq_ignore_ascii_case(naptr_service.as_bytes()) =>
                    {
                        Some((n.order(), n.preference(), n.replacement().clone()))
                    }
                    _ => None,
                })
                .collect();
            found.sort_by_key(|(o, p, _)| (*o, *p));
            if let Some((_, _, repl)) = found.into_iter().next() {
                valid_until = Some(lookup.valid_until());
                srv_name = Some(repl);
            }
        }
    }
    let srv_name = match srv_name {
        Some(n) => n,
        None => fqdn(&format!("{srv_prefix}.{}", host.trim_end_matches('.')))?,
    };
    match srv_records(r, &srv_name, t).await {
        Ok(mut res) => {
            if let Some(v) = valid_until {
                res.valid_until = res.valid_until.min(v);
            }
            Ok(res)
        }
        // No SRV: the name's own addresses at the default port (RFC 3263 §4.2).
        Err(SrvError::None) => address_records(r, &name, host, default_port(p), t).await,
        Err(SrvError::Failed(e)) => Err(e),
    }
}

enum SrvError {
    /// The name has no (usable) SRV records.
    None,
    Failed(String),
}

async fn srv_records(r: &TokioResolver, name: &Name, t: Transport) -> Result<Resolved, SrvError> {
    let lookup = match r.srv_lookup(name.clone()).await {
        Ok(l) => l,
        Err(e) if e.is_no_records_found() => return Err(SrvError::None),
        Err(e) => return Err(SrvError::Failed(format!("SRV {name}: {e}"))),
    };
    let mut valid_until = lookup.as_lookup().valid_until();
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for srv in lookup.iter() {
        // "." as target: the service is decidedly not available at this domain.
        if srv.target().is_root() {
            continue;
        }
        let target = srv.target().to_ascii();
        match address_records(r, srv.target(), &target, srv.port(), t).await {
            Ok(res) => {
                valid_until = valid_until.min(res.valid_until);
                for mut rec in res.records {
                    rec.priority = srv.priority();
                    rec.weight = srv.weight();
                    records.push(rec);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if records.is_empty() {
        if errors.is_empty() {
            return Err(SrvError::None);
        }
        return Err(SrvError::Failed(errors.join("; ")));
    }
    Ok(Resolved {
        records,
        valid_until,
    })
}

/// A/AAAA of `name`: one record with every address at `port`.
async fn address_records(
    r: &TokioResolver,
    name: &Name,
    host: &str,
    port: u16,
    t: Transport,
) -> Result<Resolved, String> {
    let lookup = r
        .lookup_ip(name.clone())
        .await
        .map_err(|e| format!("A/AAAA {host}: {e}"))?;
    let targets: Vec<PeerTarget> = lookup
        .iter()
        .map(|ip| PeerTarget {
            addr: SocketAddr::new(ip, port),
            transport: t,
        })
        .collect();
    if targets.is_empty() {
        return Err(format!("A/AAAA {host}: no address"));
    }
    Ok(Resolved {
        records: vec![TargetRecord {
            host: host.trim_end_matches('.').to_string(),
            priority: 0,
            weight: 0,
            targets,
        }],
        valid_until: lookup.valid_until(),
    })
}

/// When to resolve again after `res` (at `now`).
fn next_refresh(res: &Result<Resolved, String>, failures: u32, now: Instant) -> Duration {
    match res {
        Ok(r) => r
            .valid_until
            .saturating_duration_since(now)
            .clamp(MIN_REFRESH, MAX_REFRESH),
        Err(_) => FIRST_RETRY
            .saturating_mul(1 << failures.min(6))
            .min(MAX_RETRY),
    }
}

/// The DNS side of the shell: the resolver, and one refresh task per peer that has a
/// name. A reload starts a new generation; events of older ones are ignored.
pub(crate) struct PeerDns {
    resolver: Arc<TokioResolver>,
    cfg: DnsConfig,
    generation: u64,
    tasks: Vec<JoinHandle<()>>,
    /// The last targets found per peer name, with the address they were found for:
    /// kept across a reload so that new calls do not wait for the new round.
    known: HashMap<String, (String, Vec<TargetRecord>)>,
}

impl Drop for PeerDns {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl PeerDns {
    pub(crate) fn new(cfg: &DnsConfig) -> Result<PeerDns, String> {
        Ok(PeerDns {
            resolver: Arc::new(resolver(cfg)?),
            cfg: cfg.clone(),
            generation: 0,
            tasks: Vec::new(),
            known: HashMap::new(),
        })
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The targets of peer `name` as last found (remembered for reloads).
    pub(crate) fn learn(&mut self, name: &str, address: String, result: &DnsResult) {
        match result {
            Ok(records) => {
                self.known
                    .insert(name.to_string(), (address, records.clone()));
            }
            Err(_) => {
                self.known.remove(name);
            }
        }
    }

    /// Resolve every peer of `cfg` that has a name, waiting for the answers (at start,
    /// before the engine runs): `resolved[i]` is peer i's first address (what the engine
    /// starts with), the list the full results for [`crate::b2bua::Engine::set_peer_targets`].
    pub(crate) async fn resolve_all(
        &mut self,
        cfg: &Config,
    ) -> (Vec<Option<SocketAddr>>, Vec<(String, DnsResult)>) {
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in cfg.peers.iter().enumerate() {
            if let Host::Name(host) = &p.address.host {
                let (r, p, host) = (self.resolver.clone(), p.clone(), host.clone());
                set.spawn(async move { (i, resolve_name(&r, &p, &host).await) });
            }
        }
        let mut done: HashMap<usize, Result<Resolved, String>> = HashMap::new();
        while let Some(Ok((i, res))) = set.join_next().await {
            done.insert(i, res);
        }
        let mut first = Vec::new();
        let mut results = Vec::new();
        for (i, p) in cfg.peers.iter().enumerate() {
            first.push(match (&p.address.host, done.get(&i)) {
                (Host::V4(a), _) => Some(SocketAddr::new((*a).into(), default_or(p))),
                (Host::V6(a), _) => Some(SocketAddr::new((*a).into(), default_or(p))),
                (Host::Name(_), Some(Ok(r))) => r
                    .records
                    .iter()
                    .flat_map(|r| r.targets.first())
                    .map(|t| t.addr)
                    .next(),
                (Host::Name(_), _) => None,
            });
            if let Some(res) = done.get(&i) {
                let result = res.clone().map(|r| r.records);
                self.learn(&p.name, p.address.to_string(), &result);
                results.push((p.name.clone(), result));
            }
        }
        (first, results)
    }

    /// Start the refresh tasks for `cfg` (replacing those of the previous config). With
    /// `fresh` the first resolution is immediate (after a reload), otherwise it waits for
    /// the TTL of what [`Self::resolve_all`] found. A changed `dns:` section takes a new
    /// resolver. Returns the remembered targets of peers whose address did not change,
    /// for the engine to keep using until the new round reports.
    pub(crate) fn restart(
        &mut self,
        cfg: &Config,
        fresh: bool,
        tx: &mpsc::Sender<ShellEvent>,
    ) -> Vec<(String, DnsResult)> {
        if cfg.dns != self.cfg {
            match resolver(&cfg.dns) {
                Ok(r) => {
                    self.resolver = Arc::new(r);
                    self.cfg = cfg.dns.clone();
                }
                Err(e) => tracing::error!(error = %e, "dns settings not applied"),
            }
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.generation += 1;
        let mut keep = Vec::new();
        for p in &cfg.peers {
            let Host::Name(host) = &p.address.host else {
                continue;
            };
            // After start, the first round is at most MIN_REFRESH old: follow its TTL from
            // the next round on.
            let first = if fresh { Duration::ZERO } else { MIN_REFRESH };
            if let Some((addr, recs)) = self.known.get(&p.name)
                && *addr == p.address.to_string()
            {
                keep.push((p.name.clone(), Ok(recs.clone())));
            }
            self.tasks.push(tokio::spawn(refresh(
                self.resolver.clone(),
                p.clone(),
                host.clone(),
                first,
                self.generation,
                tx.clone(),
            )));
        }
        keep
    }
}

/// For `veil route`: the DNS resolution (RFC 3263) of those of `targets` whose address is
/// a name, one line per address in priority order (weights shown: each call draws its
/// own order within a priority). Empty when no target has a name.
pub fn describe_dns(cfg: &Config, targets: &[String]) -> String {
    use std::fmt::Write as _;
    let named: Vec<(&PeerConfig, &str)> = targets
        .iter()
        .filter_map(|t| cfg.peers.iter().find(|p| &p.name == t))
        .filter_map(|p| match &p.address.host {
            Host::Name(n) => Some((p, n.as_str())),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return String::new();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return format!("  (DNS not resolved: {e})\n"),
    };
    let mut out = String::from("  DNS (RFC 3263), by priority:\n");
    rt.block_on(async {
        let r = match resolver(&cfg.dns) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "    ({e})");
                return;
            }
        };
        for (p, host) in named {
            match resolve_name(&r, p, host).await {
                Ok(res) => {
                    let mut recs = res.records;
                    recs.sort_by_key(|r| r.priority);
                    for rec in recs {
                        for t in &rec.targets {
                            let _ = writeln!(
                                out,
                                "    {}: {host} -> {t} ({}, priority {}, weight {})",
                                p.name, rec.host, rec.priority, rec.weight
                            );
                        }
                    }
                }
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "    {}: {host} does not resolve ({e}): skipped like a dead target",
                        p.name
                    );
                }
            }
        }
    });
    out
}

fn default_or(p: &PeerConfig) -> u16 {
    p.address.port.unwrap_or_else(|| default_port(p))
}

/// Resolve peer `p` again and again: after `first`, then when its answers expire (or,
/// after a failure, with backoff), telling the engine task each time.
async fn refresh(
    r: Arc<TokioResolver>,
    p: PeerConfig,
    host: String,
    first: Duration,
    generation: u64,
    tx: mpsc::Sender<ShellEvent>,
) {
    tokio::time::sleep(first).await;
    let mut failures = 0u32;
    loop {
        let res = resolve_name(&r, &p, &host).await;
        let wait = next_refresh(&res, failures, Instant::now());
        failures = if res.is_ok() { 0 } else { failures + 1 };
        let ev = ShellEvent::Dns {
            generation,
            peer: p.name.clone(),
            address: p.address.to_string(),
            result: res.map(|r| r.records),
        };
        if tx.send(ev).await.is_err() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_follows_ttl_within_bounds_and_backs_off() {
        let now = Instant::now();
        let ok = |secs| {
            Ok(Resolved {
                records: Vec::new(),
                valid_until: now + Duration::from_secs(secs),
            })
        };
        assert_eq!(next_refresh(&ok(60), 0, now), Duration::from_secs(60));
        assert_eq!(next_refresh(&ok(0), 0, now), MIN_REFRESH);
        assert_eq!(next_refresh(&ok(86400), 0, now), MAX_REFRESH);
        let err: Result<Resolved, String> = Err("x".into());
        assert_eq!(next_refresh(&err, 0, now), Duration::from_secs(1));
        assert_eq!(next_refresh(&err, 3, now), Duration::from_secs(8));
        assert_eq!(next_refresh(&err, 30, now), MAX_RETRY);
    }

    #[test]
    fn services_per_transport() {
        assert_eq!(service(Transport::Udp), ("SIP+D2U", "_sip._udp"));
        assert_eq!(service(Transport::Tcp), ("SIP+D2T", "_sip._tcp"));
        assert_eq!(service(Transport::Tls), ("SIPS+D2T", "_sips._tcp"));
        assert_eq!(fqdn("a.example").unwrap().to_ascii(), "a.example.");
    }
}
