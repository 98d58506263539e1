//! The RTP/RTCP relay (tokio): executes `MediaCommand`s, forwards packets between the two
//! sides of each stream with latching, counts packets.
//!
//! One command task owns the map of streams; each stream is one task that owns its four
//! sockets, waits on all of them and on its own command channel, and forwards with one
//! reusable buffer: no locks, no allocation per packet. Forwarding decisions live in the
//! sans-IO `StreamState`.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

use super::stream::{Channel, Socket, StreamState};
use super::{MediaCommand, MediaEvent, Side, StreamId};
use crate::observe::Metrics;

/// Large enough for any RTP/RTCP packet on an Ethernet path; longer datagrams are
/// truncated by the kernel (and forwarded truncated).
const BUFFER: usize = 2048;

/// How the relay treats every stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayOptions {
    /// Report `MediaEvent::Idle` after this long without RTP from either side (`None`:
    /// never). The engine decides what idleness means for the call.
    pub idle_after: Option<Duration>,
    /// IP TOS byte (IPv4) / traffic class (IPv6) on every socket; 184 = DSCP EF.
    pub tos: u8,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            idle_after: None,
            tos: 184,
        }
    }
}

/// What the relay's command task receives.
#[derive(Debug)]
enum Message {
    Command(MediaCommand),
    /// Answered once every earlier message has been handled.
    Flush(oneshot::Sender<()>),
}

/// What a stream task receives.
#[derive(Debug)]
enum StreamCommand {
    SetRemote {
        side: Side,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
    },
    Close,
}

/// Handle to the relay; cheap to clone.
#[derive(Debug, Clone)]
pub struct Relay {
    tx: mpsc::UnboundedSender<Message>,
}

impl Relay {
    /// Start the relay on the current tokio runtime. Events go to `events`.
    pub fn start(
        bind: IpAddr,
        events: mpsc::UnboundedSender<MediaEvent>,
        metrics: crate::observe::Metrics,
    ) -> Relay {
        Relay::start_with(bind, events, metrics, RelayOptions::default())
    }

    /// `start` with explicit options (idle reporting, TOS).
    pub fn start_with(
        bind: IpAddr,
        events: mpsc::UnboundedSender<MediaEvent>,
        metrics: crate::observe::Metrics,
        options: RelayOptions,
    ) -> Relay {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(bind, rx, events, metrics, options));
        Relay { tx }
    }

    pub fn command(&self, cmd: MediaCommand) {
        let _ = self.tx.send(Message::Command(cmd));
    }

    /// Resolves once every command given before it has been executed: sockets of an
    /// `Open` are bound (or `BindFailed` is sent), `SetRemote`/`Close` have reached the
    /// stream. (`Closed` itself follows when the stream task has dropped its sockets.)
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The command task: ends when every `Relay` handle is gone, which closes every stream's
/// channel and so ends the stream tasks too.
async fn run(
    bind: IpAddr,
    mut rx: mpsc::UnboundedReceiver<Message>,
    events: mpsc::UnboundedSender<MediaEvent>,
    metrics: Metrics,
    options: RelayOptions,
) {
    let mut streams: HashMap<StreamId, mpsc::UnboundedSender<StreamCommand>> = HashMap::new();
    while let Some(message) = rx.recv().await {
        let cmd = match message {
            Message::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Message::Command(cmd) => cmd,
        };
        match cmd {
            MediaCommand::Open { id, a_port, b_port } => {
                if streams.contains_key(&id) {
                    tracing::warn!(stream = id.0, "media stream opened twice");
                    let _ = events.send(MediaEvent::BindFailed { id });
                    continue;
                }
                match bind_sockets(bind, a_port, b_port, options.tos) {
                    Ok(sockets) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        metrics.media_streams_active.inc();
                        let task = StreamTask {
                            id,
                            sockets,
                            events: events.clone(),
                            metrics: metrics.clone(),
                            idle_after: options.idle_after,
                        };
                        tokio::spawn(task.run(rx));
                        streams.insert(id, tx);
                    }
                    Err(error) => {
                        tracing::warn!(stream = id.0, a_port, b_port, %error, "media bind failed");
                        let _ = events.send(MediaEvent::BindFailed { id });
                    }
                }
            }
            MediaCommand::SetRemote {
                id,
                side,
                rtp,
                rtcp,
            } => {
                if let Some(tx) = streams.get(&id) {
                    let _ = tx.send(StreamCommand::SetRemote { side, rtp, rtcp });
                }
            }
            // Unknown ids (never opened, bind failed, closed twice) need no answer.
            MediaCommand::Close { id } => {
                if let Some(tx) = streams.remove(&id) {
                    let _ = tx.send(StreamCommand::Close);
                }
            }
        }
    }
}

/// Binds A RTP, A RTCP, B RTP, B RTCP (the order of `Socket::ALL`). On error the sockets
/// bound so far are dropped, i.e. released.
fn bind_sockets(ip: IpAddr, a_port: u16, b_port: u16, tos: u8) -> io::Result<[UdpSocket; 4]> {
    let pair = |port: u16| {
        port.checked_add(1)
            .filter(|_| port != 0)
            .map(|rtcp| (port, rtcp))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "port out of range"))
    };
    let (a_rtp, a_rtcp) = pair(a_port)?;
    let (b_rtp, b_rtcp) = pair(b_port)?;
    Ok([
        bind_one(ip, a_rtp, tos)?,
        bind_one(ip, a_rtcp, tos)?,
        bind_one(ip, b_rtp, tos)?,
        bind_one(ip, b_rtcp, tos)?,
    ])
}

