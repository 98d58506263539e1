//! Loading: read the YAML strictly, resolve relative paths, load the policy, validate
//! cross-references, and report every error with file, line and key.
//!
//! Order: syntax and shape (serde, strict, see `yaml`) first; if the shape is wrong the
//! semantic checks are skipped, since they would only echo the same mistake. Then every
//! semantic check runs and all problems are returned together. Lines of semantic errors
//! come from the `KeyIndex` of the file they belong to.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::model::*;
use super::values::{Cidr, parse_host_port};
use super::yaml::{KeyIndex, parse_collect};
use crate::policy::spec::{PartialPolicyFile, PolicyFile};
use crate::policy::{Action, Policy};

/// One problem found in a config or policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `peers[1].address`.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                l,
                self.key,
                self.message
            ),
            None => write!(f, "{}: {}: {}", self.file.display(), self.key, self.message),
        }
    }
}

/// A config that passed validation, with its policy compiled and paths made absolute.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
    pub policy: Policy,
    /// Problems that do not stop veil (e.g. a peer that cannot be identified inbound).
    pub warnings: Vec<ConfigError>,
}

/// `Config` with every top-level key optional, so each section can be checked alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // only deserialized for its errors
struct PartialConfig {
    #[serde(default)]
    instance: Option<String>,
    #[serde(default)]
    sip: Option<SipConfig>,
    #[serde(default)]
    media: Option<MediaConfig>,
    #[serde(default)]
    calls: Option<CallsConfig>,
    #[serde(default)]
    peers: Option<Vec<PeerConfig>>,
    #[serde(default)]
    policy: Option<PathBuf>,
    #[serde(default)]
    cdr: Option<CdrConfig>,
    #[serde(default)]
    metrics: Option<MetricsConfig>,
    #[serde(default)]
    log: Option<LogConfig>,
    #[serde(default)]
    security: Option<SecurityConfig>,
    #[serde(default)]
    dns: Option<DnsConfig>,
}

const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

/// Upper bound of `cdr.spool_rows`: 10 million rows are about 10 GiB of memory.
const MAX_SPOOL_ROWS: usize = 10_000_000;

/// Load and validate `path` and the files it references. Returns every error found.
pub fn load(path: &Path) -> Result<LoadedConfig, Vec<ConfigError>> {
    let text = read(path, path, None, "")?;
    load_text(path, &text)
}

