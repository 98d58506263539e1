//! The B2BUA engine, sans-IO: SIP bytes, media events and `now` in; transmissions, media
//! commands and CDR events out. Owns the transaction layer, every call and the port pool.

use crate::media::{MediaCommand, MediaEvent};
use crate::observe::CdrEvent;
use crate::transaction::{Flow, Transmit};

/// Something that happened outside the engine.
#[derive(Debug)]
pub enum Input<'a> {
    /// One SIP message (a datagram, or a frame from a stream).
    Sip { data: &'a [u8], flow: Flow },
    Media(MediaEvent),
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Transmit(Transmit),
    Media(MediaCommand),
    Cdr(CdrEvent),
}
