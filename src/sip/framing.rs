//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3): a message ends after the blank
//! line plus Content-Length bytes. Keep-alive CRLFs between messages are skipped.
//!
//! The framer only looks at line ends and Content-Length; the message itself is parsed
//! later by `Message::parse`. Bytes already scanned are never scanned again.

/// Accumulates bytes from a stream and yields complete messages.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Upper bound on headers + body; 0 means unlimited (only `Default` gives that).
    max_message: usize,
    /// Next byte of the current message's header section still to look at.
    scan: usize,
    /// Total length of the current message once its header end and Content-Length are known.
    total: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete message, ready for `Message::parse`.
    Message(Vec<u8>),
    /// A keep-alive "\r\n\r\n" ping (RFC 5626 §4.4.1) that should be answered with "\r\n".
    Ping,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message larger than the limit")]
    TooLarge,
    #[error("missing or malformed Content-Length on a stream transport")]
    BadContentLength,
}

const PING: &[u8] = b"\r\n\r\n";

impl StreamFramer {
    pub fn new(max_message: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            max_message,
            scan: 0,
            total: None,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn too_large(&self, n: usize) -> bool {
        self.max_message != 0 && n > self.max_message
    }

    /// Next complete frame, `Ok(None)` if more bytes are needed. After an error the
    /// connection should be closed (the stream can no longer be framed).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.total.is_none() && self.scan == 0 {
            // At a message boundary: a double CRLF is a ping, other line ends are skipped
            // one byte at a time so that the result never depends on how bytes arrived.
            let mut i = 0;
            loop {
                let rest = &self.buf[i..];
                if rest.starts_with(PING) {
                    self.buf.drain(..i + PING.len());
                    return Ok(Some(Frame::Ping));
                }
                if PING.starts_with(rest) {
                    // Empty, or possibly the start of a ping: wait for more.
                    self.buf.drain(..i);
                    return Ok(None);
                }
                if rest[0] != b'\r' && rest[0] != b'\n' {
                    break;
                }
                i += 1;
            }
            self.buf.drain(..i);
        }
        let total = match self.total {
            Some(t) => t,
            None => {
                let Some(head_end) = self.find_header_end() else {
                    if self.too_large(self.buf.len()) {
                        return Err(FrameError::TooLarge);
                    }
                    return Ok(None);
                };
                let body = content_length(&self.buf[..head_end])?;
                let total = head_end.checked_add(body).ok_or(FrameError::TooLarge)?;
                if self.too_large(total) {
                    return Err(FrameError::TooLarge);
                }
                self.total = Some(total);
                total
            }
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let msg = std::mem::replace(&mut self.buf, rest);
        self.total = None;
        self.scan = 0;
        Ok(Some(Frame::Message(msg)))
    }

    /// Offset just past the blank line ending the header section: an empty line, with
    /// either CRLF or bare LF line ends (the same rule as `parse_message`).
    fn find_header_end(&mut self) -> Option<usize> {
        let buf = &self.buf;
        let mut i = self.scan;
        while let Some(rel) = buf[i..].iter().position(|&b| b == b'\n') {
            let nl = i + rel;
            let blank = (nl >= 1 && buf[nl - 1] == b'\n')
                || (nl >= 2 && buf[nl - 1] == b'\r' && buf[nl - 2] == b'\n');
            if blank {
                self.scan = nl + 1;
                return Some(nl + 1);
            }
            i = nl + 1;
        }
        self.scan = buf.len();
        None
    }
}

/// Content-Length (long or compact `l`, any case) from a header section; folded values
/// are joined. Missing means 0: RFC 3261 §18.3 requires it on streams, but a body-less
/// message without one is common enough to accept. Differing duplicates are an error.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut found: Option<usize> = None;
    let mut value: Option<Vec<u8>> = None;
    let mut finish = |v: Option<Vec<u8>>| -> Result<(), FrameError> {
        if let Some(v) = v {
            let n = parse_length(&v).ok_or(FrameError::BadContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(FrameError::BadContentLength);
            }
            found = Some(n);
        }
        Ok(())
    };
    // Skip the start line; stop at the blank line.
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(v) = value.as_mut() {
                v.push(b' ');
                v.extend_from_slice(line);
            }
            continue;
        }
        finish(value.take())?;
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = line[..colon].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
                value = Some(line[colon + 1..].to_vec());
            }
        }
    }
    finish(value.take())?;
    Ok(found.unwrap_or(0))
}

