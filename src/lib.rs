//! veil: a SIP Session Border Controller.
//!
//! Layers, bottom up: `sip` (syntax) -> `transaction` (RFC 3261 §17) -> `b2bua` (calls,
//! two dialogs each) with `sdp` and `media::ports`; `config` and `policy` decide; the
//! `shell` runs it all on tokio; `observe` exports metrics, CDRs and logs.

pub mod b2bua;
pub mod config;
pub mod fastmap;
pub mod media;
pub mod observe;
pub mod policy;
pub mod sdp;
pub mod security;
pub mod shell;
pub mod sip;
pub mod transaction;
