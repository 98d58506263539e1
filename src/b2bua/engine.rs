//! Engine state and the input loop: parse, hand to the transaction layer, act on its events.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::config::Config;
use crate::fastmap::FastMap;
use crate::media::ports::PortPool;
use crate::media::{MediaEvent, StreamId};
use crate::observe::Metrics;
use crate::policy::Policy;
use crate::sip::{Message, Response, SipHeaders};
use crate::transaction::{
    ClientTxId, Flow, ServerTxId, TransactionLayer, Transmit, TxConfig, TxEvent,
};

use super::call::Call;
use super::call_timers::{CallDeadlines, CallTimer};
use super::deadline::after;
use super::ids::IdGen;
use super::peers::Peers;
use super::teardown::Closing;
use super::{Input, Output};
use crate::security::{BanReason, DropReason};

/// Engine timers. Each carries enough to be recognised as stale after the call moved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// Look at the deadlines of call `key` (`Call::deadlines`).
    Call,
    /// Stream counters did not all come back from the relay: write the CDR anyway.
    CloseCdr,
    /// `calls.drain_timeout` after [`Engine::drain`]: end what is left (key 0).
    Drain,
    /// Send the next OPTIONS keep-alive to peer `peer` (index in the current peer table).
    Keepalive { peer: u32 },
    /// Periodic sweep of bans, rate-limit state and oversized maps (key 0).
    Housekeeping,
}

pub struct Engine {
    pub(super) cfg: Arc<Config>,
    pub(super) policy: Arc<Policy>,
    /// The current peer table (replaced on reload; each call keeps its own).
    pub(super) peers: Arc<Peers>,
    /// Targets not routed to before the given instant (503 + Retry-After), by peer name
    /// and transport address: one resting address of a peer leaves its others in use.
    pub(super) resting: HashMap<(String, SocketAddr), Instant>,
    pub(super) media_ip: IpAddr,
    /// SDP address for legs over IPv6 (`media.advertise6` or `media.address6`).
    pub(super) media_ip6: Option<IpAddr>,
    pub(super) tx: TransactionLayer,
    pub(super) calls: FastMap<u64, Call>,
    /// Leg A dialogs by (Call-ID, caller's From tag).
    pub(super) a_index: FastMap<(String, String), u64>,
    /// Leg B dialogs by veil's Call-ID.
    pub(super) b_index: FastMap<String, u64>,
    pub(super) stx_calls: FastMap<ServerTxId, u64>,
    /// Who each client transaction of veil's belongs to (`owner.rs`).
    pub(super) owners: FastMap<ClientTxId, super::owner::TxOwner>,
    pub(super) stream_calls: FastMap<StreamId, u64>,
    /// Ended calls whose stream counters are still on their way back from the relay.
    pub(super) closing: FastMap<u64, Closing>,
    pub(super) ports: PortPool,
    pub(super) ids: IdGen,
    pub(super) next_key: u64,
    pub(super) next_stream: u64,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    pub(super) out: VecDeque<Output>,
    pub(super) metrics: Metrics,
    clock: (Instant, SystemTime),
    /// Shutting down: new calls are refused with 503.
    pub(super) draining: bool,
    /// Digest challenges answered towards peers (`auth.rs`).
    pub(super) auth: super::auth::AuthState,
    /// Peers whose keep-alive timed out: skipped by routing until they answer again.
    pub(super) down: std::collections::HashSet<String>,
    /// Where `nat: true` peers' traffic last came from.
    pub(super) nat_sources: HashMap<String, SocketAddr>,
    /// Keep-alive timers carry this as their key: a reload bumps it, so the chains armed
    /// for the old peer table (by index) stop and new ones start.
    pub(super) keepalive_epoch: u64,
    /// Rate limits, bans and scanner recognition (checked before parsing).
    pub(super) guard: crate::security::Guard,
    /// Calls in memory by source peer name (`limits.max_calls`).
    pub(super) calls_by_peer: HashMap<String, u32>,
    /// Leg B Call-ID/tag/CSeq of relayed REGISTERs, so refreshes look like one UA's.
    pub(super) registrations: HashMap<(String, String, String), super::standalone::RegistrationLeg>,
    /// What the current step works on, for the panic guard (`panic_guard.rs`).
    pub(super) step: super::panic_guard::Step,
    /// Test hook: requests with this header panic (`panic_guard.rs`).
    pub(super) panic_header: Option<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("calls", &self.calls.len())
            .finish()
    }
}

