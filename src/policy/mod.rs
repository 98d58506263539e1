//! Routing policy: rules loaded from YAML, compiled once, evaluated per initial request.
//! Evaluation is pure: facts about the request in, a decision out.
//!
//! Rules are tried top to bottom; the first whose `when` matches decides. A condition that
//! is not written is not checked (no `when` at all matches every INVITE), except the
//! method: a rule without `method` matches INVITE only, so that policies written before
//! other methods could be routed keep their meaning; `method: [MESSAGE, REGISTER]` (or
//! `method: '*'`) opens a rule to out-of-dialog MESSAGE, PUBLISH, REGISTER or OPTIONS. Regexes match as written (`Regex::is_match`: anchor with `^…$` yourself).
//! The file format is in `spec`; `compile` turns it into the types below, reporting each
//! problem with its key path (`rules[2].when.to_user`) so the loader can add file and line.

mod compile;
pub mod dry_run;
pub mod spec;

pub use compile::{PolicyError, compile};

use regex::Regex;

use crate::sip::{HeaderName, Headers};

/// A compiled policy (regexes built, rewrites parsed). Cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub when: Conditions,
    pub then: Action,
}

/// Every condition written must hold; `None`/empty means "not checked".
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Peer names; the request must come from one of them.
    pub from_peer: Option<Vec<String>>,
    pub to_user: Option<Regex>,
    pub from_user: Option<Regex>,
    pub ruri_host: Option<Regex>,
    /// Methods (upper case); empty = INVITE only; `*` = any method.
    pub methods: Vec<String>,
    /// The header must be present and one of its lines must match.
    pub headers: Vec<(HeaderName, Regex)>,
}

// Compiled once per rule and never moved on a hot path: boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    Route {
        /// Peer names in the order to try.
        targets: Vec<String>,
        to_user: UserRewrite,
        from_user: UserRewrite,
        set_headers: Vec<(String, Template)>,
        max_duration: Option<std::time::Duration>,
        session_timer: Option<crate::config::SessionTimerConfig>,
    },
    Reject {
        code: u16,
        reason: String,
    },
}

/// Strip `strip` leading characters, then replace the first match of `replace`, then
/// prepend `prefix`. The default changes nothing.
#[derive(Debug, Clone, Default)]
pub struct UserRewrite {
    pub strip: usize,
    pub replace: Option<(Regex, String)>,
    pub prefix: String,
}

impl UserRewrite {
    pub fn apply(&self, user: &str) -> String {
        let rest = match user.char_indices().nth(self.strip) {
            Some((i, _)) => &user[i..],
            None if self.strip == 0 => user,
            None => "",
        };
        let replaced = match &self.replace {
            Some((re, with)) => re.replace(rest, with.as_str()),
            None => std::borrow::Cow::Borrowed(rest),
        };
        let mut out = String::with_capacity(self.prefix.len() + replaced.len());
        out.push_str(&self.prefix);
        out.push_str(&replaced);
        out
    }
}

/// A header value with `${to_user}` / `${from_user}` (after rewrite) substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    ToUser,
    FromUser,
}

impl Template {
    pub fn render(&self, to_user: &str, from_user: &str) -> String {
        let mut out = String::new();
        for p in &self.0 {
            out.push_str(match p {
                Part::Literal(s) => s,
                Part::ToUser => to_user,
                Part::FromUser => from_user,
            });
        }
        out
    }
}

/// What the policy looks at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Name of the peer the request came from (matched by source address), if any.
    pub from_peer: Option<&'a str>,
    /// Request-URI user (or tel number), empty if none.
    pub to_user: &'a str,
    /// From URI user, empty if none.
    pub from_user: &'a str,
    /// Request-URI host as written.
    pub ruri_host: &'a str,
    pub method: &'a str,
    pub headers: &'a Headers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Route(Route),
    Reject {
        rule: String,
        code: u16,
        reason: String,
    },
    /// No rule matched: the caller answers 403.
    NoMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub rule: String,
    /// Peer names in the order to try.
    pub targets: Vec<String>,
    /// Request-URI / To user after rewrites.
    pub to_user: String,
    /// From user after rewrites.
    pub from_user: String,
    /// Headers to set on leg B (name, value), after the allow-list.
    pub set_headers: Vec<(String, String)>,
    /// The rule's maximum call length, if it sets one.
    pub max_duration: Option<std::time::Duration>,
    /// The rule's session timer settings (both legs), if it sets them.
    pub session_timer: Option<crate::config::SessionTimerConfig>,
}

