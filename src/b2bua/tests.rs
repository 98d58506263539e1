//! Engine scenarios without sockets: two scripted peers (PBX at 127.0.0.2, carrier at
//! 127.0.0.3/.4) wired to the engine in memory, the clock advanced by the test. The
//! harness itself lives in `harness.rs` (also built for the fuzz crate, feature `testkit`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::Input;
pub(super) use super::harness::*;
use crate::config::Transport;
use crate::media::MediaCommand;
use crate::observe::CdrEvent;
use crate::sip::{HeaderName, Message, Request, Response, SipHeaders};
use crate::transaction::Flow;

const A_SECRETS: &[&str] = &[
    "127.0.0.2",
    "pbxtag",
    "a-call-1",
    "z9hG4bKpbx",
    "pbxsecret",
    "PBX-Internal",
    "X-Secret",
    "Secret PBX",
    "6000",
];
const B_SECRETS: &[&str] = &[
    "127.0.0.3",
    "carriertag",
    "carriersecret",
    "Carrier-Switch",
    "7000",
];

pub(super) fn assert_clean(texts: &[(Message, String)], secrets: &[&str], side: &str) {
    for (_, t) in texts {
        for s in secrets {
            assert!(
                !t.contains(s),
                "{side} received {s:?} from the other side:\n{t}"
            );
        }
    }
}

/// Set up an answered call pbx -> carrier; returns (harness, leg B INVITE, 200 to A).
pub(super) fn answered_call() -> (Harness, Request, Response) {
    let mut h = Harness::new();
    h.inject(PBX, &invite_from_pbx("a-call-1", "0123456"));
    let trying = h.take(PBX);
    assert!(
        trying
            .iter()
            .any(|(m, _)| matches!(m, Message::Response(r) if r.code == 100))
    );
    let b_inv = h.take_request(CARRIER, "INVITE");
    h.inject(CARRIER, &answer(&b_inv, 180, false));
    h.take_response(PBX, 180);
    h.inject(CARRIER, &answer(&b_inv, 200, true));
    let ok = h.take_response(PBX, 200);
    let ack = h.take_request(CARRIER, "ACK");
    assert_eq!(ack.call_id().unwrap(), b_inv.call_id().unwrap());
    (h, b_inv, ok)
}

/// The basic flows: a call, BYE, CANCEL, failover, re-INVITE, PRACK, INFO, UPDATE.
mod basic_call;

mod edge;

/// Calls ended before leg B's first provisional response.
mod unanswered_end;

/// Abandoned attempts, extra 2xx forks, hang-up cost against calls held.
mod moving_on;

/// Rate limits, bans, scanners, limits per peer (issue 7).
mod security;

/// Reload and graceful drain (issue 6).
mod ops;

/// Peers resolved by DNS (RFC 3263): several targets per peer, weights, resting targets.
mod dns;

/// Route sets on both legs: Record-Route copied back, loose and strict routing.
mod routing;

/// CANCEL of leg B once any provisional (100 included) has arrived (issue 14).
mod cancel_early;

/// A 2xx never ACKed ends the call, `no_ack` (issue 14).
mod no_ack;

/// Malformed ACKs dropped, never answered (issue 14).
mod ack_unanswered;

/// CANCEL of a pending re-INVITE; failed offers keep the previous media (issue 14).
mod reoffer_cancel;

/// Hold with c=0.0.0.0 crosses as a direction attribute (issue 14).
mod hold;

/// A panicking engine step ends its own call only (issue 13).
mod panic_guard;

/// Answers veil cannot relay are refused, never forwarded empty (issue 13).
mod unusable_answer;

/// Session timers (RFC 4028) per leg, maximum call length, setup timeouts (issue 4).
mod session_timer;

/// Values from the wire that must not stop veil: 20-digit timers and the like (issue 13).
mod hostile_values;

/// The leak guard: nothing of one leg's identifiers on the other (issue 14).
mod leak_guard;

/// Codec policy, RTP inactivity, stream lifetimes, SRTP modes.
mod media;

/// Out-of-dialog requests relayed by policy (MESSAGE, REGISTER, OPTIONS, ...).
mod standalone;

/// One owner per client transaction; nothing left in the routing maps after calls end.
mod owners;

/// Findings of the engine_call fuzz target, one test each (issue 13).
mod fuzz_findings;

/// Peers told apart by source port and listener (issue 14); the message valve (issue 15).
mod peer_edge;