impl Engine {
    /// `resolved[i]` is the address of `cfg.peers[i]` as resolved by the shell.
    pub fn new(
        cfg: Arc<Config>,
        policy: Arc<Policy>,
        resolved: &[Option<SocketAddr>],
        metrics: Metrics,
        now: Instant,
        wall: SystemTime,
    ) -> Engine {
        let t = &cfg.sip.timers;
        let tx = TransactionLayer::new(TxConfig {
            t1: t.t1.0,
            t2: t.t2.0,
            t4: t.t4.0,
        });
        let peers = Arc::new(Peers::new(&cfg, resolved));
        for p in &peers.peers {
            metrics.set_peer_up(&p.name, p.addr.is_some());
        }
        let guard = crate::security::Guard::new(&cfg.security, exempt_sources(&cfg, &peers), now);
        let mut engine = Engine {
            guard,
            calls_by_peer: HashMap::new(),
            registrations: HashMap::new(),
            step: Default::default(),
            panic_header: None,
            media_ip: cfg.media.advertise.unwrap_or(cfg.media.address),
            media_ip6: cfg.media.advertise6.or(cfg.media.address6),
            ports: PortPool::new(cfg.media.ports),
            cfg,
            policy,
            peers,
            resting: HashMap::new(),
            tx,
            calls: FastMap::default(),
            a_index: FastMap::default(),
            b_index: FastMap::default(),
            stx_calls: FastMap::default(),
            owners: FastMap::default(),
            stream_calls: FastMap::default(),
            closing: FastMap::default(),
            ids: IdGen::default(),
            next_key: 1,
            next_stream: 1,
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            metrics,
            clock: (now, wall),
            draining: false,
            auth: Default::default(),
            down: Default::default(),
            nat_sources: HashMap::new(),
            keepalive_epoch: 0,
        };
        engine.start_keepalives(now);
        engine.start_housekeeping(now);
        engine
    }

    /// Wall-clock time for `now` (CDRs), derived from the clock anchor given at start so
    /// that the engine never reads a clock itself.
    pub(super) fn wall(&self, now: Instant) -> SystemTime {
        self.clock.1 + now.saturating_duration_since(self.clock.0)
    }

    pub fn handle_input(&mut self, input: Input<'_>, now: Instant) {
        match input {
            Input::Sip { data, flow } => self.on_sip(data, flow, now),
            Input::Media(ev) => self.on_media(ev, now),
        }
        self.drain_tx(now);
    }

