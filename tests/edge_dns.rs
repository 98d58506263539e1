//! DNS per RFC 3263 (issue 5) against a real DNS server: dnsmasq on loopback, started by
//! the test with only the records it names (`--no-resolv --no-hosts`, no system config
//! touched). The carrier peer is configured by name (`carrier.veil.test`, no port) and
//! reached through the NAPTR/SRV/A records the test serves.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::trace::Direction;
use common::{Lab, Ports, Rule, Setup, Side, assert_all_succeeded};

/// A dnsmasq child serving `records` (dnsmasq options) on 127.0.0.1:`port`.
struct Dnsmasq {
    child: Child,
}

impl Dnsmasq {
    fn start(dir: &Path, port: u16, records: &[String]) -> Dnsmasq {
        let log = dir.join("dnsmasq.log");
        let child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--pid-file=",
                "--local=/veil.test/",
                "--local-ttl=60",
                "--log-queries",
                &format!("--log-facility={}", log.display()),
            ])
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("dnsmasq.stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run dnsmasq (apt-get install dnsmasq-base): {e}"));
        let mut d = Dnsmasq { child };
        d.wait_answering(port, dir);
        d
    }

    /// Until dnsmasq answers a query (any answer) on its port.
    fn wait_answering(&mut self, port: u16, dir: &Path) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // A query for veil.test A.
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["veil", "test"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "dnsmasq exited: {status}\n{}",
                    std::fs::read_to_string(dir.join("dnsmasq.stderr.log")).unwrap_or_default()
                );
            }
            let _ = sock.send_to(&q, ("127.0.0.1", port));
            if sock.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!("dnsmasq does not answer on 127.0.0.1:{port}");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The slot's spare port for the DNS server.
fn dns_port(ports: &Ports) -> u16 {
    ports.veil_sip() + 7
}

/// The standard config with the carrier addressed by name (no port: RFC 3263 from NAPTR
/// on), its sources covering every address the records give it, veil asking the test's
/// DNS server, and short transaction timers (timer B = 64 * 100 ms) so that a dead target
/// is given up in seconds.
fn carrier_by_name(ports: Ports) -> impl FnOnce(String) -> String {
    move |c| {
        let old = format!("    address: {}\n", ports.sip_addr(Side::Carrier));
        assert!(c.contains(&old), "{c}");
        let c = c.replace(&old, "    address: carrier.veil.test\n");
        let c = c.replace(
            "    sources: [127.0.0.3/32]\n",
            "    sources: [127.0.0.3/32, 127.0.0.4/32, 127.0.0.5/32]\n",
        );
        let c = c.replace("sip:\n  listen:", "sip:\n  timers: {t1: 100ms}\n  listen:");
        format!(
            "{c}dns: {{servers: [\"127.0.0.1:{}\"], timeout: 1s, attempts: 2}}\n",
            dns_port(&ports)
        )
    }
}

fn srv(name: &str, host: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("--srv-host={name},{host},{port},{priority},{weight}")
}

fn host(name: &str, ip: &str) -> String {
    format!("--host-record={name},{ip}")
}

/// 127.0.0.5, where nothing listens.
fn dead_port(ports: &Ports) -> u16 {
    ports.veil_sip() + 8
}

/// INVITEs `o` received, by Call-ID (retransmissions under load count once).
fn invites(o: &common::SippOutcome) -> usize {
    let ids: std::collections::HashSet<String> = o
        .received_requests("INVITE")
        .iter()
        .filter_map(|m| m.header("Call-ID").map(|v| v.to_string()))
        .collect();
    ids.len()
}

#[test]
fn failover_from_a_dead_srv_target_to_the_next() {
    let ports = Ports::new(32);
    let dir = tempfile::tempdir().unwrap();
    let _dns = Dnsmasq::start(
        dir.path(),
        dns_port(&ports),
        &[
            srv(
                "_sip._udp.carrier.veil.test",
                "dead.veil.test",
                dead_port(&ports),
                10,
                0,
            ),
            srv(
                "_sip._udp.carrier.veil.test",
                "live.veil.test",
                ports.sip(Side::Carrier),
                20,
                0,
            ),
            host("dead.veil.test", "127.0.0.5"),
            host("live.veil.test", "127.0.0.3"),
        ],
    );
    let lab = Lab::start_edited(32, &Setup::standard(), carrier_by_name(ports));
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let started = Instant::now();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &callee]);
    // The dead target was tried first and given up after timer B (6.4 s here).
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "answered in {:?}: the priority-10 target was not tried first",
        started.elapsed()
    );
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "200");
    cdr.assert_eq("dest_peer", "carrier");
    let dead = format!("127.0.0.5:{}", dead_port(&ports));
    assert!(
        !lab.veil().log_lines(&dead).is_empty(),
        "no attempt towards the dead target {dead} logged:\n{}",
        lab.veil().log_tail(40)
    );
}

