//! Start-up, the engine loop, and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::ShellEvent;
use super::dns::{DnsResult, PeerDns};
use super::net;
use super::trim::Trim;
use crate::b2bua::panic_guard::StepInput;
use crate::b2bua::{Engine, Input, Output};
use crate::config::{LoadedConfig, Transport};
use crate::media::relay::Relay;
use crate::observe::{CdrWriter, Metrics};
use crate::sip::Host;
use crate::transaction::Transmit;

/// Signalling events queued between the socket tasks and the engine before datagrams are
/// dropped (overload protection: the engine never sees a backlog older than this).
const QUEUE: usize = 65536;
/// After a burst, the allocator collects again this long after the burst's transactions
/// have expired (64*T1): one housekeeping sweep (5 s) to shrink the maps, and slack.
const TRIM_SLACK: Duration = Duration::from_secs(8);
/// CDR events queued for the writer thread before they are dropped and counted.
const CDR_QUEUE: usize = 65536;
/// After the drain ends calls, how long to wait for BYE transactions and CDR counters
/// before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// `veil run`: load, log, serve until SIGTERM/SIGINT. Returns the process exit code.
pub fn run(config: &Path) -> i32 {
    let loaded = match crate::config::load(config) {
        Ok(l) => l,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return 2;
        }
    };
    if let Err(e) = crate::observe::log::init(loaded.config.log.format, &loaded.config.log.level) {
        eprintln!("logging: {e}");
    }
    // A panic is logged where it happened, without a formatted message that may quote
    // peer data; the engine loop catches its own (`b2bua::panic_guard`).
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let panic = crate::b2bua::panic_guard::payload_text(info.payload());
        tracing::error!(at, panic, "panic");
    }));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(super::trim::on_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return 1;
        }
    };
    // Every event of the engine loop carries the instance (CONTRACT: logs name it).
    let span = tracing::info_span!("veil", instance = %loaded.config.instance);
    match rt.block_on(tracing::Instrument::instrument(serve(loaded), span)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "veil stopped");
            eprintln!("veil: {e}");
            1
        }
    }
}

/// Peer addresses for the engine's peer table on reload, without waiting for DNS: IP
/// addresses as written; a name that was already configured for that peer keeps its
/// previous first address (the refresh tasks resolve every name again at once and report
/// to the engine).
fn addresses_now(
    running: &LoadedConfig,
    loaded: &LoadedConfig,
    engine_peers: &HashMap<String, SocketAddr>,
) -> Vec<Option<SocketAddr>> {
    let same_name = |p: &crate::config::PeerConfig| {
        running
            .config
            .peers
            .iter()
            .any(|o| o.name == p.name && o.address.to_string() == p.address.to_string())
    };
    loaded
        .config
        .peers
        .iter()
        .map(|p| {
            let port =
                p.address
                    .port
                    .unwrap_or(if p.address.secure || p.transport == Transport::Tls {
                        5061
                    } else {
                        5060
                    });
            match &p.address.host {
                Host::V4(a) => Some(SocketAddr::new((*a).into(), port)),
                Host::V6(a) => Some(SocketAddr::new((*a).into(), port)),
                Host::Name(_) if same_name(p) => engine_peers.get(&p.name).copied(),
                Host::Name(_) => None,
            }
        })
        .collect()
}

