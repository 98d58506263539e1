//! RFC 3261 parser (own implementation; rsip is used as a test oracle only, see README).
//!
//! Everything works on bytes and only slices `&str` at positions of ASCII delimiters, so
//! arbitrary input can never hit a non-char boundary. One pass over the header section;
//! the only allocations are the header values, the URI parts and the body copy.

use bytes::Bytes;

use super::header::{Header, HeaderName, Headers, list_items};
use super::message::{Message, Request, Response, SipHeaders};
use super::method::Method;
use super::typed::{CSeq, NameAddr, RAck, Via};
use super::uri::Uri;
use super::view::{HostRef, NameAddrRef, SipUriRef, UriRef, ViaRef};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message has no blank line ending the header section")]
    NoHeaderEnd,
    #[error("bad start line")]
    BadStartLine,
    #[error("unsupported SIP version")]
    BadVersion,
    #[error("bad header line")]
    BadHeaderLine,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    BadHeader(&'static str),
    #[error("Content-Length does not match the body")]
    BadContentLength,
    #[error("malformed URI")]
    BadUri,
    #[error("message too large")]
    TooLarge,
}

use ParseError::*;

// ---------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1)
// ---------------------------------------------------------------------------------------

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
pub(crate) fn is_token_char(b: u8) -> bool {
    TOKEN_CHARS[usize::from(b)]
}

/// [`is_token_char`] as a table: header names and parameters are scanned byte by byte.
const TOKEN_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// SP or HTAB: the whitespace allowed inside a (unfolded) header value.
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn trim_ws_bytes(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_ws(*first) {
            break;
        }
        b = rest;
    }
    while let [rest @ .., last] = b {
        if !is_ws(*last) {
            break;
        }
        b = rest;
    }
    b
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

fn take_while(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

/// Characters accepted anywhere in a URI: printable ASCII minus the delimiters that can
/// never be part of one (`<`, `>`, `"`). Whitespace and controls are rejected here.
fn is_uri_char(b: u8) -> bool {
    URI_CHARS[usize::from(b)]
}

/// [`is_uri_char`] as a table: every URI is checked byte by byte.
const URI_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0x21;
    while i < 0x7f {
        t[i] = !matches!(i as u8, b'<' | b'>' | b'"');
        i += 1;
    }
    t
};

/// Characters of a generic parameter value that is not quoted: token or host (IPv6 `[::]`).
fn is_param_value_char(b: u8) -> bool {
    is_token_char(b) || matches!(b, b':' | b'[' | b']')
}

/// Decimal digits only, parsed with overflow checking.
fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        // 19 digits always fit in u64; longer runs could only be leading zeros, which a
        // sane peer does not send.
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// End (exclusive) of a quoted string starting at `b[start] == '"'`, quoted-pairs honoured.
fn quoted_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// One line starting at `pos`: its content without the line end (LF or CRLF; one CR is
/// stripped) and the offset of the next line. `None` when no LF follows.
fn next_line(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rel = memchr::memchr(b'\n', data.get(pos..)?)?;
    let mut line = &data[pos..pos + rel];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    Some((line, pos + rel + 1))
}

