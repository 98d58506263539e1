//! The metrics of CONTRACT.md, registered once; handles are cheap clones of atomics, so the
//! engine increments them directly. `serve` answers `GET /metrics`.
//!
//! Each `Metrics` owns its own [`prometheus::Registry`] (not the process-global default)
//! so that tests and several instances in one process never collide on registration, and
//! so that the `instance` label from the config is attached to every series as a const
//! label instead of being threaded through every increment.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Values of the `outcome` label of `veil_calls_total` (CONTRACT.md).
pub const CALL_OUTCOMES: [&str; 4] = ["answered", "failed", "cancelled", "rejected"];

/// Values of the `reason` label of `veil_calls_ended_total` (CONTRACT.md); CDR `end_reason`
/// uses the same words.
pub const END_REASONS: [&str; 8] = [
    "caller_bye",
    "callee_bye",
    "max_duration",
    "rtp_timeout",
    "session_timer",
    "shutdown",
    "error",
    "no_ack",
];

/// Methods that get a `veil_sip_requests_received_total` series from the start. A labelled
/// family with no series is left out of the scrape entirely, and the contract says the
/// names must exist; zeros also make `rate()` correct from the first scrape.
const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "UPDATE",
    "INFO",
    "REFER",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
];

/// Label used for request methods outside [`KNOWN_METHODS`]: the method token comes from the
/// network, and a label per arbitrary token would let anyone grow our memory and the
/// operator's time-series database without bound.
pub const OTHER_METHOD: &str = "other";

/// Response codes an SBC commonly sends, pre-initialized for the same reason as
/// [`KNOWN_METHODS`]. Other valid codes (100..=699) still get their own series on first use.
const COMMON_CODES: [u16; 14] = [
    100, 180, 183, 200, 400, 403, 404, 408, 481, 486, 487, 488, 500, 503,
];

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4";

#[derive(Clone, Debug)]
pub struct Metrics {
    pub calls_active: prometheus::IntGauge,
    pub calls_total: prometheus::IntCounterVec,
    pub calls_ended: prometheus::IntCounterVec,
    pub sip_requests_received: prometheus::IntCounterVec,
    pub sip_responses_sent: prometheus::IntCounterVec,
    pub sip_invalid_messages: prometheus::IntCounter,
    /// Engine steps that panicked and were caught (`b2bua::panic_guard`).
    pub engine_panics: prometheus::IntCounter,
    /// Identifiers of a call's other leg removed by the leak guard, by kind.
    pub leak_guard_hits: prometheus::IntCounterVec,
    pub media_streams_active: prometheus::IntGauge,
    pub media_packets_relayed: prometheus::IntCounter,
    /// SRTP/SRTCP packets dropped: failed authentication, replays, short or unencrypted.
    pub media_srtp_errors: prometheus::IntCounter,
    /// Media packets dropped because their source is outside the peer's `media_sources`.
    pub media_source_drops: prometheus::IntCounter,
    /// Media packets dropped for their source or malformed RTCP, by
    /// `media::stream::DropReason`.
    pub media_drops: prometheus::IntCounterVec,
    pub peer_up: prometheus::IntGaugeVec,
    /// Messages dropped unread, by reason: banned, rate_limited, scanner, overload, peer_rate.
    pub sip_dropped: prometheus::IntCounterVec,
    /// Sources banned, by reason: request_rate, invite_rate, invalid, scanner.
    pub bans: prometheus::IntCounterVec,
    pub banned_sources: prometheus::IntGauge,
    /// New calls refused by limits, by limit: max_calls, peer_max_calls, peer_cps.
    pub calls_limited: prometheus::IntCounterVec,
    /// DNS resolutions (RFC 3263) of a peer's address that found no target, by peer.
    pub dns_failures: prometheus::IntCounterVec,
    /// Connection limits (issue 15): TCP/TLS connections closed at accept, by reason
    /// (`max_connections`, `per_source`, `banned`); closed early, by reason (`no_message`,
    /// `stranger_idle`); open now.
    pub sip_connections_refused: prometheus::IntCounterVec,
    pub sip_connections_closed: prometheus::IntCounterVec,
    pub sip_connections: prometheus::IntGauge,
    /// Loss, jitter and MOS of closed streams.
    pub media_quality: MediaQualityMetrics,
    /// The CDR writer's backlog, write errors and lost rows (issue 15).
    pub cdr: CdrMetrics,
    pub registry: prometheus::Registry,
}