/// The running service.
pub async fn serve(loaded: LoadedConfig) -> Result<(), String> {
    let cfg = Arc::new(loaded.config.clone());
    let metrics = Metrics::new(&cfg.instance).map_err(|e| format!("metrics: {e}"))?;
    let cdr = match &cfg.cdr.sqlite {
        Some(p) => {
            let opts = crate::observe::cdr::CdrOptions {
                retention: cfg.cdr.retention.map(|d| d.0),
                fsync_full: cfg.cdr.fsync == crate::config::CdrFsync::Full,
                spool_rows: cfg.cdr.spool_rows,
                metrics: metrics.cdr.clone(),
            };
            CdrWriter::start_with(p, &cfg.instance, CDR_QUEUE, opts)
                .map_err(|e| format!("cdr: {e}"))?
        }
        None => {
            tracing::warn!("cdr.sqlite not set: CDRs are not written");
            CdrWriter::disabled()
        }
    };
    let (ev_tx, mut ev_rx) = mpsc::channel::<ShellEvent>(QUEUE);
    let max = cfg.sip.max_message_size;

    let (bans_tx, bans_rx) = watch::channel(Arc::new(HashMap::new()));
    let gate = net::Gate {
        bans: bans_rx,
        metrics: metrics.clone(),
        queue: QUEUE,
        shed_at: cfg.security.overload_queue as usize,
    };
    let nofile = super::conn_limits::raise_nofile();
    if let Some(w) = super::conn_limits::fd_warning(&cfg, nofile) {
        tracing::warn!("{w}");
    }
    let limits = super::conn_limits::ConnLimits::new(&cfg, nofile)
        .with_gauge(metrics.sip_connections.clone());
    tracing::info!(
        nofile,
        max_connections = limits.total(),
        "file descriptor budget"
    );
    let stream_ctx = net::StreamCtx {
        events: ev_tx.clone(),
        max,
        idle: cfg.sip.connection_idle.0,
        limits: Arc::new(limits),
        stranger_idle: cfg.sip.stranger_idle.0,
        metrics: metrics.clone(),
    };
    let mut udp: HashMap<usize, Arc<UdpSocket>> = HashMap::new();
    let mut local: HashMap<usize, SocketAddr> = HashMap::new();
    for (i, l) in cfg.sip.listen.iter().enumerate() {
        local.insert(i, l.address);
        match l.transport {
            Transport::Udp => {
                let s = UdpSocket::bind(l.address)
                    .await
                    .map_err(|e| format!("listen {} udp {}: {e}", l.name, l.address))?;
                let s = Arc::new(s);
                udp.insert(i, s.clone());
                tokio::spawn(net::udp_loop(s, i, ev_tx.clone(), max, gate.clone()));
            }
            Transport::Tcp | Transport::Tls => {
                let acceptor = match (&l.tls, l.transport) {
                    (Some(t), Transport::Tls) => Some(
                        super::tls::acceptor(t)
                            .map_err(|e| format!("listen {} tls: {e}", l.name))?,
                    ),
                    (None, Transport::Tls) => {
                        return Err(format!(
                            "listen {}: transport tls needs a tls block",
                            l.name
                        ));
                    }
                    _ => None,
                };
                let s = TcpListener::bind(l.address).await.map_err(|e| {
                    format!(
                        "listen {} {} {}: {e}",
                        l.name,
                        l.transport.via_token(),
                        l.address
                    )
                })?;
                tokio::spawn(net::tcp_accept_loop(
                    s,
                    i,
                    l.transport,
                    acceptor,
                    stream_ctx.clone(),
                    gate.clone(),
                ));
            }
        }
        tracing::info!(name = %l.name, transport = ?l.transport, address = %l.address, "listening");
    }

    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let idle_after = Some(cfg.media.rtp_timeout.0).filter(|d| !d.is_zero());
    let relay = Relay::start_with(
        cfg.media.address,
        media_tx,
        metrics.clone(),
        crate::media::relay::RelayOptions {
            idle_after,
            tos: cfg.media.tos,
            bind6: cfg.media.address6,
            latch: crate::media::stream::LatchPolicy {
                latching: cfg.media.latching,
                relatch_after: cfg.media.relatch_after.0,
            },
        },
    );
    {
        let ev_tx = ev_tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = media_rx.recv().await {
                if ev_tx.send(ShellEvent::Media(ev)).await.is_err() {
                    break;
                }
            }
        });
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(addr) = cfg.metrics.listen {
        let m = metrics.clone();
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("metrics.listen {addr}: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = crate::observe::metrics::serve_listener(l, m, stop_rx).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        });
    }

    let mut dns = PeerDns::new(&cfg.dns)?;
    let (resolved, results) = dns.resolve_all(&cfg).await;
    let mut engine = Engine::new(
        cfg.clone(),
        Arc::new(loaded.policy.clone()),
        &resolved,
        metrics.clone(),
        Instant::now(),
        SystemTime::now(),
    );
    if let Some(h) = std::env::var("VEIL_TEST_PANIC_HEADER")
        .ok()
        .filter(|v| !v.is_empty())
    {
        tracing::warn!(header = %h, "test hook on: requests with this header make the engine panic");
        engine.set_panic_header(Some(h));
    }
    let mut io = Io {
        udp,
        local,
        tcp: HashMap::new(),
        tcp_by_remote: HashMap::new(),
        connecting: HashMap::new(),
        ctx: stream_ctx,
        tls: super::tls::Clients::build(&cfg)?,
        peer_names: peer_names(&cfg, &resolved),
    };
    for (peer, result) in results {
        io.learn_targets(&peer, &result);
        engine.set_peer_targets(&peer, result, Instant::now());
    }
    dns.restart(&cfg, false, &ev_tx);
    tracing::info!(instance = %cfg.instance, peers = cfg.peers.len(), "veil ready");
    // Listeners are bound: dependants of veil.service may start now.
    super::notify::notify("READY=1");

    let mut running = loaded;
    // Set once the drain has begun: the latest instant to exit even if calls hang on.
    let mut stop_by: Option<Instant> = None;
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut bans_seen = engine.ban_generation();
    // Memory back after a burst: messages handled since the last tick, and the tick.
    let mut trim = Trim::new(cfg.sip.timers.t1.0 * 64 + TRIM_SLACK);
    let mut handled = 0usize;
    let mut trim_tick = tokio::time::interval(super::trim::TICK);
    trim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = engine.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let stop_sleep = async {
            match stop_by {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = ev_rx.recv() => {
                let Some(ev) = ev else { break };
                let now = Instant::now();
                match ev {
                    ShellEvent::Sip { data, flow } => {
                        handled += 1;
                        let input = Input::Sip { data: &data, flow };
                        engine.guarded(StepInput::of(&input), now, |e| e.handle_input(input, now));
                    }
                    ShellEvent::Media(m) => {
                        let input = Input::Media(m);
                        engine.guarded(StepInput::of(&input), now, |e| e.handle_input(input, now));
                    }
                    ShellEvent::Dns { generation, peer, address, result } => {
                        if generation == dns.generation() {
                            dns.learn(&peer, address, &result);
                            io.learn_targets(&peer, &result);
                            engine.set_peer_targets(&peer, result, now);
                        }
                    }
                    other => {
                        if let Some((transport, remote)) = io.on_conn_event(other) {
                            engine.transport_failed(transport, remote, now);
                        }
                    }
                }
            }
            () = sleep => {
                let now = Instant::now();
                engine.guarded(StepInput::Timeout, now, |e| e.handle_timeout(now));
            }
            _ = trim_tick.tick() => {
                let queued = QUEUE - ev_tx.capacity();
                if trim.tick(handled.max(queued), Instant::now()) {
                    tracing::debug!(handled, queued, "after a burst: returning free memory");
                    super::trim::request();
                }
                handled = 0;
            }
            sig = async { tokio::select! { _ = sigterm.recv() => "SIGTERM", _ = sigint.recv() => "SIGINT" } } => {
                let now = Instant::now();
                if stop_by.is_none() {
                    tracing::info!(signal = sig, "shutting down gracefully");
                    super::notify::notify("STOPPING=1");
                    engine.drain(now);
                    stop_by = Some(crate::b2bua::deadline::after(
                        now,
                        running.config.calls.drain_timeout.0.saturating_add(SHUTDOWN_GRACE),
                    ));
                } else {
                    // A second signal: the operator does not want to wait for the drain.
                    tracing::info!(signal = sig, "second signal: ending all calls now");
                    engine.shutdown(now);
                    stop_by = stop_by.map(|t| t.min(crate::b2bua::deadline::after(now, SHUTDOWN_GRACE)));
                }
            }
            _ = sighup.recv() => {
                if stop_by.is_some() {
                    tracing::info!("SIGHUP ignored while shutting down");
                } else {
                    super::notify::notify("RELOADING=1");
                    if let Some((next, resolved, results)) = reload(&running, &mut engine, &mut dns, &ev_tx).await {
                        match super::tls::Clients::build(&next.config) {
                            Ok(clients) => io.tls = clients,
                            Err(e) => tracing::error!(error = %e, "reload: TLS client settings not applied"),
                        }
                        io.peer_names = peer_names(&next.config, &resolved);
                        for (peer, result) in &results {
                            io.learn_targets(peer, result);
                        }
                        running = next;
                    }
                    super::notify::notify("READY=1");
                }
            }
            () = stop_sleep => {
                tracing::warn!(calls = engine.call_count(), "drain did not finish in time; exiting");
                break;
            }
        }
        while let Some(out) = engine.poll_output() {
            match out {
                Output::Transmit(t) => io.transmit(t),
                Output::Media(cmd) => relay.command(cmd),
                Output::Cdr(ev) => cdr.send(ev),
            }
        }
        if engine.ban_generation() != bans_seen {
            bans_seen = engine.ban_generation();
            let _ = bans_tx.send(Arc::new(engine.bans(Instant::now())));
        }
        if stop_by.is_some() && engine.idle() {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let closing = cdr.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        cdr_dropped = cdr.dropped(),
        cdr_rows_lost = cdr.rows_lost(),
        cdr_write_errors = cdr.write_errors(),
        "veil stopped"
    );
    Ok(())
}

/// SIGHUP: re-read the config file the process was started with. On any error the running
/// config stays and every error is logged; otherwise new calls use the new config (calls
/// in progress keep theirs). Returns the config now in force, if it changed.
async fn reload(
    running: &LoadedConfig,
    engine: &mut Engine,
    dns: &mut PeerDns,
    ev_tx: &mpsc::Sender<ShellEvent>,
) -> Option<(
    LoadedConfig,
    Vec<Option<SocketAddr>>,
    Vec<(String, DnsResult)>,
)> {
    let path = running.path.clone();
    tracing::info!(config = %path.display(), "SIGHUP: reloading");
    let loaded = match crate::config::load(&path) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                tracing::error!(error = %e, "reload refused: config error");
            }
            tracing::error!(
                errors = errors.len(),
                "reload refused; the running config stays"
            );
            return None;
        }
    };
    let merged = match crate::config::reload::merge(&running.config, loaded) {
        Ok(m) => m,
        Err(errors) => {
            for e in &errors {
                tracing::error!(error = %e, "reload refused");
            }
            tracing::error!(
                errors = errors.len(),
                "reload refused; the running config stays"
            );
            return None;
        }
    };
    for key in &merged.needs_restart {
        tracing::warn!(key, "changed, but needs a restart: not applied");
    }
    for w in &merged.loaded.warnings {
        tracing::warn!(warning = %w, "config warning");
    }
    let resolved = addresses_now(running, &merged.loaded, &engine.peer_addresses());
    let cfg = Arc::new(merged.loaded.config.clone());
    engine.reconfigure(
        cfg.clone(),
        Arc::new(merged.loaded.policy.clone()),
        &resolved,
        Instant::now(),
    );
    let results = dns.restart(&cfg, true, ev_tx);
    for (peer, result) in &results {
        engine.set_peer_targets(peer, result.clone(), Instant::now());
    }
    tracing::info!(
        peers = cfg.peers.len(),
        rules = merged.loaded.policy.rules.len(),
        calls_in_progress = engine.call_count(),
        "config reloaded: new calls use it"
    );
    Some((merged.loaded, resolved, results))
}