    /// The shell could not connect to `remote` over `transport` (refused, timed out, or
    /// the TLS peer failed verification): requests waiting there fail like a dead target.
    pub fn transport_failed(
        &mut self,
        transport: crate::config::Transport,
        remote: SocketAddr,
        now: Instant,
    ) {
        self.tx.transport_failed(transport, remote);
        self.drain_tx(now);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = self.timers.peek().map(|Reverse((t, _, _))| *t);
        match (own, self.tx.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain_tx(now);
        while let Some(Reverse((at, key, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.step.key = Some(key);
            self.on_timer(key, timer, now);
            self.step.key = None;
            self.drain_tx(now);
        }
    }

    /// Address `addr` of peer `peer` answered 503 with a Retry-After that has not run out.
    pub(super) fn is_resting(&self, peer: &str, addr: SocketAddr, now: Instant) -> bool {
        self.resting
            .get(&(peer.to_string(), addr))
            .is_some_and(|t| now < *t)
    }

    /// The shell's DNS resolution (RFC 3263) of peer `peer` ended: `Ok` with the targets
    /// found, or `Err` with why none were (logged and counted in
    /// `veil_dns_failures_total`; the peer is then failed over like a dead target until a
    /// later resolution succeeds). New calls use the new targets; a call in progress
    /// keeps the order it drew for its current peer, and later peers of its route are
    /// taken as they are when it reaches them.
    pub fn set_peer_targets(
        &mut self,
        peer: &str,
        result: Result<Vec<super::targets::TargetRecord>, String>,
        now: Instant,
    ) {
        let _ = now;
        let Some(i) = self.peers.by_name(peer) else {
            return;
        };
        let records = match result {
            Ok(records) => {
                let list: Vec<String> = records
                    .iter()
                    .flat_map(|r| {
                        r.targets.iter().map(move |t| {
                            format!("{t} ({} prio {} weight {})", r.host, r.priority, r.weight)
                        })
                    })
                    .collect();
                tracing::info!(peer, targets = ?list, "peer targets resolved");
                records
            }
            Err(error) => {
                self.metrics.dns_failures.with_label_values(&[peer]).inc();
                // Serve stale (RFC 8767): a DNS outage must not take a carrier that was
                // reachable a moment ago out of routing; its last targets stay in use
                // until a resolution succeeds again.
                let last = &self.peers.peers[i].records;
                if !last.is_empty() {
                    tracing::warn!(peer, %error, "peer name does not resolve now: keeping its last known targets");
                    return;
                }
                tracing::warn!(peer, %error, "peer address does not resolve: failed over until it does");
                Vec::new()
            }
        };
        let up = !records.is_empty() && !self.down.contains(peer);
        self.metrics.set_peer_up(peer, up);
        let peers = Arc::new(self.peers.with_records(i, records));
        self.guard.set_exempt(exempt_sources(&self.cfg, &peers));
        self.peers = peers;
    }

    /// The current first address of every peer that has one, by name (what a reload
    /// keeps for names until they are resolved again).
    pub fn peer_addresses(&self) -> HashMap<String, SocketAddr> {
        self.peers
            .peers
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.addr?)))
            .collect()
    }

    /// Seed the engine's random numbers (identifiers and the weighted choice among a
    /// peer's DNS targets), for reproducible tests.
    pub fn seed(&mut self, seed: u64) {
        self.ids = IdGen::seeded(seed);
    }

    /// Calls in memory (answered or not), for tests and the gauge.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Live transactions, for tests.
    pub fn transaction_count(&self) -> usize {
        self.tx.len()
    }

    /// Entries of the routing maps that belong to calls (dialogs, transactions and their
    /// owners, streams): zero once every call has ended and its transactions are done,
    /// or they leak (tests and the engine fuzz target).
    pub fn call_routing_entries(&self) -> usize {
        self.a_index.len()
            + self.b_index.len()
            + self.stx_calls.len()
            + self.owners.len()
            + self.stream_calls.len()
            + self.closing.len()
    }

    /// Graceful shutdown: refuse new calls (503 with Retry-After) from now on, let calls
    /// in progress go on for `calls.drain_timeout`, then end the rest (see `shutdown`).
    /// The shell stops once [`Engine::idle`]. Calling it again changes nothing.
    pub fn drain(&mut self, now: Instant) {
        if self.draining {
            return;
        }
        self.draining = true;
        tracing::info!(
            calls = self.calls.len(),
            drain_timeout = %self.cfg.calls.drain_timeout,
            "draining: new calls refused, calls in progress may finish"
        );
        self.set_timer(after(now, self.cfg.calls.drain_timeout.0), 0, Timer::Drain);
    }

