//! CDRs: one row per call in SQLite table `cdr` (CONTRACT.md), inserted at setup, updated at
//! answer and end, by a writer thread fed through a bounded queue so that a slow disk never
//! delays SIP.
//! SKELETON: implemented by the observability work item.

use std::time::SystemTime;

/// One change to a call's CDR row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdrEvent {
    /// The call was accepted for routing: the row is inserted.
    Start {
        id: String,
        a_call_id: String,
        source_peer: String,
        from_user: String,
        to_user: String,
        started_at: SystemTime,
    },
    /// Leg B was (re)originated towards a target (updated on each failover).
    Route { id: String, b_call_id: String, dest_peer: String },
    Answer { id: String, answered_at: SystemTime },
    End {
        id: String,
        ended_at: SystemTime,
        final_code: u16,
        /// One of the `veil_calls_ended_total` reasons, or `failed`/`cancelled`/`rejected`
        /// for calls that were never answered.
        end_reason: String,
        a_packets: u64,
        b_packets: u64,
    },
}

/// Handle to the writer thread.
#[derive(Debug, Clone)]
pub struct CdrWriter {}
