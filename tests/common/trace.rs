//! SIPp's `-trace_msg` file: every message SIPp sent or received, in order. Parsed into
//! [`TracedMessage`]s with just enough SIP understanding for the checks (headers by name,
//! compact forms, the body).

/// A message's direction as seen by the SIPp side that logged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

#[derive(Debug, Clone)]
pub struct TracedMessage {
    /// Position in the trace file, from 1.
    pub index: usize,
    pub direction: Direction,
    /// `UDP`, `TCP`, ...
    pub transport: String,
    pub text: String,
}

/// Lines SIPp writes before each message: 47 dashes, a space and a timestamp.
const SEPARATOR: &str = "-----------------------------------------------";

/// Splits a SIPp message trace into messages.
pub fn parse_trace(trace: &str) -> Vec<TracedMessage> {
    let mut out = Vec::new();
    let mut lines = trace.split('\n').peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with(SEPARATOR) {
            continue;
        }
        let Some(header) = lines.next() else { break };
        let header = header.trim();
        let direction = if header.contains("message sent") {
            Direction::Sent
        } else if header.contains("message received") {
            Direction::Received
        } else {
            continue;
        };
        let transport = header.split_whitespace().next().unwrap_or("").to_string();
        let mut body = Vec::new();
        while let Some(next) = lines.peek() {
            if next.starts_with(SEPARATOR) {
                break;
            }
            body.push(lines.next().unwrap_or_default());
        }
        // SIPp puts one blank line after the header line and blank lines after the message.
        while body.first().is_some_and(|l| l.trim().is_empty()) {
            body.remove(0);
        }
        while body.last().is_some_and(|l| l.trim().is_empty()) {
            body.pop();
        }
        let text = body.join("\n");
        out.push(TracedMessage {
            index: out.len() + 1,
            direction,
            transport,
            text,
        });
    }
    out
}

/// Compact header forms (RFC 3261 7.3.3 and extensions) for the names the checks use.
fn compact_of(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "call-id" => Some("i"),
        "from" => Some("f"),
        "to" => Some("t"),
        "via" => Some("v"),
        "contact" => Some("m"),
        "content-type" => Some("c"),
        "content-length" => Some("l"),
        _ => None,
    }
}

impl TracedMessage {
    pub fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("").trim_end()
    }

    pub fn is_request(&self) -> bool {
        !self.first_line().starts_with("SIP/2.0 ")
    }

    /// Request method, or for a response the method of its CSeq.
    pub fn method(&self) -> String {
        if self.is_request() {
            self.first_line()
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        } else {
            self.header("CSeq")
                .and_then(|c| c.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string()
        }
    }

    /// Status code of a response.
    pub fn status(&self) -> Option<u16> {
        if self.is_request() {
            return None;
        }
        self.first_line().split_whitespace().nth(1)?.parse().ok()
    }

    /// Header lines (up to the blank line), without the start line.
    pub fn header_lines(&self) -> impl Iterator<Item = &str> {
        self.text
            .lines()
            .skip(1)
            .map(|l| l.trim_end_matches('\r'))
            .take_while(|l| !l.trim().is_empty())
    }

    /// All values of header `name` (case-insensitive, compact form accepted).
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let compact = compact_of(name);
        self.header_lines()
            .filter_map(|line| {
                let (n, v) = line.split_once(':')?;
                let n = n.trim();
                (n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c)))
                    .then(|| v.trim())
            })
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// Header names present, as written.
    pub fn header_names(&self) -> Vec<&str> {
        self.header_lines()
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
            .collect()
    }

    /// The body after the blank line.
    pub fn body(&self) -> &str {
        let t = &self.text;
        if let Some(i) = t.find("\r\n\r\n") {
            return &t[i + 4..];
        }
        if let Some(i) = t.find("\n\n") {
            return &t[i + 2..];
        }
        if let Some(i) = t.find("\n\r\n") {
            return &t[i + 3..];
        }
        ""
    }

    /// The SDP body, if the message carries one.
    pub fn sdp(&self) -> Option<&str> {
        let body = self.body().trim_start();
        body.starts_with("v=0").then_some(body)
    }

    /// One tagged summary line for failure messages.
    pub fn describe(&self) -> String {
        let dir = match self.direction {
            Direction::Sent => "sent",
            Direction::Received => "received",
        };
        format!(
            "#{} ({dir} over {}) \"{}\"",
            self.index,
            self.transport,
            self.first_line()
        )
    }
}

/// Value of a `;name=value` parameter in a header value.
pub fn param<'a>(header_value: &'a str, name: &str) -> Option<&'a str> {
    header_value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_end_matches('>'))
    })
}

/// The URI inside `<...>` of a name-addr, or the value up to the first `;`.
pub fn uri_of(header_value: &str) -> &str {
    if let (Some(a), Some(b)) = (header_value.find('<'), header_value.find('>'))
        && a < b
    {
        return &header_value[a + 1..b];
    }
    header_value.split(';').next().unwrap_or("").trim()
}
