//! baresip (Debian `baresip-core`) as a real softphone on a leg of veil: configured
//! through its own config dir (`-f`), dialling with `-e /dial`, quitting with `-t` (which
//! hangs up). Audio comes from a tone file (`aufile`), and what it receives is recorded
//! by the `sndfile` module (`dump-*-dec.wav`); [`tone_share`] finds a frequency in it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether baresip and sox are installed (the tests that need them skip loudly if not).
pub fn available() -> bool {
    ["baresip", "sox"].iter().all(|b| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A mono 8 kHz sine of `hz` for `secs` seconds, made with sox.
pub fn tone(dir: &Path, hz: u32, secs: u32) -> PathBuf {
    let path = dir.join(format!("tone{hz}.wav"));
    let out = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&path)
        .args([
            "synth",
            &secs.to_string(),
            "sine",
            &hz.to_string(),
            "vol",
            "0.5",
        ])
        .output()
        .expect("sox runs (apt-get install sox)");
    assert!(
        out.status.success(),
        "sox: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// One phone: its identity, where it listens, its audio and its transport settings.
pub struct PhoneCfg<'a> {
    pub name: &'a str,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    pub user: &'a str,
    pub tone: &'a Path,
    pub rtp_ports: (u16, u16),
    /// Extra config lines (TLS certificate and CA).
    pub extra: String,
    /// Account parameters appended to the AOR, e.g. `;transport=tls` inside the URI.
    pub aor_params: &'a str,
}

pub struct Phone {
    child: Option<Child>,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Phone {
    /// Starts baresip for `secs` seconds (it hangs up and quits then), dialling `dial` if
    /// given (a caller), else answering automatically (a callee). Returns once it is ready.
    pub fn start(parent: &Path, cfg: &PhoneCfg, dial: Option<&str>, secs: u32) -> Phone {
        let dir = parent.join(cfg.name);
        std::fs::create_dir_all(&dir).expect("phone dir");
        let config = format!(
            "poll_method epoll\nsip_listen {ip}:{port}\nnet_interface {ip}\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
             module sndfile.so\nsnd_path {dir}\nmodule_app account.so\nmodule_app menu.so\n\
             audio_source aufile,{tone}\naudio_alert aufile,/dev/null\n\
             audio_path {dir}\nrtp_ports {r0}-{r1}\nsip_trans_def udp\n{extra}\n",
            ip = cfg.ip,
            port = cfg.port,
            dir = dir.display(),
            tone = cfg.tone.display(),
            r0 = cfg.rtp_ports.0,
            r1 = cfg.rtp_ports.1,
            extra = cfg.extra,
        );
        std::fs::write(dir.join("config"), config).expect("write baresip config");
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{}@{}:{}{}>;regint=0;answermode=auto;audio_codecs=PCMU\n",
                cfg.user, cfg.ip, cfg.port, cfg.aor_params
            ),
        )
        .expect("write baresip accounts");
        let log = dir.join("baresip.log");
        let mut cmd = Command::new("baresip");
        // -s: SIP trace into the log, for checks of what the phone received.
        cmd.arg("-s")
            .arg("-f")
            .arg(&dir)
            .arg("-t")
            .arg(secs.to_string());
        if let Some(uri) = dial {
            cmd.arg("-e").arg(format!("/dial {uri}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("baresip log"))
            .stderr(Stdio::from(
                File::create(dir.join("baresip.stderr.log")).expect("baresip log"),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run baresip (apt-get install baresip-core): {e}"));
        let mut phone = Phone {
            child: Some(child),
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !phone.log_text().contains("baresip is ready") {
            let exited = phone
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if dial.is_none() && (exited || Instant::now() > deadline) {
                panic!("baresip {} did not start:\n{}", cfg.name, phone.log_text());
            }
            if dial.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        phone
    }

    /// Waits for baresip to quit (its `-t`), killing it after `limit`.
    pub fn wait(&mut self, limit: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + limit;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.wait();
    }

    pub fn log_text(&self) -> String {
        let mut s = std::fs::read_to_string(&self.log).unwrap_or_default();
        s.push_str(
            &std::fs::read_to_string(self.dir.join("baresip.stderr.log")).unwrap_or_default(),
        );
        s
    }

    /// Whether a log line contains `needle`.
    pub fn log_has(&self, needle: &str) -> bool {
        BufReader::new(File::open(&self.log).expect("baresip log"))
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains(needle))
    }

    /// What the phone received and decoded (the sndfile dump), if a call had audio.
    pub fn recording(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Samples of a WAV file as 8 kHz mono 16-bit (sox converts whatever sndfile wrote).
pub fn samples(wav: &Path) -> Vec<f64> {
    let out = Command::new("sox")
        .arg(wav)
        .args([
            "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", "8000", "-",
        ])
        .output()
        .expect("sox runs");
    assert!(
        out.status.success(),
        "sox: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
        .collect()
}

/// Share of the signal's power at `hz` (Goertzel over 20 ms blocks, 8 kHz): near 1 for a
/// clean tone of that frequency, near 0 for silence or another tone. Silent blocks
/// (before media flows) are left out; `None` if every block is silent.
pub fn tone_share(samples: &[f64], hz: f64) -> Option<f64> {
    let n = 160;
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut at, mut total) = (0.0, 0.0);
    for block in samples.chunks_exact(n) {
        let energy: f64 = block.iter().map(|x| x * x).sum();
        if energy / (n as f64) < 100.0 * 100.0 {
            continue;
        }
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in block {
            let s = x + k * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        // |X(hz)|^2 for the block; a pure sine of amplitude A gives (A n / 2)^2, and
        // its energy is A^2 n / 2, so 2 |X|^2 / (n energy) is its share of the power.
        let power = s1 * s1 + s2 * s2 - k * s1 * s2;
        at += 2.0 * power / n as f64;
        total += energy;
    }
    (total > 0.0).then_some(at / total)
}
