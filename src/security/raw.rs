//! Answers and classification from a message's raw bytes, without the full parser: the
//! 400 for a request that did not parse, and the overload 503 the socket tasks send when
//! the engine's queue is saturated (so shedding costs almost nothing).

use crate::sip::{HeaderName, Headers, Response, reason_phrase};

/// Bytes looked at: the headers a response needs come early.
const HEAD: usize = 8192;

/// The message's header lines (start line excluded) up to the blank line, leniently: a
/// line without a colon is skipped. `None` unless the start line is a request's.
fn request_head(data: &[u8]) -> Option<std::str::Lines<'_>> {
    let data = &data[..data.len().min(HEAD)];
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        // Cut at the first invalid byte.
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).ok()?,
    };
    let mut lines = text.lines();
    let first = lines.next()?;
    // `Method SP Request-URI SP SIP/x.y`: a version other than 2.0 still gets its 505.
    let version = first.trim_end().rsplit(' ').next()?;
    if first.starts_with("SIP/") || !version.starts_with("SIP/") {
        return None;
    }
    Some(lines)
}

/// A stateless response with `code` built from whatever Via/From/To/Call-ID/CSeq lines
/// can be read. `None` when the bytes are not recognisably a request, or lack what a
/// response needs (then the sender gets nothing).
pub fn response_from_raw(data: &[u8], code: u16, reason: &str) -> Option<Response> {
    let mut headers = Headers::new();
    for line in request_head(data)? {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = HeaderName::parse(name.trim());
        if matches!(
            name,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        ) {
            headers.push(name, value.trim());
        }
    }
    for required in [
        HeaderName::Via,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::From,
        HeaderName::To,
    ] {
        if !headers.contains(&required) {
            return None;
        }
    }
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    Some(Response {
        code,
        reason: if reason.is_empty() {
            reason_phrase(code).to_string()
        } else {
            reason
        },
        headers,
        body: Default::default(),
    })
}

/// Whether `data` starts a new call: an INVITE whose To has no tag. Only these are shed
/// under overload; everything in a dialog (BYE, ACK, re-INVITE) still goes through.
pub fn is_new_invite(data: &[u8]) -> bool {
    data.starts_with(b"INVITE ") && to_tagged(data) == Some(false)
}

/// Whether `data` is not recognisably part of something under way: anything but a
/// response, an ACK, a CANCEL or a request with a To tag (unreadable bytes included).
pub fn is_out_of_dialog_request(data: &[u8]) -> bool {
    !(data.starts_with(b"SIP/2.0 ")
        || data.starts_with(b"ACK ")
        || data.starts_with(b"CANCEL ")
        || to_tagged(data) == Some(true))
}

/// Whether the To header of the request in `data` carries a tag; `None` when `data` is
/// not recognisably a request.
fn to_tagged(data: &[u8]) -> Option<bool> {
    let lines = request_head(data)?;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if HeaderName::parse(name.trim()) == HeaderName::To {
            return Some(value.to_ascii_lowercase().contains(";tag="));
        }
    }
    Some(false)
}

/// The 503 sent when a new INVITE is shed (RFC 3261 §21.5.4: Retry-After tells the
/// caller when to try again).
pub fn overload_503(data: &[u8]) -> Option<bytes::Bytes> {
    busy_503(data, "5")
}

/// A stateless 503 with `Retry-After: retry_after` (seconds) to the request in `data`.
pub fn busy_503(data: &[u8], retry_after: &str) -> Option<bytes::Bytes> {
    let mut r = response_from_raw(data, 503, "Service Unavailable")?;
    r.headers.push(HeaderName::RetryAfter, retry_after);
    Some(r.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:1@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK1\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:1@x>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n";

    #[test]
    fn new_invite_classification() {
        assert!(is_new_invite(INVITE.as_bytes()));
        let re = INVITE.replace("To: <sip:1@x>", "t: <sip:1@x>;TAG=9");
        assert!(!is_new_invite(re.as_bytes()));
        assert!(!is_new_invite(b"BYE sip:1@x SIP/2.0\r\n\r\n"));
        assert!(!is_new_invite(b"INVITE"));
        assert!(is_out_of_dialog_request(INVITE.as_bytes()));
        assert!(!is_out_of_dialog_request(re.as_bytes()));
        let cancel = INVITE.replace("INVITE ", "CANCEL ");
        assert!(!is_out_of_dialog_request(cancel.as_bytes()));
        assert!(!is_out_of_dialog_request(b"SIP/2.0 200 OK\r\n\r\n"));
        assert!(is_out_of_dialog_request(b"\x00garbage"));
    }

    #[test]
    fn overload_answer_copies_the_transaction_headers() {
        let r = overload_503(INVITE.as_bytes()).unwrap();
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("SIP/2.0 503 Service Unavailable\r\n"));
        for h in [
            "Via: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK1",
            "Call-ID: c1",
            "CSeq: 1 INVITE",
            "Retry-After: 5",
        ] {
            assert!(text.contains(h), "{h} missing in\n{text}");
        }
        assert!(overload_503(b"INVITE sip:1@x SIP/2.0\r\nVia: x\r\n\r\n").is_none());
        assert!(overload_503(b"SIP/2.0 200 OK\r\n\r\n").is_none());
        assert!(overload_503(b"hello world\r\nVia: x\r\n\r\n").is_none());
        let v7 = INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
        let r = response_from_raw(v7.as_bytes(), 505, "").unwrap();
        assert_eq!(r.reason, "Version Not Supported");
    }
}
