//! RFC 3261 §17 transactions, sans-IO: messages and `now` in, transmissions, events and a
//! next deadline out. The tokio shell owns sockets and the clock.
//!
//! `key` decides which transaction a message belongs to, `client` and `server` hold the
//! state machines, `timers` the deadline heap, `raw` the tolerant header readers matching
//! needs. This file only routes inputs to transactions and removes finished ones.

mod client;
mod io;
mod key;
mod raw;
mod server;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Transport;
use crate::fastmap::FastMap;
use crate::sip::{Method, Request, Response};

use client::ClientTx;
use io::{Ctx, Outbox, Status};
use key::{ClientKey, ServerKey};
use server::ServerTx;
use timers::{Entry, TxRef};

/// The transport-level path of a message: which listener, which remote address, and for
/// connection transports which connection. Responses go back on the flow the request came
/// on (symmetric response routing, RFC 3581 style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Flow {
    /// Index into `config.sip.listen`.
    pub listener: usize,
    pub transport: Transport,
    pub remote: SocketAddr,
    /// Connection id for TCP/TLS when known (the shell reuses or opens one when `None`).
    pub conn: Option<u64>,
}

/// Bytes to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub flow: Flow,
    pub data: Bytes,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ServerTxId(pub u64);

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ClientTxId(pub u64);

#[derive(Debug, Clone, Copy)]
pub struct TxConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// What the transaction user (the B2BUA) must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A new request (not a retransmission, not a CANCEL, not an ACK): a server
    /// transaction now exists. For INVITE, 100 Trying has already been sent.
    Request {
        id: ServerTxId,
        req: Request,
        flow: Flow,
    },
    /// A CANCEL. Its own server transaction is `id`; `invite` is the INVITE server
    /// transaction it matches (RFC 3261 §9.2), if any and still not completed.
    Cancel {
        id: ServerTxId,
        invite: Option<ServerTxId>,
        req: Request,
        flow: Flow,
    },
    /// An ACK that matched no INVITE server transaction in Completed state: an ACK for a
    /// 2xx, which belongs to the dialog (the TU calls `ack_received` on the INVITE tx).
    Ack { req: Request, flow: Flow },
    /// A response for a client transaction. Provisional and final responses are reported
    /// once each; retransmitted non-2xx finals are absorbed (and re-ACKed); every 2xx to an
    /// INVITE is reported (the TU re-sends its ACK for retransmitted 2xx).
    Response { id: ClientTxId, resp: Response },
    /// Timer B or F fired (or a transport error): no final response will come.
    Timeout { id: ClientTxId },
    /// A 2xx to an INVITE was retransmitted until 64*T1 and never acknowledged.
    AckTimeout { id: ServerTxId },
}

/// All client and server transactions of one veil instance.
#[derive(Debug, Default)]
pub struct TransactionLayer {
    cfg: TxConfig,
    /// Last id handed out; client and server ids share the sequence.
    last_id: u64,
    clients: FastMap<u64, ClientTx>,
    client_index: FastMap<ClientKey, u64>,
    servers: FastMap<u64, ServerTx>,
    server_index: FastMap<ServerKey, u64>,
    out: Outbox,
    /// Requests answered with 401/407, kept for the TU to re-send with credentials even
    /// when the transaction ended at once (reliable transports). Taken by `take_challenged`.
    challenged: HashMap<u64, (Request, Flow)>,
}