/// `part` (a slice of `data`) as text: a slice of `text`, the valid UTF-8 prefix of
/// `data`, when it lies inside it. The message is validated once, not line by line.
fn as_text<'a>(text: &'a str, data: &[u8], part: &'a [u8]) -> Option<&'a str> {
    let off = (part.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
    text.get(off..off.wrapping_add(part.len()))
        .or_else(|| std::str::from_utf8(part).ok())
}

fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        // Header text must be UTF-8 (RFC 3261 §7.3.1); Latin-1 display names still occur
        // in the wild, so degrade them instead of failing the whole message.
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// `SIP/2.0`, case-insensitively. Another well-formed version is `BadVersion` (505).
fn check_version(v: &[u8]) -> Result<(), ParseError> {
    if v.len() < 4 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(BadStartLine);
    }
    let num = &v[4..];
    if num == b"2.0" {
        return Ok(());
    }
    let dot = num.iter().position(|&b| b == b'.').ok_or(BadStartLine)?;
    let (major, minor) = (&num[..dot], &num[dot + 1..]);
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if digits(major) && digits(minor) {
        Err(BadVersion)
    } else {
        Err(BadStartLine)
    }
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, ParseError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = line.iter().position(|&b| b == b' ').ok_or(BadStartLine)?;
        check_version(&line[..sp])?;
        let rest = &line[sp + 1..];
        if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
            return Err(BadStartLine);
        }
        let code = rest[..3]
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(BadStartLine);
        }
        let reason = match rest.get(3) {
            // noreason (RFC 4475 §3.1.1.13): an empty phrase, even without the last SP.
            None => String::new(),
            Some(b' ') => bytes_to_string(&rest[4..]),
            Some(_) => return Err(BadStartLine),
        };
        return Ok(StartLine::Response(code, reason));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly two single spaces.
    let line = std::str::from_utf8(line).map_err(|_| BadStartLine)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadStartLine);
    };
    if !is_token(method) || uri.is_empty() {
        return Err(BadStartLine);
    }
    check_version(version.as_bytes())?;
    let uri = parse_uri(uri)?;
    Ok(StartLine::Request(Method::from_token(method), uri))
}

/// Parse one complete message (a UDP datagram or one TCP frame).
///
/// Content-Length is consumed here and not kept in `headers`: the body is the truth, and
/// `to_bytes` always writes a fresh one. Without Content-Length the body is the rest of
/// the data; with it, bytes past the body are ignored (RFC 4475 §3.1.1.8).
pub fn parse_message(data: &[u8]) -> Result<Message, ParseError> {
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut pos = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(NoHeaderEnd)?;
    let (line, next) = next_line(data, pos).ok_or(NoHeaderEnd)?;
    let start = parse_start_line(line)?;
    pos = next;
    // Header text must be UTF-8 (see `bytes_to_string` for what is done when it is not).
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };

    let mut headers: Vec<Header> = Vec::with_capacity(16);
    loop {
        let (line, next) = next_line(data, pos).ok_or(NoHeaderEnd)?;
        pos = next;
        if line.is_empty() {
            break;
        }
        if is_ws(line[0]) {
            // Folded continuation: the CRLF and surrounding LWS count as one SP (§7.3.1).
            let last = headers.last_mut().ok_or(BadHeaderLine)?;
            let cont = trim_ws_bytes(line);
            if !cont.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(&String::from_utf8_lossy(cont));
            }
            continue;
        }
        let colon = memchr::memchr(b':', line).ok_or(BadHeaderLine)?;
        let name = trim_ws_bytes(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
            return Err(BadHeaderLine);
        }
        // Token characters are ASCII, so this cannot fail.
        let name = as_text(text, data, name).ok_or(BadHeaderLine)?;
        let value = trim_ws_bytes(&line[colon + 1..]);
        headers.push(Header {
            name: HeaderName::parse(name),
            value: match as_text(text, data, value) {
                Some(v) => v.to_owned(),
                None => bytes_to_string(value),
            },
        });
    }

    let mut content_length: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        let n = parse_digits(h.value.as_bytes()).ok_or(BadContentLength)?;
        let n = usize::try_from(n).map_err(|_| BadContentLength)?;
        match content_length {
            Some(prev) if prev != n => return Err(BadContentLength),
            _ => content_length = Some(n),
        }
    }
    if content_length.is_some() {
        headers.retain(|h| h.name != HeaderName::ContentLength);
    }

    let rest = &data[pos..];
    let body = match content_length {
        Some(n) => rest.get(..n).ok_or(BadContentLength)?,
        None => rest,
    };
    let body = if body.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(body)
    };
    let headers = Headers(headers);
    Ok(match start {
        StartLine::Request(method, uri) => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        StartLine::Response(code, reason) => Message::Response(Response {
            code,
            reason,
            headers,
            body,
        }),
    })
}

// ---------------------------------------------------------------------------------------
// URIs
// ---------------------------------------------------------------------------------------

/// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
fn is_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Parse an absolute URI. `sip:`/`sips:` and `tel:` are parsed; any other scheme is kept
/// verbatim as `Uri::Other` so the caller can answer 416 instead of 400.
pub fn parse_uri(s: &str) -> Result<Uri, ParseError> {
    parse_uri_ref(s).map(|u| u.to_owned_uri())
}

/// [`parse_uri`] without copying anything out of `s`.
pub fn parse_uri_ref(s: &str) -> Result<UriRef<'_>, ParseError> {
    let colon = s.find(':').ok_or(BadUri)?;
    let scheme = &s[..colon];
    let rest = &s[colon + 1..];
    if !is_scheme(scheme) || rest.is_empty() || !rest.bytes().all(is_uri_char) {
        return Err(BadUri);
    }
    if scheme.eq_ignore_ascii_case("sip") {
        parse_sip_uri(rest, false).map(UriRef::Sip)
    } else if scheme.eq_ignore_ascii_case("sips") {
        parse_sip_uri(rest, true).map(UriRef::Sip)
    } else if scheme.eq_ignore_ascii_case("tel") {
        parse_tel_uri(rest)
    } else {
        Ok(UriRef::Other(s))
    }
}

fn parse_sip_uri(rest: &str, secure: bool) -> Result<SipUriRef<'_>, ParseError> {
    // '@' is not allowed unescaped in params, headers or the password, so the first one
    // ends the userinfo (the user part itself may hold ';' and '?', RFC 4475 §3.1.1.9).
    let (user, password, hostpart) = match memchr::memchr(b'@', rest.as_bytes()) {
        Some(at) => {
            let userinfo = &rest[..at];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err(BadUri);
            }
            (Some(user), password, &rest[at + 1..])
        }
        None => (None, None, rest),
    };
    let hp_end = memchr::memchr2(b';', b'?', hostpart.as_bytes()).unwrap_or(hostpart.len());
    let (host, port) = parse_hostport(&hostpart[..hp_end]).ok_or(BadUri)?;
    let tail = &hostpart[hp_end..];
    let (params_str, headers) = match tail.split_once('?') {
        Some((p, h)) => (p, Some(h)),
        None => (tail, None),
    };
    let params = match params_str.strip_prefix(';') {
        Some(p) => Some(check_uri_params(p)?),
        None => None,
    };
    Ok(SipUriRef {
        secure,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

/// `;`-separated URI parameters (no LWS inside URIs), `name` or `name=value`: every name
/// must be non-empty.
fn check_uri_params(s: &str) -> Result<&str, ParseError> {
    let ok = s
        .split(';')
        .all(|p| !p.split_once('=').map_or(p, |(n, _)| n).is_empty());
    if ok { Ok(s) } else { Err(BadUri) }
}

/// `host[:port]` where host is a name, an IPv4 address or a bracketed IPv6 reference.
fn parse_hostport(s: &str) -> Option<(HostRef<'_>, Option<u16>)> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']')?;
        let host = HostRef::V6(inner[..close].parse().ok()?);
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None if after.is_empty() => None,
            None => return None,
        };
        (host, port)
    } else {
        let (h, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(parse_port(p)?)),
            None => (s, None),
        };
        (parse_host(h)?, port)
    };
    Some((host, port))
}

/// A dotted quad exactly as `Ipv4Addr::from_str` reads it (four decimal octets, no
/// leading zeros), without its generic parser: every URI and Via holds a host.
fn parse_ipv4(h: &str) -> Option<std::net::Ipv4Addr> {
    let b = h.as_bytes();
    if b.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, o) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut n: u32 = 0;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            n = n * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *o = u8::try_from(n).ok()?;
    }
    (i == b.len()).then(|| std::net::Ipv4Addr::from(octets))
}

/// A host without brackets: IPv4 dotted quad or a host name.
fn parse_host(h: &str) -> Option<HostRef<'_>> {
    if let Some(v4) = parse_ipv4(h) {
        return Some(HostRef::V4(v4));
    }
    // Names: alphanum, '-', '.' (and '_', seen in the wild).
    let ok = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then_some(HostRef::Name(h))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// RFC 3966: `tel:` number (global `+…` or local, visual separators kept) and params.
