//! Policy file -> compiled `Policy`: regexes built, actions checked. Every problem is
//! collected with its key path; the loader adds file and line.

use std::collections::HashSet;

use regex::{Regex, RegexBuilder};

use super::spec::{OneOrMany, PolicyFile, RuleSpec, ThenSpec, UserRewriteSpec, WhenSpec};
use super::{Action, Conditions, Part, Policy, Rule, Template, UserRewrite};
use crate::sip::HeaderName;

/// Caps on a policy regex's compiled program and on its lazy DFA's cache. The regex
/// crate's defaults (10 MiB, 2 MiB) are per regex and a policy may hold hundreds; a
/// careless `\w{100}` (Unicode classes are large) already compiles to almost 5 MiB.
const REGEX_SIZE_LIMIT: usize = 4 << 20;
const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// Compile a policy regex within the caps; the error says what is wrong.
fn build_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "regex too large: compiled, it exceeds the limit of {} MiB \
                 (simplify it, e.g. fewer or smaller repetitions)",
                limit >> 20
            ),
            e => format!("invalid regex: {}", one_line(&e.to_string())),
        })
}

/// One problem in a policy file, at a key path such as `rules[2].when.to_user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub key: String,
    pub message: String,
}

/// Headers the B2BUA builds itself on each leg; a policy setting them would break the
/// dialog or leak topology, so they are refused.
const MANAGED_HEADERS: &[&str] = &[
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "record-route",
    "route",
    "max-forwards",
    "content-length",
    "content-type",
];

pub fn compile(file: &PolicyFile) -> Result<Policy, Vec<PolicyError>> {
    let mut c = Compiler { errors: Vec::new() };
    let mut names = HashSet::new();
    let mut rules = Vec::new();
    for (i, spec) in file.rules.iter().enumerate() {
        let key = format!("rules[{i}]");
        if spec.name.trim().is_empty() {
            c.err(format!("{key}.name"), "a rule needs a name");
        } else if !names.insert(spec.name.as_str()) {
            c.err(
                format!("{key}.name"),
                format!("duplicate rule name `{}`", spec.name),
            );
        }
        if let Some(rule) = c.rule(&key, spec) {
            rules.push(rule);
        }
    }
    if c.errors.is_empty() {
        Ok(Policy { rules })
    } else {
        Err(c.errors)
    }
}

struct Compiler {
    errors: Vec<PolicyError>,
}

impl Compiler {
    fn err(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(PolicyError {
            key: key.into(),
            message: message.into(),
        });
    }

    fn rule(&mut self, key: &str, spec: &RuleSpec) -> Option<Rule> {
        let when = match &spec.when {
            Some(w) => self.when(&format!("{key}.when"), w),
            None => Some(Conditions::default()),
        };
        let then = self.then(&format!("{key}.then"), &spec.then);
        Some(Rule {
            name: spec.name.clone(),
            when: when?,
            then: then?,
        })
    }

    fn regex(&mut self, key: String, pattern: &Option<String>) -> Option<Option<Regex>> {
        match pattern {
            None => Some(None),
            Some(p) => match build_regex(p) {
                Ok(re) => Some(Some(re)),
                Err(e) => {
                    self.err(key, e);
                    None
                }
            },
        }
    }

    fn names(&mut self, key: String, list: &OneOrMany) -> Option<Vec<String>> {
        if list.0.is_empty() {
            self.err(key, "the list is empty");
            return None;
        }
        if let Some(j) = list.0.iter().position(|n| n.trim().is_empty()) {
            self.err(format!("{key}[{j}]"), "empty name");
            return None;
        }
        Some(list.0.clone())
    }

    fn when(&mut self, key: &str, w: &WhenSpec) -> Option<Conditions> {
        let from_peer = match &w.from_peer {
            Some(l) => Some(self.names(format!("{key}.from_peer"), l)),
            None => Some(None),
        };
        let methods = match &w.method {
            Some(l) => {
                let m = self.names(format!("{key}.method"), l);
                if let Some(bad) = m.iter().flatten().find(|m| !is_token(m)) {
                    self.err(
                        format!("{key}.method"),
                        format!("`{bad}` is not a SIP method name"),
                    );
                    None
                } else {
                    m.map(|v| v.iter().map(|s| s.to_ascii_uppercase()).collect())
                }
            }
            None => Some(Vec::new()),
        };
        let to_user = self.regex(format!("{key}.to_user"), &w.to_user);
        let from_user = self.regex(format!("{key}.from_user"), &w.from_user);
        let ruri_host = self.regex(format!("{key}.ruri_host"), &w.ruri_host);
        let mut headers = Some(Vec::new());
        for (name, pattern) in w.headers.iter().flat_map(|h| h.0.iter()) {
            let hkey = format!("{key}.headers.{name}");
            if !is_token(name) {
                self.err(hkey, format!("`{name}` is not a header name"));
                headers = None;
                continue;
            }
            match self.regex(hkey, &Some(pattern.clone())) {
                Some(Some(re)) => {
                    if let Some(h) = headers.as_mut() {
                        h.push((HeaderName::parse(name), re));
                    }
                }
                _ => headers = None,
            }
        }
        Some(Conditions {
            from_peer: from_peer?,
            to_user: to_user?,
            from_user: from_user?,
            ruri_host: ruri_host?,
            methods: methods?,
            headers: headers?,
        })
    }

