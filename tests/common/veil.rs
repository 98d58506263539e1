//! The veil process under test: started from the cargo-built binary, probed until it
//! answers SIP, stopped with SIGTERM (then SIGKILL) when the test ends.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::topology::{Ports, Side};

const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Veil {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    sip: SocketAddr,
    metrics: SocketAddr,
    cdr: PathBuf,
    exit: Option<ExitStatus>,
}

impl Veil {
    /// Starts `veil run --config <config>` and waits until it answers an OPTIONS probe on
    /// UDP and accepts TCP connections. Panics with veil's log tail if it does not.
    pub fn start(dir: &Path, config: &Path, ports: &Ports) -> Veil {
        Veil::start_env(dir, config, ports, &[])
    }

    /// [`Veil::start`] with extra environment variables (e.g. `NOTIFY_SOCKET`). Logs of an
    /// earlier veil in the same dir (a restart) are kept, with a numbered name.
    pub fn start_env(
        dir: &Path,
        config: &Path,
        ports: &Ports,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Veil {
        let mut n = 1;
        while dir.join(format!("veil.stderr.log.{n}")).exists() {
            n += 1;
        }
        for name in ["veil.stdout.log", "veil.stderr.log"] {
            if dir.join(name).exists() {
                let _ = std::fs::rename(dir.join(name), dir.join(format!("{name}.{n}")));
            }
        }
        let stdout = dir.join("veil.stdout.log");
        let stderr = dir.join("veil.stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_veil"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("run")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create veil stdout log"))
            .stderr(File::create(&stderr).expect("create veil stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", env!("CARGO_BIN_EXE_veil")));
        let mut veil = Veil {
            child,
            stdout,
            stderr,
            sip: SocketAddr::from(([127, 0, 0, 1], ports.veil_sip())),
            metrics: SocketAddr::from(([127, 0, 0, 1], ports.metrics())),
            cdr: dir.join("cdr.sqlite"),
            exit: None,
        };
        if let Err(why) = veil.wait_ready() {
            let status = veil.stop();
            panic!(
                "veil did not become ready: {why}\nveil exit status: {status:?}\nconfig:\n{}\n---- veil log tail ----\n{}",
                std::fs::read_to_string(config).unwrap_or_default(),
                veil.log_tail(60)
            );
        }
        veil
    }

    /// veil's process id (for reading its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    pub fn cdr_path(&self) -> PathBuf {
        self.cdr.clone()
    }

    /// Whether the process is still alive (a crash on bad input shows up here).
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Sends OPTIONS from the PBX address every 200 ms until any SIP answer comes back.
    fn wait_ready(&mut self) -> Result<(), String> {
        let probe =
            UdpSocket::bind((Side::Pbx.ip(), 0)).map_err(|e| format!("bind probe socket: {e}"))?;
        probe
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let local = probe.local_addr().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut attempt = 0u32;
        loop {
            if !self.is_running() {
                return Err(format!("veil exited during startup ({:?})", self.exit));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer to OPTIONS on udp {} within {READY_TIMEOUT:?}",
                    self.sip
                ));
            }
            attempt += 1;
            let msg = options_probe(self.sip, local, attempt);
            let _ = probe.send_to(msg.as_bytes(), self.sip);
            let mut buf = [0u8; 4096];
            if let Ok((n, _)) = probe.recv_from(&mut buf)
                && buf[..n].starts_with(b"SIP/2.0 ")
            {
                break;
            }
        }
        while TcpStream::connect_timeout(&self.sip, Duration::from_millis(200)).is_err() {
            if !self.is_running() || Instant::now() > deadline {
                return Err(format!(
                    "veil answers on udp but does not accept tcp on {}",
                    self.sip
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// SIGTERM, up to 5 s for a graceful drain, then SIGKILL. Returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if !self.is_running() {
            return self.exit;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.is_running() {
                return self.exit;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.exit = self.child.wait().ok();
        self.exit
    }

    /// Sends a signal (`HUP`, `TERM`, `INT`, `KILL`) to veil.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// SIGKILL: veil gets no chance to finish anything (a crash).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        self.exit = self.child.wait().ok();
    }

    /// Waits up to `limit` for veil to exit by itself; its exit status, or None.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !self.is_running() {
                return self.exit;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Lines of veil's log (stderr) containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Waits up to `limit` until veil has logged `needle` at least `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log_lines(needle).len() >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The last `n` lines of veil's stderr and stdout.
    pub fn log_tail(&self, n: usize) -> String {
        let mut out = String::new();
        for (name, path) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            let lines = tail_lines(path, n);
            if !lines.is_empty() {
                out.push_str(&format!(
                    "[veil {name}, {}]\n{}\n",
                    path.display(),
                    lines.join("\n")
                ));
            }
        }
        if out.is_empty() {
            out.push_str("(veil wrote no log output)");
        }
        out
    }
}

impl Drop for Veil {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(f) = File::open(path) else {
        return vec![];
    };
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn options_probe(veil: SocketAddr, local: SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:{veil} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{n};rport\r\n\
         From: <sip:probe@{ip}>;tag=ready{n}\r\n\
         To: <sip:{veil}>\r\n\
         Call-ID: ready-probe-{n}-{port}@{ip}\r\n\
         CSeq: {n} OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        ip = local.ip(),
        port = local.port(),
    )
}
