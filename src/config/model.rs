//! The configuration as typed data, exactly the keys of CONTRACT.md plus documented
//! extensions. `deny_unknown_fields` everywhere: an unknown key is an error.
//! Values (durations, addresses, ranges) are parsed by their own types in `values.rs`.

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{Cidr, Duration, PortRange, Target};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_instance")]
    pub instance: String,
    pub sip: SipConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub calls: CallsConfig,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Path of the policy file, relative to the config file's folder.
    pub policy: PathBuf,
    #[serde(default)]
    pub cdr: CdrConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub dns: DnsConfig,
}

fn default_instance() -> String {
    "veil".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub listen: Vec<ListenConfig>,
    /// Largest SIP message accepted, bytes (default 65535; larger gets 513 or is dropped).
    #[serde(default = "default_max_message")]
    pub max_message_size: usize,
    #[serde(default)]
    pub timers: SipTimers,
    /// What to do with requests from sources that match no peer: `reject` (403) or `drop`.
    #[serde(default)]
    pub unknown_source: UnknownSource,
    /// A TCP/TLS connection with no bytes either way for this long is closed (RFC 5626
    /// CRLF keep-alives count as traffic). Default 10m.
    #[serde(default = "d_connection_idle")]
    pub connection_idle: Duration,
    /// Longest a target rests after a 503 with Retry-After (a larger value from the
    /// peer is lowered to this). Default 1h.
    #[serde(default = "d_max_retry_after")]
    pub max_retry_after: Duration,
    /// Connection limits against fd exhaustion (issue 15), grouped here.
    /// Accepted TCP/TLS connections open at once, all sources (default 4096; the
    /// effective cap is also bounded by RLIMIT_NOFILE minus the relay's reserve).
    #[serde(default = "d_max_connections")]
    pub max_connections: u32,
    /// Accepted connections open at once from one source IP that is no peer (default 32;
    /// a peer's own cap is `peers[].max_connections`).
    #[serde(default = "d_max_connections_per_source")]
    pub max_connections_per_source: u32,
    /// An accepted connection from a source that is no peer is closed after this long
    /// without bytes either way (default 30s; peers get `connection_idle`).
    #[serde(default = "d_stranger_idle")]
    pub stranger_idle: Duration,
    /// Check every message sent on a leg of a call for the other leg's identifiers and
    /// remove the offending header or SDP line (`b2bua/leak_guard.rs`). Default true.
    #[serde(default = "d_true")]
    pub leak_guard: bool,
}

fn d_max_retry_after() -> Duration {
    Duration(std::time::Duration::from_secs(3600))
}

fn d_max_connections() -> u32 {
    4096
}
fn d_max_connections_per_source() -> u32 {
    32
}
fn d_stranger_idle() -> Duration {
    Duration::from_secs(30)
}

fn d_connection_idle() -> Duration {
    Duration(std::time::Duration::from_secs(600))
}

fn default_max_message() -> usize {
    65535
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSource {
    #[default]
    Reject,
    Drop,
}

/// RFC 3261 timer base values and the ring timeout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipTimers {
    #[serde(default = "d_t1")]
    pub t1: Duration,
    #[serde(default = "d_t2")]
    pub t2: Duration,
    #[serde(default = "d_t4")]
    pub t4: Duration,
    /// How long leg B may ring before it is cancelled (Kamailio's fr_inv_timer).
    #[serde(default = "d_invite")]
    pub invite_timeout: Duration,
}

fn d_t1() -> Duration {
    Duration::from_millis(500)
}
fn d_t2() -> Duration {
    Duration::from_secs(4)
}
fn d_t4() -> Duration {
    Duration::from_secs(5)
}
fn d_invite() -> Duration {
    Duration::from_secs(120)
}

