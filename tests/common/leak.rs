//! The topology-hiding property: nothing that identifies one side may appear in any message
//! another side received. A side's identifiers are collected from its own trace: its IP
//! address, and every Call-ID, tag, Via branch, Contact, User-Agent/Server value, X- header
//! and SDP origin/media line that first appeared in a message it *sent* (identifiers that
//! it first received are veil's, merely echoed back).

use std::collections::HashSet;

use super::sipp::SippOutcome;
use super::topology::Ports;
use super::trace::{Direction, TracedMessage, param, uri_of};

/// A string that must not cross from its owner to another side.
#[derive(Debug, Clone)]
pub struct Needle {
    pub text: String,
    /// Why it is forbidden, e.g. "pbx Call-ID".
    pub what: String,
    /// Header names compare case-insensitively.
    pub ignore_case: bool,
}

impl Needle {
    fn found_in(&self, line: &str) -> bool {
        if self.ignore_case {
            line.to_ascii_lowercase()
                .contains(&self.text.to_ascii_lowercase())
        } else {
            line.contains(&self.text)
        }
    }
}

/// Candidate identifiers carried by one message.
fn identifiers(m: &TracedMessage) -> Vec<(String, &'static str, bool)> {
    let mut ids = Vec::new();
    for v in m.headers("Call-ID") {
        ids.push((v.to_string(), "Call-ID", false));
    }
    for name in ["From", "To"] {
        for v in m.headers(name) {
            if let Some(tag) = param(v, "tag") {
                ids.push((tag.to_string(), "dialog tag", false));
            }
        }
    }
    for v in m.headers("Via") {
        for via in v.split(',') {
            if let Some(b) = param(via, "branch") {
                ids.push((b.to_string(), "Via branch", false));
            }
        }
    }
    for v in m.headers("Contact") {
        ids.push((uri_of(v).to_string(), "Contact URI", false));
    }
    for name in ["User-Agent", "Server"] {
        for v in m.headers(name) {
            ids.push((v.to_string(), "product header value", false));
        }
    }
    for line in m.header_lines() {
        if let Some((n, v)) = line.split_once(':') {
            let n = n.trim();
            if n.len() > 2 && n[..2].eq_ignore_ascii_case("x-") {
                ids.push((n.to_string(), "X- header name", true));
                if !v.trim().is_empty() {
                    ids.push((v.trim().to_string(), "X- header value", false));
                }
            }
        }
    }
    if let Some(sdp) = m.sdp() {
        for line in sdp.lines().map(str::trim_end) {
            if let Some(o) = line.strip_prefix("o=") {
                ids.push((line.to_string(), "SDP o= line", false));
                if let Some(user) = o.split_whitespace().next().filter(|u| *u != "-") {
                    ids.push((format!("o={user} "), "SDP o= username", false));
                }
            }
            if line.starts_with("m=") {
                // "m=audio 10012 " : the media port is only this side's if veil did not
                // anchor the media.
                let mut parts = line.split_whitespace();
                if let (Some(kind), Some(port)) = (parts.next(), parts.next())
                    && port != "0"
                {
                    ids.push((format!("{kind} {port} "), "SDP media port", false));
                }
            }
        }
    }
    ids
}

/// Everything identifying `side` (see the module doc).
pub fn identity_of(side: &SippOutcome) -> Vec<Needle> {
    let who = side.side.label();
    let mut needles = vec![Needle {
        text: side.side.ip().to_string(),
        what: format!("{who} IP address"),
        ignore_case: false,
    }];
    let mut seen = HashSet::new();
    for m in &side.messages {
        for (text, what, ignore_case) in identifiers(m) {
            if text.is_empty() || !seen.insert(text.clone()) {
                continue;
            }
            if m.direction == Direction::Sent {
                needles.push(Needle {
                    text,
                    what: format!("{who} {what}"),
                    ignore_case,
                });
            }
        }
    }
    needles
}

/// One forbidden string found in one received message.
#[derive(Debug)]
pub struct Leak<'a> {
    pub message: &'a TracedMessage,
    pub needle: Needle,
    pub line: String,
}