    /// Whether new calls are being refused (after `drain` or `shutdown`).
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Apply a reloaded config: new calls use `cfg`, `policy` and the peer table built
    /// from `resolved` (`resolved[i]` is the address of `cfg.peers[i]`); calls in progress
    /// keep the peer table they were set up with. A target resting after a 503 keeps
    /// resting if its name is still configured. A new media port range gets a new pool
    /// that starts with the ports calls in progress hold; ports outside it are simply not
    /// reused once those calls end. Keep-alives restart for the new table; a peer that was
    /// down stays down until it answers. Transaction timer values apply from the next start.
    pub fn reconfigure(
        &mut self,
        cfg: Arc<Config>,
        policy: Arc<Policy>,
        resolved: &[Option<SocketAddr>],
        now: Instant,
    ) {
        let peers = Arc::new(Peers::new(&cfg, resolved));
        for old in &self.peers.peers {
            if peers.by_name(&old.name).is_none() {
                self.metrics.remove_peer(&old.name);
            }
        }
        self.resting
            .retain(|(name, _), _| peers.by_name(name).is_some());
        self.down.retain(|name| peers.by_name(name).is_some());
        self.nat_sources
            .retain(|name, _| peers.by_name(name).is_some());
        for p in &peers.peers {
            let up = p.addr.is_some() && !self.down.contains(&p.name);
            self.metrics.set_peer_up(&p.name, up);
        }
        if cfg.media.ports != self.cfg.media.ports {
            let mut pool = PortPool::new(cfg.media.ports);
            for call in self.calls.values() {
                for s in &call.streams {
                    pool.reserve(s.a_port);
                    pool.reserve(s.b_port);
                }
            }
            tracing::info!(ports = %cfg.media.ports, held = pool.in_use(), "media port range changed");
            self.ports = pool;
        }
        self.media_ip = cfg.media.advertise.unwrap_or(cfg.media.address);
        self.guard.set_exempt(exempt_sources(&cfg, &peers));
        self.cfg = cfg;
        self.policy = policy;
        self.peers = peers;
        self.keepalive_epoch += 1;
        self.start_keepalives(now);
    }

    /// Refuse new calls from now on and end every call (reason `shutdown`).
    pub fn shutdown(&mut self, now: Instant) {
        self.draining = true;
        let keys: Vec<u64> = self.calls.keys().copied().collect();
        for k in keys {
            self.end_call(k, super::call::EndReason::Shutdown, None, now);
        }
        self.drain_tx(now);
    }

    /// Nothing left that needs the engine: no calls, no CDR waiting for counters, no
    /// request of veil's (a BYE at shutdown) still waiting for its answer.
    pub fn idle(&self) -> bool {
        // Keep-alive probes do not count: nobody waits for their answer at shutdown.
        let probes = || {
            self.owners
                .values()
                .filter(|o| matches!(o, super::owner::TxOwner::Probe { .. }))
                .count()
        };
        self.calls.is_empty() && self.closing.is_empty() && self.tx.awaiting_final() <= probes()
    }

    /// Method, Call-ID and CSeq of each request of veil's still awaiting its final
    /// response: why [`Engine::idle`] is false (the fuzz target prints them).
    #[cfg(any(test, feature = "testkit"))]
    pub fn awaiting_final(&self) -> Vec<String> {
        self.tx
            .awaiting_final_requests()
            .map(|r| {
                let cseq = r.cseq().map(|c| c.seq).unwrap_or(0);
                format!("{} {} {cseq}", r.method, r.call_id().unwrap_or("-"))
            })
            .collect()
    }

    pub(super) fn set_timer(&mut self, at: Instant, key: u64, timer: Timer) {
        self.timers.push(Reverse((at, key, timer)));
    }

    /// Arm (or move) `timer` of call `key` to `at`.
    pub(super) fn arm(&mut self, key: u64, timer: CallTimer, at: Instant) {
        if let Some(call) = self.calls.get_mut(&key) {
            call.deadlines.set(timer, at);
            self.set_timer(at, key, Timer::Call);
        }
    }

    /// Everything of call `key` that is due at `now`, earliest first.
    fn on_call_deadlines(&mut self, key: u64, now: Instant) {
        for _ in 0..CallDeadlines::COUNT {
            let Some(timer) = self
                .calls
                .get_mut(&key)
                .and_then(|c| c.deadlines.pop_due(now))
            else {
                return;
            };
            match timer {
                CallTimer::Ring => self.on_ring_timeout(key, now),
                CallTimer::MaxDuration => {
                    if self.calls.get(&key).is_some_and(|c| c.answered().is_some()) {
                        self.end_call(key, super::call::EndReason::MaxDuration, None, now);
                    }
                }
                CallTimer::RtpCheck => self.check_rtp(key, now),
                CallTimer::SessionRefresh(side) => self.on_session_timer(key, side, true, now),
                CallTimer::SessionExpire(side) => self.on_session_timer(key, side, false, now),
            }
        }
    }

