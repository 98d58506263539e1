//! Running SIPp: one process per side and scenario, with its message trace, error log and
//! screen captured in the lab dir, a hard time limit, and failure reports that say which
//! side, which scenario and what went wrong.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::topology::{Ports, Side};
use super::trace::{Direction, TracedMessage, parse_trace};

/// SIPp's own global limit (`-timeout ... -timeout_error`).
const SIPP_TIMEOUT_S: u32 = 30;
/// How long the harness waits for a SIPp process before killing it.
pub const RUN_LIMIT: Duration = Duration::from_secs(40);

pub fn scenario_path(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario)
}

/// A SIPp invocation being put together.
pub struct SippCmd {
    side: Side,
    scenario: String,
    sip_addr: SocketAddr,
    media_port: u16,
    remote: Option<SocketAddr>,
    tcp: bool,
    service: String,
    calls: u32,
    extra: Vec<String>,
    files: Files,
    ports: Ports,
}

#[derive(Debug, Clone)]
struct Files {
    messages: PathBuf,
    errors: PathBuf,
    screen: PathBuf,
    stdout: PathBuf,
}

impl SippCmd {
    pub fn new(dir: &Path, run: u32, side: Side, scenario: &str, ports: &Ports) -> SippCmd {
        let stem = format!(
            "sipp{run:02}-{}-{}",
            side.peer_name(),
            scenario.trim_end_matches(".xml")
        );
        SippCmd {
            side,
            scenario: scenario.to_string(),
            sip_addr: ports.sip_addr(side),
            media_port: ports.sipp_media(side),
            remote: None,
            tcp: false,
            service: super::CALLEE_NUMBER.to_string(),
            calls: 1,
            extra: vec![],
            files: Files {
                messages: dir.join(format!("{stem}.messages.log")),
                errors: dir.join(format!("{stem}.errors.log")),
                screen: dir.join(format!("{stem}.screen.log")),
                stdout: dir.join(format!("{stem}.stdout.log")),
            },
            ports: *ports,
        }
    }

    /// Where a UAC sends (veil, or another SIPp when checking scenarios).
    pub fn to(mut self, remote: SocketAddr) -> Self {
        self.remote = Some(remote);
        self
    }

    /// A second SIP and media port on the same side's address, for a second SIPp of that
    /// side running at the same time (the source address still identifies the peer).
    pub fn alt_ports(mut self) -> Self {
        self.sip_addr.set_port(self.ports.alt_sip());
        self.media_port = self.ports.alt_sipp_media();
        self
    }

    /// TCP instead of UDP (`-t t1`).
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Request-URI user (`-s`).
    pub fn service(mut self, user: &str) -> Self {
        self.service = user.to_string();
        self
    }

    /// Number of calls (`-m`), default 1.
    pub fn calls(mut self, n: u32) -> Self {
        self.calls = n;
        self
    }

