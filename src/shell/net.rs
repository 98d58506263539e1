//! Socket tasks: UDP receive loops, TCP accept/connect and per-connection framing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::ShellEvent;
use crate::config::Transport;
use crate::observe::Metrics;
use crate::security::{DropReason, raw};
use crate::sip::framing::{Frame, StreamFramer};
use crate::transaction::Flow;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// What the socket tasks need to drop traffic before it reaches the engine: the banned
/// sources (mirrored from the engine), the metrics, and the queue's size.
#[derive(Clone)]
pub(super) struct Gate {
    pub bans: watch::Receiver<Arc<HashMap<IpAddr, Instant>>>,
    pub metrics: Metrics,
    pub queue: usize,
    /// Events queued from which the queue counts as saturated (`security.overload_queue`;
    /// 0 = never): new INVITEs are then answered 503 here and never queued, so that what
    /// is queued is in-dialog traffic (BYE, ACK, re-INVITE) of calls already up.
    pub shed_at: usize,
}

impl Gate {
    fn banned(&self, ip: IpAddr) -> bool {
        self.bans
            .borrow()
            .get(&ip)
            .is_some_and(|until| Instant::now() < *until)
    }

    fn drop(&self, reason: DropReason) {
        self.metrics
            .sip_dropped
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Under pressure: at least `shed_at` events wait in the engine's queue.
    fn saturated(&self, events: &mpsc::Sender<ShellEvent>) -> bool {
        self.shed_at > 0 && self.queue.saturating_sub(events.capacity()) >= self.shed_at
    }
}

/// Receive datagrams forever; a full engine queue drops the datagram (UDP semantics, and
/// the sender retransmits) rather than letting the socket buffer grow stale.
pub(super) async fn udp_loop(
    sock: Arc<UdpSocket>,
    listener: usize,
    events: mpsc::Sender<ShellEvent>,
    max: usize,
    gate: Gate,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, remote)) => {
                if n > max {
                    tracing::debug!(%remote, n, "oversized datagram dropped");
                    continue;
                }
                let data = &buf[..n];
                if gate.banned(remote.ip()) {
                    gate.drop(DropReason::Banned);
                    continue;
                }
                if gate.saturated(&events) && raw::is_new_invite(data) {
                    gate.drop(DropReason::Overload);
                    if let Some(r) = raw::overload_503(data) {
                        gate.metrics.sip_response_sent(503);
                        let _ = sock.try_send_to(&r, remote);
                    }
                    continue;
                }
                let flow = Flow {
                    listener,
                    transport: Transport::Udp,
                    remote,
                    conn: None,
                };
                let ev = ShellEvent::Sip {
                    data: Bytes::copy_from_slice(data),
                    flow,
                };
                if events.try_send(ev).is_err() {
                    gate.drop(DropReason::Overload);
                    tracing::debug!(%remote, "signalling queue full; datagram dropped");
                }
            }
            Err(e) => {
                // ICMP port unreachable surfaces here on Linux; it is not fatal.
                tracing::debug!(error = %e, "udp receive error");
            }
        }
    }
}

pub(super) async fn tcp_accept_loop(
    l: TcpListener,
    listener: usize,
    events: mpsc::Sender<ShellEvent>,
    max: usize,
    gate: Gate,
) {
    loop {
        match l.accept().await {
            Ok((stream, remote)) => {
                if gate.banned(remote.ip()) {
                    gate.drop(DropReason::Banned);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, listener, remote, events.clone(), max));
            }
            Err(e) => {
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Open a connection to `remote` from the listener's address.
pub(super) async fn tcp_connect(
    local: SocketAddr,
    listener: usize,
    remote: SocketAddr,
    events: mpsc::Sender<ShellEvent>,
    max: usize,
) {
    let sock = if remote.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    let stream = match sock {
        Ok(s) => {
            let _ = s.bind(SocketAddr::new(local.ip(), 0));
            tokio::time::timeout(std::time::Duration::from_secs(5), s.connect(remote)).await
        }
        Err(e) => Ok(Err(e)),
    };
    match stream {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            connection(stream, listener, remote, events, max).await;
        }
        _ => {
            tracing::info!(%remote, "tcp connect failed");
            let _ = events.send(ShellEvent::TcpFailed { remote }).await;
        }
    }
}

/// One TCP connection: frames in to the engine, bytes out from the engine.
async fn connection(
    stream: TcpStream,
    listener: usize,
    remote: SocketAddr,
    events: mpsc::Sender<ShellEvent>,
    max: usize,
) {
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    if events
        .send(ShellEvent::TcpUp {
            conn,
            remote,
            writer: tx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::new(max);
    let mut buf = vec![0u8; 16384];
    let flow = Flow {
        listener,
        transport: Transport::Tcp,
        remote,
        conn: Some(conn),
    };
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    if events
                        .send(ShellEvent::Sip {
                            data: Bytes::from(m),
                            flow,
                        })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    let _ = tx.send(Bytes::from_static(b"\r\n"));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%remote, error = %e, "closing unframeable tcp connection");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
    let _ = events.send(ShellEvent::TcpDown { conn }).await;
}