    /// Drop the per-call timers of calls that are gone (they would only fire as no-ops,
    /// the max-duration one hours later) and give back the heap's spare capacity.
    pub(super) fn shrink_timers(&mut self) {
        let (calls, closing) = (&self.calls, &self.closing);
        self.timers.retain(|Reverse((_, key, timer))| {
            let per_call = matches!(timer, Timer::Call | Timer::CloseCdr);
            !per_call || calls.contains_key(key) || closing.contains_key(key)
        });
        if self.timers.capacity() > 1024 && self.timers.capacity() > 4 * self.timers.len() {
            self.timers.shrink_to_fit();
        }
    }

    fn on_sip(&mut self, data: &[u8], flow: Flow, now: Instant) {
        let ip = flow.remote.ip();
        if let Err(d) = self.guard.check(ip, data, now) {
            self.dropped(ip, d.reason, d.banned, now);
            return;
        }
        if !self.peer_valve(data, &flow, now) {
            return;
        }
        match Message::parse(data) {
            Ok(Message::Request(mut req)) => {
                self.metrics.sip_request_received(req.method.as_str());
                if let Some(ua) = req.headers.get(&crate::sip::HeaderName::UserAgent)
                    && self.guard.is_scanner(ua)
                {
                    let banned = self
                        .guard
                        .ban(ip, BanReason::Scanner, now)
                        .then_some(BanReason::Scanner);
                    self.dropped(ip, DropReason::Scanner, banned, now);
                    return;
                }
                super::nat::stamp_via(&mut req, flow.remote);
                self.latch_nat_source(&flow);
                match self.admit(&req, &flow) {
                    super::admission::Admit::Go => {}
                    super::admission::Admit::Drop => {
                        self.strike(ip, now);
                        return;
                    }
                    super::admission::Admit::Answer(resp) => {
                        if resp.code == 400 {
                            self.strike(ip, now);
                        }
                        self.send_stateless(&flow, resp);
                        return;
                    }
                }
                // Outside a dialog only: a call's legs keep the peer table they were set up
                // with, so after a reload an in-dialog request may come from a source the
                // current table no longer has (`on_in_dialog` checks it against the call's).
                let in_dialog = req.to_tag().is_some();
                if !in_dialog && self.peers.identify(&flow).is_none() {
                    self.refuse_unknown_source(&req, &flow, now);
                    return;
                }
                self.tx.receive_request(req, flow, now);
            }
            Ok(Message::Response(resp)) => {
                if resp.cseq().is_err() || resp.top_via_ref().is_err() {
                    self.metrics.sip_invalid_messages.inc();
                    return;
                }
                if !self.tx.receive_response(resp, flow, now) {
                    tracing::debug!(remote = %flow.remote, "stray response dropped");
                }
            }
            Err(e) => {
                self.metrics.sip_invalid_messages.inc();
                self.strike(ip, now);
                tracing::debug!(remote = %flow.remote, error = %e, "unparsable SIP message");
                // An ACK never gets a response (RFC 3261 §17.1.1.3): counted, dropped.
                let resp = if super::admission::is_ack(data) {
                    None
                } else if e == crate::sip::ParseError::BadVersion {
                    crate::security::raw::response_from_raw(data, 505, "")
                } else {
                    super::admission::bad_request_from_raw(data, &e.to_string())
                };
                if let Some(resp) = resp {
                    self.send_stateless(&flow, resp);
                }
            }
        }
    }

    /// A request outside a dialog from a source that matches no peer: a strike, and a stateless 403 (or
    /// nothing with `sip.unknown_source: drop`). Stateless on purpose: a transaction would
    /// keep every hostile request (and re-send its 403) for 32 s; nothing from such a
    /// source can reach a dialog or the policy anyway. Its ACKs are dropped unanswered.
    fn refuse_unknown_source(&mut self, req: &crate::sip::Request, flow: &Flow, now: Instant) {
        if req.method == crate::sip::Method::Ack {
            return;
        }
        tracing::info!(remote = %flow.remote, method = %req.method, "request from unknown source refused");
        self.strike(flow.remote.ip(), now);
        if self.cfg.sip.unknown_source == crate::config::UnknownSource::Reject {
            self.send_stateless(flow, super::admission::response(req, 403));
        }
    }