impl Default for SipTimers {
    fn default() -> Self {
        SipTimers {
            t1: d_t1(),
            t2: d_t2(),
            t4: d_t4(),
            invite_timeout: d_invite(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    pub name: String,
    pub transport: Transport,
    pub address: std::net::SocketAddr,
    /// Written into Via/Contact/Record-Route instead of `address` (NAT, 0.0.0.0 binds).
    #[serde(default)]
    pub advertise: Option<String>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates that client certificates are verified against (mutual TLS).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Refuse clients without a certificate signed by `ca`. Without it, a client
    /// certificate is optional (but verified against `ca` when one is sent and `ca` is set).
    #[serde(default)]
    pub verify_client: bool,
}

/// A peer's side of TLS: how veil, as the client, checks the peer and proves itself.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerTlsConfig {
    /// CA certificates the peer's certificate must chain to (default: the system roots).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// SNI and the name the certificate must carry (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Client certificate and key, for peers that require mutual TLS.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    #[serde(default = "d_media_addr")]
    pub address: std::net::IpAddr,
    #[serde(default)]
    pub advertise: Option<std::net::IpAddr>,
    /// IPv6 relay address: with it, every relay port is bound on both `address` and
    /// `address6`, and legs whose signalling runs over IPv6 get `IN IP6` SDP.
    #[serde(default)]
    pub address6: Option<std::net::IpAddr>,
    /// Written into SDP on IPv6 legs instead of `address6`.
    #[serde(default)]
    pub advertise6: Option<std::net::IpAddr>,
    #[serde(default = "d_ports")]
    pub ports: PortRange,
    #[serde(default = "d_rtp_timeout")]
    pub rtp_timeout: Duration,
    /// Like `rtp_timeout`, for calls whose last SDP put them on hold (sendonly, recvonly,
    /// inactive or c=0.0.0.0): held calls are often silent for long. Not below `rtp_timeout`.
    #[serde(default = "d_hold_timeout")]
    pub hold_timeout: Duration,
    /// IP TOS byte on relayed packets (IPv6: traffic class); default 184 = DSCP EF (46).
    #[serde(default = "d_tos")]
    pub tos: u8,
    /// Which sources may make a stream's first latch: `ip` (the leg's signalling source
    /// IP or its SDP IP, any port), `strict` (the SDP address:port) or `any` (unsafe).
    #[serde(default)]
    pub latching: crate::media::stream::Latching,
    /// Silence of a latched source after which a NAT rebinding (same SSRC, plausible
    /// source) may move the latch.
    #[serde(default = "d_relatch_after")]
    pub relatch_after: Duration,
}

fn d_media_addr() -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
}
fn d_ports() -> PortRange {
    PortRange {
        first: 30000,
        last: 40000,
    }
}
fn d_rtp_timeout() -> Duration {
    Duration::from_secs(60)
}
fn d_hold_timeout() -> Duration {
    Duration::from_secs(2 * 3600)
}
fn d_tos() -> u8 {
    184
}
fn d_relatch_after() -> Duration {
    Duration(std::time::Duration::from_millis(500))
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            address: d_media_addr(),
            advertise: None,
            address6: None,
            advertise6: None,
            ports: d_ports(),
            rtp_timeout: d_rtp_timeout(),
            hold_timeout: d_hold_timeout(),
            tos: d_tos(),
            latching: Default::default(),
            relatch_after: d_relatch_after(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    #[serde(default = "d_max_duration")]
    pub max_duration: Duration,
    #[serde(default)]
    pub session_timer: SessionTimerConfig,
    /// Global cap on concurrent calls (0 = unlimited).
    #[serde(default)]
    pub max_calls: u32,
    /// On SIGTERM/SIGINT, how long calls in progress may go on (new INVITEs get 503)
    /// before both legs get BYE with end reason `shutdown`. Keep the systemd unit's
    /// `TimeoutStopSec` above this plus a few seconds.
    #[serde(default = "d_drain_timeout")]
    pub drain_timeout: Duration,
}

fn d_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

fn d_max_duration() -> Duration {
    Duration::from_secs(6 * 3600)
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_duration: d_max_duration(),
            session_timer: SessionTimerConfig::default(),
            max_calls: 0,
            drain_timeout: d_drain_timeout(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTimerConfig {
    /// Session timers on this leg at all (RFC 4028); on by default, so that a call whose
    /// party vanished is found and torn down.
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Session-Expires veil asks for and the largest it accepts.
    #[serde(default = "d_se")]
    pub expires: Duration,
    /// The smallest interval veil accepts (422 below it); at least 90 s unless `lab`.
    #[serde(default = "d_min_se")]
    pub min_se: Duration,
    /// Allow intervals below the RFC minimum of 90 s (labs and tests only; warned at start).
    #[serde(default)]
    pub lab: bool,
}

fn d_true() -> bool {
    true
}

fn d_se() -> Duration {
    Duration::from_secs(1800)
}
fn d_min_se() -> Duration {
    Duration::from_secs(90)
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            enabled: true,
            expires: d_se(),
            min_se: d_min_se(),
            lab: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    #[default]
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    /// `host[:port]` or a `sip:`/`sips:` URI.
    pub address: Target,
    #[serde(default = "d_transport")]
    pub transport: Transport,
    /// Listener name this peer is reached through (default: the first of its transport).
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub trusted: bool,
    /// What identifies this peer's inbound traffic: `ip[/len][:port]` entries, or maps
    /// that also bind one to a transport or listener (default: its address's IP). The most
    /// specific entry of all peers wins (`source.rs`).
    #[serde(default)]
    pub sources: Vec<super::source::PeerSource>,
    #[serde(default)]
    pub srtp: SrtpMode,
    /// Where this peer's media may come from (CIDRs); empty: anywhere. Packets on its
    /// leg's relay ports from other sources are dropped and neither latch nor count.
    #[serde(default)]
    pub media_sources: Vec<Cidr>,
    #[serde(default)]
    pub codecs: Option<Vec<String>>,
    #[serde(default)]
    pub headers: HeaderRules,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub keepalive: Option<Duration>,
    /// Session timer settings on this peer's legs, instead of `calls.session_timer`.
    #[serde(default)]
    pub session_timer: Option<SessionTimerConfig>,
    /// Maximum call length for calls with this peer on either leg (the smaller wins),
    /// instead of `calls.max_duration`.
    #[serde(default)]
    pub max_duration: Option<Duration>,
    /// The peer is behind NAT: reach it where its traffic comes from (RFC 3581 style),
    /// not at its configured address or Contact.
    #[serde(default)]
    pub nat: bool,
    /// TLS client settings for `transport: tls` (default: system roots, SNI = host).
    #[serde(default)]
    pub tls: Option<PeerTlsConfig>,
    /// Accepted connections open at once from this peer's `sources` (default 1024).
    #[serde(default = "d_peer_max_connections")]
    pub max_connections: u32,
}

fn d_peer_max_connections() -> u32 {
    1024
}

fn d_transport() -> Transport {
    Transport::Udp
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRules {
    /// Extra header names copied across on top of the default allow-list.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Header names never copied towards (or from) this peer, even if allowed by default.
    #[serde(default)]
    pub strip: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub realm: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// 0 = unlimited.
    #[serde(default)]
    pub max_calls: u32,
    /// New calls per second, 0 = unlimited.
    #[serde(default)]
    pub cps: u32,
    /// Messages per second accepted from this peer (0 = unlimited): a safety valve for a
    /// looping or compromised peer, which bans never stop when it is exempt. Excess is
    /// dropped and counted, never banned; new INVITEs over it get 503 + Retry-After.
    #[serde(default = "d_peer_mps")]
    pub messages_per_second: u32,
    /// Messages above the steady rate accepted at once (default twice the rate); half of
    /// it is kept for responses and in-dialog requests.
    #[serde(default)]
    pub messages_burst: Option<u32>,
}

/// Sized above what veil itself carries: at its measured 2000 calls per second the
/// answering peer sends about 8000 messages per second.
pub const DEFAULT_PEER_MESSAGES_PER_SECOND: u32 = 10_000;

fn d_peer_mps() -> u32 {
    DEFAULT_PEER_MESSAGES_PER_SECOND
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_calls: 0,
            cps: 0,
            messages_per_second: d_peer_mps(),
            messages_burst: None,
        }
    }
}

impl LimitsConfig {
    /// `(rate, burst)` of the message valve; rate 0 = off.
    pub fn message_valve(&self) -> (u32, u32) {
        let rate = self.messages_per_second;
        (rate, self.messages_burst.unwrap_or(rate.saturating_mul(2)))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrConfig {
    /// SQLite file; absent = CDRs disabled (logged at start).
    #[serde(default)]
    pub sqlite: Option<PathBuf>,
    /// Rows whose call started longer ago than this are deleted (at start, then hourly);
    /// absent = kept for ever.
    #[serde(default)]
    pub retention: Option<Duration>,
    /// When SQLite forces CDR writes to disk (see `observe::cdr`).
    #[serde(default)]
    pub fsync: CdrFsync,
    /// Rows kept in memory while the database refuses writes (disk full, I/O errors);
    /// beyond them rows are lost and counted (`veil_cdr_rows_lost_total`).
    #[serde(default = "d_spool_rows")]
    pub spool_rows: usize,
}

fn d_spool_rows() -> usize {
    crate::observe::cdr::DEFAULT_SPOOL_ROWS
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig {
            sqlite: None,
            retention: None,
            fsync: CdrFsync::default(),
            spool_rows: d_spool_rows(),
        }
    }
}

/// `normal`: a committed row survives a crash of veil, a power loss may take the last
/// batches. `full`: every batch is fsynced before the writer goes on (survives power loss).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CdrFsync {
    #[default]
    Normal,
    Full,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `GET /metrics` served here; absent = no metrics endpoint.
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    #[serde(default = "d_level")]
    pub level: String,
}

fn d_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            level: d_level(),
        }
    }
}