pub(super) fn bind_one(ip: IpAddr, port: u16, tos: u8) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(socket)?;
    // Marking is best effort: a kernel that refuses it still relays.
    let marked = match ip {
        IpAddr::V4(_) => socket.set_tos_v4(u32::from(tos)),
        IpAddr::V6(_) => socket.set_tclass_v6(u32::from(tos)),
    };
    if let Err(error) = marked {
        tracing::debug!(port, %error, "could not set TOS on media socket");
    }
    Ok(socket)
}

/// What woke a stream task.
enum Wake {
    Command(Option<StreamCommand>),
    Packet(Socket, io::Result<(usize, SocketAddr)>),
    /// The idle deadline passed (it may have moved since: check).
    Tick,
}

/// One stream's task: its sockets, where it reports, and its idle deadline.
struct StreamTask {
    id: StreamId,
    sockets: [UdpSocket; 4],
    events: mpsc::UnboundedSender<MediaEvent>,
    metrics: Metrics,
    idle_after: Option<Duration>,
}

impl StreamTask {
    async fn run(self, mut commands: mpsc::UnboundedReceiver<StreamCommand>) {
        let StreamTask {
            id,
            sockets,
            events,
            metrics,
            idle_after,
        } = self;
        let mut state = StreamState::default();
        let mut buf = vec![0u8; BUFFER];
        let mut start = 0;
        // One timer per stream, re-armed only when it fires: a packet costs a clock read,
        // not a timer update.
        let mut last_rtp = Instant::now();
        let mut idle = false;
        let mut tick: Option<Pin<Box<Sleep>>> = idle_after.map(|d| Box::pin(tokio::time::sleep(d)));
        loop {
            let wake = poll_fn(|cx| {
                poll_wake(cx, &mut commands, &sockets, &mut buf, &mut start, &mut tick)
            })
            .await;
            match wake {
                Wake::Command(Some(StreamCommand::SetRemote { side, rtp, rtcp })) => {
                    state.set_remote(side, rtp, rtcp);
                }
                Wake::Command(Some(StreamCommand::Close) | None) => break,
                Wake::Tick => {
                    let (Some(after), Some(t)) = (idle_after, tick.as_mut()) else {
                        continue;
                    };
                    let now = Instant::now();
                    let due = last_rtp + after;
                    if now >= due {
                        if !idle {
                            idle = true;
                            let _ = events.send(MediaEvent::Idle { id });
                        }
                        t.as_mut().reset((now + after).into());
                    } else {
                        t.as_mut().reset(due.into());
                    }
                }
                Wake::Packet(on, Ok((len, source))) => {
                    let now = Instant::now();
                    let data = &buf[..len];
                    if !crate::media::rtp::is_rtcp(data) && on.channel == Channel::Rtp {
                        last_rtp = now;
                        if idle {
                            idle = false;
                            let _ = events.send(MediaEvent::Active { id });
                        }
                    }
                    let Some((out, dest)) = state.on_datagram(on, source, data, now) else {
                        continue;
                    };
                    // A full send buffer drops the packet: late RTP is useless anyway, and
                    // waiting would stall the other direction.
                    match sockets[out.index()].try_send_to(data, dest) {
                        Ok(_) => metrics.media_packets_relayed.inc(),
                        Err(error) => {
                            tracing::trace!(stream = id.0, %dest, %error, "media send failed")
                        }
                    }
                }
                Wake::Packet(on, Err(error)) => {
                    tracing::debug!(stream = id.0, side = ?on.side, %error, "media receive failed");
                }
            }
        }
        drop(sockets);
        metrics.media_streams_active.dec();
        let (a_packets, b_packets) = state.counters();
        let _ = events.send(MediaEvent::Stats {
            id,
            a: state.stats(Side::A),
            b: state.stats(Side::B),
        });
        let _ = events.send(MediaEvent::Closed {
            id,
            a_packets,
            b_packets,
        });
    }
}

/// Commands first (so a `SetRemote` sent before a packet applies to it), then the sockets
/// starting after the one served last, so a flood on one socket cannot starve the others.
fn poll_wake(
    cx: &mut Context<'_>,
    commands: &mut mpsc::UnboundedReceiver<StreamCommand>,
    sockets: &[UdpSocket; 4],
    buf: &mut [u8],
    start: &mut usize,
    tick: &mut Option<Pin<Box<Sleep>>>,
) -> Poll<Wake> {
    if let Poll::Ready(cmd) = commands.poll_recv(cx) {
        return Poll::Ready(Wake::Command(cmd));
    }
    if let Some(t) = tick
        && t.as_mut().poll(cx).is_ready()
    {
        return Poll::Ready(Wake::Tick);
    }
    for k in 0..sockets.len() {
        let i = (*start + k) % sockets.len();
        let mut read = ReadBuf::new(buf);
        if let Poll::Ready(result) = sockets[i].poll_recv_from(cx, &mut read) {
            *start = (i + 1) % sockets.len();
            let len = read.filled().len();
            return Poll::Ready(Wake::Packet(Socket::ALL[i], result.map(|src| (len, src))));
        }
    }
    Poll::Pending
}
