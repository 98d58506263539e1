//! Who is where: the loopback addresses of each side, per-test ports, and the veil config
//! and policy files a test runs with.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;

/// A party around veil. Each has its own loopback address, so that any of its addresses
/// showing up on another side is a topology leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Pbx,
    Carrier,
    Backup,
    /// A source that matches no configured peer.
    Outsider,
}

impl Side {
    pub const ALL: [Side; 4] = [Side::Pbx, Side::Carrier, Side::Backup, Side::Outsider];

    pub fn ip(self) -> Ipv4Addr {
        match self {
            Side::Pbx => Ipv4Addr::new(127, 0, 0, 2),
            Side::Carrier => Ipv4Addr::new(127, 0, 0, 3),
            Side::Backup => Ipv4Addr::new(127, 0, 0, 4),
            Side::Outsider => Ipv4Addr::new(127, 0, 0, 9),
        }
    }

    /// Human label used in failure messages.
    pub fn label(self) -> &'static str {
        match self {
            Side::Pbx => "pbx",
            Side::Carrier => "carrier",
            Side::Backup => "backup carrier",
            Side::Outsider => "outsider",
        }
    }

    /// The peer name in veil's config (the outsider is deliberately not a peer).
    pub fn peer_name(self) -> &'static str {
        match self {
            Side::Pbx => "pbx",
            Side::Carrier => "carrier",
            Side::Backup => "carrier-b",
            Side::Outsider => "outsider",
        }
    }

    fn index(self) -> u16 {
        match self {
            Side::Pbx => 1,
            Side::Carrier => 2,
            Side::Backup => 3,
            Side::Outsider => 4,
        }
    }
}

/// Ports of one test, derived from its slot (0..127) so that tests never collide, all
/// below Linux's ephemeral range (32768+) so that no client socket can take them: slot
/// 126's media range ends at 32699, and its SIPp media ports stay below slot 0's SIP port.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    slot: u16,
}

impl Ports {
    pub fn new(slot: u16) -> Ports {
        assert!(slot < 127, "test slot {slot} out of range 0..127");
        Ports { slot }
    }

    /// veil's SIP port, UDP and TCP.
    pub fn veil_sip(&self) -> u16 {
        16000 + self.slot * 10
    }

    /// SIP port of a SIPp side.
    pub fn sip(&self, side: Side) -> u16 {
        self.veil_sip() + side.index()
    }

    pub fn sip_addr(&self, side: Side) -> SocketAddr {
        SocketAddr::from((side.ip(), self.sip(side)))
    }

    /// A spare SIP port for a second SIPp of one side ([`super::SippCmd::alt_ports`]).
    pub fn alt_sip(&self) -> u16 {
        self.veil_sip() + 5
    }

    /// A spare SIPp media port (below the next slot's, above every side's).
    pub fn alt_sipp_media(&self) -> u16 {
        10000 + self.slot * 40 + 36
    }

    pub fn metrics(&self) -> u16 {
        self.veil_sip() + 6
    }

    /// veil's media relay ports.
    pub fn media_range(&self) -> RangeInclusive<u16> {
        let first = 20000 + self.slot * 100;
        first..=first + 99
    }

    /// SIPp's media port for a side (SIPp also binds this + 2).
    pub fn sipp_media(&self, side: Side) -> u16 {
        10000 + self.slot * 40 + side.index() * 8
    }
}

/// One policy rule (CONTRACT.md policy format).
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub from_peer: Option<String>,
    pub to_user: Option<String>,
    pub route: Vec<String>,
    pub reject: Option<u16>,
}

impl Rule {
    pub fn route(name: &str, from_peer: &str, to_user: Option<&str>, targets: &[&str]) -> Rule {
        Rule {
            name: name.into(),
            from_peer: Some(from_peer.into()),
            to_user: to_user.map(Into::into),
            route: targets.iter().map(|t| t.to_string()).collect(),
            reject: None,
        }
    }

    pub fn reject(name: &str, code: u16) -> Rule {
        Rule {
            name: name.into(),
            from_peer: None,
            to_user: None,
            route: vec![],
            reject: Some(code),
        }
    }
}

/// What a test's veil knows: its peers and its policy.
#[derive(Debug, Clone)]
pub struct Setup {
    pub peers: Vec<Side>,
    pub rules: Vec<Rule>,
    /// The `calls:` section as a YAML flow mapping (e.g. short lab session timers).
    pub calls: Option<String>,
    /// Extra keys for one peer, each a `key: value` line (e.g. `session_timer: {enabled: false}`).
    pub peer_extra: Vec<(Side, String)>,
    /// Media ports instead of the slot's 100 (load tests need more than 25 calls' worth).
    pub media_ports: Option<(u16, u16)>,
}