fn parse_tel_uri(rest: &str) -> Result<UriRef<'_>, ParseError> {
    let (number, params) = match rest.split_once(';') {
        Some((n, p)) => (n, Some(check_uri_params(p)?)),
        None => (rest, None),
    };
    let digits = number.strip_prefix('+').unwrap_or(number);
    let ok = digits
        .bytes()
        .any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
        && digits
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#' | b'-' | b'.' | b'(' | b')'));
    if !ok {
        return Err(BadUri);
    }
    Ok(UriRef::Tel(number, params))
}

// ---------------------------------------------------------------------------------------
// Header values
// ---------------------------------------------------------------------------------------

/// Generic header parameters `*( SEMI generic-param )` with LWS allowed around `;` and
/// `=`; values are tokens, hosts or quoted strings (kept with their quotes). Yields them
/// in order; an `Err` item (then the end) means something else was left over.
pub(super) fn generic_params(s: &str) -> GenericParams<'_> {
    GenericParams {
        s,
        i: skip_ws(s.as_bytes(), 0),
        failed: false,
    }
}

pub(super) struct GenericParams<'a> {
    s: &'a str,
    i: usize,
    failed: bool,
}

type Param<'a> = (&'a str, Option<&'a str>);

/// The parameter starting at `b[i] == ';'` and the position after it (LWS skipped).
fn generic_param_at(s: &str, mut i: usize) -> Option<(Param<'_>, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b';') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let name_end = take_while(b, i, is_token_char);
    if name_end == i {
        return None;
    }
    let name = &s[i..name_end];
    i = skip_ws(b, name_end);
    let value = if b.get(i) == Some(&b'=') {
        i = skip_ws(b, i + 1);
        let end = if b.get(i) == Some(&b'"') {
            quoted_end(b, i)?
        } else {
            take_while(b, i, is_param_value_char)
        };
        if end == i {
            return None;
        }
        let v = &s[i..end];
        i = skip_ws(b, end);
        Some(v)
    } else {
        None
    };
    Some(((name, value), i))
}

impl<'a> Iterator for GenericParams<'a> {
    type Item = Result<Param<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.i >= self.s.len() {
            return None;
        }
        match generic_param_at(self.s, self.i) {
            Some((p, next)) => {
                self.i = next;
                Some(Ok(p))
            }
            None => {
                self.failed = true;
                Some(Err(()))
            }
        }
    }
}

/// `s` if it is a valid list of generic parameters, else `err`.
fn check_generic_params(s: &str, err: ParseError) -> Result<&str, ParseError> {
    if generic_params(s).all(|p| p.is_ok()) {
        Ok(s)
    } else {
        Err(err)
    }
}

/// `"Display" <uri>;params`, `Display Tokens <uri>;params`, `<uri>;params`, or a bare
/// addr-spec `uri;params` (then the parameters belong to the header, RFC 3261 §20.10).
pub fn parse_name_addr(s: &str) -> Result<NameAddr, ParseError> {
    parse_name_addr_ref(s).map(|n| n.to_owned_name_addr())
}

/// [`parse_name_addr`] without copying anything out of `s`.
pub fn parse_name_addr_ref(s: &str) -> Result<NameAddrRef<'_>, ParseError> {
    let err = BadHeader("name-addr");
    let s = trim_ws(s);
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(err);
    }
    let (display, lt) = if b[0] == b'"' {
        let q = quoted_end(b, 0).ok_or_else(|| err.clone())?;
        let lt = skip_ws(b, q);
        if b.get(lt) != Some(&b'<') {
            return Err(err);
        }
        (Some(&s[..q]), Some(lt))
    } else {
        // A token display name is tokens and LWS up to '<'; stopping anywhere else means
        // this is an addr-spec (whose scheme ends at a ':', never a token char).
        let stop = take_while(b, 0, |c| is_token_char(c) || is_ws(c));
        if b.get(stop) == Some(&b'<') {
            let d = trim_ws(&s[..stop]);
            ((!d.is_empty()).then_some(d), Some(stop))
        } else {
            (None, None)
        }
    };
    let (uri, rest) = match lt {
        Some(lt) => {
            let gt = lt + memchr::memchr(b'>', &b[lt..]).ok_or_else(|| err.clone())?;
            (parse_uri_ref(&s[lt + 1..gt])?, &s[gt + 1..])
        }
        None => {
            let end = b
                .iter()
                .position(|&c| c == b';' || is_ws(c))
                .unwrap_or(b.len());
            let spec = &s[..end];
            // A URI holding '?' or ',' must be enclosed in <> (RFC 3261 §20.10).
            if spec.contains(['?', ',']) {
                return Err(err);
            }
            (parse_uri_ref(spec)?, &s[end..])
        }
    };
    let params = check_generic_params(rest, err)?;
    Ok(NameAddrRef {
        display,
        uri,
        params,
    })
}