    /// Bind SIPp (signalling and media) to `ip` instead of the side's own address, e.g.
    /// `::1` for an IPv6 side.
    pub fn ip(mut self, ip: std::net::IpAddr) -> Self {
        self.sip_addr.set_ip(ip);
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.to_string());
        self
    }

    fn args(&self) -> Vec<String> {
        let ip = self.sip_addr.ip().to_string();
        let mut a: Vec<String> = vec![
            "-sf".into(),
            scenario_path(&self.scenario).display().to_string(),
            "-i".into(),
            ip.clone(),
            "-p".into(),
            self.sip_addr.port().to_string(),
            "-mi".into(),
            ip,
            "-mp".into(),
            self.media_port.to_string(),
            "-m".into(),
            self.calls.to_string(),
            "-s".into(),
            self.service.clone(),
            // Distinctive Call-IDs per side, so that a leaked one is recognisable.
            "-cid_str".into(),
            format!("{}-call-%u-%p@%s", self.side.peer_name()),
            "-t".into(),
            if self.tcp { "t1" } else { "u1" }.into(),
            "-nostdin".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            self.files.messages.display().to_string(),
            "-trace_err".into(),
            "-error_file".into(),
            self.files.errors.display().to_string(),
            "-trace_screen".into(),
            "-screen_file".into(),
            self.files.screen.display().to_string(),
            "-timeout".into(),
            format!("{SIPP_TIMEOUT_S}s"),
            "-timeout_error".into(),
        ];
        a.extend(self.extra.iter().cloned());
        if let Some(r) = self.remote {
            a.push(r.to_string());
        }
        a
    }

    /// Starts SIPp. A side without a remote (a UAS) is waited for until its SIP socket is
    /// bound, so that nothing is sent to it before it listens.
    pub fn spawn(self) -> SippProc {
        let args = self.args();
        let child = Command::new("sipp")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(File::create(&self.files.stdout).expect("create sipp stdout log"))
            .stderr(Stdio::from(
                File::create(self.files.stdout.with_extension("stderr.log"))
                    .expect("create sipp stderr log"),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install sip-tester): {e}"));
        let mut proc = SippProc {
            side: self.side,
            scenario: self.scenario.clone(),
            command: format!("sipp {}", args.join(" ")),
            child: Some(child),
            files: self.files.clone(),
            started: Instant::now(),
        };
        if self.remote.is_none() {
            proc.wait_bound(self.sip_addr, self.tcp);
        }
        proc
    }

    /// Runs SIPp to completion (or the harness limit).
    pub fn run(self) -> SippOutcome {
        self.spawn().wait(RUN_LIMIT)
    }
}

/// A running SIPp.
pub struct SippProc {
    side: Side,
    scenario: String,
    command: String,
    child: Option<Child>,
    files: Files,
    started: Instant,
}

impl SippProc {
    fn wait_bound(&mut self, addr: SocketAddr, tcp: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if socket_bound(addr, tcp) {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "{} SIPp ({}) exited before listening on {addr}: {status}\n{}\n{}",
                    self.side.label(),
                    self.scenario,
                    self.command,
                    read_lossy(&self.files.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // No /proc view (or unusual kernel): give SIPp a moment instead of failing.
        std::thread::sleep(Duration::from_millis(300));
    }

    /// What SIPp has traced so far (it writes each message as it goes), for tests that
    /// act on a running call, e.g. send media to the ports veil's SDP names.
    pub fn messages_so_far(&self) -> Vec<TracedMessage> {
        parse_trace(&read_lossy(&self.files.messages))
    }

    /// Waits up to 10 s for a traced message matching `pred`.
    pub fn wait_message(&self, what: &str, pred: impl Fn(&TracedMessage) -> bool) -> TracedMessage {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self.messages_so_far().into_iter().find(|m| pred(m)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{} SIPp ({}): no {what} within 10 s\n{}",
                self.side.label(),
                self.scenario,
                read_lossy(&self.files.messages)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `limit` for SIPp to exit, killing it after that, and collects its output.
    pub fn wait(mut self, limit: Duration) -> SippOutcome {
        let mut child = self.child.take().expect("sipp child present");
        let deadline = self.started + limit;
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    killed = true;
                    break child.wait().ok().and_then(|s| s.code());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break None,
            }
        };
        let trace = read_lossy(&self.files.messages);
        SippOutcome {
            side: self.side,
            scenario: self.scenario.clone(),
            command: self.command.clone(),
            exit_code: status,
            killed,
            messages: parse_trace(&trace),
            errors: read_lossy(&self.files.errors),
            screen: read_lossy(&self.files.screen),
            trace_path: self.files.messages.clone(),
        }
    }
}

impl Drop for SippProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a SIPp run did.
#[derive(Debug)]
pub struct SippOutcome {
    pub side: Side,
    pub scenario: String,
    pub command: String,
    /// SIPp exit code: 0 = every call succeeded, 1 = some failed, 97/99/255 = aborted.
    pub exit_code: Option<i32>,
    /// Killed by the harness after [`RUN_LIMIT`].
    pub killed: bool,
    pub messages: Vec<TracedMessage>,
    pub errors: String,
    pub screen: String,
    pub trace_path: PathBuf,
}

impl SippOutcome {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.killed
    }

    pub fn received(&self) -> impl Iterator<Item = &TracedMessage> {
        self.messages
            .iter()
            .filter(|m| m.direction == Direction::Received)
    }

    pub fn sent(&self) -> impl Iterator<Item = &TracedMessage> {
        self.messages
            .iter()
            .filter(|m| m.direction == Direction::Sent)
    }

    /// Call-ID of the first message in `dir` (the caller's own: first sent; the callee's
    /// leg: first received).
    pub fn first_call_id(&self, dir: Direction) -> String {
        self.messages
            .iter()
            .filter(|m| m.direction == dir)
            .find_map(|m| m.header("Call-ID"))
            .map(str::to_string)
            .unwrap_or_else(|| {
                panic!(
                    "{} ({}) has no {dir:?} message with a Call-ID\n{}",
                    self.side.label(),
                    self.scenario,
                    self.report()
                )
            })
    }

    /// Received messages that are requests with `method`.
    pub fn received_requests(&self, method: &str) -> Vec<&TracedMessage> {
        self.received()
            .filter(|m| m.is_request() && m.method() == method)
            .collect()
    }

    /// Everything needed to understand a failure of this side.
    pub fn report(&self) -> String {
        let mut r = format!(
            "---- {} SIPp, scenario {}: exit code {:?}{}\n  command: {}\n  trace: {}\n",
            self.side.label(),
            self.scenario,
            self.exit_code,
            if self.killed {
                " (killed by the harness after the time limit)"
            } else {
                ""
            },
            self.command,
            self.trace_path.display(),
        );
        let errors = self.errors.trim();
        if !errors.is_empty() {
            r.push_str(&format!(
                "  SIPp error log:\n{}\n",
                indent(&tail(errors, 30))
            ));
        }
        r.push_str("  messages:\n");
        if self.messages.is_empty() {
            r.push_str("    (none sent or received)\n");
        }
        for m in &self.messages {
            r.push_str(&format!("    {}\n", m.describe()));
        }
        if let Some(last) = self.received().last() {
            r.push_str(&format!(
                "  last received message:\n{}\n",
                indent(&last.text)
            ));
        }
        r
    }
}

/// Panics, describing every side that failed, if any did.
pub fn assert_all_succeeded(outcomes: &[&SippOutcome]) {
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.succeeded()).collect();
    if failed.is_empty() {
        return;
    }
    let names: Vec<_> = failed
        .iter()
        .map(|o| format!("{} ({})", o.side.label(), o.scenario))
        .collect();
    let mut msg = format!("SIPp scenario failed on: {}\n", names.join(", "));
    for o in outcomes {
        msg.push_str(&o.report());
    }
    panic!("{msg}");
}

