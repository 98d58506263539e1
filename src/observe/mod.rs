//! Observability: Prometheus metrics, CDR records (SQLite writer off the signalling path),
//! and log setup.

pub mod cdr;
pub mod log;
pub mod metrics;

pub use cdr::{CdrEvent, CdrWriter};
pub use metrics::Metrics;
