//! Kamailio (Debian `kamailio`) as an independent proxy around veil: a record-routing load
//! balancer in front, or a forking proxy behind. The test writes the config into its temp
//! dir; Kamailio runs in the foreground, logging to a file there, and is killed on drop.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Kamailio {
    child: Child,
    log: PathBuf,
    pub addr: SocketAddr,
}

/// Shared head of every config: one UDP listener, no DNS, the modules a proxy needs.
fn head(listen: SocketAddr) -> String {
    let modules = module_dir();
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
listen=udp:{listen}
auto_aliases=no
alias="{listen}"
dns=no
rev_dns=no
use_dns_cache=off
disable_tcp=yes
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "corex.so"
modparam("tm", "fr_timer", 3000)
modparam("tm", "fr_inv_timer", 20000)
"#
    )
}

/// Where Debian keeps the modules (multiarch directory).
fn module_dir() -> String {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("kamailio/modules"))
        .find(|p| p.join("tm.so").exists())
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/kamailio/modules"))
        .display()
        .to_string()
}

/// A record-routing load balancer (the sip:provider CE layout): initial INVITEs go to
/// `next` with Record-Route; in-dialog requests must follow the Route set (`loose_route`),
/// and one without it is refused (404) or, for an ACK, dropped as stray.
pub fn lb_config(listen: SocketAddr, next: SocketAddr) -> String {
    format!(
        r#"{}
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("OPTIONS") && $rU == "kping") {{ sl_send_reply("200", "Ready"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ if (!t_relay()) sl_reply_error(); exit; }}
        if (is_method("ACK")) {{
            if (t_check_trans()) t_relay();
            xlog("L_WARN", "stray ACK without Route $ci\n");
            exit;
        }}
        xlog("L_WARN", "in-dialog $rm without Route $ci\n");
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    t_check_trans();
    if (is_method("INVITE|SUBSCRIBE")) record_route();
    $du = "sip:{next}";
    if (!t_relay()) sl_reply_error();
    exit;
}}
"#,
        head(listen)
    )
}

/// A stateful proxy that forks every initial INVITE in parallel to `targets` (it cancels
/// the other branches when one answers, RFC 3261 §16.7), record-routing.
pub fn fork_config(listen: SocketAddr, targets: &[SocketAddr]) -> String {
    // Extra branches first: append_branch() copies the current $du into the new branch,
    // so the first target's $du is set last.
    let mut branches = String::new();
    for t in targets.iter().skip(1) {
        branches.push_str(&format!("    append_branch(\"sip:$rU@{t}\");\n"));
    }
    if let Some(first) = targets.first() {
        branches.push_str(&format!("    $du = \"sip:{first}\";\n"));
    }
    format!(
        r#"{}
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("OPTIONS") && $rU == "kping") {{ sl_send_reply("200", "Ready"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ if (!t_relay()) sl_reply_error(); exit; }}
        if (is_method("ACK") && t_check_trans()) {{ t_relay(); exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    t_check_trans();
    record_route();
{branches}    if (!t_relay()) sl_reply_error();
    exit;
}}
"#,
        head(listen)
    )
}

/// Whether Kamailio is installed (the tests that need it skip loudly when it is not).
pub fn available() -> bool {
    Command::new("kamailio")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Kamailio {
    /// Writes `config` to `dir/<name>.cfg`, checks it (`-c`), starts Kamailio and waits
    /// until it holds its UDP socket.
    pub fn start(dir: &Path, name: &str, addr: SocketAddr, config: &str) -> Kamailio {
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg, config).expect("write kamailio config");
        let runtime = dir.join(format!("{name}.run"));
        std::fs::create_dir_all(&runtime).expect("kamailio runtime dir");
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("kamailio")
            .args([
                "-x", "tlsf", "-X", "tlsf", "-m", "32", "-M", "8", "-DD", "-E", "-f",
            ])
            .arg(&cfg)
            .arg("-Y")
            .arg(&runtime)
            .arg("-P")
            .arg(runtime.join("kamailio.pid"))
            .arg("-w")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("kamailio log"))
            .stderr(File::create(log.with_extension("stderr.log")).expect("kamailio log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run kamailio (apt-get install kamailio): {e}"));
        let mut k = Kamailio { child, log, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !k.answers_ping() {
            if Instant::now() > deadline || k.child.try_wait().ok().flatten().is_some() {
                panic!("kamailio did not start on {addr}:\n{}", k.log_text());
            }
        }
        k
    }

    /// One OPTIONS to `kping` (answered by the config itself), 200 ms to answer.
    fn answers_ping(&self) -> bool {
        let Ok(sock) = UdpSocket::bind(("127.0.0.1", 0)) else {
            return false;
        };
        let Ok(local) = sock.local_addr() else {
            return false;
        };
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        let msg = format!(
            "OPTIONS sip:kping@{a} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKkping{p}\r\nMax-Forwards: 5\r\nFrom: <sip:t@{local}>;tag=k\r\nTo: <sip:kping@{a}>\r\nCall-ID: kping-{p}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            a = self.addr,
            p = local.port()
        );
        if sock.send_to(msg.as_bytes(), self.addr).is_err() {
            std::thread::sleep(Duration::from_millis(200));
            return false;
        }
        let mut buf = [0u8; 2048];
        matches!(sock.recv_from(&mut buf), Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 200"))
    }

    pub fn log_text(&self) -> String {
        let mut s = std::fs::read_to_string(&self.log).unwrap_or_default();
        s.push_str(
            &std::fs::read_to_string(self.log.with_extension("stderr.log")).unwrap_or_default(),
        );
        s
    }

    /// Log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // The creator forwards SIGTERM to its children and waits for them.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
