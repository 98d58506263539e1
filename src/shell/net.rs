//! Socket tasks: UDP receive loops, TCP/TLS accept/connect and per-connection framing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, timeout};
use tokio_rustls::TlsAcceptor;

use super::ShellEvent;
use super::conn_limits::{ConnLimits, Refusal, Slot};
use super::tls::PeerClient;
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

/// What a stream connection needs besides its socket: where frames go, the size cap, how
/// long it may sit idle.
#[derive(Clone)]
pub(super) struct StreamCtx {
    pub events: mpsc::Sender<ShellEvent>,
    pub max: usize,
    pub idle: Duration,
    /// Caps on accepted connections, shared by every accept loop.
    pub limits: Arc<ConnLimits>,
    /// `sip.stranger_idle`: the idle limit of accepted connections from no peer.
    pub stranger_idle: Duration,
    pub metrics: Metrics,
}

/// An accepted connection must carry a SIP message within this long of its accept (TLS:
/// of its handshake), or it is closed: an idle socket is an attack, not a client.
const FIRST_MESSAGE: Duration = Duration::from_secs(5);

/// Longest pause between accepts after an error (EMFILE, ENFILE, ENOBUFS): the loop backs
/// off instead of spinning while descriptors are short.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What an accepted connection carries besides its socket: its place under the caps, and
/// whether its source is a peer.
struct Inbound {
    _slot: Slot,
    stranger: bool,
}

/// Accept TCP connections; on a TLS listener (`tls` set) each one does its handshake in
/// its own task before it carries SIP, so a slow handshake does not stall the accepts.
pub(super) async fn tcp_accept_loop(
    l: TcpListener,
    listener: usize,
    transport: Transport,
    tls: Option<TlsAcceptor>,
    ctx: StreamCtx,
    gate: Gate,
) {
    let mut backoff = Duration::ZERO;
    loop {
        match l.accept().await {
            Ok((stream, remote)) => {
                backoff = Duration::ZERO;
                if gate.banned(remote.ip()) {
                    gate.drop(DropReason::Banned);
                    refused(&gate, "banned");
                    continue;
                }
                let peer = ctx.limits.peer_of(remote, transport, listener);
                let slot = match ctx.limits.admit(remote, peer) {
                    Ok(slot) => slot,
                    Err(why) => {
                        refused(&gate, why.as_str());
                        if why == Refusal::Total {
                            tracing::debug!(%remote, "connection refused: sip.max_connections reached");
                        }
                        continue;
                    }
                };
                let inbound = Inbound {
                    _slot: slot,
                    stranger: peer.is_none(),
                };
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                match &tls {
                    None => {
                        tokio::spawn(connection(
                            stream,
                            listener,
                            transport,
                            remote,
                            ctx,
                            Some(inbound),
                        ));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            match timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => {
                                    connection(tls, listener, transport, remote, ctx, Some(inbound))
                                        .await
                                }
                                Ok(Err(e)) => {
                                    tracing::info!(%remote, error = %e, "tls handshake with client failed")
                                }
                                Err(_) => {
                                    tracing::info!(%remote, "tls handshake with client timed out")
                                }
                            }
                        });
                    }
                }
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), ACCEPT_BACKOFF_MAX);
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "tcp accept failed");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

fn refused(gate: &Gate, reason: &str) {
    gate.metrics
        .sip_connections_refused
        .with_label_values(&[reason])
        .inc();
}

/// How long a TCP connect or a TLS handshake may take before the target counts as dead.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Open a connection to `remote` from the listener's address; over TLS, verify the peer
/// per its `client` context. A failure is reported with the peer's name and the reason,
/// and the engine fails over as for a dead target.
pub(super) async fn tcp_connect(
    local: SocketAddr,
    listener: usize,
    transport: Transport,
    remote: SocketAddr,
    peer: String,
    client: Option<PeerClient>,
    ctx: StreamCtx,
) {
    let sock = if remote.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    let stream = match sock {
        Ok(s) => {
            let _ = s.bind(SocketAddr::new(local.ip(), 0));
            match timeout(HANDSHAKE_TIMEOUT, s.connect(remote)).await {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => Err(format!("connect: {e}")),
                Err(_) => Err("connect timed out".into()),
            }
        }
        Err(e) => Err(format!("socket: {e}")),
    };
    let result: Result<(), String> = match (stream, transport, client) {
        (Ok(stream), Transport::Tls, Some(client)) => {
            let _ = stream.set_nodelay(true);
            match timeout(
                HANDSHAKE_TIMEOUT,
                client.connector.connect(client.name.clone(), stream),
            )
            .await
            {
                Ok(Ok(tls)) => {
                    connection(tls, listener, transport, remote, ctx, None).await;
                    return;
                }
                Ok(Err(e)) => Err(format!("tls handshake: {e}")),
                Err(_) => Err("tls handshake timed out".into()),
            }
        }
        (Ok(_), Transport::Tls, None) => Err("no TLS client context".into()),
        (Ok(stream), _, _) => {
            let _ = stream.set_nodelay(true);
            connection(stream, listener, transport, remote, ctx, None).await;
            return;
        }
        (Err(e), _, _) => Err(e),
    };
    if let Err(reason) = result {
        tracing::warn!(peer = %peer, %remote, transport = transport.via_token(), reason = %reason, "connection to peer failed");
        let _ = ctx
            .events
            .send(ShellEvent::TcpFailed { transport, remote })
            .await;
    }
}

