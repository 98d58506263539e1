//! A SIP message under construction: start line, ordered headers, SDP lines. Templates
//! build one, mutations edit it by header name or SDP line type, `bytes` writes it out
//! with a Content-Length that matches the body unless a mutation set or dropped it.

use std::net::Ipv4Addr;

use crate::input::{Action, Hdr, Mutation, SdpLine};

/// Content-Length value filled in by `bytes`.
const AUTO: &str = "\0auto";

pub struct Msg {
    pub start: String,
    pub headers: Vec<(String, String)>,
    /// SDP lines (without CRLF), or one opaque line for other bodies.
    pub body: Vec<String>,
}

impl Msg {
    pub fn new(start: String) -> Msg {
        Msg {
            start,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn h(&mut self, name: &str, value: impl Into<String>) -> &mut Msg {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Content-Type (for a body) and the automatic Content-Length, last.
    pub fn with_body(&mut self, sdp: Option<Vec<String>>) -> &mut Msg {
        if let Some(lines) = sdp {
            self.h("Content-Type", "application/sdp");
            self.body = lines;
        }
        self.h("Content-Length", AUTO)
    }

    pub fn apply(&mut self, m: &Mutation) {
        match m {
            Mutation::Header(h, a) => self.header(*h, a),
            Mutation::Sdp(l, a) => self.sdp(*l, a),
            Mutation::Body(b) => self.body = vec![b.clone()],
            Mutation::Code(c) => {
                if let Some(rest) = self.start.strip_prefix("SIP/2.0 ") {
                    let reason = rest.get(4..).unwrap_or("X").to_string();
                    self.start = format!("SIP/2.0 {} {reason}", 100 + c % 600);
                }
            }
        }
    }

    fn header(&mut self, h: Hdr, a: &Action) {
        let name = h.name();
        let at = self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name));
        match (a, at) {
            (Action::Set(v), Some(i)) => self.headers[i].1 = v.clone(),
            (Action::Set(v) | Action::Add(v), None) => self.insert(name, v.clone()),
            (Action::Num(n), Some(i)) => {
                let v = renumber(h, &self.headers[i].1, *n);
                self.headers[i].1 = v;
            }
            (Action::Num(n), None) => self.insert(name, n.to_string()),
            (Action::Drop, Some(i)) => {
                self.headers.remove(i);
            }
            (Action::Drop, None) => {}
            (Action::Add(v), Some(i)) => self.headers.insert(i + 1, (name.to_string(), v.clone())),
        }
    }

    /// Before Content-Length, so that a new header is not mistaken for the body.
    fn insert(&mut self, name: &str, value: String) {
        let at = self.headers.len().saturating_sub(1);
        self.headers.insert(at, (name.to_string(), value));
    }

    fn sdp(&mut self, l: SdpLine, a: &Action) {
        let prefix = l.prefix();
        let matching: Vec<usize> = (0..self.body.len())
            .filter(|&i| matches_line(l, &self.body[i]))
            .collect();
        let at = match l {
            SdpLine::Media(k) if !matching.is_empty() => {
                Some(matching[k as usize % matching.len()])
            }
            _ => matching.first().copied(),
        };
        match (a, at) {
            (Action::Set(v), Some(i)) => self.body[i] = format!("{prefix}{v}"),
            (Action::Set(v) | Action::Add(v), None) => self.body.push(format!("{prefix}{v}")),
            (Action::Num(n), Some(i)) => self.body[i] = renumber_sdp(l, &self.body[i], *n),
            (Action::Num(n), None) => self.body.push(format!("{prefix}{n}")),
            (Action::Drop, Some(i)) => {
                self.body.remove(i);
            }
            (Action::Drop, None) => {}
            (Action::Add(v), Some(i)) => self.body.insert(i + 1, format!("{prefix}{v}")),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let body = if self.body.is_empty() {
            String::new()
        } else {
            let mut b = self.body.join("\r\n");
            b.push_str("\r\n");
            b
        };
        let mut out = String::with_capacity(512 + body.len());
        out.push_str(&self.start);
        out.push_str("\r\n");
        for (n, v) in &self.headers {
            let v = if v == AUTO {
                body.len().to_string()
            } else {
                v.clone()
            };
            out.push_str(n);
            out.push_str(": ");
            out.push_str(&v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&body);
        out.into_bytes()
    }
}

fn matches_line(l: SdpLine, line: &str) -> bool {
    match l {
        SdpLine::Direction => matches!(
            line,
            "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
        ),
        _ => line.starts_with(l.prefix()),
    }
}

/// The header's number changed, its shape kept: the port of an address header, else its
/// first run of digits (CSeq, Session-Expires, Retry-After, RSeq, the RSeq of RAck, ...).
fn renumber(h: Hdr, v: &str, n: u32) -> String {
    if matches!(
        h,
        Hdr::Via | Hdr::Contact | Hdr::RecordRoute | Hdr::Route | Hdr::From | Hdr::To
    ) && let Some(i) = v.find(":5060")
    {
        return format!("{}:{}{}", &v[..i], n % 65536, &v[i + 5..]);
    }
    replace_digits(v, n)
}

fn renumber_sdp(l: SdpLine, line: &str, n: u32) -> String {
    match l {
        SdpLine::Connection => format!("c=IN IP4 {}", Ipv4Addr::from(n)),
        SdpLine::Origin => {
            // o=<user> <session id> <version> ...: the version.
            let mut parts: Vec<String> = line.split(' ').map(str::to_string).collect();
            if parts.len() > 2 {
                parts[2] = n.to_string();
            }
            parts.join(" ")
        }
        SdpLine::Media(_) => replace_digits(line, n % 65536),
        _ => replace_digits(line, n),
    }
}

fn replace_digits(v: &str, n: u32) -> String {
    let Some(start) = v.find(|c: char| c.is_ascii_digit()) else {
        return n.to_string();
    };
    let end = v[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(v.len(), |e| start + e);
    format!("{}{n}{}", &v[..start], &v[end..])
}
