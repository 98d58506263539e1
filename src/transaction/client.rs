//! Client transactions: INVITE (RFC 3261 §17.1.1 with RFC 6026's Accepted state) and
//! non-INVITE (§17.1.2).

use std::time::Duration;

use bytes::Bytes;

use crate::config::Transport;
use crate::sip::{HeaderName, Headers, Method, Request, Response};

use super::io::{Ctx, Status};
use super::key::ClientKey;
use super::raw;
use super::timers::{self, Deadlines, Entry, TimerKind, TxRef};
use super::{ClientTxId, Flow, TxEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE sent, nothing heard yet (timers A, B).
    Calling,
    /// Non-INVITE sent, nothing heard yet (timers E, F).
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (non-2xx for INVITE); absorbing its retransmissions.
    Completed,
    /// A 2xx to INVITE arrived; further 2xx (other forks, retransmissions) still go up.
    Accepted,
}

impl ClientTx {
    /// A provisional response came and no final one yet: CANCEL may go now (RFC 3261 §9.1).
    pub(crate) fn proceeding(&self) -> bool {
        self.state == State::Proceeding
    }

    /// Still waiting for a final response (what a graceful shutdown waits for).
    pub(crate) fn awaiting_final(&self) -> bool {
        matches!(
            self.state,
            State::Calling | State::Trying | State::Proceeding
        )
    }
}

#[derive(Debug)]
pub(crate) struct ClientTx {
    id: u64,
    pub request: Request,
    /// The request as sent, reused for every retransmission.
    wire: Bytes,
    flow: Flow,
    pub key: Option<ClientKey>,
    state: State,
    interval: Duration,
    pub deadlines: Deadlines,
    /// The hop-by-hop ACK for our non-2xx final, re-sent when that final is retransmitted.
    ack: Option<Bytes>,
}

impl ClientTx {
    /// Send `request` and arm the first timers.
    pub fn start(
        id: u64,
        request: Request,
        flow: Flow,
        key: Option<ClientKey>,
        ctx: &mut Ctx,
    ) -> ClientTx {
        let wire = request.to_bytes();
        ctx.send(flow, wire.clone());
        let invite = request.method == Method::Invite;
        let mut tx = ClientTx {
            id,
            request,
            wire,
            flow,
            key,
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            interval: timers::t1(ctx.cfg),
            deadlines: Deadlines::new(TxRef::Client(id)),
            ack: None,
        };
        if flow.transport == Transport::Udp {
            ctx.arm(&mut tx.deadlines, TimerKind::Retransmit, tx.interval);
        }
        ctx.arm(&mut tx.deadlines, TimerKind::Expire, timers::t64(ctx.cfg));
        tx
    }

    /// A CANCEL of this INVITE went out. A provisional response disarmed timer B, so
    /// without this a callee that ignores the CANCEL would keep the transaction for ever:
    /// with no final response 64*T1 after the CANCEL it is considered cancelled and
    /// destroyed (RFC 3261 §9.1), reported as a timeout.
    pub fn cancel_sent(&mut self, ctx: &mut Ctx) {
        if self.is_invite() && self.state == State::Proceeding {
            ctx.arm(&mut self.deadlines, TimerKind::Expire, timers::t64(ctx.cfg));
        }
    }

    pub(crate) fn flow(&self) -> Flow {
        self.flow
    }

    fn is_invite(&self) -> bool {
        self.request.method == Method::Invite
    }

    fn reliable(&self) -> bool {
        self.flow.transport != Transport::Udp
    }

    fn report(&self, resp: Response, ctx: &mut Ctx) {
        ctx.emit(TxEvent::Response {
            id: ClientTxId(self.id),
            resp,
        });
    }

