//! The leak guard: a last check on every message veil sends on a leg of a call. Each leg
//! keeps a compact set of the identifiers its far end showed veil (Call-ID, tags, Via
//! branches and hosts, Contact/Record-Route hosts, SDP addresses, RTCP CNAMEs, product
//! names). A message leaving on the other leg that names one of them loses the offending
//! header or SDP line, whatever policy or bug put it there: topology hiding fails closed.
//!
//! Matching is by whole token (an identifier preceded and followed by a delimiter), so
//! `127.0.0.1` does not hit `127.0.0.12`. Values that legitimately appear on both legs
//! are not identifiers: veil's own addresses, anything the receiving leg itself has shown
//! veil, numbers and very short values.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::sip::header::list_items;
use crate::sip::{HeaderName, Headers};

/// What kind of identifier was found (the `kind` label of `veil_leak_guard_hits_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    CallId,
    Tag,
    Branch,
    Host,
    Address,
    Cname,
    UserAgent,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::CallId,
        Kind::Tag,
        Kind::Branch,
        Kind::Host,
        Kind::Address,
        Kind::Cname,
        Kind::UserAgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CallId => "call_id",
            Kind::Tag => "tag",
            Kind::Branch => "branch",
            Kind::Host => "host",
            Kind::Address => "address",
            Kind::Cname => "cname",
            Kind::UserAgent => "user_agent",
        }
    }
}

/// At most this many identifiers per leg: a hostile peer cannot grow call state. The
/// first messages of a leg (which carry its real identity) fill it first.
pub const MAX_IDS: usize = 48;
/// Longer values are not kept (and a Call-ID or host is never that long legitimately).
const MAX_LEN: usize = 256;
/// Shorter values are too likely to occur by chance.
const MIN_LEN: usize = 4;

/// The identifiers one leg's far end showed veil. Plain data: replicated with the call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegIds {
    ids: Vec<(Kind, String)>,
}

/// Both legs' identifiers of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallIds {
    pub a: LegIds,
    pub b: LegIds,
    /// The caller's INVITE (which arrives before the call exists) has been taken in.
    pub seeded: bool,
}

/// One removal (or, for a header or SDP line veil cannot do without, one report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: Kind,
    /// Header name, or `sdp:<line type>` (never the value).
    pub place: String,
    /// The offending part was removed; `false` for veil's own structural headers and SDP
    /// lines, which are kept (a hit there is a veil bug, logged as an error).
    pub removed: bool,
}

