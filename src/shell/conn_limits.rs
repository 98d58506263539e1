//! Caps on accepted TCP/TLS connections (issue 15), so that no source, and no number of
//! sources, can take the file descriptors the media relay needs: a total cap, a cap per
//! source IP (strangers get `sip.max_connections_per_source`, a peer its
//! `max_connections`), and the RLIMIT_NOFILE budget that sizes them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::config::source::SourceTable;
use crate::config::{Config, Transport};

/// Descriptors kept free besides relay sockets and connections: listeners, the CDR
/// database and its WAL, the metrics server, DNS, logs, the runtime itself.
const FD_HEADROOM: u64 = 128;

/// Why a connection was closed at accept (label of `veil_sip_connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `sip.max_connections` (or the fd budget) reached.
    Total,
    /// The source's own cap reached.
    PerSource,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "max_connections",
            Refusal::PerSource => "per_source",
        }
    }
}

#[derive(Default)]
struct Open {
    total: u32,
    /// By source IP and the peer it was identified as (`None`: a stranger), so that a
    /// stranger sharing a peer's address counts apart from the peer.
    by_ip: HashMap<(IpAddr, Option<usize>), u32>,
}

/// The caps and what is open now; shared by every accept loop.
pub(super) struct ConnLimits {
    total: u32,
    stranger: u32,
    /// Who a connection comes from, as the engine identifies peers (`config::source`).
    sources: SourceTable,
    /// `max_connections` by peer index.
    caps: Vec<u32>,
    open: Mutex<Open>,
    /// `veil_sip_connections`, kept equal to `open.total`.
    gauge: Option<prometheus::IntGauge>,
}

impl ConnLimits {
    /// The caps of `cfg`, the total bounded by what `nofile` leaves after the relay's ports.
    pub fn new(cfg: &Config, nofile: u64) -> ConnLimits {
        let sources = SourceTable::new(
            cfg.peers.iter().map(|p| p.sources.as_slice()),
            &cfg.sip.listen,
            Vec::new(),
        );
        let budget = connection_budget(cfg, nofile);
        ConnLimits {
            total: cfg.sip.max_connections.min(budget),
            stranger: cfg.sip.max_connections_per_source,
            sources,
            caps: cfg.peers.iter().map(|p| p.max_connections).collect(),
            open: Mutex::new(Open::default()),
            gauge: None,
        }
    }

    /// The same, mirroring the open count in `gauge`.
    pub fn with_gauge(mut self, gauge: prometheus::IntGauge) -> ConnLimits {
        self.gauge = Some(gauge);
        self
    }

    /// The effective total cap.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// The peer a connection from `remote` accepted on `listener` belongs to.
    pub fn peer_of(
        &self,
        remote: SocketAddr,
        transport: Transport,
        listener: usize,
    ) -> Option<usize> {
        self.sources.lookup(remote, transport, listener)
    }

    /// Count a new connection from `remote` (identified as `peer`, see [`Self::peer_of`]),
    /// or say which cap it would break. The slot releases itself when dropped (when the
    /// connection task ends).
    pub fn admit(
        self: &Arc<Self>,
        remote: SocketAddr,
        peer: Option<usize>,
    ) -> Result<Slot, Refusal> {
        let cap = peer
            .and_then(|i| self.caps.get(i).copied())
            .unwrap_or(self.stranger);
        let key = (remote.ip(), peer);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.total {
            return Err(Refusal::Total);
        }
        let n = open.by_ip.entry(key).or_insert(0);
        if *n >= cap {
            return Err(Refusal::PerSource);
        }
        *n += 1;
        open.total += 1;
        if let Some(g) = &self.gauge {
            g.set(i64::from(open.total));
        }
        Ok(Slot {
            limits: self.clone(),
            key,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open(&self) -> u32 {
        self.open.lock().map(|o| o.total).unwrap_or(0)
    }
}

/// One admitted connection; dropping it gives its place back.
pub(super) struct Slot {
    limits: Arc<ConnLimits>,
    key: (IpAddr, Option<usize>),
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(g) = &self.limits.gauge {
            g.set(i64::from(open.total));
        }
        if let Some(n) = open.by_ip.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_ip.remove(&self.key);
            }
        }
    }
}

/// Relay sockets veil may open: one per media port, twice with an IPv6 relay address.
fn relay_sockets(cfg: &Config) -> u64 {
    let ports = u64::from(cfg.media.ports.last.saturating_sub(cfg.media.ports.first)) + 1;
    if cfg.media.address6.is_some() {
        ports * 2
    } else {
        ports
    }
}

/// Connections that fit in `nofile` after the relay's reserve; at least a quarter of
/// `nofile`, so that a tight limit still leaves signalling some room.
fn connection_budget(cfg: &Config, nofile: u64) -> u32 {
    let left = nofile.saturating_sub(relay_sockets(cfg) + FD_HEADROOM);
    u32::try_from(left.max(nofile / 4)).unwrap_or(u32::MAX)
}