impl TransactionLayer {
    pub fn new(cfg: TxConfig) -> Self {
        TransactionLayer {
            cfg,
            ..TransactionLayer::default()
        }
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// A request from the network. Retransmissions are absorbed here (the last response is
    /// re-sent); ACKs to non-2xx finals are absorbed; everything else becomes an event.
    pub fn receive_request(&mut self, req: Request, flow: Flow, now: Instant) {
        let key = ServerKey::of_request(&req);
        let is_ack = req.method == Method::Ack;
        let existing = key.as_ref().and_then(|k| self.server_index.get(k)).copied();
        if let Some(id) = existing
            && let Some(tx) = self.servers.get_mut(&id)
        {
            let mut ctx = Ctx {
                cfg: &self.cfg,
                now,
                out: &mut self.out,
            };
            if !is_ack {
                tx.on_retransmission(&mut ctx);
                return;
            }
            if let Some(status) = tx.on_ack(&mut ctx) {
                self.settle_server(id, status);
                return;
            }
        }
        if is_ack {
            self.out.events.push_back(TxEvent::Ack { req, flow });
            return;
        }

        let id = self.next_id();
        let cancelled = match (&req.method, &key) {
            (Method::Cancel, Some(key)) => self
                .server_index
                .get(&key.with_method(Method::Invite))
                .filter(|invite| {
                    self.servers
                        .get(invite)
                        .is_some_and(ServerTx::awaiting_final)
                })
                .map(|&invite| ServerTxId(invite)),
            _ => None,
        };
        let mut ctx = Ctx {
            cfg: &self.cfg,
            now,
            out: &mut self.out,
        };
        let tx = ServerTx::start(id, &req, flow, key.clone(), &mut ctx);
        if let Some(key) = key {
            self.server_index.insert(key, id);
        }
        self.servers.insert(id, tx);
        let event = if req.method == Method::Cancel {
            TxEvent::Cancel {
                id: ServerTxId(id),
                invite: cancelled,
                req,
                flow,
            }
        } else {
            TxEvent::Request {
                id: ServerTxId(id),
                req,
                flow,
            }
        };
        self.out.events.push_back(event);
    }

    /// A response from the network, matched to its client transaction (RFC 3261 §17.1.3).
    /// Responses matching no transaction are dropped (counted by the caller via the
    /// return value `false`).
    pub fn receive_response(&mut self, resp: Response, _flow: Flow, now: Instant) -> bool {
        let Some(id) = ClientKey::of_response(&resp)
            .and_then(|k| self.client_index.get(&k))
            .copied()
        else {
            return false;
        };
        let Some(tx) = self.clients.get_mut(&id) else {
            return false;
        };
        if matches!(resp.code, 401 | 407) && tx.awaiting_final() {
            self.challenged.insert(id, (tx.request.clone(), tx.flow()));
        }
        let mut ctx = Ctx {
            cfg: &self.cfg,
            now,
            out: &mut self.out,
        };
        let status = tx.on_response(resp, &mut ctx);
        self.settle_client(id, status);
        true
    }

    /// Send a response within server transaction `id`. Final responses to INVITE are
    /// retransmitted per timers G/H (non-2xx) or until `ack_received` (2xx).
    pub fn respond(&mut self, id: ServerTxId, resp: Response, now: Instant) {
        let Some(tx) = self.servers.get_mut(&id.0) else {
            tracing::debug!(
                tx = id.0,
                code = resp.code,
                "response for a finished server transaction dropped"
            );
            return;
        };
        let mut ctx = Ctx {
            cfg: &self.cfg,
            now,
            out: &mut self.out,
        };
        let status = tx.respond(&resp, &mut ctx);
        self.settle_server(id.0, status);
    }

    /// The dialog got the ACK for the 2xx sent in INVITE server transaction `id`.
    pub fn ack_received(&mut self, id: ServerTxId) {
        if let Some(tx) = self.servers.get_mut(&id.0) {
            tx.ack_received();
            self.prune_timers();
        }
    }

    /// Start a client transaction. The top Via (with a fresh branch) must already be set
    /// by the caller. ACK is not a transaction: send it with `send_stateless`.
    pub fn send_request(&mut self, req: Request, flow: Flow, now: Instant) -> ClientTxId {
        let id = self.next_id();
        if req.method == Method::Ack {
            // Tolerate the misuse: send it once, track nothing.
            self.send_stateless(flow, req.to_bytes());
            return ClientTxId(id);
        }
        let key = ClientKey::of_request(&req);
        let mut ctx = Ctx {
            cfg: &self.cfg,
            now,
            out: &mut self.out,
        };
        if req.method == Method::Cancel
            && let Some(k) = &key
            && let Some(invite) = self.client_index.get(&k.invite())
            && let Some(tx) = self.clients.get_mut(invite)
        {
            tx.cancel_sent(&mut ctx);
        }
        let tx = ClientTx::start(id, req, flow, key.clone(), &mut ctx);
        if let Some(key) = key {
            self.client_index.insert(key, id);
        }
        self.clients.insert(id, tx);
        ClientTxId(id)
    }

    /// Send a message outside any transaction (ACK for 2xx, stateless replies).
    pub fn send_stateless(&mut self, flow: Flow, data: Bytes) {
        self.out.transmits.push_back(Transmit { flow, data });
    }

    /// The INVITE request of a client transaction (to build CANCEL or ACK from).
    pub fn client_request(&self, id: ClientTxId) -> Option<&Request> {
        self.clients.get(&id.0).map(|tx| &tx.request)
    }

    /// The requests of the client transactions still waiting for their final response
    /// (what keeps an engine from being idle; for the tests and the fuzz target).
    pub fn awaiting_final_requests(&self) -> impl Iterator<Item = &Request> {
        self.clients
            .values()
            .filter(|c| c.awaiting_final())
            .map(|c| &c.request)
    }

    /// Whether client transaction `id` still waits for its final response.
    pub fn client_awaiting_final(&self, id: ClientTxId) -> bool {
        self.clients
            .get(&id.0)
            .is_some_and(ClientTx::awaiting_final)
    }

    /// Whether client transaction `id` had a provisional response and no final one yet.
    pub fn client_proceeding(&self, id: ClientTxId) -> bool {
        self.clients.get(&id.0).is_some_and(ClientTx::proceeding)
    }

    /// Where a client transaction's request went (an ACK for its 2xx goes there too).
    pub fn client_flow(&self, id: ClientTxId) -> Option<Flow> {
        self.clients.get(&id.0).map(|tx| tx.flow())
    }

    /// The request (and its flow) that the 401/407 just reported for `id` challenged.
    /// The TU takes it when it handles that response; nothing else keeps it.
    pub fn take_challenged(&mut self, id: ClientTxId) -> Option<(Request, Flow)> {
        self.challenged.remove(&id.0)
    }

    /// The shell could not reach `remote` over `transport` (connect or TLS handshake
    /// failed): every client transaction still waiting for a final response there ends
    /// as if Timer B/F had fired, so the TU fails over now rather than after 32 s.
    pub fn transport_failed(&mut self, transport: Transport, remote: SocketAddr) {
        let mut ids: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, tx)| {
                let f = tx.flow();
                f.transport == transport && f.remote == remote && tx.awaiting_final()
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.out
                .events
                .push_back(TxEvent::Timeout { id: ClientTxId(id) });
            self.settle_client(id, Status::Terminated);
        }
    }