fn read_lossy(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("      {}", l.trim_end_matches('\r')))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a socket is bound to `addr` (listening, for TCP), per /proc/net.
fn socket_bound(addr: SocketAddr, tcp: bool) -> bool {
    let v4 = match addr {
        SocketAddr::V4(v4) => v4,
        SocketAddr::V6(v6) => return socket_bound_v6(v6, tcp),
    };
    let table = if tcp {
        "/proc/net/tcp"
    } else {
        "/proc/net/udp"
    };
    let Ok(text) = std::fs::read_to_string(table) else {
        return false;
    };
    // The kernel prints the address as the in-memory u32 in hex.
    let want = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let any = format!("00000000:{:04X}", v4.port());
    text.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() > 3 && (cols[1] == want || cols[1] == any) && (!tcp || cols[3] == "0A")
    })
}

fn socket_bound_v6(addr: std::net::SocketAddrV6, tcp: bool) -> bool {
    let table = if tcp {
        "/proc/net/tcp6"
    } else {
        "/proc/net/udp6"
    };
    let Ok(text) = std::fs::read_to_string(table) else {
        return false;
    };
    // Four in-memory u32 words in hex, then the port.
    let o = addr.ip().octets();
    let mut want = String::new();
    for w in o.chunks(4) {
        want.push_str(&format!(
            "{:08X}",
            u32::from_ne_bytes([w[0], w[1], w[2], w[3]])
        ));
    }
    let want = format!("{want}:{:04X}", addr.port());
    text.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() > 3 && cols[1] == want && (!tcp || cols[3] == "0A")
    })
}
