//! Routing policy: rules loaded from YAML, compiled once, evaluated per initial request.
//! Evaluation is pure: facts about the request in, a decision out.
//! SKELETON: implemented by the policy work item.

use crate::sip::Headers;

/// A compiled policy (regexes built, rewrites parsed). Cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// One compiled rule. Fields are the policy work item's to shape.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
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
    Reject { rule: String, code: u16, reason: String },
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
}

impl Policy {
    pub fn evaluate(&self, _facts: &Facts<'_>) -> Decision {
        Decision::NoMatch
    }
}