    /// An invalid or unauthorized request from `ip`: may ban the source.
    pub(super) fn strike(&mut self, ip: IpAddr, now: Instant) {
        if let Some(why) = self.guard.strike(ip, now) {
            self.on_ban(ip, why);
        }
    }

    fn dropped(&mut self, ip: IpAddr, reason: DropReason, banned: Option<BanReason>, now: Instant) {
        let _ = now;
        self.metrics
            .sip_dropped
            .with_label_values(&[reason.as_str()])
            .inc();
        if let Some(why) = banned {
            self.on_ban(ip, why);
        }
    }

    fn on_ban(&mut self, ip: IpAddr, why: BanReason) {
        tracing::warn!(source = %ip, reason = why.as_str(),
            ban_time = ?self.cfg.security.ban_time.0, "source banned");
        self.metrics.bans.with_label_values(&[why.as_str()]).inc();
        self.metrics
            .banned_sources
            .set(self.guard.banned_count() as i64);
    }

    /// Changes whenever the banned set changes; the shell then re-reads [`Engine::bans`].
    pub fn ban_generation(&self) -> u64 {
        self.guard.generation()
    }

    /// Sources banned at `now`, with the instant each ban ends (the shell drops their
    /// datagrams before they are queued).
    pub fn bans(&mut self, now: Instant) -> HashMap<IpAddr, Instant> {
        self.metrics
            .banned_sources
            .set(self.guard.banned_count() as i64);
        self.guard.banned(now).collect()
    }

    pub(super) fn send_stateless(&mut self, flow: &Flow, resp: Response) {
        self.metrics.sip_response_sent(resp.code);
        self.tx.send_stateless(*flow, resp.to_bytes());
    }

    /// Answer within a server transaction.
    pub(super) fn reply(&mut self, stx: ServerTxId, mut resp: Response, now: Instant) {
        self.leak_scrub_response(&mut resp);
        self.metrics.sip_response_sent(resp.code);
        self.tx.respond(stx, resp, now);
    }

    /// Move everything the transaction layer produced into the output queue, acting on
    /// its events (which may produce more).
    pub(super) fn drain_tx(&mut self, now: Instant) {
        loop {
            while let Some(t) = self.tx.poll_transmit() {
                self.out.push_back(Output::Transmit(t));
            }
            let Some(ev) = self.tx.poll_event() else {
                break;
            };
            self.observe_event(&ev);
            match ev {
                TxEvent::Request { id, req, flow } => {
                    self.step.stx = Some(id);
                    self.panic_hook(&req);
                    self.on_request(id, req, flow, now);
                    self.step.stx = None;
                }
                TxEvent::Cancel {
                    id,
                    invite,
                    req,
                    flow,
                } => self.on_cancel(id, invite, req, flow, now),
                TxEvent::Ack { req, flow } => self.on_ack(req, flow, now),
                TxEvent::Response { id, mut resp } => {
                    if matches!(resp.code, 401 | 407) {
                        if self.answer_challenge(id, &resp, now) {
                            continue;
                        }
                        // A challenge veil does not answer must not cross to the other
                        // leg as one (it would ask the caller for veil's credentials),
                        // unless it is for the caller: a relayed request to a target veil
                        // has no credentials for (`standalone.rs`).
                        if !self.standalone_passes_challenge(id) {
                            resp.code = 403;
                            resp.reason = "Forbidden".into();
                        }
                    }
                    if resp.code >= 200 {
                        self.auth_done(id);
                    }
                    self.step.key = self.owners.get(&id).and_then(|o| o.call());
                    self.on_response(id, resp, now);
                    self.step.key = None;
                }
                TxEvent::Timeout { id } => {
                    self.auth_done(id);
                    self.step.key = self.owners.get(&id).and_then(|o| o.call());
                    self.on_client_timeout(id, now);
                    self.step.key = None;
                }
                TxEvent::AckTimeout { id } => {
                    self.step.key = self.stx_calls.get(&id).copied();
                    self.on_ack_timeout(id, now);
                    self.step.key = None;
                }
            }
        }
    }

