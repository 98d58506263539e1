//! Integration-test harness: runs the real `veil` binary between SIPp peers on loopback.
//!
//! Topology (every test gets its own ports, see [`Ports`], so tests run in parallel):
//! veil on 127.0.0.1 (UDP and TCP), the PBX on 127.0.0.2, the carrier on 127.0.0.3, a
//! backup carrier on 127.0.0.4 and an unknown source on 127.0.0.9. A [`Lab`] owns one
//! test's temp dir and veil process; SIPp runs are started from it; what each SIPp side
//! received is checked for the other side's identifiers ([`leak`]), and veil's CDR rows
//! and metrics are read back ([`observe`]).
//!
//! On a failing test (or with `VEIL_ITEST_KEEP=1`) the lab keeps its temp dir, and a
//! failing one prints veil's log tail; every SIPp
//! failure names the side, the scenario, the exit code and SIPp's own error log.
#![allow(dead_code, unused_imports)]

pub mod baresip;
pub mod kamailio;
pub mod leak;
pub mod media;
pub mod netns;
pub mod observe;
pub mod pki;
pub mod sipp;
pub mod topology;
pub mod trace;
pub mod veil;

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use leak::{assert_no_leaks, assert_sdp_anchored};
pub use observe::{CdrRow, Metrics};
pub use sipp::{SippCmd, SippOutcome, assert_all_succeeded};
pub use topology::{Ports, Rule, Setup, Side};
pub use veil::Veil;

/// The number every test dials (matches the standard policy's E.164 pattern).
pub const CALLEE_NUMBER: &str = "4930123456";

/// One test's world: a temp dir with config, policy, logs, CDR and SIPp traces, and
/// (once started) a veil process.
pub struct Lab {
    pub slot: u16,
    pub ports: Ports,
    dir: Option<tempfile::TempDir>,
    veil: Option<Veil>,
    runs: Cell<u32>,
}

impl Lab {
    /// A lab without veil (for checking SIPp scenarios against each other).
    pub fn new(slot: u16) -> Lab {
        let dir = tempfile::Builder::new()
            .prefix(&format!("veil-itest-{slot}-"))
            .tempdir()
            .expect("create temp dir");
        Lab {
            slot,
            ports: Ports::new(slot),
            dir: Some(dir),
            veil: None,
            runs: Cell::new(0),
        }
    }

    /// Writes the config and policy for `setup` and starts veil; returns once veil answers
    /// an OPTIONS probe.
    pub fn start(slot: u16, setup: &Setup) -> Lab {
        let mut lab = Lab::new(slot);
        let config = lab.write_config(setup);
        lab.veil = Some(Veil::start(lab.dir(), &config, &lab.ports));
        lab
    }

    /// Like [`Lab::start`], with the rendered config passed through `edit` first (per-test
    /// keys such as a peer's `auth`; see [`add_peer_keys`]).
    pub fn start_edited(slot: u16, setup: &Setup, edit: impl FnOnce(String) -> String) -> Lab {
        let mut lab = Lab::new(slot);
        let config = lab.write_config(setup);
        let text = std::fs::read_to_string(&config).expect("read config");
        std::fs::write(&config, edit(text)).expect("write edited config");
        lab.veil = Some(Veil::start(lab.dir(), &config, &lab.ports));
        lab
    }

    /// Starts veil again with the lab's config (after it stopped or was killed).
    pub fn restart_veil(&mut self) {
        let config = self.dir().join("veil.yaml");
        self.veil = Some(Veil::start(self.dir(), &config, &self.ports));
    }