/// [`load`] of config YAML `text` as if read from `path` (the policy and other referenced
/// files are still read from disk). For the fuzz target and tests.
pub fn load_text(path: &Path, text: &str) -> Result<LoadedConfig, Vec<ConfigError>> {
    let (mut config, index) = parse_collect::<Config, PartialConfig>(path, text)?;
    let base = base_dir(path);
    let mut v = Validator {
        file: path,
        index: &index,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    v.instance(&config);
    v.sip(&mut config.sip, &base);
    v.media_and_calls(&config);
    v.peers(&mut config.peers, &config.sip.listen, &base);
    v.security(&config.security);
    if config.dns.attempts == 0 {
        v.err("dns.attempts", "must be at least 1");
    }
    if config.dns.timeout.0.is_zero() {
        v.err("dns.timeout", "must be above 0");
    }
    config.cdr.sqlite = config.cdr.sqlite.as_deref().map(|p| resolve(&base, p));
    if !LOG_LEVELS.contains(&config.log.level.as_str()) {
        v.err(
            "log.level",
            format!(
                "`{}` is not one of {}",
                config.log.level,
                LOG_LEVELS.join(", ")
            ),
        );
    }
    config.policy = resolve(&base, &config.policy);
    let policy = match load_policy(&config.policy, path, &index) {
        Ok((policy, pindex)) => {
            check_policy_peers(
                &policy,
                &config.peers,
                &config.policy,
                &pindex,
                &mut v.errors,
            );
            Some(policy)
        }
        Err(e) => {
            v.errors.extend(e);
            None
        }
    };
    match policy {
        Some(policy) if v.errors.is_empty() => Ok(LoadedConfig {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            config,
            policy,
            warnings: v.warnings,
        }),
        _ => Err(v.errors),
    }
}

/// Load and compile a policy file on its own (no peer cross-checks): errors carry the
/// policy file's name and lines.
pub fn load_policy_file(path: &Path) -> Result<Policy, Vec<ConfigError>> {
    let text = read(path, path, None, "")?;
    compile_policy_text(path, &text).map(|(p, _)| p)
}

/// Compile policy YAML `text` as if read from `file`.
pub fn compile_policy_text(
    file: &Path,
    text: &str,
) -> Result<(Policy, KeyIndex), Vec<ConfigError>> {
    let (spec, index) = parse_collect::<PolicyFile, PartialPolicyFile>(file, text)?;
    match crate::policy::compile(&spec) {
        Ok(p) => Ok((p, index)),
        Err(errs) => Err(errs
            .into_iter()
            .map(|e| ConfigError {
                file: file.to_path_buf(),
                line: index.line_of(&e.key),
                key: e.key,
                message: e.message,
            })
            .collect()),
    }
}

/// The policy referenced by the config; a missing file is reported at the config's
/// `policy` key.
fn load_policy(
    path: &Path,
    config: &Path,
    cindex: &KeyIndex,
) -> Result<(Policy, KeyIndex), Vec<ConfigError>> {
    let text = read(path, config, cindex.line_of("policy"), "policy")?;
    compile_policy_text(path, &text)
}

fn check_policy_peers(
    policy: &Policy,
    peers: &[PeerConfig],
    file: &Path,
    index: &KeyIndex,
    errors: &mut Vec<ConfigError>,
) {
    let known: HashSet<&str> = peers.iter().map(|p| p.name.as_str()).collect();
    let mut unknown = |key: String, name: &str| {
        if !known.contains(name) {
            let mut list: Vec<&str> = known.iter().copied().collect();
            list.sort_unstable();
            errors.push(ConfigError {
                file: file.to_path_buf(),
                line: index.line_of(&key),
                key,
                message: format!("unknown peer `{name}` (peers: {})", list.join(", ")),
            });
        }
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        for (j, name) in rule.when.from_peer.iter().flatten().enumerate() {
            unknown(format!("rules[{i}].when.from_peer[{j}]"), name);
        }
        if let Action::Route { targets, .. } = &rule.then {
            for (j, name) in targets.iter().enumerate() {
                unknown(format!("rules[{i}].then.route[{j}]"), name);
            }
        }
    }
}

/// Loads, prints the outcome for `veil check`, and returns the exit code: 0 when valid
/// (`OK: <path> (N peers, M rules)` on stdout, warnings on stderr), 1 otherwise with every
/// error on stderr, one per line as `file:line: key: message`.
pub fn check(path: &Path) -> i32 {
    match load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let nofile = crate::shell::nofile_for_run();
            if let Some(w) = crate::shell::fd_warning(&loaded.config, nofile) {
                eprintln!("warning: {}: sip.max_connections: {w}", path.display());
            }
            println!(
                "OK: {} ({} peers, {} rules)",
                path.display(),
                loaded.config.peers.len(),
                loaded.policy.rules.len()
            );
            0
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            1
        }
    }
}

fn read(
    path: &Path,
    report_in: &Path,
    line: Option<usize>,
    key: &str,
) -> Result<String, Vec<ConfigError>> {
    std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: report_in.to_path_buf(),
            line,
            key: key.to_string(),
            message: format!("cannot read {}: {e}", path.display()),
        }]
    })
}

