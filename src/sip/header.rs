//! Header names (compact forms folded into their long form) and the ordered header list.

use std::fmt;

/// A header name. Well-known names get a variant so lookups are cheap and compact forms
/// (`v`, `i`, `f`, `t`, `m`, `l`, `c`, `k`, `s`, `e`, `o`, `r`, `b`, `u`, `x`) map onto
/// the same variant as the long form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    ContentDisposition,
    Route,
    RecordRoute,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    Allow,
    Accept,
    Expires,
    MinExpires,
    SessionExpires,
    MinSe,
    RSeq,
    RAck,
    Event,
    ReferTo,
    ReferredBy,
    Replaces,
    Subject,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    RetryAfter,
    UserAgent,
    Server,
    Organization,
    Warning,
    PAssertedIdentity,
    PPreferredIdentity,
    Privacy,
    RemotePartyId,
    Diversion,
    Reason,
    AllowEvents,
    Date,
    Timestamp,
    /// Any other header; stored as received (case preserved), compared case-insensitively.
    Other(String),
}

impl HeaderName {
    /// Parse a header name as it appears on the wire, case-insensitively, compact forms included.
    pub fn parse(name: &str) -> HeaderName {
        use HeaderName::*;
        let known = |n: &str| -> Option<HeaderName> {
            Some(match n {
                "via" | "v" => Via,
                "from" | "f" => From,
                "to" | "t" => To,
                "call-id" | "i" => CallId,
                "cseq" => CSeq,
                "contact" | "m" => Contact,
                "max-forwards" => MaxForwards,
                "content-length" | "l" => ContentLength,
                "content-type" | "c" => ContentType,
                "content-encoding" | "e" => ContentEncoding,
                "content-disposition" => ContentDisposition,
                "route" => Route,
                "record-route" => RecordRoute,
                "supported" | "k" => Supported,
                "require" => Require,
                "proxy-require" => ProxyRequire,
                "unsupported" => Unsupported,
                "allow" => Allow,
                "accept" => Accept,
                "expires" => Expires,
                "min-expires" => MinExpires,
                "session-expires" | "x" => SessionExpires,
                "min-se" => MinSe,
                "rseq" => RSeq,
                "rack" => RAck,
                "event" | "o" => Event,
                "refer-to" | "r" => ReferTo,
                "referred-by" | "b" => ReferredBy,
                "replaces" => Replaces,
                "subject" | "s" => Subject,
                "authorization" => Authorization,
                "proxy-authorization" => ProxyAuthorization,
                "www-authenticate" => WwwAuthenticate,
                "proxy-authenticate" => ProxyAuthenticate,
                "retry-after" => RetryAfter,
                "user-agent" => UserAgent,
                "server" => Server,
                "organization" => Organization,
                "warning" => Warning,
                "p-asserted-identity" => PAssertedIdentity,
                "p-preferred-identity" => PPreferredIdentity,
                "privacy" => Privacy,
                "remote-party-id" => RemotePartyId,
                "diversion" => Diversion,
                "reason" => Reason,
                "allow-events" | "u" => AllowEvents,
                "date" => Date,
                "timestamp" => Timestamp,
                _ => return None,
            })
        };
        // Lower-case on the stack: this runs for every header of every message. No known
        // name is longer than the buffer, so longer names are `Other` without a look-up.
        let mut buf = [0u8; 24];
        let Some(lower) = buf.get_mut(..name.len()) else {
            return Other(name.to_string());
        };
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        std::str::from_utf8(lower)
            .ok()
            .and_then(known)
            .unwrap_or_else(|| Other(name.to_string()))
    }