/// The warning for `veil check` and startup when the relay's ports plus the connection
/// cap do not fit in `nofile`; `None` when they do.
pub(crate) fn fd_warning(cfg: &Config, nofile: u64) -> Option<String> {
    let need = relay_sockets(cfg) + u64::from(cfg.sip.max_connections) + FD_HEADROOM;
    (need > nofile).then(|| {
        format!(
            "media ports ({}) plus sip.max_connections ({}) plus {FD_HEADROOM} need {need} file \
             descriptors, but RLIMIT_NOFILE is {nofile}: connections are capped at {}; raise \
             LimitNOFILE or lower the ports or connections",
            relay_sockets(cfg),
            cfg.sip.max_connections,
            cfg.sip.max_connections.min(connection_budget(cfg, nofile)),
        )
    })
}

/// Raise the soft RLIMIT_NOFILE to the hard one and return the resulting soft limit
/// (1024, the usual default, when it cannot be read).
pub(crate) fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
    }
    r.rlim_cur
}

/// The soft RLIMIT_NOFILE now, without changing it (for `veil check`).
pub(crate) fn nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 1024;
    }
    // `veil run` raises the soft limit to the hard one; that is what it will have.
    r.rlim_max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(extra: &str) -> String {
        format!(
            "sip:\n  listen:\n    - {{name: t, transport: tcp, address: 127.0.0.1:5060}}\n{extra}\
             media:\n  ports: 30000-30999\npeers:\n  - name: pbx\n    address: 10.0.0.1\n    \
             transport: tcp\n    sources: [10.0.0.0/24]\n    max_connections: 3\npolicy: p.yaml\n"
        )
    }

    fn cfg(extra: &str) -> Config {
        serde_saphyr::from_str(&yaml(extra)).expect("config")
    }

    /// Admit a TCP connection from `ip` (an ephemeral port) on listener 0.
    fn admit(l: &Arc<ConnLimits>, ip: IpAddr) -> Result<Slot, Refusal> {
        admit_from(l, SocketAddr::new(ip, 40000))
    }

    fn admit_from(l: &Arc<ConnLimits>, remote: SocketAddr) -> Result<Slot, Refusal> {
        l.admit(remote, l.peer_of(remote, Transport::Tcp, 0))
    }

    #[test]
    fn a_port_bound_peer_leaves_its_address_s_other_ports_strangers() {
        let c = yaml("  max_connections_per_source: 1\n")
            .replace("sources: [10.0.0.0/24]", "sources: [\"10.0.0.7:5060\"]");
        let c: Config = serde_saphyr::from_str(&c).expect("config");
        let l = Arc::new(ConnLimits::new(&c, 100_000));
        let peer: SocketAddr = "10.0.0.7:5060".parse().unwrap();
        let held: Vec<_> = (0..3)
            .map(|_| admit_from(&l, peer).expect("peer"))
            .collect();
        let other: SocketAddr = "10.0.0.7:40000".parse().unwrap();
        let _s = admit_from(&l, other).expect("stranger on the peer's address");
        assert_eq!(admit_from(&l, other).err(), Some(Refusal::PerSource));
        drop(held);
    }

    #[test]
    fn stranger_and_peer_caps_and_release() {
        let l = Arc::new(ConnLimits::new(
            &cfg("  max_connections_per_source: 2\n"),
            100_000,
        ));
        let s: IpAddr = "192.0.2.9".parse().unwrap();
        let p: IpAddr = "10.0.0.7".parse().unwrap();
        let a = admit(&l, s).expect("first");
        let _b = admit(&l, s).expect("second");
        assert_eq!(admit(&l, s).err(), Some(Refusal::PerSource));
        let peer: Vec<_> = (0..3).map(|_| admit(&l, p).expect("peer")).collect();
        assert_eq!(admit(&l, p).err(), Some(Refusal::PerSource));
        assert_eq!(l.open(), 5);
        drop(a);
        assert!(admit(&l, s).is_ok(), "a closed connection frees its place");
        drop(peer);
        assert_eq!(l.open(), 1, "only the stranger's second slot is held");
    }

    #[test]
    fn total_cap_is_bounded_by_the_fd_budget() {
        // 1000 relay ports + 128 headroom in 1200 descriptors leave 72, below a quarter.
        let c = cfg("");
        let l = Arc::new(ConnLimits::new(&c, 1200));
        assert_eq!(l.total, 300);
        assert!(fd_warning(&c, 1200).is_some());
        assert!(fd_warning(&c, 1_000_000).is_none());
        let held: Vec<_> = (0..300u32)
            .map(|i| {
                let ip = IpAddr::from([192, 0, 2, (i % 200) as u8]);
                admit(&l, ip)
            })
            .collect();
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(
            admit(&l, "198.51.100.1".parse().unwrap()).err(),
            Some(Refusal::Total)
        );
    }
}