fn parse_length(v: &[u8]) -> Option<usize> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> Vec<u8> {
        format!(
            "MESSAGE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn frames_back_to_back_messages_and_pings() {
        let mut f = StreamFramer::new(4096);
        let (a, b) = (msg("hello"), msg(""));
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(&b);
        f.push(&stream);
        assert_eq!(f.next_frame(), Ok(Some(Frame::Ping)));
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(a))));
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(b))));
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn byte_by_byte_delivery_yields_the_same_frames() {
        let a = msg("v=0\r\n");
        let mut stream = a.clone();
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(&a);
        let mut f = StreamFramer::new(4096);
        let mut frames = Vec::new();
        for &byte in &stream {
            f.push(&[byte]);
            while let Some(fr) = f.next_frame().unwrap() {
                frames.push(fr);
            }
        }
        assert_eq!(
            frames,
            vec![Frame::Message(a.clone()), Frame::Ping, Frame::Message(a)]
        );
    }

    #[test]
    fn compact_and_lowercase_content_length_and_lf_only() {
        let m = b"OPTIONS sip:x SIP/2.0\nl: 3\n\nabcNEXT".to_vec();
        let mut f = StreamFramer::new(4096);
        f.push(&m);
        assert_eq!(
            f.next_frame(),
            Ok(Some(Frame::Message(m[..m.len() - 4].to_vec())))
        );
        assert_eq!(f.next_frame(), Ok(None));
        let m = b"OPTIONS sip:x SIP/2.0\r\ncontent-LENGTH :\r\n  2\r\n\r\nab".to_vec();
        f = StreamFramer::new(4096);
        f.push(&m);
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(m))));
    }

    #[test]
    fn missing_content_length_means_empty_body() {
        let m = b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n".to_vec();
        let mut f = StreamFramer::new(4096);
        f.push(&m);
        f.push(b"OPT");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(m))));
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), 3);
    }

    #[test]
    fn malformed_content_length_is_an_error() {
        for cl in ["-1", "abc", "", "1 2", "99999999999999999999999"] {
            let mut f = StreamFramer::new(4096);
            f.push(format!("OPTIONS sip:x SIP/2.0\r\nContent-Length: {cl}\r\n\r\n").as_bytes());
            assert_eq!(f.next_frame(), Err(FrameError::BadContentLength), "{cl:?}");
        }
        let mut f = StreamFramer::new(4096);
        f.push(b"OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab");
        assert_eq!(f.next_frame(), Err(FrameError::BadContentLength));
    }

    #[test]
    fn enforces_the_size_limit_on_headers_and_body() {
        let mut f = StreamFramer::new(64);
        f.push(&[b'a'; 65]);
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge));
        let mut f = StreamFramer::new(64);
        f.push(b"OPTIONS sip:x SIP/2.0\r\nl: 100\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge));
        let mut f = StreamFramer::new(64);
        f.push(&[b'a'; 40]);
        assert_eq!(f.next_frame(), Ok(None));
    }

    #[test]
    fn partial_ping_waits() {
        let mut f = StreamFramer::new(64);
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), Ok(None));
        f.push(b"\r");
        assert_eq!(f.next_frame(), Ok(None));
        f.push(b"\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Ping)));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn stray_line_ends_before_a_ping_do_not_hide_it() {
        for chunk in [1, 2, 3, 64] {
            let mut f = StreamFramer::new(64);
            let mut frames = Vec::new();
            for piece in b"\n\r\r\n\r\n\r\n".chunks(chunk) {
                f.push(piece);
                while let Some(fr) = f.next_frame().unwrap() {
                    frames.push(fr);
                }
            }
            assert_eq!(frames, vec![Frame::Ping], "chunk {chunk}");
            assert_eq!(f.buffered(), 2, "a trailing CRLF waits for more");
        }
    }
}
