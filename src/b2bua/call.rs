//! A call: leg A (veil as UAS towards the caller), leg B (veil as UAC towards the chosen
//! target), the relayed streams and the transactions in flight between the legs.

use std::time::{Instant, SystemTime};

use crate::media::{Side, StreamId};
use crate::policy::Route;
use crate::sip::Request;
use crate::transaction::{ClientTxId, ServerTxId};

use super::call_timers::CallTimer;
use super::leg::Leg;
use super::peers::Peers;

/// Where a call is; each phase carries what only it has. The call moves
/// `Setup -> Answered { confirmed: false } -> Answered { confirmed: true }`, and leaves
/// `Engine::calls` from any phase when it ends (`teardown.rs`).
#[derive(Debug, Clone)]
pub enum Phase {
    /// Leg B is being set up: the attempt in progress (`Call::attempt` counts them).
    Setup(Attempt),
    /// Leg B's 2xx crossed to the caller at `at`; `confirmed` once the caller's ACK came.
    Answered { at: Instant, confirmed: bool },
}

/// One try of leg B's INVITE towards a target of the route.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempt {
    /// Leg B's INVITE of this attempt (none between attempts).
    pub invite: Option<ClientTxId>,
    /// A provisional response (100 included) arrived: the INVITE may be cancelled
    /// (RFC 3261 §9.1). Per attempt: an earlier attempt's 180 does not count.
    pub provisional: bool,
    /// A provisional response crossed to the caller.
    pub early: bool,
}

/// Why a call ended, as in the `veil_calls_ended_total{reason}` metric and the CDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerBye,
    CalleeBye,
    MaxDuration,
    RtpTimeout,
    SessionTimer,
    Shutdown,
    Error,
    /// Never answered: a final failure response crossed to the caller.
    Failed,
    /// Never answered: the caller cancelled.
    Cancelled,
    /// A 2xx (initial or re-INVITE) was not acknowledged within 64·T1 (RFC 3261 §13.3.1.4).
    NoAck,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerBye => "caller_bye",
            EndReason::CalleeBye => "callee_bye",
            EndReason::MaxDuration => "max_duration",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::SessionTimer => "session_timer",
            EndReason::Shutdown => "shutdown",
            EndReason::Error => "error",
            EndReason::Failed => "failed",
            EndReason::Cancelled => "cancelled",
            EndReason::NoAck => "no_ack",
        }
    }
}

/// One relayed media stream (one m= line).
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub id: StreamId,
    /// veil's RTP port advertised to leg A (RTCP = +1).
    pub a_port: u16,
    /// veil's RTP port advertised to leg B.
    pub b_port: u16,
}

impl Stream {
    pub fn port(&self, side: Side) -> u16 {
        match side {
            Side::A => self.a_port,
            Side::B => self.b_port,
        }
    }
}

/// A request received on one leg and forwarded on the other, waiting for its answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub ctx: ClientTxId,
    pub stx: ServerTxId,
    /// The leg the request came from (the answer goes back there).
    pub from: Side,
    pub req: Request,
    /// The other leg has answered provisionally, so the request may be cancelled (§9.1).
    pub provisional: bool,
    /// The sender cancelled it before that: CANCEL on the other leg's first provisional.
    pub cancel_owed: bool,
    /// The sender's SDP before this request's offer: its media again if the request fails.
    pub prev_sdp_in: Option<bytes::Bytes>,
}