/// Updated by the CDR writer (`observe::cdr`): handles are atomics, so the engine's `send`
/// and the writer thread update them without locks and a scrape reads them as they are.
#[derive(Clone, Debug)]
pub struct CdrMetrics {
    /// Events accepted by `send` and not yet committed or discarded (queue + spool).
    pub backlog: prometheus::IntGauge,
    /// Failed write attempts: each failed batch transaction (every retry counts), and
    /// each event SQLite refused on its own.
    pub write_errors: prometheus::IntCounter,
    /// CDR rows missing or incomplete (see `observe::cdr` for how rows are counted).
    pub rows_lost: prometheus::IntCounter,
}

impl CdrMetrics {
    /// The metrics, not yet in any registry.
    pub fn unregistered() -> Result<CdrMetrics, prometheus::Error> {
        Ok(CdrMetrics {
            backlog: IntGauge::new(
                "veil_cdr_backlog",
                "CDR events waiting to be written (writer queue and spool).",
            )?,
            write_errors: IntCounter::new(
                "veil_cdr_write_errors_total",
                "CDR writes refused by SQLite (disk full, I/O error, lock timeout): failed \
                 batches, each retry counted, and single events refused.",
            )?,
            rows_lost: IntCounter::new(
                "veil_cdr_rows_lost_total",
                "CDR rows missing or incomplete: spool full (cdr.spool_rows), writer queue \
                 full, or still unwritten when shutdown gave up on the disk.",
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.backlog.clone()))?;
        registry.register(Box::new(self.write_errors.clone()))?;
        registry.register(Box::new(self.rows_lost.clone()))
    }
}

impl Default for CdrMetrics {
    /// Unregistered handles, for a writer without a metrics endpoint (tests, tools).
    fn default() -> CdrMetrics {
        CdrMetrics::unregistered().expect("constant metric names and help texts are valid")
    }
}

/// Per-direction quality of every closed stream, observed once at close (cheap: nothing
/// per packet). Directions without RTP are not observed.
#[derive(Clone, Debug)]
pub struct MediaQualityMetrics {
    pub packets_lost: prometheus::IntCounter,
    pub bytes_received: prometheus::IntCounter,
    pub jitter_seconds: prometheus::Histogram,
    pub mos: prometheus::Histogram,
}

impl MediaQualityMetrics {
    /// The metrics, not yet in any registry.
    pub fn unregistered() -> Result<MediaQualityMetrics, prometheus::Error> {
        Ok(MediaQualityMetrics {
            packets_lost: IntCounter::new(
                "veil_media_packets_lost_total",
                "RTP packets lost before reaching veil (from sequence numbers), all directions.",
            )?,
            bytes_received: IntCounter::new(
                "veil_media_bytes_received_total",
                "RTP/RTCP bytes received by the media relay, all directions.",
            )?,
            jitter_seconds: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "veil_media_jitter_seconds",
                    "RFC 3550 interarrival jitter per stream direction at stream close.",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]),
            )?,
            mos: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "veil_media_mos",
                    "MOS estimate (G.107 E-model from loss and jitter) per stream direction at \
                     stream close.",
                )
                .buckets(vec![1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.4]),
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.packets_lost.clone()))?;
        registry.register(Box::new(self.bytes_received.clone()))?;
        registry.register(Box::new(self.jitter_seconds.clone()))?;
        registry.register(Box::new(self.mos.clone()))
    }
}