/// `SIP/2.0/UDP host[:port];params`, LWS allowed around `/`, `:`, `;` and `=`.
pub fn parse_via(s: &str) -> Result<Via, ParseError> {
    parse_via_ref(s).map(|v| v.to_owned_via())
}

/// [`parse_via`] without copying anything out of `s`.
pub fn parse_via_ref(s: &str) -> Result<ViaRef<'_>, ParseError> {
    let err = BadHeader("Via");
    let s = trim_ws(s);
    let b = s.as_bytes();
    // sent-protocol = protocol-name SLASH protocol-version SLASH transport
    let mut i = 0;
    let mut parts = [0usize; 6];
    for k in 0..3 {
        if k > 0 {
            i = skip_ws(b, i);
            if b.get(i) != Some(&b'/') {
                return Err(err);
            }
            i = skip_ws(b, i + 1);
        }
        let end = take_while(b, i, is_token_char);
        if end == i {
            return Err(err);
        }
        parts[2 * k] = i;
        parts[2 * k + 1] = end;
        i = end;
    }
    let proto = &s[parts[0]..parts[1]];
    let version = &s[parts[2]..parts[3]];
    if !proto.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return Err(err);
    }
    let transport = &s[parts[4]..parts[5]];
    let host_start = skip_ws(b, i);
    if host_start == i {
        return Err(err);
    }
    i = host_start;
    let host = if b.get(i) == Some(&b'[') {
        let close = i + s[i..].find(']').ok_or_else(|| err.clone())?;
        let v6 = s[i + 1..close].parse().map_err(|_| err.clone())?;
        i = close + 1;
        HostRef::V6(v6)
    } else {
        let end = take_while(b, i, |c| !is_ws(c) && c != b':' && c != b';');
        let h = parse_host(&s[i..end]).ok_or_else(|| err.clone())?;
        i = end;
        h
    };
    let mut port = None;
    let j = skip_ws(b, i);
    if b.get(j) == Some(&b':') {
        let p = skip_ws(b, j + 1);
        let end = take_while(b, p, |c| c.is_ascii_digit());
        port = Some(parse_port(&s[p..end]).ok_or_else(|| err.clone())?);
        i = end;
    }
    let params = check_generic_params(&s[i..], err)?;
    Ok(ViaRef {
        transport,
        host,
        port,
        params,
    })
}

/// A sequence number: digits, below 2^31 (RFC 3261 §8.1.1.5).
fn parse_seq(b: &[u8]) -> Option<u32> {
    parse_digits(b).filter(|&n| n < 1 << 31).map(|n| n as u32)
}

/// Split a value into whitespace-separated words (`CSeq`, `RAck`).
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t']).filter(|w| !w.is_empty())
}

/// `123 INVITE`.
pub fn parse_cseq(s: &str) -> Result<CSeq, ParseError> {
    let err = BadHeader("CSeq");
    let mut w = words(s);
    let (Some(seq), Some(method), None) = (w.next(), w.next(), w.next()) else {
        return Err(err);
    };
    let seq = parse_seq(seq.as_bytes()).ok_or_else(|| err.clone())?;
    if !is_token(method) {
        return Err(err);
    }
    Ok(CSeq {
        seq,
        method: Method::from_token(method),
    })
}