/// Edge protection: scanner filtering, per-source rate limits and bans (README "Security").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// User-Agent substrings (case-insensitive) of known scanners: such requests are
    /// dropped without an answer and their source is banned. `[]` disables the check.
    #[serde(default = "d_scanners")]
    pub scanner_user_agents: Vec<String>,
    /// Datagrams/messages per second per source address (0 = unlimited).
    #[serde(default = "d_rps")]
    pub requests_per_second: u32,
    /// How many requests a source may send at once above the steady rate.
    #[serde(default = "d_rburst")]
    pub requests_burst: u32,
    /// INVITEs per second per source address (0 = unlimited).
    #[serde(default = "d_ips")]
    pub invites_per_second: u32,
    #[serde(default = "d_iburst")]
    pub invites_burst: u32,
    /// Invalid or unauthorized requests (unparsable, 400, unknown source) within
    /// `ban_window` after which the source is banned (0 = never for this reason).
    #[serde(default = "d_ban_after")]
    pub ban_after: u32,
    #[serde(default = "d_ban_window")]
    pub ban_window: Duration,
    /// How long a banned source's datagrams are dropped unread.
    #[serde(default = "d_ban_time")]
    pub ban_time: Duration,
    /// Sources never rate-limited or banned, on top of trusted peers' sources.
    #[serde(default)]
    pub never_ban: Vec<Cidr>,
    /// Which configured peers' `sources` are exempt from rate limits and bans: `peers`
    /// (all, the default: a spoofed UDP flood must not get a carrier banned; peers are
    /// limited by `limits.cps`/`limits.max_calls` instead), `trusted` or `none`.
    #[serde(default)]
    pub exempt: Exempt,
    /// Signalling events waiting in the engine's queue (65536 slots) from which new
    /// INVITEs are answered 503 + Retry-After by the socket tasks without being queued,
    /// so that in-dialog requests of established calls keep being served. 0 = never shed
    /// early (only a full queue drops datagrams). Default three quarters of the queue.
    #[serde(default = "d_overload_queue")]
    pub overload_queue: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exempt {
    #[default]
    Peers,
    Trusted,
    None,
}