impl Metrics {
    /// Registers every contract metric in a fresh registry labelled `instance=<instance>`.
    ///
    /// Errors only on an invalid label value or a programming error in the names, so the
    /// caller can treat it as a startup failure.
    pub fn new(instance: &str) -> Result<Metrics, prometheus::Error> {
        let labels = HashMap::from([("instance".to_string(), instance.to_string())]);
        let registry = Registry::new_custom(None, Some(labels))?;

        let calls_active = IntGauge::new(
            "veil_calls_active",
            "Calls currently in progress (from accepted INVITE until both legs are torn down).",
        )?;
        let calls_total = IntCounterVec::new(
            Opts::new(
                "veil_calls_total",
                "Calls that finished setup, by outcome: answered, failed (no target answered), \
                 cancelled (caller gave up) or rejected (by policy, limits or admission).",
            ),
            &["outcome"],
        )?;
        let calls_ended = IntCounterVec::new(
            Opts::new(
                "veil_calls_ended_total",
                "Answered calls that ended, by the reason they ended.",
            ),
            &["reason"],
        )?;
        let sip_requests_received = IntCounterVec::new(
            Opts::new(
                "veil_sip_requests_received_total",
                "SIP requests received and parsed, by method (unknown methods counted as 'other').",
            ),
            &["method"],
        )?;
        let sip_responses_sent = IntCounterVec::new(
            Opts::new(
                "veil_sip_responses_sent_total",
                "SIP responses sent by veil, by status code.",
            ),
            &["code"],
        )?;
        let sip_invalid_messages = IntCounter::new(
            "veil_sip_invalid_messages_total",
            "Datagrams or stream messages that could not be parsed as SIP and were discarded.",
        )?;
        let engine_panics = IntCounter::new(
            "veil_engine_panics_total",
            "Engine steps that panicked: caught, the call they belonged to ended with end_reason error, every other call kept.",
        )?;
        let leak_guard_hits = IntCounterVec::new(
            Opts::new(
                "veil_leak_guard_hits_total",
                "Headers or SDP lines naming a call's other leg found by the leak guard, by kind of identifier.",
            ),
            &["kind"],
        )?;
        let media_streams_active = IntGauge::new(
            "veil_media_streams_active",
            "Media streams currently anchored by the relay (one per m= line per call).",
        )?;
        let media_packets_relayed = IntCounter::new(
            "veil_media_packets_relayed_total",
            "RTP/RTCP packets forwarded by the media relay, both directions.",
        )?;
        let media_srtp_errors = IntCounter::new(
            "veil_media_srtp_errors_total",
            "SRTP/SRTCP packets the relay dropped: failed authentication, replay, too short, unencrypted SRTCP.",
        )?;
        let media_source_drops = IntCounter::new(
            "veil_media_source_dropped_total",
            "Media packets dropped because their source is outside the peer's media_sources.",
        )?;
        let peer_up = IntGaugeVec::new(
            Opts::new(
                "veil_peer_up",
                "1 if the peer answers keepalive OPTIONS and is eligible for routing, else 0.",
            ),
            &["peer"],
        )?;

        registry.register(Box::new(calls_active.clone()))?;
        registry.register(Box::new(calls_total.clone()))?;
        registry.register(Box::new(calls_ended.clone()))?;
        registry.register(Box::new(sip_requests_received.clone()))?;
        registry.register(Box::new(sip_responses_sent.clone()))?;
        registry.register(Box::new(sip_invalid_messages.clone()))?;
        registry.register(Box::new(engine_panics.clone()))?;
        registry.register(Box::new(leak_guard_hits.clone()))?;
        for k in crate::b2bua::leak_guard::Kind::ALL {
            leak_guard_hits.get_metric_with_label_values(&[k.as_str()])?;
        }
        registry.register(Box::new(media_streams_active.clone()))?;
        registry.register(Box::new(media_packets_relayed.clone()))?;
        registry.register(Box::new(media_srtp_errors.clone()))?;
        registry.register(Box::new(media_source_drops.clone()))?;
        let media_drops = IntCounterVec::new(
            Opts::new(
                "veil_media_dropped_total",
                "Media packets dropped before statistics and forwarding, by reason: \
                 not_allowed (outside media_sources), not_party (no latch yet and not the \
                 leg's party), unlatched_source (not the latched source), all three before \
                 SRTP; malformed_rtcp (RTCP whose lengths do not add up, after SRTCP).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(media_drops.clone()))?;
        for r in crate::media::stream::DropReason::ALL {
            media_drops.get_metric_with_label_values(&[r.as_str()])?;
        }
        registry.register(Box::new(peer_up.clone()))?;
        let sip_dropped = IntCounterVec::new(
            Opts::new(
                "veil_sip_dropped_total",
                "SIP messages dropped before parsing, by reason (banned source, rate limit, \
                 scanner User-Agent, overload shedding of new INVITEs, a peer over its \
                 limits.messages_per_second).",
            ),
            &["reason"],
        )?;
        let bans = IntCounterVec::new(
            Opts::new(
                "veil_bans_total",
                "Sources banned, by the reason of the ban.",
            ),
            &["reason"],
        )?;
        let banned_sources =
            IntGauge::new("veil_banned_sources", "Source addresses banned right now.")?;
        let calls_limited = IntCounterVec::new(
            Opts::new(
                "veil_calls_limited_total",
                "New calls refused with 503 by a limit: max_calls, peer_max_calls, peer_cps.",
            ),
            &["limit"],
        )?;
        registry.register(Box::new(sip_dropped.clone()))?;
        registry.register(Box::new(bans.clone()))?;
        registry.register(Box::new(banned_sources.clone()))?;
        registry.register(Box::new(calls_limited.clone()))?;
        let dns_failures = IntCounterVec::new(
            Opts::new(
                "veil_dns_failures_total",
                "Resolutions of a peer's DNS name that found no target (the peer is failed \
                 over until one succeeds).",
            ),
            &["peer"],
        )?;
        registry.register(Box::new(dns_failures.clone()))?;
        let sip_connections_refused = IntCounterVec::new(
            Opts::new(
                "veil_sip_connections_refused_total",
                "TCP/TLS connections closed at accept, by reason: max_connections (total cap \
                 or file-descriptor budget), per_source, banned.",
            ),
            &["reason"],
        )?;
        let sip_connections_closed = IntCounterVec::new(
            Opts::new(
                "veil_sip_connections_closed_total",
                "Accepted TCP/TLS connections closed early, by reason: no_message (no SIP \
                 message within 5 s), stranger_idle (a source that is no peer went idle).",
            ),
            &["reason"],
        )?;
        let sip_connections = IntGauge::new(
            "veil_sip_connections",
            "Accepted TCP/TLS connections open now.",
        )?;
        registry.register(Box::new(sip_connections_refused.clone()))?;
        registry.register(Box::new(sip_connections_closed.clone()))?;
        registry.register(Box::new(sip_connections.clone()))?;
        for r in ["max_connections", "per_source", "banned"] {
            sip_connections_refused.get_metric_with_label_values(&[r])?;
        }
        for r in ["no_message", "stranger_idle"] {
            sip_connections_closed.get_metric_with_label_values(&[r])?;
        }
        for r in crate::security::DropReason::ALL {
            sip_dropped.get_metric_with_label_values(&[r.as_str()])?;
        }
        for r in crate::security::BanReason::ALL {
            bans.get_metric_with_label_values(&[r.as_str()])?;
        }
        for l in ["max_calls", "peer_max_calls", "peer_cps"] {
            calls_limited.get_metric_with_label_values(&[l])?;
        }
        let media_quality = MediaQualityMetrics::unregistered()?;
        media_quality.register(&registry)?;
        let cdr = CdrMetrics::unregistered()?;
        cdr.register(&registry)?;

        for outcome in CALL_OUTCOMES {
            calls_total.get_metric_with_label_values(&[outcome])?;
        }
        for reason in END_REASONS {
            calls_ended.get_metric_with_label_values(&[reason])?;
        }
        for method in KNOWN_METHODS.iter().chain([&OTHER_METHOD]) {
            sip_requests_received.get_metric_with_label_values(&[method])?;
        }
        for code in COMMON_CODES {
            sip_responses_sent.get_metric_with_label_values(&[&code.to_string()])?;
        }

        Ok(Metrics {
            calls_active,
            calls_total,
            calls_ended,
            sip_requests_received,
            sip_responses_sent,
            sip_invalid_messages,
            engine_panics,
            leak_guard_hits,
            media_streams_active,
            media_packets_relayed,
            media_srtp_errors,
            media_source_drops,
            media_drops,
            peer_up,
            sip_dropped,
            bans,
            banned_sources,
            calls_limited,
            dns_failures,
            sip_connections_refused,
            sip_connections_closed,
            sip_connections,
            media_quality,
            cdr,
            registry,
        })
    }

    /// Counts a dropped media packet; `not_allowed` also feeds the older
    /// `veil_media_source_dropped_total`, kept as an alias.
    pub fn media_dropped(&self, reason: crate::media::stream::DropReason) {
        self.media_drops.with_label_values(&[reason.as_str()]).inc();
        if reason == crate::media::stream::DropReason::NotAllowed {
            self.media_source_drops.inc();
        }
    }

    /// One direction of a closed stream.
    pub fn observe_media_direction(&self, s: &crate::media::rtp::DirectionStats) {
        let q = &self.media_quality;
        q.packets_lost.inc_by(s.lost);
        q.bytes_received.inc_by(s.bytes);
        if let Some(mos) = s.mos() {
            q.jitter_seconds.observe(s.jitter_us as f64 / 1e6);
            q.mos.observe(mos);
        }
    }

    /// Counts a received request, folding methods outside the RFC set into
    /// [`OTHER_METHOD`] so that network input cannot create label values.
    pub fn sip_request_received(&self, method: &str) {
        let label = if KNOWN_METHODS.contains(&method) {
            method
        } else {
            OTHER_METHOD
        };
        self.sip_requests_received.with_label_values(&[label]).inc();
    }

    /// Counts a response sent by veil. Codes outside 100..=699 (which veil never builds)
    /// are counted under "other" rather than creating a series.
    pub fn sip_response_sent(&self, code: u16) {
        if (100..=699).contains(&code) {
            self.sip_responses_sent
                .with_label_values(&[&code.to_string()])
                .inc();
        } else {
            self.sip_responses_sent.with_label_values(&["other"]).inc();
        }
    }

    /// Sets `veil_peer_up{peer}`; peer names come from the config, so cardinality is bounded.
    pub fn set_peer_up(&self, peer: &str, up: bool) {
        self.peer_up.with_label_values(&[peer]).set(i64::from(up));
    }

    /// A peer removed by a reload: its `veil_peer_up` series goes away.
    pub fn remove_peer(&self, peer: &str) {
        let _ = self.peer_up.remove_label_values(&[peer]);
    }

    /// The current values in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut buf = Vec::new();
        // Encoding into a Vec only fails on malformed families, which our fixed
        // registrations cannot produce; an empty body is a visible, harmless fallback.
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown` becomes true. Bind errors are returned
/// so the caller can log them with context (and decide whether they are fatal).
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_listener(listener, metrics, shutdown).await
}

/// Like [`serve`] on an already-bound listener (lets tests bind port 0 and learn the port).
///
/// Each connection runs in its own task; on shutdown the accept loop stops and open
/// connections are asked to close gracefully (an in-flight scrape finishes, idle
/// keep-alive connections close at once).
pub async fn serve_listener(
    listener: TcpListener,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Per-connection failures (e.g. EMFILE, aborted handshakes) must not
                    // stop the endpoint; back off briefly so a persistent error can't spin.
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() {
                    // Sender gone: nobody can ever ask us to stop, so stop now.
                    return Ok(());
                }
                continue;
            }
        };
        let metrics = metrics.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            // `wait_for` returns a borrow guard; map it to () so it is not held across
            // the await below (the guard is not Send).
            let stop = async { conn_shutdown.wait_for(|stop| *stop).await.map(|_| ()) };
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "metrics connection ended with error");
            }
        });
    }
}

fn respond(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if req.method() == Method::GET && req.uri().path() == "/metrics" {
        let mut resp = Response::new(Full::new(Bytes::from(metrics.render())));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
        resp
    } else {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CONTRACT_NAMES: [&str; 9] = [
        "veil_calls_active",
        "veil_calls_total",
        "veil_calls_ended_total",
        "veil_sip_requests_received_total",
        "veil_sip_responses_sent_total",
        "veil_sip_invalid_messages_total",
        "veil_media_streams_active",
        "veil_media_packets_relayed_total",
        "veil_peer_up",
    ];

    /// The value of the sample `name` whose label set is exactly `labels` (in any order),
    /// parsed from the text format; label order in the output is not part of the format.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<i64> {
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        want.sort();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
                if n != name {
                    return None;
                }
                let inner = rest.strip_suffix('}')?;
                let mut got: Vec<String> = inner
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                got.sort();
                (got == want).then(|| value.parse().ok())?
            })
    }

    /// Sends one request with `Connection: close` and returns the whole raw response.
    async fn http_get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn sample_helper_matches_exact_label_sets() {
        let text = "# HELP x y\nm{b=\"2\",a=\"1\"} 7\nm{a=\"1\"} 3\nn 4\n";
        assert_eq!(sample(text, "m", &[("a", "1"), ("b", "2")]), Some(7));
        assert_eq!(sample(text, "m", &[("a", "1")]), Some(3));
        assert_eq!(sample(text, "n", &[]), Some(4));
        assert_eq!(sample(text, "m", &[("a", "2")]), None);
    }

    #[test]
    fn render_has_preinitialized_labels_and_instance() {
        let m = Metrics::new("edge-1").unwrap();
        let text = m.render();
        let inst = ("instance", "edge-1");
        for outcome in CALL_OUTCOMES {
            let got = sample(&text, "veil_calls_total", &[inst, ("outcome", outcome)]);
            assert_eq!(got, Some(0), "outcome {outcome}\n{text}");
        }
        for reason in END_REASONS {
            let got = sample(&text, "veil_calls_ended_total", &[inst, ("reason", reason)]);
            assert_eq!(got, Some(0), "reason {reason}\n{text}");
        }
        assert_eq!(sample(&text, "veil_calls_active", &[inst]), Some(0));
        assert_eq!(
            sample(&text, "veil_sip_invalid_messages_total", &[inst]),
            Some(0)
        );
        assert!(text.contains("# TYPE veil_calls_active gauge"));
        assert!(text.contains("# TYPE veil_calls_total counter"));
        for name in [
            "veil_cdr_backlog",
            "veil_cdr_write_errors_total",
            "veil_cdr_rows_lost_total",
        ] {
            assert_eq!(sample(&text, name, &[inst]), Some(0), "{name}\n{text}");
        }
        assert!(text.contains("# TYPE veil_cdr_backlog gauge"));
    }

    #[test]
    fn increments_show_up() {
        let m = Metrics::new("edge-1").unwrap();
        let inst = ("instance", "edge-1");
        m.calls_total.with_label_values(&["answered"]).inc();
        m.calls_active.set(3);
        m.sip_request_received("INVITE");
        m.sip_response_sent(486);
        m.sip_response_sent(299);
        m.sip_response_sent(42);
        let text = m.render();
        let calls = sample(&text, "veil_calls_total", &[inst, ("outcome", "answered")]);
        assert_eq!(calls, Some(1));
        assert_eq!(sample(&text, "veil_calls_active", &[inst]), Some(3));
        let invites = sample(
            &text,
            "veil_sip_requests_received_total",
            &[inst, ("method", "INVITE")],
        );
        assert_eq!(invites, Some(1));
        let sent = |code| {
            sample(
                &text,
                "veil_sip_responses_sent_total",
                &[inst, ("code", code)],
            )
        };
        assert_eq!(sent("486"), Some(1));
        assert_eq!(sent("299"), Some(1));
        assert_eq!(sent("other"), Some(1));
        assert_eq!(sent("42"), None);
    }

    #[test]
    fn unknown_methods_fold_into_other() {
        let m = Metrics::new("x").unwrap();
        for i in 0..50 {
            m.sip_request_received(&format!("JUNK{i}"));
        }
        m.sip_request_received("invite"); // methods are case-sensitive: not INVITE
        let text = m.render();
        assert!(!text.contains("JUNK"));
        let got = |method| {
            sample(
                &text,
                "veil_sip_requests_received_total",
                &[("instance", "x"), ("method", method)],
            )
        };
        assert_eq!(got("other"), Some(51));
        assert_eq!(got("INVITE"), Some(0));
    }

    #[test]
    fn two_instances_do_not_collide() {
        let a = Metrics::new("a").unwrap();
        let b = Metrics::new("b").unwrap();
        a.sip_invalid_messages.inc();
        let name = "veil_sip_invalid_messages_total";
        assert_eq!(sample(&a.render(), name, &[("instance", "a")]), Some(1));
        assert_eq!(sample(&b.render(), name, &[("instance", "b")]), Some(0));
    }

    #[tokio::test]
    async fn serves_metrics_over_http_and_stops_on_shutdown() {
        let m = Metrics::new("edge-1").unwrap();
        m.set_peer_up("pbx", true);
        m.set_peer_up("carrier-a", false);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(serve_listener(listener, m, rx));

        let resp = http_get(addr, "/metrics").await;
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        for name in CONTRACT_NAMES {
            let found = body.lines().any(|l| {
                l.split(['{', ' ']).next() == Some(name) && l.contains("instance=\"edge-1\"")
            });
            assert!(found, "{name} with instance label missing from\n{body}");
        }
        let inst = ("instance", "edge-1");
        assert_eq!(
            sample(body, "veil_peer_up", &[inst, ("peer", "pbx")]),
            Some(1)
        );
        assert_eq!(
            sample(body, "veil_peer_up", &[inst, ("peer", "carrier-a")]),
            Some(0)
        );

        let resp = http_get(addr, "/other").await;
        assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");

        tx.send(true).unwrap();
        let res = tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("server did not stop on shutdown")
            .unwrap();
        assert!(res.is_ok());
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener still open"
        );
    }

    #[tokio::test]
    async fn serve_reports_bind_errors() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let (_tx, rx) = watch::channel(false);
        let err = serve(addr, Metrics::new("x").unwrap(), rx).await;
        assert!(err.is_err());
    }
}