    /// Earliest instant at which `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.out.timers.peek().map(|e| e.at)
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Timers re-armed while firing are at least 1ms ahead, so this loop ends.
        while let Some(entry) = self.out.timers.pop_due(now) {
            let mut ctx = Ctx {
                cfg: &self.cfg,
                now,
                out: &mut self.out,
            };
            match entry.tx {
                TxRef::Client(id) => {
                    if let Some(tx) = self.clients.get_mut(&id) {
                        let status = tx.on_timer(&entry, &mut ctx);
                        self.settle_client(id, status);
                    }
                }
                TxRef::Server(id) => {
                    if let Some(tx) = self.servers.get_mut(&id) {
                        let status = tx.on_timer(&entry, &mut ctx);
                        self.settle_server(id, status);
                    }
                }
            }
        }
        self.prune_timers();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.out.events.pop_front()
    }

    /// Number of live transactions (for tests and the memory gauge).
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// Client transactions still waiting for their final response.
    pub fn awaiting_final(&self) -> usize {
        self.clients.values().filter(|c| c.awaiting_final()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Give back memory a burst left behind: maps and queues far larger than what they
    /// hold now are shrunk (called now and then by the engine's housekeeping).
    pub fn shrink(&mut self) {
        self.prune_timers();
        crate::b2bua::shrink_map(&mut self.clients);
        crate::b2bua::shrink_map(&mut self.client_index);
        crate::b2bua::shrink_map(&mut self.servers);
        crate::b2bua::shrink_map(&mut self.server_index);
        crate::b2bua::shrink_map(&mut self.challenged);
        let mut timers = std::mem::take(&mut self.out.timers);
        timers.retain(|e| self.timer_is_live(e));
        self.out.timers = timers;
        self.out.shrink();
    }

    fn settle_client(&mut self, id: u64, status: Status) {
        if status == Status::Terminated
            && let Some(tx) = self.clients.remove(&id)
            && let Some(key) = tx.key
            && self.client_index.get(&key) == Some(&id)
        {
            self.client_index.remove(&key);
        }
        self.prune_timers();
    }

    fn settle_server(&mut self, id: u64, status: Status) {
        if status == Status::Terminated
            && let Some(tx) = self.servers.remove(&id)
            && let Some(key) = tx.key
            && self.server_index.get(&key) == Some(&id)
        {
            self.server_index.remove(&key);
        }
        self.prune_timers();
    }

    fn timer_is_live(&self, entry: &Entry) -> bool {
        match entry.tx {
            TxRef::Client(id) => self
                .clients
                .get(&id)
                .is_some_and(|tx| tx.deadlines.is_current(entry)),
            TxRef::Server(id) => self
                .servers
                .get(&id)
                .is_some_and(|tx| tx.deadlines.is_current(entry)),
        }
    }

    /// Drop cancelled timers from the top of the heap so `poll_timeout` stays exact.
    fn prune_timers(&mut self) {
        while let Some(entry) = self.out.timers.peek() {
            if self.timer_is_live(entry) {
                break;
            }
            self.out.timers.pop();
        }
    }
}
