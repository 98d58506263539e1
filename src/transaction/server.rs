//! Server transactions: INVITE (RFC 3261 §17.2.1 with RFC 6026's Accepted state) and
//! non-INVITE (§17.2.2).

use std::time::Duration;

use bytes::Bytes;

use crate::config::Transport;
use crate::sip::{Method, Request, Response};

use super::io::{Ctx, Status};
use super::key::ServerKey;
use super::timers::{self, Deadlines, Entry, TimerKind, TxRef};
use super::{Flow, ServerTxId, TxEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Non-INVITE received, no response yet: retransmissions get nothing.
    Trying,
    /// A provisional response was sent (for INVITE: at least our 100 Trying).
    Proceeding,
    /// A final response was sent (non-2xx for INVITE): it is re-sent for retransmissions.
    Completed,
    /// INVITE only: the ACK for our non-2xx arrived; absorbing late ACKs (timer I).
    Confirmed,
    /// INVITE only: a 2xx was sent. Retransmitted until the TU reports the ACK.
    Accepted { acked: bool },
}

#[derive(Debug)]
pub(crate) struct ServerTx {
    id: u64,
    invite: bool,
    /// Where the request came from; every response goes back there.
    flow: Flow,
    pub key: Option<ServerKey>,
    state: State,
    /// The last response sent, re-sent when the request is retransmitted.
    last: Option<Bytes>,
    interval: Duration,
    pub deadlines: Deadlines,
}

impl ServerTx {
    /// A new request. INVITE is answered with 100 Trying at once so that the client stops
    /// retransmitting while the TU works (RFC 3261 §17.2.1).
    pub fn start(
        id: u64,
        req: &Request,
        flow: Flow,
        key: Option<ServerKey>,
        ctx: &mut Ctx,
    ) -> ServerTx {
        let invite = req.method == Method::Invite;
        let mut tx = ServerTx {
            id,
            invite,
            flow,
            key,
            state: State::Trying,
            last: None,
            interval: timers::t1(ctx.cfg),
            deadlines: Deadlines::new(TxRef::Server(id)),
        };
        if invite {
            let trying = Response::for_request(req, 100, "Trying").to_bytes();
            ctx.send(flow, trying.clone());
            tx.last = Some(trying);
            tx.state = State::Proceeding;
        }
        tx
    }

    fn reliable(&self) -> bool {
        self.flow.transport != Transport::Udp
    }

    /// An INVITE with no final response yet: what a CANCEL can still cancel.
    pub fn awaiting_final(&self) -> bool {
        self.invite && self.state == State::Proceeding
    }

    /// The request came again: answer with whatever we last said.
    pub fn on_retransmission(&mut self, ctx: &mut Ctx) {
        if self.state == State::Confirmed {
            return;
        }
        if let Some(last) = &self.last {
            ctx.send(self.flow, last.clone());
        }
    }

    /// An ACK matching this INVITE transaction. `None`: not ours to absorb (there is no
    /// non-2xx final to acknowledge), so it goes to the TU as a dialog ACK.
    pub fn on_ack(&mut self, ctx: &mut Ctx) -> Option<Status> {
        match self.state {
            State::Completed => {
                self.deadlines.disarm_all();
                self.state = State::Confirmed;
                let timer_i = if self.reliable() {
                    Duration::ZERO
                } else {
                    timers::t4(ctx.cfg)
                };
                Some(ctx.linger(&mut self.deadlines, timer_i))
            }
            State::Confirmed => Some(Status::Live),
            _ => None,
        }
    }

    /// The TU answers. Responses after the final one are dropped: the transaction can no
    /// longer carry them.
    pub fn respond(&mut self, resp: &Response, ctx: &mut Ctx) -> Status {
        if !matches!(self.state, State::Trying | State::Proceeding)
            || !(100..=699).contains(&resp.code)
        {
            tracing::debug!(
                tx = self.id,
                code = resp.code,
                "response not sendable in this transaction state"
            );
            return Status::Live;
        }
        let wire = resp.to_bytes();
        ctx.send(self.flow, wire.clone());
        self.last = Some(wire);
        let t64 = timers::t64(ctx.cfg);
        match resp.code {
            100..=199 => {
                self.state = State::Proceeding;
                Status::Live
            }
            200..=299 if self.invite => {
                // The 2xx is retransmitted on every transport: proxies downstream may
                // forward it over UDP (RFC 3261 §13.3.1.4).
                self.state = State::Accepted { acked: false };
                self.interval = timers::t1(ctx.cfg);
                ctx.arm(&mut self.deadlines, TimerKind::Retransmit, self.interval);
                ctx.arm(&mut self.deadlines, TimerKind::Expire, t64);
                Status::Live
            }
            _ if self.invite => {
                self.state = State::Completed;
                self.interval = timers::t1(ctx.cfg);
                if !self.reliable() {
                    ctx.arm(&mut self.deadlines, TimerKind::Retransmit, self.interval);
                }
                ctx.arm(&mut self.deadlines, TimerKind::Expire, t64);
                Status::Live
            }
            _ => {
                self.state = State::Completed;
                let timer_j = if self.reliable() { Duration::ZERO } else { t64 };
                ctx.linger(&mut self.deadlines, timer_j)
            }
        }
    }

    /// The TU matched the ACK for our 2xx: stop retransmitting it. The transaction stays
    /// until 64*T1 to absorb retransmitted INVITEs.
    pub fn ack_received(&mut self) {
        if let State::Accepted { acked } = &mut self.state {
            *acked = true;
            self.deadlines.disarm(TimerKind::Retransmit);
        }
    }

    pub fn on_timer(&mut self, entry: &Entry, ctx: &mut Ctx) -> Status {
        if !self.deadlines.take(entry) {
            return Status::Live;
        }
        match (entry.kind, self.state) {
            // Timer G, or the 2xx retransmission.
            (TimerKind::Retransmit, State::Completed | State::Accepted { acked: false }) => {
                if let Some(last) = &self.last {
                    ctx.send(self.flow, last.clone());
                }
                self.interval = timers::backoff(self.interval, timers::t2(ctx.cfg));
                ctx.arm(&mut self.deadlines, TimerKind::Retransmit, self.interval);
                Status::Live
            }
            (TimerKind::Retransmit, _) => Status::Live,
            (TimerKind::Expire, State::Accepted { acked: false }) => {
                ctx.emit(TxEvent::AckTimeout {
                    id: ServerTxId(self.id),
                });
                Status::Terminated
            }
            // Timers H, I, J, L.
            (TimerKind::Expire, _) => Status::Terminated,
        }
    }
}
