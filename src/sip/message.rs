//! SIP requests and responses: the parsed form every other layer works on, and its writer.

use bytes::Bytes;

use super::header::{HeaderName, Headers};
use super::method::Method;
use super::parse::{self, ParseError};
use super::typed::{CSeq, NameAddr, RAck, Via};
use super::uri::{Uri, write_u32};
use super::view::{NameAddrRef, ViaRef};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Typed accessors shared by requests and responses. Each returns `Err` when the header is
/// missing or malformed, so callers can answer 400 naming the header.
pub trait SipHeaders {
    fn headers(&self) -> &Headers;
    fn headers_mut(&mut self) -> &mut Headers;

    fn call_id(&self) -> Result<&str, ParseError> {
        self.headers()
            .get(&HeaderName::CallId)
            .filter(|v| !v.is_empty())
            .ok_or(ParseError::MissingHeader("Call-ID"))
    }
    fn cseq(&self) -> Result<CSeq, ParseError> {
        let v = self
            .headers()
            .get(&HeaderName::CSeq)
            .ok_or(ParseError::MissingHeader("CSeq"))?;
        parse::parse_cseq(v)
    }
    #[allow(clippy::wrong_self_convention)] // "from" is the SIP header, not a conversion
    fn from_hdr(&self) -> Result<NameAddr, ParseError> {
        let v = self
            .headers()
            .get(&HeaderName::From)
            .ok_or(ParseError::MissingHeader("From"))?;
        parse::parse_name_addr(v)
    }
    fn to_hdr(&self) -> Result<NameAddr, ParseError> {
        let v = self
            .headers()
            .get(&HeaderName::To)
            .ok_or(ParseError::MissingHeader("To"))?;
        parse::parse_name_addr(v)
    }
    /// From without copying it (dialog look-ups need only its tag).
    #[allow(clippy::wrong_self_convention)] // "from" is the SIP header, not a conversion
    fn from_ref(&self) -> Result<NameAddrRef<'_>, ParseError> {
        let v = self
            .headers()
            .get(&HeaderName::From)
            .ok_or(ParseError::MissingHeader("From"))?;
        parse::parse_name_addr_ref(v)
    }
    fn to_ref(&self) -> Result<NameAddrRef<'_>, ParseError> {
        let v = self
            .headers()
            .get(&HeaderName::To)
            .ok_or(ParseError::MissingHeader("To"))?;
        parse::parse_name_addr_ref(v)
    }
    /// The To tag (`to_hdr()?.tag()`): whether a request is inside a dialog.
    fn to_tag(&self) -> Option<&str> {
        self.to_ref().ok()?.tag()
    }
    /// Every Via element, top first.
    fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let vals = self.headers().values(&HeaderName::Via);
        if vals.is_empty() {
            return Err(ParseError::MissingHeader("Via"));
        }
        vals.into_iter().map(parse::parse_via).collect()
    }
    fn top_via(&self) -> Result<Via, ParseError> {
        self.top_via_ref().map(|v| v.to_owned_via())
    }
    fn top_via_ref(&self) -> Result<ViaRef<'_>, ParseError> {
        let v = self.headers().first_value(&HeaderName::Via);
        parse::parse_via_ref(v.ok_or(ParseError::MissingHeader("Via"))?)
    }
    /// First Contact element, if any (`*` is reported as an error here).
    fn contact(&self) -> Option<Result<NameAddr, ParseError>> {
        self.headers()
            .first_value(&HeaderName::Contact)
            .map(parse::parse_name_addr)
    }
    /// Record-Route (or Route) elements in order.
    fn name_addrs(&self, name: &HeaderName) -> Result<Vec<NameAddr>, ParseError> {
        self.headers()
            .values(name)
            .into_iter()
            .map(parse::parse_name_addr)
            .collect()
    }
    fn max_forwards(&self) -> Option<Result<u32, ParseError>> {
        self.headers().get(&HeaderName::MaxForwards).map(|v| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| ParseError::BadHeader("Max-Forwards"))
        })
    }
    fn rack(&self) -> Option<Result<RAck, ParseError>> {
        self.headers().get(&HeaderName::RAck).map(parse::parse_rack)
    }
    /// Option tags of Supported/Require/Allow-like headers, case-insensitive membership.
    fn has_option_tag(&self, name: &HeaderName, tag: &str) -> bool {
        self.headers()
            .values(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tag))
    }
    fn content_type(&self) -> Option<&str> {
        self.headers().get(&HeaderName::ContentType)
    }
}

impl SipHeaders for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
}

impl SipHeaders for Response {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
}

impl Message {
    /// Parse one complete message (a UDP datagram or one TCP frame).
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        parse::parse_message(data)
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

fn write_head(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // Content-Length is always written and always right: veil rewrites bodies.
    out.extend_from_slice(b"Content-Length: ");
    write_u32(out, u32::try_from(body.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

impl Request {
    /// Serialize to wire form. Content-Length is computed from the body.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        self.uri.write_to(&mut out);
        out.extend_from_slice(b" SIP/2.0\r\n");
        write_head(&mut out, &self.headers, &self.body);
        out.into()
    }
}

impl Response {
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(b"SIP/2.0 ");
        write_u32(&mut out, self.code.into());
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        write_head(&mut out, &self.headers, &self.body);
        out.into()
    }

    /// A response to `req` per RFC 3261 §8.2.6: Via, From, To, Call-ID, CSeq copied
    /// (To tag added by the caller where needed), no body.
    pub fn for_request(req: &Request, code: u16, reason: &str) -> Response {
        let mut headers = Headers::new();
        for h in req.headers.iter() {
            match h.name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq => headers.push(h.name.clone(), h.value.clone()),
                _ => {}
            }
        }
        Response {
            code,
            reason: reason.to_string(),
            headers,
            body: Bytes::new(),
        }
    }
}

/// Standard reason phrase for the codes veil originates.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}