    fn then(&mut self, key: &str, t: &ThenSpec) -> Option<Action> {
        match (&t.route, &t.reject) {
            (Some(_), Some(_)) => {
                self.err(key, "give either `route` or `reject`, not both");
                None
            }
            (None, None) => {
                self.err(key, "needs `route` or `reject`");
                None
            }
            (None, Some(r)) => {
                if t.rewrite.is_some()
                    || t.set_headers.is_some()
                    || t.max_duration.is_some()
                    || t.session_timer.is_some()
                {
                    self.err(
                        key,
                        "`rewrite`, `set_headers` and `max_duration` apply to `route`, not to `reject`",
                    );
                }
                let code = match u16::try_from(r.code) {
                    Ok(c) if (400..=699).contains(&c) => c,
                    _ => {
                        self.err(
                            format!("{key}.reject"),
                            format!("reject code {} is not 400-699", r.code),
                        );
                        return None;
                    }
                };
                let reason = match &r.reason {
                    Some(s) if s.contains(['\r', '\n']) || s.trim().is_empty() => {
                        self.err(
                            format!("{key}.reject.reason"),
                            "the reason must be one non-empty line",
                        );
                        return None;
                    }
                    Some(s) => s.clone(),
                    None => default_reason(code).to_string(),
                };
                Some(Action::Reject { code, reason })
            }
            (Some(route), None) => {
                if let Some(st) = &t.session_timer {
                    if st.min_se.0.as_secs() < 90 && !st.lab {
                        self.err(
                            format!("{key}.session_timer.min_se"),
                            "must be at least 90s (RFC 4028); set lab: true for test setups",
                        );
                    }
                    if st.expires < st.min_se {
                        self.err(
                            format!("{key}.session_timer.expires"),
                            "must not be below min_se",
                        );
                    }
                }
                let targets = self.names(format!("{key}.route"), route);
                let rw = t.rewrite.clone().unwrap_or_default();
                let to_user = self.rewrite(format!("{key}.rewrite.to_user"), rw.to_user.as_ref());
                let from_user =
                    self.rewrite(format!("{key}.rewrite.from_user"), rw.from_user.as_ref());
                let mut set_headers = Some(Vec::new());
                for (name, value) in t.set_headers.iter().flat_map(|h| h.0.iter()) {
                    let hkey = format!("{key}.set_headers.{name}");
                    match self.set_header(&hkey, name, value) {
                        Some(tpl) => {
                            if let Some(v) = set_headers.as_mut() {
                                v.push((name.clone(), tpl));
                            }
                        }
                        None => set_headers = None,
                    }
                }
                Some(Action::Route {
                    targets: targets?,
                    to_user: to_user?,
                    from_user: from_user?,
                    set_headers: set_headers?,
                    max_duration: t.max_duration.map(|d| d.0),
                    session_timer: t.session_timer.clone(),
                })
            }
        }
    }

    fn rewrite(&mut self, key: String, spec: Option<&UserRewriteSpec>) -> Option<UserRewrite> {
        let Some(spec) = spec else {
            return Some(UserRewrite::default());
        };
        if !spec.prefix.chars().all(is_user_char) {
            self.err(
                format!("{key}.prefix"),
                format!("`{}` has characters not allowed in a URI user", spec.prefix),
            );
            return None;
        }
        let replace = match &spec.replace {
            None => None,
            Some(r) => match build_regex(&r.pattern) {
                Ok(re) => Some((re, r.with.clone())),
                Err(e) => {
                    self.err(format!("{key}.replace.match"), e);
                    return None;
                }
            },
        };
        Some(UserRewrite {
            strip: spec.strip,
            replace,
            prefix: spec.prefix.clone(),
        })
    }

    fn set_header(&mut self, key: &str, name: &str, value: &str) -> Option<Template> {
        if !is_token(name) {
            self.err(key, format!("`{name}` is not a header name"));
            return None;
        }
        let lower = name.to_ascii_lowercase();
        if MANAGED_HEADERS.contains(&lower.as_str()) {
            self.err(
                key,
                format!("{name} is managed by veil and cannot be set by policy"),
            );
            return None;
        }
        if value.contains(['\r', '\n']) {
            self.err(key, "a header value must be one line");
            return None;
        }
        match parse_template(value) {
            Ok(t) => Some(t),
            Err(m) => {
                self.err(key, m);
                None
            }
        }
    }
}

/// `${to_user}` / `${from_user}` placeholders; any other `${…}` is an error.
fn parse_template(s: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if i > 0 {
            parts.push(Part::Literal(rest[..i].to_string()));
        }
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or("unclosed `${` in header value")?;
        parts.push(match &after[..end] {
            "to_user" => Part::ToUser,
            "from_user" => Part::FromUser,
            other => {
                return Err(format!(
                    "unknown placeholder `${{{other}}}` (use ${{to_user}} or ${{from_user}})"
                ));
            }
        });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(Template(parts))
}

/// RFC 3261 `token` characters (header names, method names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Unreserved and user-unreserved characters of a URI user part (RFC 3261 §25.1).
fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/#".contains(c)
}

fn default_reason(code: u16) -> &'static str {
    match crate::sip::reason_phrase(code) {
        "" | "Unknown" => "Rejected",
        r => r,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