impl LegIds {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The identifiers kept, oldest first.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(|(_, v)| v.as_str())
    }

    /// Keep `value` as an identifier of this leg unless it is not one (see the module doc)
    /// or the set is full. `own` are veil's own hosts and addresses.
    pub fn add(&mut self, kind: Kind, value: &str, own: &[String]) {
        let v = value.trim().trim_matches(|c| c == '[' || c == ']');
        if v.len() < MIN_LEN
            || v.len() > MAX_LEN
            || v.bytes().all(|b| b.is_ascii_digit())
            || v == "0.0.0.0"
            || v == "::"
            || own.iter().any(|o| o.eq_ignore_ascii_case(v))
            || self.ids.len() >= MAX_IDS
            || self.contains(v)
        {
            return;
        }
        self.ids.push((kind, v.to_string()));
    }

    fn contains(&self, v: &str) -> bool {
        self.ids.iter().any(|(_, x)| x.eq_ignore_ascii_case(v))
    }

    /// Take in what a message received on this leg shows. Vias are taken from requests
    /// only: a response's Vias are veil's own.
    pub fn observe(&mut self, headers: &Headers, body: &[u8], request: bool, own: &[String]) {
        for h in headers.iter() {
            let v = h.value.as_str();
            match &h.name {
                HeaderName::CallId => self.add(Kind::CallId, v, own),
                HeaderName::From | HeaderName::To => {
                    if let Some(t) = param(v, "tag") {
                        self.add(Kind::Tag, t, own);
                    }
                }
                HeaderName::Via if request => {
                    for item in list_items(v) {
                        if let Some(host) = via_host(item) {
                            self.add_host(host, own);
                        }
                        if let Some(b) = param(item, "branch") {
                            self.add(Kind::Branch, b, own);
                        }
                        if let Some(r) = param(item, "received") {
                            self.add_host(r, own);
                        }
                    }
                }
                HeaderName::Contact | HeaderName::RecordRoute => {
                    for item in list_items(v) {
                        if let Some(host) = uri_host(item) {
                            self.add_host(host, own);
                        }
                    }
                }
                HeaderName::UserAgent | HeaderName::Server => self.add(Kind::UserAgent, v, own),
                _ => {}
            }
        }
        if looks_like_sdp(body) {
            self.observe_sdp(body, own);
        }
    }

    pub(super) fn add_host(&mut self, host: &str, own: &[String]) {
        let h = host.trim_matches(|c| c == '[' || c == ']');
        let kind = if h.parse::<std::net::IpAddr>().is_ok() {
            Kind::Address
        } else {
            Kind::Host
        };
        self.add(kind, h, own);
    }

    fn observe_sdp(&mut self, body: &[u8], own: &[String]) {
        let Ok(text) = std::str::from_utf8(body) else {
            return;
        };
        for line in text.lines() {
            let line = line.trim_end();
            if let Some(o) = line.strip_prefix("o=") {
                if let Some(addr) = o.split_whitespace().nth(5) {
                    self.add_host(addr, own);
                }
            } else if let Some(c) = line.strip_prefix("c=") {
                if let Some(addr) = c.split_whitespace().nth(2) {
                    self.add_host(addr.split('/').next().unwrap_or(addr), own);
                }
            } else if let Some(r) = line.strip_prefix("a=rtcp:") {
                if let Some(addr) = r.split_whitespace().nth(3) {
                    self.add_host(addr, own);
                }
            } else if let Some(s) = line.strip_prefix("a=ssrc:")
                && let Some((_, rest)) = s.split_once(' ')
                && let Some(cname) = rest.trim_start().strip_prefix("cname:")
            {
                self.add(Kind::Cname, cname, own);
                if let Some((_, host)) = cname.rsplit_once('@') {
                    self.add_host(host, own);
                }
            }
        }
    }

    /// The first identifier of this set that `text` names as a whole token, unless the
    /// receiving leg (`exempt`) has shown the same value itself.
    pub fn find(&self, text: &str, exempt: &LegIds) -> Option<Kind> {
        self.ids
            .iter()
            .find(|(_, id)| contains_token(text, id) && !exempt.contains(id))
            .map(|(k, _)| *k)
    }
}

/// Headers veil builds itself for the leg: a hit there is a veil bug, reported but kept,
/// since the message is not valid without them.
fn structural(name: &HeaderName) -> bool {
    use HeaderName::*;
    matches!(
        name,
        Via | From | To | CallId | CSeq | Contact | Route | RecordRoute | MaxForwards
    ) || name.matches("Content-Length")
        || name.matches("Content-Type")
}

/// Remove from an outgoing message what names the other leg (`other`, less what the
/// receiving leg `this` showed itself). The body is treated as SDP when it looks like it.
pub fn scrub(headers: &mut Headers, body: &mut Bytes, other: &LegIds, this: &LegIds) -> Vec<Hit> {
    let mut hits = Vec::new();
    if other.is_empty() {
        return hits;
    }
    headers.0.retain(|h| {
        let Some(kind) = other.find(&h.value, this) else {
            return true;
        };
        let keep = structural(&h.name);
        hits.push(Hit {
            kind,
            place: h.name.as_str().to_string(),
            removed: !keep,
        });
        keep
    });
    if looks_like_sdp(body)
        && let Ok(text) = std::str::from_utf8(body)
        && let Some(clean) = scrub_sdp(text, other, this, &mut hits)
    {
        *body = Bytes::from(clean);
    }
    hits
}