    /// Writes `veil.yaml` and `policy.yaml` into the lab dir; returns the config path.
    pub fn write_config(&self, setup: &Setup) -> PathBuf {
        let config = self.dir().join("veil.yaml");
        std::fs::write(self.dir().join("policy.yaml"), setup.render_policy())
            .expect("write policy");
        std::fs::write(&config, setup.render_config(&self.ports)).expect("write config");
        config
    }

    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .expect("lab dir present until drop")
    }

    pub fn veil(&self) -> &Veil {
        self.veil
            .as_ref()
            .expect("this lab has no veil: use Lab::start")
    }

    pub fn veil_mut(&mut self) -> &mut Veil {
        self.veil
            .as_mut()
            .expect("this lab has no veil: use Lab::start")
    }

    /// veil's SIP address (the same port serves UDP and TCP).
    pub fn veil_sip(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.veil_sip()))
    }

    /// A SIPp run for `side` with `scenario` (a file name in tests/sipp/).
    pub fn sipp(&self, side: Side, scenario: &str) -> SippCmd {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        SippCmd::new(self.dir(), n, side, scenario, &self.ports)
    }

    /// The CDR row of the call whose A-leg Call-ID is `a_call_id`, once it has ended.
    pub fn ended_cdr(&self, a_call_id: &str) -> CdrRow {
        observe::wait_ended_cdr(&self.veil().cdr_path(), a_call_id, Duration::from_secs(10))
    }

    /// Stops veil (SIGTERM, then SIGKILL after 5 s) and returns how it exited.
    pub fn stop_veil(&mut self) -> Option<std::process::ExitStatus> {
        self.veil_mut().stop()
    }

    pub fn metrics(&self) -> Metrics {
        observe::scrape(self.veil().metrics_addr())
            .unwrap_or_else(|e| panic!("scraping veil metrics: {e}"))
    }

    /// Full checks of an answered call between `caller` and `callee`: both SIPp sides
    /// succeeded, nothing of either side reached the other, SDP is anchored on veil, the
    /// CDR row is complete and the answered-call metrics moved.
    pub fn assert_answered_call(
        &self,
        caller: &SippOutcome,
        callee: &SippOutcome,
        end_reason: &str,
    ) {
        assert_all_succeeded(&[caller, callee]);
        assert_no_leaks(&[caller, callee]);
        assert_sdp_anchored(caller, &self.ports);
        assert_sdp_anchored(callee, &self.ports);
        let a_call_id = caller.first_call_id(trace::Direction::Sent);
        let b_call_id = callee.first_call_id(trace::Direction::Received);
        let cdr = self.ended_cdr(&a_call_id);
        cdr.assert_eq("final_code", "200");
        cdr.assert_eq("end_reason", end_reason);
        cdr.assert_set("answered_at");
        cdr.assert_set("started_at");
        cdr.assert_eq("b_call_id", &b_call_id);
        cdr.assert_eq("source_peer", caller.side.peer_name());
        cdr.assert_eq("dest_peer", callee.side.peer_name());
        assert_ne!(
            a_call_id, b_call_id,
            "the two legs must have different Call-IDs"
        );
        let m = self.metrics();
        m.assert_at_least("veil_calls_total", &[("outcome", "answered")], 1.0);
        m.assert_at_least("veil_calls_ended_total", &[("reason", end_reason)], 1.0);
    }
}

/// Adds YAML lines (indented as peer keys, e.g. `auth: {username: u, password: p}`) to the
/// peer of `side` in a rendered config.
pub fn add_peer_keys(config: &str, side: Side, keys: &[&str]) -> String {
    let anchor = format!("  - name: {}\n", side.peer_name());
    let mut block = anchor.clone();
    for k in keys {
        block.push_str(&format!("    {k}\n"));
    }
    assert!(
        config.contains(&anchor),
        "no peer {} in config",
        side.peer_name()
    );
    config.replacen(&anchor, &block, 1)
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        let keep = failing || std::env::var_os("VEIL_ITEST_KEEP").is_some();
        if let Some(mut veil) = self.veil.take() {
            let status = veil.stop();
            if failing {
                eprintln!(
                    "==== veil (slot {}) exit: {status:?}; log tail:\n{}",
                    self.slot,
                    veil.log_tail(80)
                );
            }
        }
        if keep && let Some(dir) = self.dir.take() {
            let kept = dir.keep();
            eprintln!(
                "==== test files kept in {} (config, policy, veil logs, SIPp traces)",
                kept.display()
            );
        }
    }
}