/// The folder relative paths in `config` are taken against, made absolute.
fn base_dir(config: &Path) -> PathBuf {
    let abs = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    abs.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `p` against `base` unless absolute; `.` components dropped (`..` kept: with symlinks,
/// removing it lexically could change which file is meant).
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    base.join(p)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

struct Validator<'a> {
    file: &'a Path,
    index: &'a KeyIndex,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Validator<'_> {
    fn problem(&self, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.index.line_of(key),
            key: key.to_string(),
            message,
        }
    }

    fn err(&mut self, key: &str, message: impl Into<String>) {
        let e = self.problem(key, message.into());
        self.errors.push(e);
    }

    /// RFC 4028's 90 s floor holds unless the block says `lab: true` (then a warning).
    fn session_timer(&mut self, key: &str, st: &crate::config::SessionTimerConfig) {
        if st.min_se.0.as_secs() < 90 {
            if st.lab {
                self.warn(
                    &format!("{key}.min_se"),
                    "below the RFC 4028 minimum of 90s (lab setting)",
                );
            } else {
                self.err(
                    &format!("{key}.min_se"),
                    "must be at least 90s (RFC 4028); set lab: true for test setups",
                );
            }
        }
        if st.min_se.0.is_zero() {
            self.err(&format!("{key}.min_se"), "must be above 0");
        }
        if st.expires < st.min_se {
            self.err(&format!("{key}.expires"), "must not be below min_se");
        }
    }

    fn warn(&mut self, key: &str, message: impl Into<String>) {
        let w = self.problem(key, message.into());
        self.warnings.push(w);
    }

    fn instance(&mut self, c: &Config) {
        if c.instance.trim().is_empty() {
            self.err("instance", "must not be empty");
        }
    }

    fn sip(&mut self, sip: &mut SipConfig, base: &Path) {
        if sip.listen.is_empty() {
            self.err("sip.listen", "at least one listener is needed");
        }
        let mut names = HashSet::new();
        let mut sockets = HashSet::new();
        for (i, l) in sip.listen.iter_mut().enumerate() {
            let key = format!("sip.listen[{i}]");
            if l.name.trim().is_empty() {
                self.err(&format!("{key}.name"), "must not be empty");
            } else if !names.insert(l.name.clone()) {
                self.err(
                    &format!("{key}.name"),
                    format!("duplicate listener name `{}`", l.name),
                );
            }
            if !sockets.insert((l.transport, l.address)) {
                self.err(
                    &format!("{key}.address"),
                    format!(
                        "another {} listener already binds {}",
                        l.transport.via_token(),
                        l.address
                    ),
                );
            }
            if let Some(adv) = &l.advertise
                && let Err(e) = parse_host_port(adv)
            {
                self.err(
                    &format!("{key}.advertise"),
                    format!("`{adv}`: {e} (write host or host:port)"),
                );
            }
            match (&mut l.tls, l.transport) {
                (None, Transport::Tls) => self.err(
                    &format!("{key}.tls"),
                    "transport tls needs a `tls` block with cert and key",
                ),
                (Some(_), Transport::Udp | Transport::Tcp) => {
                    self.err(&format!("{key}.tls"), "only allowed with transport tls")
                }
                (Some(tls), Transport::Tls) => {
                    tls.cert = resolve(base, &tls.cert);
                    tls.key = resolve(base, &tls.key);
                    tls.ca = tls.ca.as_deref().map(|p| resolve(base, p));
                    let tls = tls.clone();
                    self.cert_and_key(&format!("{key}.tls"), &tls.cert, &tls.key);
                    match &tls.ca {
                        Some(ca) => self.ca(&format!("{key}.tls.ca"), ca),
                        None if tls.verify_client => self.err(
                            &format!("{key}.tls.verify_client"),
                            "needs `ca`: the CA that client certificates must chain to",
                        ),
                        None => {}
                    }
                }
                (None, _) => {}
            }
        }
        let t = &sip.timers;
        if t.t1.0.is_zero() {
            self.err("sip.timers.t1", "must be above 0");
        }
        if t.t2 < t.t1 {
            self.err("sip.timers.t2", "must not be below t1");
        }
        if sip.connection_idle.0.is_zero() {
            self.err("sip.connection_idle", "must be above 0");
        }
        if sip.max_retry_after.0 > std::time::Duration::from_secs(86400) {
            self.err("sip.max_retry_after", "must be at most 24h");
        }
        if sip.max_message_size < 1500 {
            self.err("sip.max_message_size", "must be at least 1500 bytes");
        }
        if sip.max_connections == 0 {
            self.err("sip.max_connections", "must be above 0");
        }
        if sip.max_connections_per_source == 0 {
            self.err("sip.max_connections_per_source", "must be above 0");
        }
        if sip.stranger_idle.0.is_zero() {
            self.err("sip.stranger_idle", "must be above 0");
        }
    }

    fn security(&mut self, s: &SecurityConfig) {
        if s.scanner_user_agents.iter().any(|u| u.trim().is_empty()) {
            self.err(
                "security.scanner_user_agents",
                "an empty entry would match every User-Agent",
            );
        }
        if s.requests_per_second > 0 && s.requests_burst == 0 {
            self.err("security.requests_burst", "must be above 0");
        }
        if s.invites_per_second > 0 && s.invites_burst == 0 {
            self.err("security.invites_burst", "must be above 0");
        }
        if s.ban_window.0.is_zero() {
            self.err("security.ban_window", "must be above 0");
        }
        if s.overload_queue > 65536 {
            self.err(
                "security.overload_queue",
                "the signalling queue has 65536 slots; at most 65536",
            );
        }
    }

    fn media_and_calls(&mut self, c: &Config) {
        if c.media.ports.even_ports() < 2 {
            self.err(
                "media.ports",
                format!(
                    "{} holds fewer than 2 even ports (RTP uses even ports)",
                    c.media.ports
                ),
            );
        }
        if c.media.rtp_timeout.0.is_zero() {
            self.err("media.rtp_timeout", "must be above 0");
        }
        if c.media.hold_timeout.0 < c.media.rtp_timeout.0 {
            self.err("media.hold_timeout", "must not be below media.rtp_timeout");
        }
        if c.media.relatch_after.0 > c.media.rtp_timeout.0 {
            self.err(
                "media.relatch_after",
                "must not be above media.rtp_timeout (a stream that silent is idle)",
            );
        }
        if c.calls.max_duration.0.is_zero() {
            self.err("calls.max_duration", "must be above 0");
        }
        let st = c.calls.session_timer.clone();
        self.session_timer("calls.session_timer", &st);
        if c.cdr.retention.is_some_and(|r| r.0.as_secs() < 3600) {
            self.err("cdr.retention", "must be at least 1h (e.g. 90d)");
        }
        if !(1..=MAX_SPOOL_ROWS).contains(&c.cdr.spool_rows) {
            self.err(
                "cdr.spool_rows",
                format!("must be between 1 and {MAX_SPOOL_ROWS} (about 1 KiB of memory per row)"),
            );
        }
    }

    fn peers(&mut self, peers: &mut [PeerConfig], listeners: &[ListenConfig], base: &Path) {
        let mut names = HashSet::new();
        let given: Vec<bool> = peers.iter().map(|p| !p.sources.is_empty()).collect();
        for (i, p) in peers.iter_mut().enumerate() {
            let key = format!("peers[{i}]");
            if let Some(st) = p.session_timer.clone() {
                self.session_timer(&format!("{key}.session_timer"), &st);
            }
            if p.max_duration.is_some_and(|d| d.0.is_zero()) {
                self.err(&format!("{key}.max_duration"), "must be above 0");
            }
            if p.name.trim().is_empty() {
                self.err(&format!("{key}.name"), "must not be empty");
            } else if !names.insert(p.name.clone()) {
                self.err(
                    &format!("{key}.name"),
                    format!("duplicate peer name `{}`", p.name),
                );
            }
            self.peer_transport(&key, p);
            self.peer_listener(&key, p, listeners);
            self.peer_tls(&key, p, base);
            if p.max_connections == 0 {
                self.err(&format!("{key}.max_connections"), "must be above 0");
            }
            if p.sources.is_empty() {
                match p.address.host.ip() {
                    Some(ip) => p.sources.push(Cidr::host(ip).into()),
                    None => self.warn(
                        &format!("{key}.sources"),
                        format!("`{}` is a DNS name and no sources are given: inbound requests cannot be identified as this peer", p.address.host),
                    ),
                }
            } else {
                self.peer_sources(&key, p, listeners);
            }
            let (rate, burst) = p.limits.message_valve();
            if rate > 0 && burst == 0 {
                self.err(&format!("{key}.limits.messages_burst"), "must be above 0");
            }
            if let Some(codecs) = &p.codecs {
                if codecs.is_empty() {
                    self.err(
                        &format!("{key}.codecs"),
                        "an empty codec list would refuse every call; omit it to allow all",
                    );
                }
                if let Some(j) = codecs.iter().position(|c| c.trim().is_empty()) {
                    self.err(&format!("{key}.codecs[{j}]"), "empty codec name");
                }
            }
            for (list, names) in [("allow", &p.headers.allow), ("strip", &p.headers.strip)] {
                if let Some(j) = names.iter().position(|n| !is_token(n)) {
                    self.err(
                        &format!("{key}.headers.{list}[{j}]"),
                        format!("`{}` is not a header name", names[j]),
                    );
                }
            }
            if let Some(auth) = &p.auth
                && auth.username.is_empty()
            {
                self.err(&format!("{key}.auth.username"), "must not be empty");
            }
            if p.keepalive.is_some_and(|k| k.0.is_zero()) {
                self.err(
                    &format!("{key}.keepalive"),
                    "must be above 0 (omit it to disable pings)",
                );
            }
        }
        self.ambiguous_sources(peers, listeners, &given);
    }

    /// Listener and transport of each `sources` entry agree with the listeners.
    fn peer_sources(&mut self, key: &str, p: &PeerConfig, listeners: &[ListenConfig]) {
        for (j, s) in p.sources.iter().enumerate() {
            let Some(name) = &s.listen else { continue };
            let at = format!("{key}.sources[{j}]");
            match listeners.iter().find(|l| &l.name == name) {
                None => {
                    let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
                    self.err(
                        &format!("{at}.listen"),
                        format!(
                            "unknown listener `{name}` (listeners: {})",
                            names.join(", ")
                        ),
                    );
                }
                Some(l) if s.transport.is_some_and(|t| t != l.transport) => self.err(
                    &format!("{at}.transport"),
                    format!("listener `{name}` is {}", l.transport.via_token()),
                ),
                Some(_) => {}
            }
        }
    }

    /// Two peers whose entries would match the same traffic with neither more specific:
    /// which one a message belongs to would depend on the order of the file.
    fn ambiguous_sources(
        &mut self,
        peers: &[PeerConfig],
        listeners: &[ListenConfig],
        given: &[bool],
    ) {
        let all = peers.iter().map(|p| p.sources.as_slice());
        let table = super::source::SourceTable::new(all, listeners, Vec::new());
        let mut rules: Vec<&super::source::SourceRule> = table.rules().iter().collect();
        rules.sort_by_key(|r| (r.peer, r.entry));
        let at = |peer: usize, entry: usize| {
            if given.get(peer).copied().unwrap_or(false) {
                format!("peers[{peer}].sources[{entry}]")
            } else {
                format!("peers[{peer}].address")
            }
        };
        for (n, b) in rules.iter().enumerate() {
            let Some(a) = rules[..n].iter().find(|a| a.ambiguous_with(b)) else {
                continue;
            };
            let (ka, kb) = (at(a.peer, a.entry), at(b.peer, b.entry));
            let line = self
                .index
                .line_of(&ka)
                .map(|l| format!(", line {l}"))
                .unwrap_or_default();
            let show = |r: &super::source::SourceRule| {
                peers[r.peer]
                    .sources
                    .get(r.entry)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            };
            self.err(
                &kb,
                format!(
                    "`{}` of peer `{}` would match the same traffic as `{}` of peer `{}` ({ka}{line}) \
                     and neither is more specific: give one a port, a listener or a longer prefix",
                    show(b),
                    peers[b.peer].name,
                    show(a),
                    peers[a.peer].name,
                ),
            );
        }
    }

    /// A certificate (chain) and its private key: both parse and belong together.
    fn cert_and_key(&mut self, key: &str, cert: &Path, private: &Path) {
        let certs = super::certs::load_certs(cert)
            .map_err(|e| self.err(&format!("{key}.cert"), e))
            .ok();
        let pkey = super::certs::load_key(private)
            .map_err(|e| self.err(&format!("{key}.key"), e))
            .ok();
        if let (Some(c), Some(k)) = (certs, pkey)
            && let Err(e) = super::certs::check_pair(&c, &k)
        {
            self.err(&format!("{key}.key"), format!("{}: {e}", private.display()));
        }
    }

    fn ca(&mut self, key: &str, ca: &Path) {
        if let Err(e) = super::certs::load_roots(ca) {
            self.err(key, e);
        }
    }

    /// A peer's `tls:` block: only with transport tls; files resolved and checked; the
    /// name it verifies must be a DNS name or an IP address.
    fn peer_tls(&mut self, key: &str, p: &mut PeerConfig, base: &Path) {
        let Some(tls) = &mut p.tls else { return };
        let key = format!("{key}.tls");
        if p.transport != Transport::Tls {
            self.err(&key, "only allowed with transport tls");
            return;
        }
        for f in [&mut tls.ca, &mut tls.cert, &mut tls.key]
            .into_iter()
            .flatten()
        {
            *f = resolve(base, f);
        }
        let tls = tls.clone();
        if let Some(ca) = &tls.ca {
            self.ca(&format!("{key}.ca"), ca);
        }
        match (&tls.cert, &tls.key) {
            (Some(c), Some(k)) => self.cert_and_key(&key, c, k),
            (Some(_), None) => self.err(&format!("{key}.key"), "`cert` needs `key`"),
            (None, Some(_)) => self.err(&format!("{key}.cert"), "`key` needs `cert`"),
            (None, None) => {}
        }
        if let Some(name) = &tls.server_name
            && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            self.err(
                &format!("{key}.server_name"),
                format!("`{name}` is neither a DNS name nor an IP address"),
            );
        }
    }

    /// A `sip:`/`sips:` address can carry the transport; it must agree with `transport`
    /// when both are written, and fills it in when `transport` is not.
    fn peer_transport(&mut self, key: &str, p: &mut PeerConfig) {
        let written = self.index.has(&format!("{key}.transport"));
        let from_uri = match (p.address.secure, p.address.transport) {
            (true, Some(t)) if t != Transport::Tls => {
                self.err(&format!("{key}.address"), "sips: needs transport tls");
                return;
            }
            (true, _) => Some(Transport::Tls),
            (false, t) => t,
        };
        match from_uri {
            Some(t) if written && t != p.transport => self.err(
                &format!("{key}.transport"),
                format!(
                    "{} contradicts the address, which says {}",
                    p.transport.via_token(),
                    t.via_token()
                ),
            ),
            Some(t) => p.transport = t,
            None => {}
        }
    }

    /// Check `listen` or default it to the first listener of the peer's transport.
    fn peer_listener(&mut self, key: &str, p: &mut PeerConfig, listeners: &[ListenConfig]) {
        match &p.listen {
            Some(name) => match listeners.iter().find(|l| &l.name == name) {
                None => {
                    let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
                    self.err(
                        &format!("{key}.listen"),
                        format!(
                            "unknown listener `{name}` (listeners: {})",
                            names.join(", ")
                        ),
                    );
                }
                Some(l) if l.transport != p.transport => self.err(
                    &format!("{key}.listen"),
                    format!(
                        "listener `{name}` is {} but the peer uses {}",
                        l.transport.via_token(),
                        p.transport.via_token()
                    ),
                ),
                Some(_) => {}
            },
            None => match listeners.iter().find(|l| l.transport == p.transport) {
                Some(l) => p.listen = Some(l.name.clone()),
                None => self.err(
                    &format!("{key}.transport"),
                    format!(
                        "no {} listener to reach this peer through; add one under sip.listen",
                        p.transport.via_token()
                    ),
                ),
            },
        }
    }
}

/// RFC 3261 `token` characters (header names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
