//! SDP line syntax: `<type>=<value>` per line, grouped into the session part and media
//! sections. Nothing is interpreted here, so unknown lines survive unchanged.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Line, MediaSection, Sdp, SdpError};

pub(super) fn parse(data: &[u8]) -> Result<Sdp, SdpError> {
    let text = std::str::from_utf8(data).map_err(|_| SdpError::NotUtf8)?;
    let mut raw: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    while raw.last().is_some_and(|l| l.is_empty()) {
        raw.pop();
    }

    let mut session = Vec::new();
    let mut media: Vec<MediaSection> = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let line = parse_line(text).ok_or(SdpError::BadLine(i + 1))?;
        if line.kind == b'm' {
            media.push(MediaSection { lines: vec![line] });
        } else if let Some(section) = media.last_mut() {
            section.lines.push(line);
        } else {
            session.push(line);
        }
    }
    // RFC 8866 §5.1: `v=0`, there is no other version. veil writes the line as it came,
    // so a `v=` with anything else would reach the other leg as SDP nobody can read.
    let version = session.iter().find(|l| l.kind == b'v');
    if version.is_none_or(|v| v.value != "0") || !session.iter().any(|l| l.kind == b'o') {
        return Err(SdpError::MissingRequired);
    }
    Ok(Sdp { session, media })
}

/// One line without its line end. CR and NUL are refused inside a value (RFC 8866 `text`
/// excludes them) so that `to_bytes` can always be parsed back to the same lines.
fn parse_line(text: &str) -> Option<Line> {
    let bytes = text.as_bytes();
    let (&kind, rest) = bytes.split_first()?;
    if !kind.is_ascii_alphabetic() || rest.first() != Some(&b'=') {
        return None;
    }
    let value = text.get(2..)?;
    if value.contains(['\r', '\0']) {
        return None;
    }
    Some(Line::new(kind, value))
}

pub(super) fn to_bytes(sdp: &Sdp) -> Bytes {
    let lines = || {
        sdp.session
            .iter()
            .chain(sdp.media.iter().flat_map(|m| m.lines.iter()))
    };
    let len: usize = lines().map(|l| l.value.len() + 4).sum();
    let mut out = BytesMut::with_capacity(len);
    for line in lines() {
        out.put_u8(line.kind);
        out.put_u8(b'=');
        out.put_slice(line.value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::*;

    #[test]
    fn splits_session_and_media_sections() {
        let sdp = Sdp::parse(TWO_STREAMS.as_bytes()).unwrap();
        assert_eq!(sdp.session[0], Line::new(b'v', "0"));
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.media[0].lines[0].value, "audio 49170 RTP/AVP 0 8 101");
        assert_eq!(sdp.media[1].lines[0].value, "video 51372 RTP/AVP 99");
        assert!(
            sdp.media[1]
                .lines
                .contains(&Line::new(b'a', "rtpmap:99 H264/90000"))
        );
        assert!(sdp.session.iter().all(|l| l.kind != b'm'));
    }

    #[test]
    fn accepts_lf_only_and_trailing_empty_lines() {
        let lf = SIPP_DEFAULT.replace("\r\n", "\n") + "\n\n";
        let crlf = Sdp::parse(SIPP_DEFAULT.as_bytes()).unwrap();
        assert_eq!(Sdp::parse(lf.as_bytes()).unwrap(), crlf);
    }

    #[test]
    fn keeps_unknown_lines_and_attributes() {
        let sdp = Sdp::parse(b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nX=upper\r\na=x-whatever:1 2\r\n")
            .unwrap();
        assert_eq!(sdp.session[2], Line::new(b'X', "upper"));
        assert_eq!(sdp.session[3], Line::new(b'a', "x-whatever:1 2"));
    }

    #[test]
    fn reports_the_bad_line_number() {
        let cases: [(&[u8], usize); 5] = [
            (b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nnot a line\r\n", 3),
            (b"v=0\r\n\r\no=- 1 1 IN IP4 1.2.3.4\r\n", 2),
            (b"v=0\r\n=x\r\n", 2),
            (b"v=0\r\n1=x\r\n", 2),
            (b"v=0\r\no=a\rb\r\n", 2),
        ];
        for (data, n) in cases {
            assert_eq!(Sdp::parse(data), Err(SdpError::BadLine(n)), "{data:?}");
        }
    }

    #[test]
    fn requires_v_and_o() {
        assert_eq!(Sdp::parse(b""), Err(SdpError::MissingRequired));
        assert_eq!(
            Sdp::parse(b"v=0\r\ns=-\r\n"),
            Err(SdpError::MissingRequired)
        );
        assert_eq!(
            Sdp::parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n"),
            Err(SdpError::MissingRequired)
        );
        // v= and o= only count at session level.
        assert_eq!(
            Sdp::parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\no=- 1 1 IN IP4 1.2.3.4\r\n"),
            Err(SdpError::MissingRequired)
        );
        assert_eq!(Sdp::parse(b"v=0\r\no=\xff\r\n"), Err(SdpError::NotUtf8));
        // There is no version but 0 (RFC 8866 §5.1).
        for v in ["", "1", "0 ", "00"] {
            let text = format!("v={v}\r\no=- 1 1 IN IP4 1.2.3.4\r\n");
            assert_eq!(
                Sdp::parse(text.as_bytes()),
                Err(SdpError::MissingRequired),
                "{v:?}"
            );
        }
        assert!(Sdp::parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n").is_ok());
    }

    #[test]
    fn to_bytes_uses_crlf_and_round_trips() {
        for text in ALL {
            let sdp = Sdp::parse(text.as_bytes()).unwrap();
            let bytes = sdp.to_bytes();
            let out = std::str::from_utf8(&bytes).unwrap();
            assert!(out.ends_with("\r\n"));
            assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
            assert_eq!(Sdp::parse(&bytes).unwrap(), sdp);
            assert_eq!(out.replace("\r\n", "\n"), text.replace("\r\n", "\n"));
        }
    }
}