    /// A request veil sends on a leg: the leak guard sees it last (`leak_guard.rs`).
    pub(super) fn send_request(
        &mut self,
        mut req: crate::sip::Request,
        flow: Flow,
        now: Instant,
    ) -> ClientTxId {
        self.leak_scrub_request(&mut req, flow.remote.ip());
        self.tx.send_request(req, flow, now)
    }

    /// What arrives on a leg of a call is what the leak guard keeps off the other leg.
    fn observe_event(&mut self, ev: &TxEvent) {
        match ev {
            TxEvent::Request { req, .. }
            | TxEvent::Cancel { req, .. }
            | TxEvent::Ack { req, .. } => self.leak_observe_request(req),
            TxEvent::Response { resp, .. } => self.leak_observe_response(resp),
            TxEvent::Timeout { .. } | TxEvent::AckTimeout { .. } => {}
        }
    }

    fn on_media(&mut self, ev: MediaEvent, now: Instant) {
        match ev {
            MediaEvent::BindFailed { id } => {
                let Some(&key) = self.stream_calls.get(&id) else {
                    return;
                };
                tracing::warn!(stream = id.0, "media port bind failed; ending call");
                if let Some(call) = self.calls.get(&key)
                    && let Some(s) = call.streams.iter().find(|s| s.id == id)
                {
                    let (a, b) = (s.a_port, s.b_port);
                    self.ports.quarantine(a);
                    self.ports.quarantine(b);
                }
                self.end_call(key, super::call::EndReason::Error, Some(500), now);
            }
            MediaEvent::Closed {
                id,
                a_packets,
                b_packets,
            } => self.on_stream_closed(id, a_packets, b_packets, now),
            MediaEvent::Idle { id } => self.on_stream_idle(id, now),
            MediaEvent::Active { id } => self.on_stream_active(id),
            MediaEvent::Stats { id, a, b } => self.on_stream_stats(id, a, b),
        }
    }

    fn on_timer(&mut self, key: u64, timer: Timer, now: Instant) {
        match timer {
            Timer::Call => self.on_call_deadlines(key, now),
            Timer::CloseCdr => self.finish_closing(key, now),
            Timer::Drain => {
                if !self.calls.is_empty() {
                    tracing::info!(calls = self.calls.len(), "drain timeout: ending calls");
                }
                self.shutdown(now);
            }
            // No new probes while draining: they would only delay the exit.
            Timer::Keepalive { peer } if key == self.keepalive_epoch && !self.draining => {
                self.on_keepalive_timer(peer as usize, now)
            }
            Timer::Keepalive { .. } => {}
            Timer::Housekeeping => self.on_housekeeping(now),
        }
    }

    /// Send bytes outside any transaction on a leg (ACK for 2xx).
    pub(super) fn send_raw(&mut self, flow: Flow, data: Bytes) {
        self.out
            .push_back(Output::Transmit(Transmit { flow, data }));
    }
}

/// Sources never limited or banned: `security.never_ban`, and the sources of the peers
/// `security.exempt` names (a peer's address when it lists none). By address only: bans
/// are per address, so banning a stranger sending from another port (or listener) of a
/// peer's address would lock the peer out too.
fn exempt_sources(cfg: &Config, peers: &Peers) -> Vec<ipnet::IpNet> {
    use crate::config::Exempt;
    let mut out: Vec<ipnet::IpNet> = cfg.security.never_ban.iter().map(|c| c.0).collect();
    let exempt = |p: &&super::peers::Peer| match cfg.security.exempt {
        Exempt::Peers => true,
        Exempt::Trusted => p.cfg.trusted,
        Exempt::None => false,
    };
    for p in peers.peers.iter().filter(exempt) {
        if p.cfg.sources.is_empty() {
            out.extend(p.addr.map(|a| ipnet::IpNet::from(a.ip())));
        } else {
            out.extend(p.cfg.sources.iter().map(|s| s.net.0));
        }
    }
    out
}
