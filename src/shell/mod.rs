//! The tokio shell: sockets, timers and tasks around the sans-IO engine. One task owns the
//! engine (no locks on the signalling path); listener and connection tasks feed it through
//! a bounded channel; what it outputs is sent, handed to the relay or to the CDR writer.

mod conn_limits;
mod dns;
mod net;
mod notify;
mod run;
mod tls;
mod trim;

pub(crate) use conn_limits::{fd_warning, nofile as nofile_for_run};
pub use dns::describe_dns;
pub use run::{run, serve};
pub use trim::set_collector;

use bytes::Bytes;

use crate::media::MediaEvent;
use crate::transaction::Flow;

/// What the I/O tasks tell the engine task.
#[derive(Debug)]
pub(crate) enum ShellEvent {
    Sip {
        data: Bytes,
        flow: Flow,
    },
    Media(MediaEvent),
    /// A TCP or TLS connection is up (accepted or connected, TLS handshake done); frames
    /// to send go to `writer`.
    TcpUp {
        conn: u64,
        transport: crate::config::Transport,
        remote: std::net::SocketAddr,
        writer: tokio::sync::mpsc::UnboundedSender<Bytes>,
    },
    TcpDown {
        conn: u64,
    },
    /// An outbound connection attempt (connect or TLS handshake) failed: what was queued
    /// for `remote` is dropped and its transactions fail as if timed out.
    TcpFailed {
        transport: crate::config::Transport,
        remote: std::net::SocketAddr,
    },
    /// A DNS resolution of peer `peer` (configured `address`) ended; events of an older
    /// `generation` (before a reload) are ignored.
    Dns {
        generation: u64,
        peer: String,
        address: String,
        result: dns::DnsResult,
    },
}
