//! Who owns each client transaction veil started: the one map (`Engine::owners`) that
//! says where a response or a timeout goes. A transaction with no owner belongs to nobody
//! who waits for it (a BYE or CANCEL of veil's, a call long gone): a 2xx to an INVITE of
//! such a one still gets its ACK (`invite.rs`, `on_orphan_response`).

use crate::media::Side;

use super::standalone::Standalone;

#[derive(Debug)]
pub enum TxOwner {
    /// Leg B's INVITE of call `call`: an attempt in progress, or the one that was
    /// answered (a retransmitted 2xx gets the ACK again, another fork's 2xx ACK and BYE).
    Invite { call: u64 },
    /// A request of one leg of `call` re-originated on the other (`Call::pending`).
    Forward { call: u64 },
    /// veil's own session refresh on leg `side` of `call`.
    Refresh { call: u64, side: Side },
    /// An INVITE of veil's on leg `side` of `call` whose 2xx was ACKed: a retransmission
    /// of that 2xx gets the same ACK again (RFC 3261 §13.2.2.4).
    Acked { call: u64, side: Side },
    /// Leg B's INVITE left unanswered when its call moved to another target or ended:
    /// it is cancelled on its first provisional response if `cancel_owed` (none may be
    /// sent before, RFC 3261 §9.1), and a 2xx gets ACK and BYE.
    Abandoned { cancel_owed: bool },
    /// OPTIONS keep-alive to the peer of that name.
    Probe { peer: String },
    /// An out-of-dialog request (MESSAGE, REGISTER, ...) relayed on leg B.
    Standalone(Box<Standalone>),
}

impl TxOwner {
    /// The call the transaction works for, if any.
    pub fn call(&self) -> Option<u64> {
        match *self {
            TxOwner::Invite { call }
            | TxOwner::Forward { call }
            | TxOwner::Refresh { call, .. }
            | TxOwner::Acked { call, .. } => Some(call),
            TxOwner::Abandoned { .. } | TxOwner::Probe { .. } | TxOwner::Standalone(_) => None,
        }
    }
}