/// The SDP without its offending lines, or `None` if nothing hit. `v=`, `o=`, `c=`, `m=`
/// and `t=` are veil's (anchored) and kept; a hit on `s=` makes it `s=-` (mandatory).
fn scrub_sdp(text: &str, other: &LegIds, this: &LegIds, hits: &mut Vec<Hit>) -> Option<String> {
    let mut out = String::new();
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        let Some(kind) = other.find(content, this) else {
            out.push_str(line);
            continue;
        };
        let ty = content.split(['=', ':']).next().unwrap_or("");
        let keep = matches!(ty, "v" | "o" | "c" | "m" | "t");
        let place = if let Some(a) = content.strip_prefix("a=") {
            format!("sdp:a={}", a.split([':', ' ']).next().unwrap_or(""))
        } else {
            format!("sdp:{ty}=")
        };
        hits.push(Hit {
            kind,
            place,
            removed: !keep,
        });
        if keep {
            out.push_str(line);
        } else if ty == "s" {
            out.push_str("s=-\r\n");
            changed = true;
        } else {
            changed = true;
        }
    }
    changed.then_some(out)
}

fn looks_like_sdp(body: &[u8]) -> bool {
    body.starts_with(b"v=0")
}

/// Characters that continue a token: an identifier next to one of them is part of a
/// longer value, not a match.
fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'~' | b'+' | b'%' | b'!' | b'*')
}

/// `needle` occurs in `hay` as a whole token (ASCII case-insensitive).
pub fn contains_token(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() || n.len() > h.len() {
        return false;
    }
    let first = n[0].to_ascii_lowercase();
    let last_start = h.len() - n.len();
    let mut i = 0;
    while i <= last_start {
        if h[i].to_ascii_lowercase() == first
            && h[i..i + n.len()].eq_ignore_ascii_case(n)
            && (i == 0 || !word(h[i - 1]) || !word(n[0]))
            && (i + n.len() == h.len() || !word(h[i + n.len()]) || !word(n[n.len() - 1]))
        {
            return true;
        }
        i += 1;
    }
    false
}

/// The value of header parameter `name` (`;name=value`), if present.
fn param<'a>(v: &'a str, name: &str) -> Option<&'a str> {
    v.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().split([',', '>', ' ']).next().unwrap_or(""))
    })
}

/// The sent-by host of one Via value (`SIP/2.0/UDP host:port;...`).
fn via_host(item: &str) -> Option<&str> {
    let sent_by = item.split_whitespace().nth(1)?;
    let sent_by = sent_by.split(';').next()?;
    Some(split_host(sent_by))
}