    /// The canonical long form written on the wire.
    pub fn as_str(&self) -> &str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            MaxForwards => "Max-Forwards",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            ContentEncoding => "Content-Encoding",
            ContentDisposition => "Content-Disposition",
            Route => "Route",
            RecordRoute => "Record-Route",
            Supported => "Supported",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Unsupported => "Unsupported",
            Allow => "Allow",
            Accept => "Accept",
            Expires => "Expires",
            MinExpires => "Min-Expires",
            SessionExpires => "Session-Expires",
            MinSe => "Min-SE",
            RSeq => "RSeq",
            RAck => "RAck",
            Event => "Event",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            Replaces => "Replaces",
            Subject => "Subject",
            Authorization => "Authorization",
            ProxyAuthorization => "Proxy-Authorization",
            WwwAuthenticate => "WWW-Authenticate",
            ProxyAuthenticate => "Proxy-Authenticate",
            RetryAfter => "Retry-After",
            UserAgent => "User-Agent",
            Server => "Server",
            Organization => "Organization",
            Warning => "Warning",
            PAssertedIdentity => "P-Asserted-Identity",
            PPreferredIdentity => "P-Preferred-Identity",
            Privacy => "Privacy",
            RemotePartyId => "Remote-Party-ID",
            Diversion => "Diversion",
            Reason => "Reason",
            AllowEvents => "Allow-Events",
            Date => "Date",
            Timestamp => "Timestamp",
            Other(s) => s,
        }
    }

    /// Case-insensitive comparison with a configured name (e.g. from `headers.allow`).
    pub fn matches(&self, name: &str) -> bool {
        match self {
            HeaderName::Other(s) => s.eq_ignore_ascii_case(name),
            known => HeaderName::parse(name) == *known,
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line as received, folding removed, value trimmed. A header line holding a
/// comma-separated list stays one entry; `Headers::values` splits lists where that is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// Headers in wire order. Small vectors beat maps at SIP's ~10-20 headers per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Insert before every other header (used for a new top Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// First value of a header.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every header line with that name, in order (a line may itself hold a list).
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every element of a list-valued header (Via, Route, Record-Route, Contact, Supported,
    /// Require, Allow …), splitting on commas outside quotes and angle brackets.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> Vec<&'a str> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            out.extend(split_list(v));
        }
        out
    }

    /// The first element of `values(name)` without splitting the rest (the top Via, the
    /// first Contact): the per-message hot path needs only this one.
    pub fn first_value<'a>(&'a self, name: &'a HeaderName) -> Option<&'a str> {
        self.get_all(name).find_map(|line| {
            let mut rest = line;
            loop {
                match split_first(rest) {
                    ("", Some(t)) => rest = t,
                    ("", None) => return None,
                    (item, _) => return Some(item),
                }
            }
        })
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        self.0.iter().any(|h| &h.name == name)
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    pub fn remove_all(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Replace every line of `name` with one line holding `value` (appended if absent).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        if let Some(pos) = self.0.iter().position(|h| h.name == name) {
            self.0[pos].value = value;
            let mut i = 0;
            self.0.retain(|h| {
                let keep = h.name != name || i == pos;
                i += 1;
                keep
            });
        } else {
            self.push(name, value);
        }
    }

    /// Remove the first element of a list-valued header (e.g. our own top Via).
    pub fn pop_first_value(&mut self, name: &HeaderName) -> Option<String> {
        let pos = self.0.iter().position(|h| &h.name == name)?;
        let parts = split_list(&self.0[pos].value);
        let first = parts.first()?.to_string();
        if parts.len() == 1 {
            self.0.remove(pos);
        } else {
            let rest = parts[1..].join(", ");
            self.0[pos].value = rest;
        }
        Some(first)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }
}

/// Split a header value on top-level commas (not inside "quotes" or <brackets>).
pub fn split_list(v: &str) -> Vec<&str> {
    list_items(v).collect()
}

/// The elements `split_list` returns, without collecting them: trimmed, empty ones skipped.
pub fn list_items(v: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(v);
    std::iter::from_fn(move || {
        loop {
            let (item, tail) = split_first(rest?);
            rest = tail;
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

/// The first element of a list-valued line (trimmed) and what follows its comma, if any.
/// Scans bytes: every delimiter is ASCII, so the split points are char boundaries.
fn split_first(v: &str) -> (&str, Option<&str>) {
    // Nearly every line (a Via, a Contact without display name) has no quote or bracket
    // before its first comma, if it has a comma at all: then that comma is the split.
    match memchr::memchr3(b',', b'"', b'<', v.as_bytes()) {
        None => return (v.trim(), None),
        Some(i) if v.as_bytes()[i] == b',' => return (v[..i].trim(), Some(&v[i + 1..])),
        Some(_) => {}
    }
    split_first_scan(v)
}

/// [`split_first`] the long way: quotes (with escapes) and angle brackets tracked.
fn split_first_scan(v: &str) -> (&str, Option<&str>) {
    let (mut in_q, mut in_a, mut esc) = (false, false, false);
    for (i, &c) in v.as_bytes().iter().enumerate() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            b'\\' if in_q => esc = true,
            b'"' => in_q = !in_q,
            b'<' if !in_q => in_a = true,
            b'>' if !in_q => in_a = false,
            b',' if !in_q && !in_a => return (v[..i].trim(), Some(&v[i + 1..])),
            _ => {}
        }
    }
    (v.trim(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_fast_path_agrees_with_the_full_scan() {
        for v in [
            "",
            " ",
            ",",
            " , ",
            "SIP/2.0/UDP a;branch=1",
            "SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b",
            "SIP/2.0/UDP a , ",
            "<sip:a@b>, <sip:c@d>",
            "\"A, B\" <sip:a@b>, <sip:c@d>",
            "\"A \\\", B\" <sip:a@b>",
            "<sip:a@b;x=1,2>;p, c",
            "a>b, c",
            "a\\, b",
            "\"unterminated, x",
            "<unterminated, x",
            "100rel, timer ,,replaces",
            "é, ü",
        ] {
            assert_eq!(split_first(v), split_first_scan(v), "{v:?}");
            let mut rest = v;
            while let (_, Some(t)) = split_first(rest) {
                assert_eq!(split_first(t), split_first_scan(t), "{t:?}");
                rest = t;
            }
        }
    }
}