/// Needles found in the messages `receiver` received.
pub fn find_leaks<'a>(receiver: &'a SippOutcome, needles: &[Needle]) -> Vec<Leak<'a>> {
    let mut leaks = Vec::new();
    for m in receiver.received() {
        for n in needles {
            if let Some(line) = m.text.lines().find(|l| n.found_in(l)) {
                leaks.push(Leak {
                    message: m,
                    needle: n.clone(),
                    line: line.trim_end().to_string(),
                });
            }
        }
    }
    leaks
}

/// Panics unless no side received anything identifying any other side. Pass every SIPp
/// side of the call (caller, callee, failed-over carriers...).
pub fn assert_no_leaks(sides: &[&SippOutcome]) {
    let mut report = String::new();
    for owner in sides {
        let needles = identity_of(owner);
        for receiver in sides {
            if receiver.side == owner.side {
                continue;
            }
            let leaks = find_leaks(receiver, &needles);
            if leaks.is_empty() {
                continue;
            }
            report.push_str(&format!(
                "TOPOLOGY LEAK: the {} received {} occurrence(s) of {} identifiers:\n",
                receiver.side.label(),
                leaks.len(),
                owner.side.label()
            ));
            let mut shown = HashSet::new();
            for l in leaks.iter().take(40) {
                report.push_str(&format!(
                    "  - in message {}: \"{}\" ({}) on line: {}\n",
                    l.message.describe(),
                    l.needle.text,
                    l.needle.what,
                    l.line
                ));
                shown.insert(l.message.index);
            }
            if leaks.len() > 40 {
                report.push_str(&format!("  ... and {} more\n", leaks.len() - 40));
            }
            for l in &leaks {
                if shown.remove(&l.message.index) {
                    report.push_str(&format!(
                        "  full message {} received by the {}:\n{}\n",
                        l.message.index,
                        receiver.side.label(),
                        l.message
                            .text
                            .lines()
                            .map(|x| format!("      {x}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
        }
    }
    assert!(report.is_empty(), "{report}");
}

/// Panics unless every SDP `side` received points media at veil's relay: c= and o= on
/// 127.0.0.1 and every m= port inside veil's media range.
pub fn assert_sdp_anchored(side: &SippOutcome, ports: &Ports) {
    let range = ports.media_range();
    let mut problems = Vec::new();
    for m in side.received() {
        let Some(sdp) = m.sdp() else { continue };
        for line in sdp.lines().map(str::trim_end) {
            if let Some(c) = line.strip_prefix("c=")
                && c.split_whitespace().nth(2) != Some("127.0.0.1")
            {
                problems.push(format!(
                    "{}: \"{line}\" is not veil's media address",
                    m.describe()
                ));
            }
            if let Some(o) = line.strip_prefix("o=")
                && o.split_whitespace().nth(5) != Some("127.0.0.1")
            {
                problems.push(format!(
                    "{}: \"{line}\" is not veil's origin address",
                    m.describe()
                ));
            }
            if line.starts_with("m=") {
                let port = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u16>().ok());
                if !port.is_some_and(|p| p == 0 || range.contains(&p)) {
                    problems.push(format!(
                        "{}: \"{line}\" port is outside veil's media range {range:?}",
                        m.describe()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "MEDIA NOT ANCHORED: SDP received by the {} ({}):\n  {}",
        side.side.label(),
        side.scenario,
        problems.join("\n  ")
    );
}

/// Panics if `receiver` got any of the given raw strings (e.g. an address of a side that
/// has no SIPp trace of its own).
pub fn assert_not_received(receiver: &SippOutcome, forbidden: &[(&str, &str)]) {
    let needles: Vec<Needle> = forbidden
        .iter()
        .map(|(t, w)| Needle {
            text: t.to_string(),
            what: w.to_string(),
            ignore_case: false,
        })
        .collect();
    let leaks = find_leaks(receiver, &needles);
    let lines: Vec<String> = leaks
        .iter()
        .map(|l| {
            format!(
                "{}: \"{}\" ({}) on line: {}",
                l.message.describe(),
                l.needle.text,
                l.needle.what,
                l.line
            )
        })
        .collect();
    assert!(
        lines.is_empty(),
        "TOPOLOGY LEAK: the {} received:\n  {}",
        receiver.side.label(),
        lines.join("\n  ")
    );
}
