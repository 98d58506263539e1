//! Which headers cross from one leg to the other. Everything not explicitly allowed stays
//! on its leg: that is what keeps topology, products and credentials from leaking.

use crate::sip::{HeaderName, Headers};

/// Headers a call needs end to end. Session-Expires and Min-SE are per leg (veil
/// negotiates each leg's timer itself). Not here, by design: Via, Route, Record-Route,
/// Contact, From, To, Call-ID, CSeq, Max-Forwards, Content-Length (veil writes its own),
/// Server, User-Agent, Organization, Warning, X-*, credentials and challenges.
fn default_allowed(name: &HeaderName) -> bool {
    use HeaderName::*;
    matches!(
        name,
        ContentType
            | ContentDisposition
            | ContentEncoding
            | Accept
            | Allow
            | Supported
            | Require
            | Subject
            | Expires
            | Event
            | AllowEvents
            | RSeq
            | Reason
            | RetryAfter
            | Unsupported
    )
}

/// Identity headers are only believed from trusted peers (RFC 3325 trust domain).
fn trusted_only(name: &HeaderName) -> bool {
    use HeaderName::*;
    matches!(
        name,
        PAssertedIdentity | PPreferredIdentity | Privacy | RemotePartyId | Diversion
    )
}

/// Per-direction header rules: the sender's and the receiver's peer settings combined.
#[derive(Debug, Clone, Default)]
pub struct HeaderFilter {
    pub allow: Vec<String>,
    pub strip: Vec<String>,
    /// The sending side is a trusted peer.
    pub from_trusted: bool,
}

impl HeaderFilter {
    pub fn allows(&self, name: &HeaderName) -> bool {
        if self.strip.iter().any(|s| name.matches(s)) {
            return false;
        }
        if self.allow.iter().any(|a| name.matches(a)) {
            return true;
        }
        if trusted_only(name) {
            return self.from_trusted;
        }
        default_allowed(name)
    }

    /// Copy the allowed headers of `from` onto `to`, in order.
    pub fn copy(&self, from: &Headers, to: &mut Headers) {
        for h in from.iter() {
            if self.allows(&h.name) {
                to.push(h.name.clone(), h.value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Headers {
        let mut h = Headers::new();
        for (n, v) in [
            ("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx"),
            ("Record-Route", "<sip:10.0.0.1;lr>"),
            ("Contact", "<sip:a@10.0.0.1>"),
            ("User-Agent", "PBX 1.0"),
            ("Server", "PBX 1.0"),
            ("Organization", "ACME"),
            ("Warning", "399 pbx \"x\""),
            ("X-Account", "42"),
            ("X-Internal", "secret"),
            ("P-Asserted-Identity", "<sip:+311@pbx>"),
            ("Supported", "100rel, timer"),
            ("Content-Type", "application/sdp"),
            ("Authorization", "Digest x"),
        ] {
            h.push(HeaderName::parse(n), v);
        }
        h
    }

    fn names(h: &Headers) -> Vec<String> {
        h.iter().map(|h| h.name.as_str().to_string()).collect()
    }

    #[test]
    fn default_list_drops_topology_products_and_x_headers() {
        let f = HeaderFilter::default();
        let mut out = Headers::new();
        f.copy(&sample(), &mut out);
        assert_eq!(names(&out), ["Supported", "Content-Type"]);
    }

    #[test]
    fn identity_only_from_trusted_and_per_peer_allow_strip() {
        let f = HeaderFilter {
            allow: vec!["x-account".into()],
            strip: vec!["Supported".into()],
            from_trusted: true,
        };
        let mut out = Headers::new();
        f.copy(&sample(), &mut out);
        assert_eq!(
            names(&out),
            ["X-Account", "P-Asserted-Identity", "Content-Type"]
        );
    }
}