/// The host of the (first) SIP URI in a name-addr or addr-spec.
fn uri_host(item: &str) -> Option<&str> {
    let start = item
        .find("sip:")
        .map(|i| i + 4)
        .or_else(|| item.find("sips:").map(|i| i + 5))?;
    let rest = &item[start..];
    let end = rest.find(['>', ';', '?', ',', ' ']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    Some(split_host(hostport))
}

/// `host` of `host:port` (IPv6 in brackets kept without them).
fn split_host(hostport: &str) -> &str {
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

/// The engine's side: which call and leg a message belongs to, and the two hooks.
mod engine_glue {
    use std::net::IpAddr;

    use bytes::Bytes;

    use super::{CallIds, Hit, param, uri_host, via_host};
    use crate::b2bua::Engine;
    use crate::media::Side;
    use crate::sip::{HeaderName, Headers, Host, Request, Response};

    impl Engine {
        /// veil's own hosts and addresses: never an identifier of a leg.
        pub(in crate::b2bua) fn leak_own_hosts(&self) -> Vec<String> {
            let mut own: Vec<String> = self
                .peers
                .listeners
                .iter()
                .map(|l| match &l.host {
                    Host::Name(n) => n.clone(),
                    Host::V4(a) => a.to_string(),
                    Host::V6(a) => a.to_string(),
                })
                .collect();
            own.push(self.media_ip.to_string());
            if let Some(ip) = self.media_ip6 {
                own.push(ip.to_string());
            }
            own.push(IpAddr::from([0u8; 4]).to_string());
            own
        }

        /// The call and leg of a message by its Call-ID and tags (leg B: veil's Call-ID;
        /// leg A: the caller's Call-ID and From tag, which is the From tag of what the
        /// caller sends and the To tag of what veil sends it).
        fn leak_locate(&self, call_id: &str, tags: [Option<&str>; 2]) -> Option<(u64, Side)> {
            if let Some(k) = self.b_index.get(call_id) {
                return Some((*k, Side::B));
            }
            tags.into_iter().flatten().find_map(|t| {
                self.a_index
                    .get(&(call_id.to_string(), t.to_string()))
                    .map(|k| (*k, Side::A))
            })
        }

        pub(in crate::b2bua) fn leak_observe_request(&mut self, req: &Request) {
            self.leak_observe(&req.headers, &req.body, true);
        }

        pub(in crate::b2bua) fn leak_observe_response(&mut self, resp: &Response) {
            self.leak_observe(&resp.headers, &resp.body, false);
        }

        /// A message arrived on a leg of a call: keep what identifies that leg.
        fn leak_observe(&mut self, h: &Headers, body: &[u8], request: bool) {
            if !self.cfg.sip.leak_guard {
                return;
            }
            let Some(call_id) = h.get(&HeaderName::CallId) else {
                return;
            };
            let tags = [tag(h, &HeaderName::From), tag(h, &HeaderName::To)];
            let Some((key, side)) = self.leak_locate(call_id, tags) else {
                return;
            };
            let own = self.leak_own_hosts();
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            seed(&mut call.leak, &call.a_invite, &own);
            let ids = match side {
                Side::A => &mut call.leak.a,
                Side::B => &mut call.leak.b,
            };
            ids.observe(h, body, request, &own);
        }

        /// The guard on a request veil is about to send.
        /// The guard on a request veil is about to send to `to`.
        pub(in crate::b2bua) fn leak_scrub_request(&mut self, req: &mut Request, to: IpAddr) {
            let what = req.method.as_str().to_string();
            // The target's own host and address are no leak to it.
            let target = req.uri.to_string();
            let dest = [uri_host(&target).unwrap_or(""), &to.to_string()].map(str::to_string);
            self.leak_scrub(
                &HeaderName::To,
                &what,
                &dest,
                &mut req.headers,
                &mut req.body,
            );
        }

        /// The guard on a response veil is about to send.
        pub(in crate::b2bua) fn leak_scrub_response(&mut self, resp: &mut Response) {
            let what = resp.code.to_string();
            let via = resp.headers.get(&HeaderName::Via).unwrap_or("");
            let dest = [
                via_host(via).unwrap_or(""),
                param(via, "received").unwrap_or(""),
            ]
            .map(str::to_string);
            self.leak_scrub(
                &HeaderName::From,
                &what,
                &dest,
                &mut resp.headers,
                &mut resp.body,
            );
        }

        /// `far_tag`: the header carrying the far end's tag on leg A (To in veil's requests,
        /// From in its responses); `dest`: the receiver's own hosts (taken as its leg's).
        fn leak_scrub(
            &mut self,
            far_tag: &HeaderName,
            what: &str,
            dest: &[String],
            headers: &mut Headers,
            body: &mut Bytes,
        ) {
            if !self.cfg.sip.leak_guard {
                return;
            }
            let Some(call_id) = headers.get(&HeaderName::CallId) else {
                return;
            };
            let Some((key, side)) = self.leak_locate(call_id, [tag(headers, far_tag), None]) else {
                return;
            };
            let own = self.leak_own_hosts();
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            seed(&mut call.leak, &call.a_invite, &own);
            let this = match side {
                Side::A => &mut call.leak.a,
                Side::B => &mut call.leak.b,
            };
            for d in dest {
                this.add_host(d, &own);
            }
            let (this, other) = match side {
                Side::A => (&call.leak.a, &call.leak.b),
                Side::B => (&call.leak.b, &call.leak.a),
            };
            let hits = super::scrub(headers, body, other, this);
            for Hit {
                kind,
                place,
                removed,
            } in hits
            {
                self.metrics
                    .leak_guard_hits
                    .with_label_values(&[kind.as_str()])
                    .inc();
                if removed {
                    tracing::warn!(call = %call.vref, leg = ?side, message = what, header = %place, kind = kind.as_str(), "leak guard removed an identifier of the other leg");
                } else {
                    tracing::error!(call = %call.vref, leg = ?side, message = what, header = %place, kind = kind.as_str(), "leak guard: veil itself wrote an identifier of the other leg (bug)");
                }
            }
        }
    }

    fn tag<'a>(h: &'a Headers, name: &HeaderName) -> Option<&'a str> {
        super::param(h.get(name)?, "tag")
    }

    /// The caller's INVITE arrived before its call existed: take it in first.
    fn seed(leak: &mut CallIds, invite: &Request, own: &[String]) {
        if !leak.seeded {
            leak.seeded = true;
            leak.a.observe(&invite.headers, &invite.body, true, own);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(HeaderName, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in list {
            h.push(n.clone(), *v);
        }
        h
    }

    fn caller_invite() -> LegIds {
        let mut ids = LegIds::default();
        let h = headers(&[
            (
                HeaderName::Via,
                "SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-caller-1;received=192.0.2.7",
            ),
            (HeaderName::From, "<sip:alice@127.0.0.2>;tag=caller-tag-1"),
            (HeaderName::To, "<sip:bob@127.0.0.1>"),
            (HeaderName::CallId, "callid-a-1@127.0.0.2"),
            (HeaderName::Contact, "<sip:alice@pc.caller.example:5062>"),
            (HeaderName::UserAgent, "Phone/1.2 (caller)"),
        ]);
        let sdp = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=ssrc:1 cname:alice@host.caller.example\r\n";
        ids.observe(&h, sdp, true, &["127.0.0.1".to_string()]);
        ids
    }

    #[test]
    fn collects_identifiers_not_veils_own() {
        let ids = caller_invite();
        let kinds_of = |v: &str| ids.ids.iter().find(|(_, x)| x == v).map(|(k, _)| *k);
        assert_eq!(kinds_of("callid-a-1@127.0.0.2"), Some(Kind::CallId));
        assert_eq!(kinds_of("caller-tag-1"), Some(Kind::Tag));
        assert_eq!(kinds_of("z9hG4bK-caller-1"), Some(Kind::Branch));
        assert_eq!(kinds_of("127.0.0.2"), Some(Kind::Address));
        assert_eq!(kinds_of("192.0.2.7"), Some(Kind::Address));
        assert_eq!(kinds_of("pc.caller.example"), Some(Kind::Host));
        assert_eq!(kinds_of("198.51.100.9"), Some(Kind::Address));
        assert_eq!(kinds_of("alice@host.caller.example"), Some(Kind::Cname));
        assert_eq!(kinds_of("host.caller.example"), Some(Kind::Host));
        assert_eq!(kinds_of("Phone/1.2 (caller)"), Some(Kind::UserAgent));
        // veil's own address (the To host) is no identifier.
        assert_eq!(kinds_of("127.0.0.1"), None);
    }

    #[test]
    fn tokens_match_whole_only() {
        assert!(contains_token("<sip:x@127.0.0.2:5060>", "127.0.0.2"));
        assert!(!contains_token("<sip:x@127.0.0.21>", "127.0.0.2"));
        assert!(!contains_token("<sip:x@1127.0.0.2>", "127.0.0.2"));
        assert!(!contains_token("a.pc.caller.example", "pc.caller.example"));
        assert!(contains_token(
            "X: CALLID-A-1@127.0.0.2",
            "callid-a-1@127.0.0.2"
        ));
        assert!(contains_token(
            "Warning: 399 Phone/1.2 (caller) x",
            "Phone/1.2 (caller)"
        ));
    }

    #[test]
    fn short_numeric_and_null_values_are_not_identifiers() {
        let mut ids = LegIds::default();
        ids.add(Kind::Tag, "1", &[]);
        ids.add(Kind::Tag, "123456", &[]);
        ids.add(Kind::Address, "0.0.0.0", &[]);
        assert!(ids.is_empty());
    }

    #[test]
    fn bounded_against_a_hostile_peer() {
        let mut ids = LegIds::default();
        let mut h = Headers::new();
        for i in 0..500 {
            h.push(HeaderName::Contact, format!("<sip:x@host{i}.example>"));
        }
        h.push(HeaderName::CallId, "x".repeat(10_000));
        ids.observe(&h, b"", true, &[]);
        assert_eq!(ids.len(), MAX_IDS);
        assert!(ids.ids.iter().all(|(_, v)| v.len() <= MAX_LEN));
    }

    #[test]
    fn scrub_removes_offending_headers_and_sdp_lines() {
        let other = caller_invite();
        let this = LegIds::default();
        let mut h = headers(&[
            (
                HeaderName::Via,
                "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKveil",
            ),
            (HeaderName::CallId, "veil-b-1"),
            (HeaderName::Other("X-Orig".into()), "callid-a-1@127.0.0.2"),
            (HeaderName::Subject, "hello 127.0.0.20"),
            (HeaderName::Other("X-Host".into()), "pc.caller.example"),
        ]);
        let mut body = Bytes::from_static(
            b"v=0\r\no=veil 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=ssrc:1 cname:alice@host.caller.example\r\na=rtpmap:0 PCMU/8000\r\n",
        );
        let hits = scrub(&mut h, &mut body, &other, &this);
        let places: Vec<_> = hits.iter().map(|h| (h.kind, h.place.as_str())).collect();
        assert_eq!(
            places,
            [
                // The Call-ID names the caller's address, which comes first in the set.
                (Kind::Address, "X-Orig"),
                (Kind::Host, "X-Host"),
                (Kind::Cname, "sdp:a=ssrc")
            ]
        );
        assert_eq!(h.0.len(), 3);
        assert!(h.get(&HeaderName::Subject).is_some());
        let text = std::str::from_utf8(&body).unwrap();
        assert!(!text.contains("cname"), "{text}");
        assert!(text.contains("a=rtpmap:0 PCMU/8000\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 127.0.0.1\r\n"));
    }

    #[test]
    fn what_the_receiving_leg_showed_itself_is_no_leak() {
        let other = caller_invite();
        let mut this = LegIds::default();
        this.add(Kind::UserAgent, "Phone/1.2 (caller)", &[]);
        let mut h = headers(&[(HeaderName::Server, "Phone/1.2 (caller)")]);
        let mut body = Bytes::new();
        assert!(scrub(&mut h, &mut body, &other, &this).is_empty());
        assert_eq!(h.0.len(), 1);
    }

    #[test]
    fn structural_hit_is_reported_and_kept() {
        let other = caller_invite();
        let mut h = headers(&[(HeaderName::Contact, "<sip:veil@127.0.0.2>")]);
        let mut body = Bytes::new();
        let hits = scrub(&mut h, &mut body, &other, &LegIds::default());
        assert_eq!(hits.len(), 1);
        assert!(!hits[0].removed);
        assert_eq!(h.0.len(), 1);
    }
}
