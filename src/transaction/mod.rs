//! RFC 3261 §17 transactions, sans-IO: messages and `now` in, transmissions, events and a
//! next deadline out. The tokio shell owns sockets and the clock.
//! SKELETON: implemented by the transactions work item.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Transport;
use crate::sip::{Request, Response};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ServerTxId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ClientTxId(pub u64);

#[derive(Debug, Clone, Copy)]
pub struct TxConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

/// What the transaction user (the B2BUA) must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A new request (not a retransmission, not a CANCEL, not an ACK): a server
    /// transaction now exists. For INVITE, 100 Trying has already been sent.
    Request { id: ServerTxId, req: Request, flow: Flow },
    /// A CANCEL. Its own server transaction is `id`; `invite` is the INVITE server
    /// transaction it matches (RFC 3261 §9.2), if any and still not completed.
    Cancel { id: ServerTxId, invite: Option<ServerTxId>, req: Request, flow: Flow },
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
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    pub fn new(cfg: TxConfig) -> Self {
        TransactionLayer { cfg, transmits: VecDeque::new(), events: VecDeque::new() }
    }

    /// A request from the network. Retransmissions are absorbed here (the last response is
    /// re-sent); ACKs to non-2xx finals are absorbed; everything else becomes an event.
    pub fn receive_request(&mut self, _req: Request, _flow: Flow, _now: Instant) {
        let _ = self.cfg;
    }

    /// A response from the network, matched to its client transaction (RFC 3261 §17.1.3).
    /// Responses matching no transaction are dropped (counted by the caller via the
    /// return value `false`).
    pub fn receive_response(&mut self, _resp: Response, _flow: Flow, _now: Instant) -> bool {
        false
    }

    /// Send a response within server transaction `id`. Final responses to INVITE are
    /// retransmitted per timers G/H (non-2xx) or until `ack_received` (2xx).
    pub fn respond(&mut self, _id: ServerTxId, _resp: Response, _now: Instant) {}

    /// The dialog got the ACK for the 2xx sent in INVITE server transaction `id`.
    pub fn ack_received(&mut self, _id: ServerTxId) {}

    /// Start a client transaction. The top Via (with a fresh branch) must already be set
    /// by the caller. ACK is not a transaction: send it with `send_stateless`.
    pub fn send_request(&mut self, _req: Request, _flow: Flow, _now: Instant) -> ClientTxId {
        ClientTxId(0)
    }

    /// Send a message outside any transaction (ACK for 2xx, stateless replies).
    pub fn send_stateless(&mut self, flow: Flow, data: Bytes) {
        self.transmits.push_back(Transmit { flow, data });
    }

    /// The INVITE request of a client transaction (to build CANCEL or ACK from).
    pub fn client_request(&self, _id: ClientTxId) -> Option<&Request> {
        None
    }

    /// Earliest instant at which `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, _now: Instant) {}

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// Number of live transactions (for tests and the memory gauge).
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
