//! The RTP/RTCP relay (tokio): executes `MediaCommand`s, forwards packets between the two
//! sides of each stream with latching, counts packets.
//!
//! One command task owns the map of streams; each stream is one task that owns its four
//! sockets, waits on all of them and on its own command channel, and forwards with one
//! reusable buffer: no locks, no allocation per packet. Forwarding decisions live in the
//! sans-IO `StreamState`.

use std::borrow::Cow;
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

use super::rtcp_sdes::{self, Rewrite};
use super::srtp::{SrtpKey, SrtpSession};
use super::stream::{Channel, DropReason, LatchPolicy, Socket, StreamState, Verdict};
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
    /// Also bind every port here (`media.address6`), so that a side can be reached over
    /// either family; packets leave by the socket of the destination's family.
    pub bind6: Option<IpAddr>,
    /// Which sources may latch and when a latch may move (`media.latching`,
    /// `media.relatch_after`).
    pub latch: LatchPolicy,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            idle_after: None,
            tos: 184,
            bind6: None,
            latch: LatchPolicy::default(),
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
    SetParty {
        side: Side,
        ip: Option<IpAddr>,
    },
    SetCrypto {
        side: Side,
        inbound: Option<SrtpKey>,
        outbound: Option<SrtpKey>,
    },
    SetSources {
        side: Side,
        allowed: Vec<ipnet::IpNet>,
    },
    SetClockRates {
        rates: Vec<(u8, u32)>,
    },
    SetCname {
        side: Side,
        cname: String,
    },
    /// Answered once the stream's sockets are closed.
    Close(oneshot::Sender<()>),
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

    /// `start` with every port also bound on `bind6`.
    pub fn start_dual(
        bind: IpAddr,
        bind6: Option<IpAddr>,
        events: mpsc::UnboundedSender<MediaEvent>,
        metrics: crate::observe::Metrics,
    ) -> Relay {
        let options = RelayOptions {
            bind6,
            ..RelayOptions::default()
        };
        Relay::start_with(bind, events, metrics, options)
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
                let bound = bind_sockets(bind, a_port, b_port, options.tos).and_then(|v4| {
                    let v6 = options
                        .bind6
                        .map(|ip| bind_sockets(ip, a_port, b_port, options.tos))
                        .transpose()?;
                    Ok(Sockets { v4, v6 })
                });
                match bound {
                    Ok(sockets) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        metrics.media_streams_active.inc();
                        let task = StreamTask {
                            id,
                            sockets,
                            events: events.clone(),
                            metrics: metrics.clone(),
                            idle_after: options.idle_after,
                            latch: options.latch,
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
            MediaCommand::SetParty { id, side, ip } => {
                if let Some(tx) = streams.get(&id) {
                    let _ = tx.send(StreamCommand::SetParty { side, ip });
                }
            }
            MediaCommand::SetCrypto {
                id,
                side,
                inbound,
                outbound,
            } => {
                if let Some(tx) = streams.get(&id) {
                    let _ = tx.send(StreamCommand::SetCrypto {
                        side,
                        inbound,
                        outbound,
                    });
                }
            }
            MediaCommand::SetSources { id, side, allowed } => {
                if let Some(tx) = streams.get(&id) {
                    let _ = tx.send(StreamCommand::SetSources { side, allowed });
                }
            }
            MediaCommand::SetClockRates { id, rates } => {
                if let Some(tx) = streams.get(&id) {
                    let _ = tx.send(StreamCommand::SetClockRates { rates });
                }
            }
            MediaCommand::SetCname { id, side, cname } => {
                if let Some(tx) = streams.get(&id) {
                    let _ = tx.send(StreamCommand::SetCname { side, cname });
                }
            }
            // Unknown ids (never opened, bind failed, closed twice) need no answer.
            MediaCommand::Close { id } => {
                if let Some(tx) = streams.remove(&id) {
                    // Wait for the sockets to be gone: the engine may hand the ports to the
                    // next call's Open right away (a short pool under load), which would
                    // otherwise race the stream task to EADDRINUSE. The stream task
                    // serves commands before packets, so this is one task switch.
                    let (done, closed) = oneshot::channel();
                    if tx.send(StreamCommand::Close(done)).is_ok() {
                        let _ = closed.await;
                    }
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

/// A stream's sockets: A RTP, A RTCP, B RTP, B RTCP on the main address, and the same
/// ports on the IPv6 address when one is configured.
struct Sockets {
    v4: [UdpSocket; 4],
    v6: Option<[UdpSocket; 4]>,
}

impl Sockets {
    /// The socket `Socket::ALL[i]` to send to `dest` from: the one of `dest`'s family.
    fn for_dest(&self, i: usize, dest: SocketAddr) -> &UdpSocket {
        match &self.v6 {
            Some(v6) if dest.is_ipv6() != self.v4[i].local_addr().is_ok_and(|a| a.is_ipv6()) => {
                &v6[i]
            }
            _ => &self.v4[i],
        }
    }

    fn len(&self) -> usize {
        4 + self.v6.as_ref().map_or(0, |v| v.len())
    }

    /// Socket number `k` of `len()`, and its place in `Socket::ALL`.
    fn nth(&self, k: usize) -> (&UdpSocket, usize) {
        match &self.v6 {
            Some(v6) if k >= 4 => (&v6[k - 4], k - 4),
            _ => (&self.v4[k % 4], k % 4),
        }
    }
}

/// One stream's task: its sockets, where it reports, and its idle deadline.
struct StreamTask {
    id: StreamId,
    sockets: Sockets,
    events: mpsc::UnboundedSender<MediaEvent>,
    metrics: Metrics,
    idle_after: Option<Duration>,
    latch: LatchPolicy,
}

impl StreamTask {
    async fn run(self, mut commands: mpsc::UnboundedReceiver<StreamCommand>) {
        let StreamTask {
            id,
            sockets,
            events,
            metrics,
            idle_after,
            latch,
        } = self;
        let mut state = StreamState::new(latch);
        let mut crypto = [SideCrypto::default(), SideCrypto::default()];
        let mut closed: Option<oneshot::Sender<()>> = None;
        let mut buf = vec![0u8; BUFFER];
        // The CNAME veil uses towards each side (A, B), and where relayed RTCP is
        // rewritten to carry it (reused: no allocation per packet once warm).
        let mut cnames: [Option<Box<[u8]>>; 2] = [None, None];
        let mut rtcp_out: Vec<u8> = Vec::with_capacity(BUFFER);
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
                Wake::Command(Some(StreamCommand::SetParty { side, ip })) => {
                    state.set_party(side, ip);
                }
                Wake::Command(Some(StreamCommand::SetCrypto {
                    side,
                    inbound,
                    outbound,
                })) => {
                    let c = &mut crypto[side_index(side)];
                    rekey(&mut c.inbound, inbound);
                    rekey(&mut c.outbound, outbound);
                }
                Wake::Command(Some(StreamCommand::SetSources { side, allowed })) => {
                    state.set_sources(side, allowed);
                }
                Wake::Command(Some(StreamCommand::SetClockRates { rates })) => {
                    state.set_clock_rates(&rates);
                }
                Wake::Command(Some(StreamCommand::SetCname { side, cname })) => {
                    cnames[side_index(side)] = Some(cname.into_bytes().into_boxed_slice());
                }
                Wake::Command(Some(StreamCommand::Close(done))) => {
                    closed = Some(done);
                    break;
                }
                Wake::Command(None) => break,
                Wake::Tick => {
                    let (Some(after), Some(t)) = (idle_after, tick.as_mut()) else {
                        continue;
                    };
                    let now = Instant::now();
                    let due = crate::b2bua::deadline::after(last_rtp, after);
                    if now >= due {
                        if !idle {
                            idle = true;
                            let _ = events.send(MediaEvent::Idle { id });
                        }
                        t.as_mut()
                            .reset(crate::b2bua::deadline::after(now, after).into());
                    } else {
                        t.as_mut().reset(due.into());
                    }
                }
                Wake::Packet(on, Ok((len, source))) => {
                    let now = Instant::now();
                    let raw = &buf[..len];
                    // A source that may not send here (outside the side's networks, not
                    // its party, not the latched one) costs no SRTP work and is metered
                    // nowhere but in the drop counter.
                    let verdict = match state.check(on, source, raw, now) {
                        Ok(v) => v,
                        Err(reason) => {
                            state.count_drop(reason);
                            metrics.media_dropped(reason);
                            continue;
                        }
                    };
                    let rtcp = on.channel == Channel::Rtcp || crate::media::rtp::is_rtcp(raw);
                    // Authenticate before anything else looks at the packet: a forged one
                    // must neither count as activity nor move a latch.
                    let data: Cow<'_, [u8]> = match &mut crypto[side_index(on.side)].inbound {
                        None => Cow::Borrowed(raw),
                        Some(session) => {
                            let plain = if rtcp {
                                session.unprotect_rtcp(raw)
                            } else {
                                session.unprotect_rtp(raw)
                            };
                            match plain {
                                Ok(p) => Cow::Owned(p.to_vec()),
                                Err(error) => {
                                    metrics.media_srtp_errors.inc();
                                    tracing::trace!(stream = id.0, ?error, "SRTP packet dropped");
                                    continue;
                                }
                            }
                        }
                    };
                    // RTCP in the clear: the sender's SDES (CNAME with its AOR and address,
                    // NAME, TOOL...) becomes veil's CNAME for the receiving side; what
                    // cannot be parsed cannot be rewritten and does not cross.
                    let data: Cow<'_, [u8]> = if rtcp {
                        let cname = cnames[side_index(on.side.other())].as_deref();
                        match rtcp_sdes::rewrite(&data, cname, &mut rtcp_out) {
                            Ok(Rewrite::Unchanged) => data,
                            Ok(Rewrite::Rewritten) => Cow::Borrowed(&rtcp_out),
                            Err(rtcp_sdes::Malformed) => {
                                state.count_drop(DropReason::MalformedRtcp);
                                metrics.media_dropped(DropReason::MalformedRtcp);
                                tracing::trace!(stream = id.0, %source, "malformed RTCP dropped");
                                continue;
                            }
                        }
                    } else {
                        data
                    };
                    if !rtcp {
                        last_rtp = now;
                        if idle {
                            idle = false;
                            let _ = events.send(MediaEvent::Active { id });
                        }
                    }
                    if verdict != Verdict::Latched {
                        tracing::debug!(stream = id.0, side = ?on.side, %source, ?verdict, "media latched");
                    }
                    let Some((out, dest)) = state.accept(on, source, verdict, &data, now) else {
                        continue;
                    };
                    let data: Cow<'_, [u8]> = match &mut crypto[side_index(out.side)].outbound {
                        None => data,
                        Some(session) => {
                            let sealed = if rtcp {
                                session.protect_rtcp(&data)
                            } else {
                                session.protect_rtp(&data)
                            };
                            match sealed {
                                Ok(p) => Cow::Owned(p.to_vec()),
                                Err(error) => {
                                    tracing::trace!(stream = id.0, ?error, "SRTP protect failed");
                                    continue;
                                }
                            }
                        }
                    };
                    // A full send buffer drops the packet: late RTP is useless anyway, and
                    // waiting would stall the other direction.
                    match sockets.for_dest(out.index(), dest).try_send_to(&data, dest) {
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
        if let Some(done) = closed {
            let _ = done.send(());
        }
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

/// The SRTP sessions of one side of a stream (`None`: plain RTP).
#[derive(Debug, Default)]
struct SideCrypto {
    inbound: Option<SrtpSession>,
    outbound: Option<SrtpSession>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// Install `key`, keeping the running session when the key is the same.
fn rekey(session: &mut Option<SrtpSession>, key: Option<SrtpKey>) {
    if session.as_ref().map(SrtpSession::key) != key.as_ref() {
        *session = key.map(SrtpSession::new);
    }
}

/// Commands first (so a `SetRemote` sent before a packet applies to it), then the sockets
/// starting after the one served last, so a flood on one socket cannot starve the others.
fn poll_wake(
    cx: &mut Context<'_>,
    commands: &mut mpsc::UnboundedReceiver<StreamCommand>,
    sockets: &Sockets,
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
    let n = sockets.len();
    for k in 0..n {
        let i = (*start + k) % n;
        let (socket, which) = sockets.nth(i);
        let mut read = ReadBuf::new(buf);
        if let Poll::Ready(result) = socket.poll_recv_from(cx, &mut read) {
            *start = (i + 1) % n;
            let len = read.filled().len();
            return Poll::Ready(Wake::Packet(
                Socket::ALL[which],
                result.map(|src| (len, src)),
            ));
        }
    }
    Poll::Pending
}
