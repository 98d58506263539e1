//! The B2BUA engine, sans-IO: SIP bytes, media events and `now` in; transmissions, media
//! commands and CDR events out. Owns the transaction layer, every call and the port pool.
//!
//! Reading order: `engine.rs` (state, input dispatch, timers), `admission.rs` (what is
//! accepted at all), `invite.rs` (a new call: policy, leg B attempts, failover),
//! `dialog.rs` (requests inside a call crossing legs), `teardown.rs` (ending calls, CDRs),
//! `anchor.rs` (SDP rewriting per call).

mod admission;
mod anchor;
mod auth;
pub mod call;
pub mod call_timers;
pub mod deadline;
mod dialog;
mod engine;
#[cfg(any(test, feature = "testkit"))]
pub mod harness;
pub mod header_policy;
mod housekeeping;
pub mod ids;
pub mod inactivity;
mod invite;
pub mod leak_guard;
pub mod leg;
mod nat;
mod outbound;
mod owner;
pub mod panic_guard;
pub mod peers;
mod reoffer_cancel;
pub mod session_timer;
pub mod srtp;
mod standalone;
pub mod targets;
mod teardown;

#[cfg(test)]
mod tests;

pub use engine::Engine;
pub(crate) use housekeeping::shrink_map;

use crate::media::{MediaCommand, MediaEvent};
use crate::observe::CdrEvent;
use crate::transaction::{Flow, Transmit};

/// Something that happened outside the engine.
#[derive(Debug)]
pub enum Input<'a> {
    /// One SIP message (a datagram, or a frame from a stream).
    Sip {
        data: &'a [u8],
        flow: Flow,
    },
    Media(MediaEvent),
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Transmit(Transmit),
    Media(MediaCommand),
    Cdr(CdrEvent),
}