/// Request-URI users the PBX may dial out (E.164 without or with +).
pub const E164: &str = r"^\+?[1-9][0-9]{6,14}$";

impl Setup {
    /// PBX and one carrier; calls go PBX -> carrier (E.164 numbers) and carrier -> PBX;
    /// anything else is refused.
    pub fn standard() -> Setup {
        Setup {
            peers: vec![Side::Pbx, Side::Carrier],
            rules: vec![
                Rule::route("pbx-to-carrier", "pbx", Some(E164), &["carrier"]),
                Rule::route("carrier-to-pbx", "carrier", None, &["pbx"]),
                Rule::reject("default-deny", 403),
            ],
            calls: None,
            peer_extra: Vec::new(),
            media_ports: None,
        }
    }

    /// PBX, carrier and backup carrier; PBX calls try the carrier, then the backup.
    pub fn failover() -> Setup {
        Setup {
            peers: vec![Side::Pbx, Side::Carrier, Side::Backup],
            rules: vec![
                Rule::route(
                    "pbx-to-carriers",
                    "pbx",
                    Some(E164),
                    &["carrier", "carrier-b"],
                ),
                Rule::reject("default-deny", 403),
            ],
            calls: None,
            peer_extra: Vec::new(),
            media_ports: None,
        }
    }

    /// The standard peers without a catch-all rule: unknown sources must be refused by
    /// veil's own admission, not by a policy rule.
    pub fn without_default_rule() -> Setup {
        let mut s = Setup::standard();
        s.rules.retain(|r| r.reject.is_none());
        s
    }

    pub fn with_calls(mut self, calls: &str) -> Setup {
        self.calls = Some(calls.to_string());
        self
    }

    pub fn with_peer(mut self, side: Side, extra: &str) -> Setup {
        self.peer_extra.push((side, extra.to_string()));
        self
    }

    pub fn render_config(&self, ports: &Ports) -> String {
        let sip = ports.veil_sip();
        let media = match self.media_ports {
            Some((a, b)) => a..=b,
            None => ports.media_range(),
        };
        let mut y = String::new();
        let _ = writeln!(y, "instance: itest-{}", ports.slot);
        let _ = writeln!(y, "sip:\n  listen:");
        let _ = writeln!(
            y,
            "    - {{name: udp, transport: udp, address: 127.0.0.1:{sip}}}"
        );
        let _ = writeln!(
            y,
            "    - {{name: tcp, transport: tcp, address: 127.0.0.1:{sip}}}"
        );
        let _ = writeln!(
            y,
            "media:\n  address: 127.0.0.1\n  ports: {}-{}\n  rtp_timeout: 60s",
            media.start(),
            media.end()
        );
        let _ = writeln!(y, "peers:");
        for side in &self.peers {
            let _ = writeln!(y, "  - name: {}", side.peer_name());
            let _ = writeln!(y, "    address: {}", ports.sip_addr(*side));
            let _ = writeln!(y, "    transport: udp\n    listen: udp\n    trusted: true");
            let _ = writeln!(y, "    sources: [{}/32]", side.ip());
            for (_, extra) in self.peer_extra.iter().filter(|(s, _)| s == side) {
                let _ = writeln!(y, "    {extra}");
            }
        }
        if let Some(calls) = &self.calls {
            let _ = writeln!(y, "calls: {calls}");
        }
        let _ = writeln!(y, "policy: policy.yaml");
        let _ = writeln!(y, "cdr:\n  sqlite: cdr.sqlite");
        let _ = writeln!(y, "metrics:\n  listen: 127.0.0.1:{}", ports.metrics());
        let _ = writeln!(y, "log:\n  format: json\n  level: debug");
        y
    }

    pub fn render_policy(&self) -> String {
        let mut y = String::from("rules:\n");
        for r in &self.rules {
            let _ = writeln!(y, "  - name: {}", r.name);
            if r.from_peer.is_some() || r.to_user.is_some() {
                let _ = writeln!(y, "    when:");
                if let Some(p) = &r.from_peer {
                    let _ = writeln!(y, "      from_peer: {p}");
                }
                if let Some(u) = &r.to_user {
                    let _ = writeln!(y, "      to_user: '{u}'");
                }
            }
            let _ = writeln!(y, "    then:");
            if let Some(code) = r.reject {
                let _ = writeln!(y, "      reject: {code}");
            } else {
                let _ = writeln!(y, "      route: [{}]", r.route.join(", "));
            }
        }
        y
    }
}