/// One stream connection (TCP or TLS): frames in to the engine, bytes out from the engine,
/// CRLF keep-alive pings answered with a pong (RFC 5626 §4.4.1), closed after `idle` with
/// no bytes either way. An accepted one (`inbound`) must also frame a SIP message within
/// [`FIRST_MESSAGE`], and one from no peer goes at `stranger_idle`.
async fn connection<S>(
    stream: S,
    listener: usize,
    transport: Transport,
    remote: SocketAddr,
    ctx: StreamCtx,
    inbound: Option<Inbound>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    if ctx
        .events
        .send(ShellEvent::TcpUp {
            conn,
            transport,
            remote,
            writer: tx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let opened = Instant::now();
    let idle = match &inbound {
        Some(i) if i.stranger => ctx.idle.min(ctx.stranger_idle),
        _ => ctx.idle,
    };
    // Until a first message is framed, an accepted connection lives FIRST_MESSAGE at most.
    let mut first_by = inbound.as_ref().map(|_| opened + FIRST_MESSAGE);
    // Milliseconds since `opened` of the last byte read or written.
    let last = Arc::new(AtomicU64::new(0));
    let touch = move |last: &AtomicU64| {
        let ms = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(ms, Ordering::Relaxed);
    };
    let stop = Arc::new(tokio::sync::Notify::new());
    let writer = {
        let (last, stop) = (last.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    b = rx.recv() => {
                        let Some(b) = b else { break };
                        if wr.write_all(&b).await.is_err() {
                            break;
                        }
                        touch(&last);
                    }
                    () = stop.notified() => break,
                }
            }
            // Over TLS this sends close_notify before the TCP FIN.
            let _ = timeout(Duration::from_secs(1), wr.shutdown()).await;
        })
    };
    let mut framer = StreamFramer::new(ctx.max);
    let mut buf = vec![0u8; 16384];
    let flow = Flow {
        listener,
        transport,
        remote,
        conn: Some(conn),
    };
    let stranger = inbound.as_ref().is_some_and(|i| i.stranger);
    'read: loop {
        let idle_at = opened + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        let wake = first_by.map_or(idle_at, |f| f.min(idle_at));
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = tokio::time::sleep_until(wake.into()) => {
                if first_by.is_some_and(|f| Instant::now() >= f) {
                    tracing::debug!(%remote, transport = transport.via_token(), "closing connection without a SIP message");
                    closed_early(&ctx, "no_message");
                    break;
                }
                let since = opened + Duration::from_millis(last.load(Ordering::Relaxed));
                if since.elapsed() >= idle {
                    tracing::debug!(%remote, transport = transport.via_token(), "closing idle connection");
                    if stranger && idle < ctx.idle {
                        closed_early(&ctx, "stranger_idle");
                    }
                    break;
                }
                continue;
            }
        };
        touch(&last);
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    first_by = None;
                    if ctx
                        .events
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
                    tracing::info!(%remote, error = %e, "closing unframeable stream connection");
                    break 'read;
                }
            }
        }
    }
    // Tell the engine task first, so that nothing more is queued to this connection.
    let _ = ctx.events.send(ShellEvent::TcpDown { conn }).await;
    stop.notify_one();
    let _ = timeout(Duration::from_secs(2), writer).await;
    // The place under the caps is given back only now, with the socket closed.
    drop(inbound);
}

fn closed_early(ctx: &StreamCtx, reason: &str) {
    ctx.metrics
        .sip_connections_closed
        .with_label_values(&[reason])
        .inc();
}