impl Policy {
    /// The first matching rule's decision, or `NoMatch`.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Decision {
        match self.rules.iter().find(|r| r.when.matches(facts)) {
            Some(rule) => rule.decide(facts),
            None => Decision::NoMatch,
        }
    }

    /// Each rule tried, in order, with why it did not match; stops at the rule that
    /// decides (its entry is `Ok`). For `veil route` and debugging.
    pub fn explain(&self, facts: &Facts<'_>) -> Vec<(String, Result<(), String>)> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let r = rule.when.check(facts);
            let matched = r.is_ok();
            out.push((rule.name.clone(), r));
            if matched {
                break;
            }
        }
        out
    }
}

impl Rule {
    fn decide(&self, facts: &Facts<'_>) -> Decision {
        match &self.then {
            Action::Reject { code, reason } => Decision::Reject {
                rule: self.name.clone(),
                code: *code,
                reason: reason.clone(),
            },
            Action::Route {
                targets,
                to_user,
                from_user,
                set_headers,
                max_duration,
                session_timer,
            } => {
                let to_user = to_user.apply(facts.to_user);
                let from_user = from_user.apply(facts.from_user);
                let set_headers = set_headers
                    .iter()
                    .map(|(n, t)| (n.clone(), t.render(&to_user, &from_user)))
                    .collect();
                Decision::Route(Route {
                    rule: self.name.clone(),
                    targets: targets.clone(),
                    to_user,
                    from_user,
                    set_headers,
                    max_duration: *max_duration,
                    session_timer: session_timer.clone(),
                })
            }
        }
    }
}

/// The first condition that did not hold; borrowed, so evaluation allocates nothing for
/// rules that do not match.
/// What a rule without `method` matches.
const DEFAULT_METHODS: &[String] = &[];

#[derive(Debug, Clone, Copy)]
enum Miss<'r> {
    FromPeer(&'r [String]),
    Method(&'r [String]),
    Regex(&'static str, &'r Regex),
    HeaderAbsent(&'r HeaderName),
    HeaderNoMatch(&'r HeaderName, &'r Regex),
}

impl Conditions {
    /// Whether every written condition holds.
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        self.first_miss(f).is_none()
    }

    /// `Ok` when every written condition holds, else the first that does not, in words.
    pub fn check(&self, f: &Facts<'_>) -> Result<(), String> {
        let Some(miss) = self.first_miss(f) else {
            return Ok(());
        };
        Err(match miss {
            Miss::FromPeer(peers) => format!(
                "from_peer: request from {}, rule wants {}",
                f.from_peer.unwrap_or("no known peer"),
                peers.join(", ")
            ),
            Miss::Method([]) => format!(
                "method: {} (a rule without `method` matches INVITE only)",
                f.method
            ),
            Miss::Method(methods) => format!("method: {} not in {}", f.method, methods.join(", ")),
            Miss::Regex(key, re) => {
                let value = match key {
                    "to_user" => f.to_user,
                    "from_user" => f.from_user,
                    _ => f.ruri_host,
                };
                format!("{key}: `{value}` does not match `{re}`")
            }
            Miss::HeaderAbsent(name) => format!("headers: no {name} header"),
            Miss::HeaderNoMatch(name, re) => format!("headers: no {name} header matches `{re}`"),
        })
    }

    fn first_miss(&self, f: &Facts<'_>) -> Option<Miss<'_>> {
        if let Some(peers) = &self.from_peer
            && !f.from_peer.is_some_and(|p| peers.iter().any(|x| x == p))
        {
            return Some(Miss::FromPeer(peers));
        }
        if self.methods.is_empty() {
            if !f.method.eq_ignore_ascii_case("INVITE") {
                return Some(Miss::Method(DEFAULT_METHODS));
            }
        } else if !self
            .methods
            .iter()
            .any(|m| m == "*" || m.eq_ignore_ascii_case(f.method))
        {
            return Some(Miss::Method(&self.methods));
        }
        for (key, re, value) in [
            ("to_user", &self.to_user, f.to_user),
            ("from_user", &self.from_user, f.from_user),
            ("ruri_host", &self.ruri_host, f.ruri_host),
        ] {
            if let Some(re) = re
                && !re.is_match(value)
            {
                return Some(Miss::Regex(key, re));
            }
        }
        for (name, re) in &self.headers {
            if !f.headers.contains(name) {
                return Some(Miss::HeaderAbsent(name));
            }
            if !f.headers.get_all(name).any(|v| re.is_match(v)) {
                return Some(Miss::HeaderNoMatch(name, re));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