#[test]
fn srv_weights_are_honoured_over_200_calls() {
    let ports = Ports::new(33);
    let dir = tempfile::tempdir().unwrap();
    let _dns = Dnsmasq::start(
        dir.path(),
        dns_port(&ports),
        &[
            srv(
                "_sip._udp.carrier.veil.test",
                "heavy.veil.test",
                ports.sip(Side::Carrier),
                10,
                30,
            ),
            srv(
                "_sip._udp.carrier.veil.test",
                "light.veil.test",
                ports.sip(Side::Backup),
                10,
                10,
            ),
            host("heavy.veil.test", "127.0.0.3"),
            host("light.veil.test", "127.0.0.4"),
        ],
    );
    let lab = Lab::start_edited(33, &Setup::standard(), carrier_by_name(ports));
    let heavy = lab.sipp(Side::Carrier, "uas_basic.xml").calls(200).spawn();
    let light = lab.sipp(Side::Backup, "uas_basic.xml").calls(200).spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .calls(200)
        .arg("-r")
        .arg("25")
        .arg("-l")
        .arg("10")
        .to(lab.veil_sip())
        .run();
    let (heavy, light) = (
        heavy.wait(Duration::from_secs(2)),
        light.wait(Duration::from_secs(2)),
    );
    assert_all_succeeded(&[&caller]);
    let (h, l) = (invites(&heavy), invites(&light));
    assert_eq!(h + l, 200, "heavy {h}, light {l}");
    // Weights 30:10 -> 150 expected (sd 6.1); even split would give 100. +-25 is 4 sd.
    assert!(
        (125..=175).contains(&h),
        "weights not honoured: heavy target got {h} calls, light {l}"
    );
}

#[test]
fn a_503_with_retry_after_rests_that_target_until_it_expires() {
    let ports = Ports::new(34);
    let dir = tempfile::tempdir().unwrap();
    let _dns = Dnsmasq::start(
        dir.path(),
        dns_port(&ports),
        &[
            srv(
                "_sip._udp.carrier.veil.test",
                "first.veil.test",
                ports.sip(Side::Carrier),
                10,
                0,
            ),
            srv(
                "_sip._udp.carrier.veil.test",
                "second.veil.test",
                ports.sip(Side::Backup),
                20,
                0,
            ),
            host("first.veil.test", "127.0.0.3"),
            host("second.veil.test", "127.0.0.4"),
        ],
    );
    let lab = Lab::start_edited(34, &Setup::standard(), carrier_by_name(ports));
    let busy = lab
        .sipp(Side::Carrier, "uas_503_retry_after.xml")
        .calls(2)
        .spawn();
    let second = lab.sipp(Side::Backup, "uas_basic.xml").calls(4).spawn();
    let started = Instant::now();
    // Three calls one after the other, well within the 10 s rest.
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .calls(3)
        .arg("-l")
        .arg("1")
        .to(lab.veil_sip())
        .run();
    assert_all_succeeded(&[&caller]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // After the rest, the first target is tried again (and fails over again).
    std::thread::sleep(Duration::from_secs(11).saturating_sub(started.elapsed()));
    let caller2 = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    assert_all_succeeded(&[&caller2]);
    // Limits count from each SIPp's start (about 12 s ago): room for its last call to end.
    let busy = busy.wait(Duration::from_secs(30));
    let second = second.wait(Duration::from_secs(30));
    assert_all_succeeded(&[&busy, &second]);
    assert_eq!(
        invites(&busy),
        2,
        "first target: the first call and the one after the rest"
    );
    assert_eq!(invites(&second), 4);
}

#[test]
fn naptr_then_srv_then_a_and_an_unresolvable_peer_fails_over() {
    let ports = Ports::new(35);
    let dir = tempfile::tempdir().unwrap();
    let live = ports.sip(Side::Carrier);
    let dead = dead_port(&ports);
    let _dns = Dnsmasq::start(
        dir.path(),
        dns_port(&ports),
        &[
            // A TCP service with a better order: not for a UDP peer.
            "--naptr-record=carrier.veil.test,10,10,S,SIP+D2T,,_sip._tcp.carrier.veil.test".into(),
            "--naptr-record=carrier.veil.test,20,10,S,SIP+D2U,,_sip._udp.sbc.veil.test".into(),
            srv("_sip._udp.sbc.veil.test", "edge.veil.test", live, 10, 0),
            host("edge.veil.test", "127.0.0.3"),
            // What a resolver that skipped NAPTR, or ignored its service, would use.
            srv("_sip._tcp.carrier.veil.test", "dead.veil.test", dead, 10, 0),
            srv("_sip._udp.carrier.veil.test", "dead.veil.test", dead, 10, 0),
            host("dead.veil.test", "127.0.0.5"),
        ],
    );
    let mut setup = Setup::standard();
    setup.rules[0] = Rule::route(
        "pbx-to-carrier",
        "pbx",
        Some(common::topology::E164),
        &["ghost", "carrier"],
    );
    let edit = carrier_by_name(ports);
    let lab = Lab::start_edited(35, &setup, move |c| {
        edit(c).replace(
            "policy: policy.yaml\n",
            "  - {name: ghost, address: ghost.veil.test, sources: [127.0.0.6/32]}\npolicy: policy.yaml\n",
        )
    });
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let started = Instant::now();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(10));
    assert_all_succeeded(&[&caller, &callee]);
    // Straight to the NAPTR/SRV target: no dead target timed out on the way.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("dest_peer", "carrier");
    // The R-URI keeps the configured domain (RFC 3263: resolution does not change it).
    let inv = callee.received_requests("INVITE")[0];
    assert!(
        inv.text
            .lines()
            .next()
            .is_some_and(|l| l.contains("@carrier.veil.test")),
        "{}",
        inv.text
    );
    lab.metrics()
        .assert_at_least("veil_dns_failures_total", &[("peer", "ghost")], 1.0);

    // `veil route` shows what the names resolve to.
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["route", "--config"])
        .arg(lab.dir().join("veil.yaml"))
        .args(["--from-peer", "pbx", "--to-user", common::CALLEE_NUMBER])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "carrier: carrier.veil.test -> 127.0.0.3:{live} via udp (edge.veil.test, priority 10, weight 0)"
        )),
        "{text}"
    );
    assert!(
        text.contains("ghost: ghost.veil.test does not resolve"),
        "{text}"
    );
}