/// RAck (RFC 3262 §7.2): `response-num CSeq-num Method`.
pub fn parse_rack(s: &str) -> Result<RAck, ParseError> {
    let err = BadHeader("RAck");
    let mut w = words(s);
    let (Some(rseq), Some(cseq), Some(method), None) = (w.next(), w.next(), w.next(), w.next())
    else {
        return Err(err);
    };
    let rseq = parse_seq(rseq.as_bytes()).ok_or_else(|| err.clone())?;
    let cseq = parse_seq(cseq.as_bytes()).ok_or_else(|| err.clone())?;
    if !is_token(method) {
        return Err(err);
    }
    Ok(RAck {
        rseq,
        cseq,
        method: Method::from_token(method),
    })
}

// ---------------------------------------------------------------------------------------
// Sanity checks (the engine answers 400 when these fail)
// ---------------------------------------------------------------------------------------

/// The header must appear exactly once (RFC 4475 §3.3.8: repeated single-value headers).
fn single<'a>(
    h: &'a Headers,
    name: &'a HeaderName,
    label: &'static str,
) -> Result<&'a str, ParseError> {
    let mut it = h.get_all(name);
    let v = it.next().ok_or(MissingHeader(label))?;
    if it.next().is_some() {
        return Err(BadHeader(label));
    }
    Ok(v)
}

/// Checks shared by requests and responses: Via, From, To, Call-ID, CSeq present once
/// (Via at least once) and syntactically valid. Returns the CSeq. Runs on every message,
/// so it reads borrowed views and copies nothing.
fn check_common(m: &impl SipHeaders) -> Result<CSeq, ParseError> {
    let h = m.headers();
    let mut vias = 0;
    for v in h.get_all(&HeaderName::Via).flat_map(list_items) {
        parse_via_ref(v)?;
        vias += 1;
    }
    if vias == 0 {
        return Err(MissingHeader("Via"));
    }
    parse_name_addr_ref(single(h, &HeaderName::From, "From")?).map_err(|_| BadHeader("From"))?;
    parse_name_addr_ref(single(h, &HeaderName::To, "To")?).map_err(|_| BadHeader("To"))?;
    // callid = word [ "@" word ]; real Call-IDs stray outside `word` (e.g. base64 '='), so
    // only whitespace, controls and non-ASCII are refused.
    let call_id = single(h, &HeaderName::CallId, "Call-ID")?;
    if call_id.is_empty() || !call_id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(BadHeader("Call-ID"));
    }
    parse_cseq(single(h, &HeaderName::CSeq, "CSeq")?)
}

/// Syntax checks the engine runs on every request before acting on it; an error means
/// "answer 400". Parsing itself stays lenient so that a 400 can still be built.
pub fn check_request_sanity(req: &Request) -> Result<(), ParseError> {
    // Headers are not allowed in a Request-URI (RFC 3261 §19.1.1 table; RFC 4475 §3.1.2.11).
    if let Uri::Sip(u) = &req.uri
        && u.headers.is_some()
    {
        return Err(BadUri);
    }
    let cseq = check_common(req)?;
    if cseq.method != req.method {
        return Err(BadHeader("CSeq"));
    }
    let mut mf = req.headers.get_all(&HeaderName::MaxForwards);
    if let Some(v) = mf.next() {
        // Max-Forwards is 0-255 (RFC 3261 §20.22).
        if mf.next().is_some() || parse_digits(v.as_bytes()).is_none_or(|n| n > 255) {
            return Err(BadHeader("Max-Forwards"));
        }
    }
    for c in req
        .headers
        .get_all(&HeaderName::Contact)
        .flat_map(list_items)
    {
        if c != "*" {
            parse_name_addr_ref(c).map_err(|_| BadHeader("Contact"))?;
        }
    }
    Ok(())
}

/// The response counterpart of `check_request_sanity`: a response failing it is dropped.
pub fn check_response_sanity(resp: &Response) -> Result<(), ParseError> {
    check_common(resp).map(|_| ())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "conformance_tests.rs"]
mod conformance_tests;