/// Peer names by resolved address, to name the peer when a connection to it fails.
fn peer_names(
    cfg: &crate::config::Config,
    resolved: &[Option<SocketAddr>],
) -> HashMap<SocketAddr, String> {
    cfg.peers
        .iter()
        .zip(resolved)
        .filter_map(|(p, a)| a.map(|a| (a, p.name.clone())))
        .collect()
}

/// Where transmissions go: UDP sockets by listener, TCP/TLS connections by id or by
/// (transport, remote): one connection per target, reused for every later message.
struct Io {
    udp: HashMap<usize, Arc<UdpSocket>>,
    local: HashMap<usize, SocketAddr>,
    tcp: HashMap<u64, (Transport, SocketAddr, mpsc::UnboundedSender<Bytes>)>,
    tcp_by_remote: HashMap<(Transport, SocketAddr), u64>,
    /// Data waiting for an outbound connection to come up.
    connecting: HashMap<(Transport, SocketAddr), Vec<Bytes>>,
    ctx: net::StreamCtx,
    tls: super::tls::Clients,
    peer_names: HashMap<SocketAddr, String>,
}

impl Io {
    /// Remember the addresses a peer's name resolved to, so that a connection to any of
    /// them uses the peer's TLS settings and failures name the peer.
    fn learn_targets(&mut self, peer: &str, result: &DnsResult) {
        if let Ok(records) = result {
            for addr in records.iter().flat_map(|r| r.targets.iter()) {
                self.peer_names.insert(addr.addr, peer.to_string());
            }
        }
    }