fn d_scanners() -> Vec<String> {
    [
        "friendly-scanner",
        "sipvicious",
        "sipcli",
        "sip-scan",
        "sipsak",
        "sundayddr",
        "iWar",
        "VaxSIPUserAgent",
        "SIVuS",
        "smap",
        "Gulp",
        "PortSIP VoIP SDK",
        "pplsip",
    ]
    .map(String::from)
    .to_vec()
}
fn d_rps() -> u32 {
    100
}
fn d_rburst() -> u32 {
    200
}
fn d_ips() -> u32 {
    20
}
fn d_iburst() -> u32 {
    40
}
fn d_ban_after() -> u32 {
    10
}
fn d_ban_window() -> Duration {
    Duration::from_secs(60)
}
fn d_ban_time() -> Duration {
    Duration::from_secs(600)
}
fn d_overload_queue() -> u32 {
    49152
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            scanner_user_agents: d_scanners(),
            requests_per_second: d_rps(),
            requests_burst: d_rburst(),
            invites_per_second: d_ips(),
            invites_burst: d_iburst(),
            ban_after: d_ban_after(),
            ban_window: d_ban_window(),
            ban_time: d_ban_time(),
            never_ban: Vec::new(),
            exempt: Exempt::Peers,
            overload_queue: d_overload_queue(),
        }
    }
}

/// How peer names are resolved (RFC 3263: NAPTR, SRV, A/AAAA), README "DNS".
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers (`ip:port`); empty = the system's (`/etc/resolv.conf`).
    #[serde(default)]
    pub servers: Vec<std::net::SocketAddr>,
    /// How long to wait for one answer.
    #[serde(default = "d_dns_timeout")]
    pub timeout: Duration,
    /// Tries per query and server.
    #[serde(default = "d_dns_attempts")]
    pub attempts: u32,
}

fn d_dns_timeout() -> Duration {
    Duration::from_secs(2)
}
fn d_dns_attempts() -> u32 {
    2
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout: d_dns_timeout(),
            attempts: d_dns_attempts(),
        }
    }
}