    /// A response matched to this transaction. Anything not reported is absorbed.
    pub fn on_response(&mut self, resp: Response, ctx: &mut Ctx) -> Status {
        let awaiting_final = matches!(
            self.state,
            State::Calling | State::Trying | State::Proceeding
        );
        match resp.code {
            100..=199 if awaiting_final => {
                // Timer B only guards Calling; a ringing INVITE is ended by the TU. Only
                // the first provisional disarms it: a later one must not disarm the 64*T1
                // deadline a CANCEL set (`cancel_sent`), or a callee that keeps ringing
                // after the CANCEL keeps the transaction for ever (engine_call fuzz target).
                if self.is_invite() && self.state == State::Calling {
                    self.deadlines.disarm_all();
                }
                self.state = State::Proceeding;
                self.report(resp, ctx);
                Status::Live
            }
            200..=299 if self.is_invite() && awaiting_final => {
                self.deadlines.disarm_all();
                self.state = State::Accepted;
                self.report(resp, ctx);
                // Timer M (RFC 6026): keep reporting retransmitted 2xx so the TU re-ACKs.
                ctx.linger(&mut self.deadlines, timers::t64(ctx.cfg))
            }
            200..=299 if self.state == State::Accepted => {
                self.report(resp, ctx);
                Status::Live
            }
            300..=699 if self.is_invite() && awaiting_final => {
                self.deadlines.disarm_all();
                self.state = State::Completed;
                let ack = self.ack_for(&resp).to_bytes();
                ctx.send(self.flow, ack.clone());
                self.ack = Some(ack);
                self.report(resp, ctx);
                let timer_d = if self.reliable() {
                    Duration::ZERO
                } else {
                    timers::TIMER_D
                };
                ctx.linger(&mut self.deadlines, timer_d)
            }
            300..=699 if self.state == State::Completed => {
                if let Some(ack) = &self.ack {
                    ctx.send(self.flow, ack.clone());
                }
                Status::Live
            }
            200..=699 if awaiting_final => {
                self.deadlines.disarm_all();
                self.state = State::Completed;
                self.report(resp, ctx);
                let timer_k = if self.reliable() {
                    Duration::ZERO
                } else {
                    timers::t4(ctx.cfg)
                };
                ctx.linger(&mut self.deadlines, timer_k)
            }
            _ => Status::Live,
        }
    }

    pub fn on_timer(&mut self, entry: &Entry, ctx: &mut Ctx) -> Status {
        if !self.deadlines.take(entry) {
            return Status::Live;
        }
        match (entry.kind, self.state) {
            (TimerKind::Retransmit, State::Calling | State::Trying | State::Proceeding) => {
                ctx.send(self.flow, self.wire.clone());
                self.interval = match self.state {
                    // Timer A doubles without a cap; B ends it.
                    State::Calling => self.interval.saturating_mul(2),
                    State::Trying => timers::backoff(self.interval, timers::t2(ctx.cfg)),
                    _ => timers::t2(ctx.cfg),
                };
                ctx.arm(&mut self.deadlines, TimerKind::Retransmit, self.interval);
                Status::Live
            }
            (TimerKind::Expire, State::Calling | State::Trying | State::Proceeding) => {
                ctx.emit(TxEvent::Timeout {
                    id: ClientTxId(self.id),
                });
                Status::Terminated
            }
            (TimerKind::Expire, _) => Status::Terminated,
            (TimerKind::Retransmit, _) => Status::Live,
        }
    }

    /// The ACK for a non-2xx final (RFC 3261 §17.1.1.3): same branch and Request-URI, To
    /// from the response, only our top Via, the request's Route set.
    fn ack_for(&self, resp: &Response) -> Request {
        let req = &self.request;
        let mut headers = Headers::new();
        if let Some(via) = raw::top_via(&req.headers) {
            headers.push(HeaderName::Via, via.value);
        }
        headers.push(HeaderName::MaxForwards, "70");
        for route in req.headers.get_all(&HeaderName::Route) {
            headers.push(HeaderName::Route, route);
        }
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            let source = if name == HeaderName::To {
                &resp.headers
            } else {
                &req.headers
            };
            if let Some(v) = source.get(&name) {
                headers.push(name, v);
            }
        }
        let number = raw::cseq(&req.headers).map_or(0, |(n, _)| n);
        headers.push(HeaderName::CSeq, format!("{number} ACK"));
        Request {
            method: Method::Ack,
            uri: req.uri.clone(),
            headers,
            body: Bytes::new(),
        }
    }
}