    fn transmit(&mut self, t: Transmit) {
        match t.flow.transport {
            Transport::Udp => {
                let Some(s) = self
                    .udp
                    .get(&t.flow.listener)
                    .or_else(|| self.udp.values().next())
                else {
                    return;
                };
                if let Err(e) = s.try_send_to(&t.data, t.flow.remote) {
                    tracing::debug!(remote = %t.flow.remote, error = %e, "udp send failed");
                }
            }
            transport @ (Transport::Tcp | Transport::Tls) => {
                let target = (transport, t.flow.remote);
                let conn = t
                    .flow
                    .conn
                    .filter(|c| self.tcp.contains_key(c))
                    .or_else(|| self.tcp_by_remote.get(&target).copied());
                if let Some((_, _, w)) = conn.and_then(|c| self.tcp.get(&c)) {
                    let _ = w.send(t.data);
                    return;
                }
                let queue = self.connecting.entry(target).or_default();
                queue.push(t.data);
                if queue.len() == 1 {
                    let local = self
                        .local
                        .get(&t.flow.listener)
                        .copied()
                        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    let client = match transport {
                        Transport::Tls => self
                            .tls
                            .for_peer(self.peer_names.get(&t.flow.remote), t.flow.remote),
                        _ => None,
                    };
                    let peer = self
                        .peer_names
                        .get(&t.flow.remote)
                        .cloned()
                        .unwrap_or_else(|| "-".into());
                    tokio::spawn(net::tcp_connect(
                        local,
                        t.flow.listener,
                        transport,
                        t.flow.remote,
                        peer,
                        client,
                        self.ctx.clone(),
                    ));
                }
            }
        }
    }

    /// Book-keeping of connections; returns the target of a failed outbound connection,
    /// whose transactions the engine must fail.
    fn on_conn_event(&mut self, ev: ShellEvent) -> Option<(Transport, SocketAddr)> {
        match ev {
            ShellEvent::TcpUp {
                conn,
                transport,
                remote,
                writer,
            } => {
                for data in self
                    .connecting
                    .remove(&(transport, remote))
                    .unwrap_or_default()
                {
                    let _ = writer.send(data);
                }
                self.tcp.insert(conn, (transport, remote, writer));
                self.tcp_by_remote.insert((transport, remote), conn);
                None
            }
            ShellEvent::TcpDown { conn } => {
                if let Some((transport, remote, _)) = self.tcp.remove(&conn)
                    && self.tcp_by_remote.get(&(transport, remote)) == Some(&conn)
                {
                    self.tcp_by_remote.remove(&(transport, remote));
                }
                None
            }
            ShellEvent::TcpFailed { transport, remote } => {
                self.connecting.remove(&(transport, remote));
                Some((transport, remote))
            }
            ShellEvent::Sip { .. } | ShellEvent::Media(_) | ShellEvent::Dns { .. } => None,
        }
    }
}