/// A 2xx to an INVITE sent on leg `from`, waiting for that leg's ACK.
#[derive(Debug, Clone)]
pub struct AwaitAck {
    pub from: Side,
    pub cseq: u32,
    pub stx: ServerTxId,
    /// The other leg's INVITE CSeq when its ACK is held back until this ACK brings the
    /// SDP answer (offer in the 2xx).
    pub ack_other: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub key: u64,
    /// The peer table the call was set up with: a reload changes new calls only.
    pub peers: std::sync::Arc<Peers>,
    /// veil's id for the call (logs, CDR row id).
    pub vref: String,
    pub phase: Phase,
    pub a: Leg,
    pub b: Leg,
    /// The caller's INVITE and its server transaction.
    pub a_invite: Request,
    pub a_invite_stx: ServerTxId,
    pub route: Route,
    /// Index into `route.targets` of the target of leg B.
    pub target: usize,
    /// The transport addresses of that peer in the order this call tries them (drawn
    /// when the call moved to the peer), and the index of the one leg B went to.
    pub hops: Vec<super::targets::PeerTarget>,
    pub hop: usize,
    /// Attempt counter; timers of earlier attempts are stale.
    pub attempt: u32,
    pub streams: Vec<Stream>,
    pub pending: Vec<Pending>,
    pub await_ack: Vec<AwaitAck>,
    /// The caller's INVITE had no SDP: the offer comes in leg B's 2xx.
    pub late_offer: bool,
    pub started: Instant,
    pub started_wall: SystemTime,
    /// Hold state and idle streams (RTP inactivity).
    pub media: super::inactivity::CallMedia,
    /// SRTP keys per stream and leg.
    pub srtp: super::srtp::CallSrtp,
    /// Leg A's session timer as agreed from the caller's INVITE; applied at answer.
    pub a_session: Option<super::session_timer::SessionTimer>,
    /// Leg B's INVITE was re-sent once after a 422, asking for this Min-SE.
    pub b_min_se: Option<std::time::Duration>,
    /// To tags of extra 2xx forks of leg B's INVITE already ACKed and hung up.
    pub b_extra_forks: Vec<String>,
    /// Server and client transactions of this call possibly still in `stx_calls` /
    /// `owners`, so ending it removes just these (not a scan of every call's).
    pub stxs: Vec<ServerTxId>,
    pub ctxs: Vec<ClientTxId>,
    /// What the call waits for, and until when (`call_timers.rs`).
    pub deadlines: super::call_timers::CallDeadlines,
    /// Each leg's identifiers, for the leak guard (`leak_guard.rs`).
    pub leak: super::leak_guard::CallIds,
}

impl Call {
    /// When leg B's answer crossed to the caller; `None` while the call is set up.
    pub fn answered(&self) -> Option<Instant> {
        match self.phase {
            Phase::Answered { at, .. } => Some(at),
            Phase::Setup(_) => None,
        }
    }

    /// Leg B's INVITE of a new attempt went out: the call is set up anew.
    pub fn start_attempt(&mut self, invite: ClientTxId) {
        self.phase = Phase::Setup(Attempt {
            invite: Some(invite),
            ..Attempt::default()
        });
    }

    /// A provisional response to leg B's INVITE of the attempt in progress: it may be
    /// cancelled from now on (RFC 3261 §9.1, a 100 counts). `crosses`: it is relayed to
    /// the caller (not a 100). True the first time one crosses: the call is early.
    pub fn provisional(&mut self, crosses: bool) -> bool {
        match &mut self.phase {
            Phase::Setup(a) => {
                a.provisional = true;
                crosses && !std::mem::replace(&mut a.early, true)
            }
            Phase::Answered { .. } => false,
        }
    }

    /// Leg B's 2xx crosses to the caller now; ringing is over.
    pub fn answer(&mut self, now: Instant) {
        self.phase = Phase::Answered {
            at: now,
            confirmed: false,
        };
        self.deadlines.clear(CallTimer::Ring);
    }

    /// The caller's ACK for the answer came. True the first time.
    pub fn confirm(&mut self) -> bool {
        match &mut self.phase {
            Phase::Answered { confirmed, .. } => !std::mem::replace(confirmed, true),
            Phase::Setup(_) => false,
        }
    }

    /// The call moves on from the attempt in progress (to another target, or it ends):
    /// that attempt, whose INVITE may still await its final response.
    pub fn leave_attempt(&mut self) -> Option<Attempt> {
        self.attempt_mut().map(std::mem::take)
    }

    /// The attempt in progress, while the call is set up.
    pub fn attempt_mut(&mut self) -> Option<&mut Attempt> {
        match &mut self.phase {
            Phase::Setup(a) => Some(a),
            Phase::Answered { .. } => None,
        }
    }

    /// Leg B's INVITE of the attempt in progress.
    pub fn b_invite(&self) -> Option<ClientTxId> {
        match &self.phase {
            Phase::Setup(a) => a.invite,
            Phase::Answered { .. } => None,
        }
    }

    pub fn leg(&self, side: Side) -> &Leg {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    pub fn leg_mut(&mut self, side: Side) -> &mut Leg {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }
}
