//! `veil route`: what the policy would do with a request, without starting anything.
//! Prints every rule tried (and why it did not match), the deciding rule, the rewrites,
//! the headers set and the ordered targets with how each is reached.

use std::fmt::Write as _;
use std::path::Path;

use super::{Decision, Facts, Policy};
use crate::config::PeerConfig;
use crate::sip::{HeaderName, Headers};

/// A request to route, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub from_peer: Option<String>,
    pub to_user: String,
    pub from_user: String,
    pub ruri_host: String,
    pub method: String,
    /// `Name: value` lines.
    pub headers: Vec<String>,
}

/// Parse `Name: value` lines into headers; an entry without `:` is an error.
pub fn parse_headers(lines: &[String]) -> Result<Headers, String> {
    let mut h = Headers::new();
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            return Err(format!("--header `{l}`: write `Name: value`"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("--header `{l}`: empty header name"));
        }
        h.push(HeaderName::parse(name), value.trim());
    }
    Ok(h)
}

/// The report for `q` (the text `veil route` prints) and the decision.
pub fn report(
    policy: &Policy,
    peers: &[PeerConfig],
    q: &Query,
    headers: &Headers,
) -> (String, Decision) {
    let facts = Facts {
        from_peer: q.from_peer.as_deref(),
        to_user: &q.to_user,
        from_user: &q.from_user,
        ruri_host: &q.ruri_host,
        method: &q.method,
        headers,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "request: {} from peer {} to user `{}` from user `{}`{}",
        q.method,
        q.from_peer.as_deref().unwrap_or("(none)"),
        q.to_user,
        q.from_user,
        if q.ruri_host.is_empty() {
            String::new()
        } else {
            format!(" host `{}`", q.ruri_host)
        }
    );
    for (i, (name, result)) in policy.explain(&facts).iter().enumerate() {
        match result {
            Ok(()) => {
                let _ = writeln!(out, "rule {} `{name}`: matches", i + 1);
            }
            Err(why) => {
                let _ = writeln!(out, "rule {} `{name}`: no match: {why}", i + 1);
            }
        }
    }
    let decision = policy.evaluate(&facts);
    match &decision {
        Decision::Route(r) => {
            let _ = writeln!(out, "decision: route (rule `{}`)", r.rule);
            rewrite_line(&mut out, "to_user", &q.to_user, &r.to_user);
            rewrite_line(&mut out, "from_user", &q.from_user, &r.from_user);
            for (name, value) in &r.set_headers {
                let _ = writeln!(out, "  set header: {name}: {value}");
            }
            let _ = writeln!(out, "  targets, in order (next on timeout, 408 or 5xx):");
            for (i, t) in r.targets.iter().enumerate() {
                let how = match peers.iter().find(|p| &p.name == t) {
                    Some(p) => format!(
                        "{} via {}{}",
                        p.address,
                        p.transport.via_token().to_ascii_lowercase(),
                        p.listen
                            .as_deref()
                            .map(|l| format!(" (listener {l})"))
                            .unwrap_or_default()
                    ),
                    None => "not a configured peer".into(),
                };
                let _ = writeln!(out, "    {}. {t}: {how}", i + 1);
            }
        }
        Decision::Reject { rule, code, reason } => {
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!(" {reason}")
            };
            let _ = writeln!(out, "decision: reject {code}{reason} (rule `{rule}`)");
        }
        Decision::NoMatch => {
            let _ = writeln!(out, "decision: reject 403 (no rule matched)");
        }
    }
    (out, decision)
}

fn rewrite_line(out: &mut String, key: &str, before: &str, after: &str) {
    if before == after {
        let _ = writeln!(out, "  {key}: `{after}` (unchanged)");
    } else {
        let _ = writeln!(out, "  {key}: `{before}` -> `{after}`");
    }
}

/// `veil route --config F ...`: load and validate like `veil check`, then print the
/// report. Exit code 0 (whatever the decision), 2 on a config or argument error.
pub fn command(config: &Path, q: &Query) -> i32 {
    command_then(config, q, &|_, _| String::new())
}

/// [`command`], with `more(config, targets)` appended to the report when the decision is
/// a route (the shell adds the DNS resolution of the targets there: this module does no
/// I/O beyond reading the files).
pub fn command_then(
    config: &Path,
    q: &Query,
    more: &dyn Fn(&crate::config::Config, &[String]) -> String,
) -> i32 {
    let loaded = match crate::config::load(config) {
        Ok(l) => l,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return 2;
        }
    };
    if let Some(p) = &q.from_peer
        && !loaded.config.peers.iter().any(|x| &x.name == p)
    {
        let names: Vec<&str> = loaded
            .config
            .peers
            .iter()
            .map(|x| x.name.as_str())
            .collect();
        eprintln!(
            "--from-peer `{p}` is not a peer of {} (peers: {})",
            config.display(),
            names.join(", ")
        );
        return 2;
    }
    let headers = match parse_headers(&q.headers) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let (text, decision) = report(&loaded.policy, &loaded.config.peers, q, &headers);
    print!("{text}");
    if let Decision::Route(r) = decision {
        print!("{}", more(&loaded.config, &r.targets));
    }
    0
}
