//! Unit tests of the parser, one group per function.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::sip::uri::{Host, SipUri, param};

fn req(data: &str) -> Request {
    match parse_message(data.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn resp(data: &str) -> Response {
    match parse_message(data.as_bytes()) {
        Ok(Message::Response(r)) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

// ------------------------------------------------------------------ parse_message

#[test]
fn parses_a_plain_invite() {
    let r = req(INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.to_string(), "sip:bob@biloxi.example.com");
    assert_eq!(r.headers.0.len(), 8, "Content-Length is consumed, not kept");
    assert!(!r.headers.contains(&HeaderName::ContentLength));
    assert_eq!(
        r.call_id().unwrap(),
        "a84b4c76e66710@pc33.atlanta.example.com"
    );
    assert_eq!(
        r.cseq().unwrap(),
        CSeq {
            seq: 314159,
            method: Method::Invite
        }
    );
    assert_eq!(&r.body[..], b"v=0\n");
    assert_eq!(r.from_hdr().unwrap().tag(), Some("1928301774"));
    check_request_sanity(&r).unwrap();
}

#[test]
fn compact_header_names_map_to_long_forms() {
    let r = req(
        "OPTIONS sip:x@h SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:a@h>;tag=1\r\n\
                 t: <sip:x@h>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nm: <sip:a@h>\r\nc: text/plain\r\n\
                 k: timer\r\nl: 2\r\n\r\nhi",
    );
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::Contact,
        HeaderName::ContentType,
        HeaderName::Supported,
    ] {
        assert!(r.headers.contains(&name), "{name}");
    }
    assert_eq!(&r.body[..], b"hi");
    check_request_sanity(&r).unwrap();
}

#[test]
fn header_names_are_case_insensitive_and_values_trimmed() {
    let r = req(
        "OPTIONS sip:x@h SIP/2.0\r\nVIA  :   SIP/2.0/UDP h \r\ncall-id:\tabc\t\r\n\
                 X-Custom : v\r\n\r\n",
    );
    assert_eq!(r.headers.get(&HeaderName::Via), Some("SIP/2.0/UDP h"));
    assert_eq!(r.headers.get(&HeaderName::CallId), Some("abc"));
    assert_eq!(r.headers.0[2].name, HeaderName::Other("X-Custom".into()));
    assert_eq!(r.headers.0[2].value, "v");
}

#[test]
fn folded_lines_are_joined_with_one_space() {
    let r = req(
        "OPTIONS sip:x@h SIP/2.0\r\nSubject: first   \r\n   second\r\n\tthird\r\n\
                 Route:\r\n <sip:p@h;lr>\r\n\r\n",
    );
    assert_eq!(
        r.headers.get(&HeaderName::Subject),
        Some("first second third")
    );
    assert_eq!(r.headers.get(&HeaderName::Route), Some("<sip:p@h;lr>"));
}

#[test]
fn continuation_before_any_header_is_rejected() {
    assert_eq!(
        parse_message(b"OPTIONS sip:x@h SIP/2.0\r\n folded\r\n\r\n"),
        Err(BadHeaderLine)
    );
    assert_eq!(
        parse_message(b"OPTIONS sip:x@h SIP/2.0\r\nNoColon\r\n\r\n"),
        Err(BadHeaderLine)
    );
    assert_eq!(
        parse_message(b"OPTIONS sip:x@h SIP/2.0\r\nBad Name: v\r\n\r\n"),
        Err(BadHeaderLine)
    );
    assert_eq!(
        parse_message(b"OPTIONS sip:x@h SIP/2.0\r\n: v\r\n\r\n"),
        Err(BadHeaderLine)
    );
}

#[test]
fn lf_only_line_ends_are_accepted() {
    let r = req(&INVITE.replace("\r\n", "\n"));
    assert_eq!(r.headers.0.len(), 8);
    assert_eq!(&r.body[..], b"v=0\n");
    let s = resp("SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP h\nContent-Length: 0\n\n");
    assert_eq!(s.code, 180);
    assert_eq!(s.reason, "Ringing");
}

#[test]
fn leading_crlfs_are_ignored() {
    assert_eq!(req(&format!("\r\n\r\n{INVITE}")), req(INVITE));
}

#[test]
fn missing_blank_line_is_no_header_end() {
    assert_eq!(
        parse_message(b"OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"),
        Err(NoHeaderEnd)
    );
    assert_eq!(
        parse_message(b"OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h"),
        Err(NoHeaderEnd)
    );
    assert_eq!(parse_message(b"OPTIONS sip:x@h SIP/2.0"), Err(NoHeaderEnd));
    assert_eq!(parse_message(b""), Err(NoHeaderEnd));
    assert_eq!(parse_message(b"\r\n\r\n"), Err(NoHeaderEnd));
}

#[test]
fn content_length_rules() {
    let base = "MESSAGE sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n";
    let p = |hdrs: &str, body: &str| parse_message(format!("{base}{hdrs}\r\n{body}").as_bytes());
    // Shorter body than announced.
    assert_eq!(p("Content-Length: 10\r\n", "short"), Err(BadContentLength));
    // Negative, non-numeric, overflowing.
    assert_eq!(p("Content-Length: -5\r\n", ""), Err(BadContentLength));
    assert_eq!(
        p("Content-Length: five\r\n", "five!"),
        Err(BadContentLength)
    );
    assert_eq!(p("Content-Length: \r\n", ""), Err(BadContentLength));
    assert_eq!(
        p("Content-Length: 99999999999999999999999999\r\n", ""),
        Err(BadContentLength)
    );
    // Two differing values; two equal ones are fine.
    assert_eq!(
        p("Content-Length: 2\r\nl: 3\r\n", "abc"),
        Err(BadContentLength)
    );
    let Ok(Message::Request(r)) = p("Content-Length: 2\r\nl: 02\r\n", "ab") else {
        panic!()
    };
    assert_eq!(&r.body[..], b"ab");
    // Extra octets after the body on a datagram are ignored.
    let Ok(Message::Request(r)) = p("l: 3\r\n", "abcdef") else {
        panic!()
    };
    assert_eq!(&r.body[..], b"abc");
    // No Content-Length on a datagram: the body is the rest.
    let Ok(Message::Request(r)) = p("", "whole rest\r\n") else {
        panic!()
    };
    assert_eq!(&r.body[..], b"whole rest\r\n");
}

#[test]
fn request_line_must_be_exact() {
    let with_line =
        |l: &str| parse_message(format!("{l}\r\nVia: SIP/2.0/UDP h\r\n\r\n").as_bytes());
    assert!(with_line("INVITE sip:x@h SIP/2.0").is_ok());
    assert_eq!(with_line("INVITE  sip:x@h SIP/2.0"), Err(BadStartLine));
    assert_eq!(with_line("INVITE sip:x@h SIP/2.0 "), Err(BadStartLine));
    assert_eq!(with_line(" INVITE sip:x@h SIP/2.0"), Err(BadStartLine));
    assert_eq!(with_line("INVITE sip:x@h; lr SIP/2.0"), Err(BadStartLine));
    assert_eq!(with_line("INVITE <sip:x@h> SIP/2.0"), Err(BadUri));
    assert_eq!(with_line("INVITE sip:x@h\tSIP/2.0"), Err(BadStartLine));
    assert_eq!(with_line("INV\"ITE sip:x@h SIP/2.0"), Err(BadStartLine));
    assert_eq!(with_line("INVITE sip:x@h SIP/3.0"), Err(BadVersion));
    assert_eq!(with_line("INVITE sip:x@h HTTP/1.1"), Err(BadStartLine));
    assert!(
        with_line("INVITE sip:x@h sip/2.0").is_ok(),
        "the SIP literal is case-insensitive"
    );
}

#[test]
fn unknown_method_and_unknown_scheme_still_parse() {
    let r = req("FOO sip:x@h SIP/2.0\r\nCSeq: 1 FOO\r\n\r\n");
    assert_eq!(r.method, Method::Other("FOO".into()));
    let r = req("OPTIONS urn:service:sos SIP/2.0\r\n\r\n");
    assert_eq!(r.uri, Uri::Other("urn:service:sos".into()));
    assert_eq!(r.uri.scheme(), "urn");
}

#[test]
fn status_line_rules() {
    let with_line =
        |l: &str| parse_message(format!("{l}\r\nVia: SIP/2.0/UDP h\r\n\r\n").as_bytes());
    let Ok(Message::Response(r)) = with_line("SIP/2.0 100 ") else {
        panic!()
    };
    assert_eq!((r.code, r.reason.as_str()), (100, ""));
    let Ok(Message::Response(r)) = with_line("SIP/2.0 486 Busy Here") else {
        panic!()
    };
    assert_eq!((r.code, r.reason.as_str()), (486, "Busy Here"));
    let Ok(Message::Response(r)) = with_line("SIP/2.0 200 Ça va – très bien") else {
        panic!()
    };
    assert_eq!(r.reason, "Ça va – très bien");
    assert_eq!(with_line("SIP/2.0 4294967301 big"), Err(BadStartLine));
    assert_eq!(with_line("SIP/2.0 099 low"), Err(BadStartLine));
    assert_eq!(with_line("SIP/2.0 700 high"), Err(BadStartLine));
    assert_eq!(with_line("SIP/2.0 20x OK"), Err(BadStartLine));
    assert_eq!(with_line("SIP/2.1 200 OK"), Err(BadVersion));
    assert_eq!(with_line("SIP/2.0"), Err(BadStartLine));
}

#[test]
fn non_utf8_header_text_degrades_instead_of_failing() {
    let mut m = b"OPTIONS sip:x@h SIP/2.0\r\nSubject: caf".to_vec();
    m.extend_from_slice(&[0xe9]);
    m.extend_from_slice(b"\r\n\r\n");
    let Ok(Message::Request(r)) = parse_message(&m) else {
        panic!()
    };
    assert_eq!(r.headers.get(&HeaderName::Subject), Some("caf\u{fffd}"));
    // ... but not in the Request-URI.
    assert_eq!(
        parse_message(b"OPTIONS sip:\xe9@h SIP/2.0\r\n\r\n"),
        Err(BadStartLine)
    );
}

#[test]
fn to_bytes_round_trips() {
    let texts = [
        INVITE.to_string(),
        INVITE.replace("\r\n", "\n").replace("Content-Length: 4\n", ""),
        "SIP/2.0 100 \r\nv: SIP/2.0/UDP [2001:DB8::1]:5060;branch=z9hG4bKx;received=2001:db8::1\r\n\
         i: x\r\nl: 0\r\n\r\n"
            .to_string(),
        "REGISTER sips:[2001:db8::10]:5061;transport=tcp SIP/2.0\r\nSubject: a\r\n b\r\n\
         X-Empty:\r\n\r\n"
            .to_string(),
    ];
    for t in texts {
        let m = parse_message(t.as_bytes()).unwrap();
        let wire = match &m {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        };
        assert_eq!(
            parse_message(&wire).unwrap(),
            m,
            "{}",
            String::from_utf8_lossy(&wire)
        );
    }
}

// ------------------------------------------------------------------ parse_uri

fn sip(s: &str) -> SipUri {
    match parse_uri(s) {
        Ok(Uri::Sip(u)) => u,
        other => panic!("{s}: {other:?}"),
    }
}

#[test]
fn sip_uri_parts() {
    let u = sip("sip:alice:secret@atlanta.example.com:5070;transport=tcp;lr?subject=hi&h=2");
    assert!(!u.secure);
    assert_eq!(u.user.as_deref(), Some("alice"));
    assert_eq!(u.password.as_deref(), Some("secret"));
    assert_eq!(u.host, Host::Name("atlanta.example.com".into()));
    assert_eq!(u.port, Some(5070));
    assert_eq!(
        u.params,
        vec![
            ("transport".into(), Some("tcp".into())),
            ("lr".into(), None)
        ]
    );
    assert_eq!(u.headers.as_deref(), Some("subject=hi&h=2"));
    assert!(sip("SIPS:h").secure);
    assert_eq!(
        sip("sip:192.0.2.4").host,
        Host::V4(Ipv4Addr::new(192, 0, 2, 4))
    );
}

#[test]
fn sip_uri_keeps_escapes_and_semicolons_in_the_user() {
    let u = sip("sip:user;par=u%40example.net@example.com");
    assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(u.host, Host::Name("example.com".into()));
    assert!(u.params.is_empty());
    assert_eq!(
        sip("sip:null-%00-null@h").user.as_deref(),
        Some("null-%00-null")
    );
}

#[test]
fn sip_uri_ipv6_literals() {
    let u = sip("sip:[2001:db8::10]:5070;maddr=[2001:db8::20]");
    assert_eq!(
        u.host,
        Host::V6("2001:db8::10".parse::<Ipv6Addr>().unwrap())
    );
    assert_eq!(u.port, Some(5070));
    assert_eq!(param(&u.params, "maddr"), Some(Some("[2001:db8::20]")));
    let u = sip("sip:alice@[::ffff:192.0.2.1]");
    assert_eq!(u.port, None);
    assert_eq!(u.to_string(), "sip:alice@[::ffff:192.0.2.1]");
    for bad in [
        "sip:[2001:db8::10",
        "sip:2001:db8::10]",
        "sip:[2001:db8::10]5060",
        "sip:[2001:db8::zz]",
        "sip:[192.0.2.1]",
        "sip:2001:db8::10",
    ] {
        assert_eq!(parse_uri(bad), Err(BadUri), "{bad}");
    }
}

#[test]
fn sip_uri_rejects_garbage() {
    for bad in [
        "sip:",
        "sip:h:",
        "sip:h:65536",
        "sip:h:50a",
        "sip:h:123456",
        "sip:a b@h",
        "sip:h;lr ",
        "sip:@h",
        "sip:h;;lr",
        "sip:h;=v",
        "sip:h<",
        "sip:ho$t",
        "sip:\"x\"@h",
        "nocolon",
        ":nothing",
        "1sip:h",
        "sip:\u{e9}@h",
    ] {
        assert_eq!(parse_uri(bad), Err(BadUri), "{bad}");
    }
}

#[test]
fn tel_uris() {
    let Ok(Uri::Tel(t)) = parse_uri("tel:+1-201-555-0123;ext=42") else {
        panic!()
    };
    assert_eq!(t.number, "+1-201-555-0123");
    assert_eq!(t.params, vec![("ext".into(), Some("42".into()))]);
    let Ok(Uri::Tel(t)) = parse_uri("TEL:7042;phone-context=example.com") else {
        panic!()
    };
    assert_eq!(t.number, "7042");
    assert_eq!(
        parse_uri("tel:+1-201-555-0123;ext=42").unwrap().to_string(),
        "tel:+1-201-555-0123;ext=42"
    );
    assert_eq!(parse_uri("tel:"), Err(BadUri));
    assert_eq!(parse_uri("tel:+"), Err(BadUri));
    assert_eq!(parse_uri("tel:12 34"), Err(BadUri));
    assert_eq!(parse_uri("tel:12$4"), Err(BadUri));
}

#[test]
fn other_schemes_are_verbatim() {
    assert_eq!(
        parse_uri("soap.beep://192.0.2.103:3002"),
        Ok(Uri::Other("soap.beep://192.0.2.103:3002".into()))
    );
    assert_eq!(parse_uri("mailto:a@b"), Ok(Uri::Other("mailto:a@b".into())));
    assert_eq!(parse_uri("mailto:a b"), Err(BadUri));
}

// ------------------------------------------------------------------ parse_name_addr

#[test]
fn name_addr_forms() {
    let n = parse_name_addr("\"Alice \\\"A\\\" Liddell\" <sip:alice@h>;tag=1").unwrap();
    assert_eq!(n.display.as_deref(), Some("\"Alice \\\"A\\\" Liddell\""));
    assert_eq!(n.tag(), Some("1"));
    let n = parse_name_addr("Bob  Smith <sip:bob@h;lr> ; tag = x ; flag").unwrap();
    assert_eq!(n.display.as_deref(), Some("Bob  Smith"));
    assert_eq!(n.uri.to_string(), "sip:bob@h;lr");
    assert_eq!(
        n.params,
        vec![("tag".into(), Some("x".into())), ("flag".into(), None)]
    );
    let n = parse_name_addr("caller<sip:caller@h>").unwrap();
    assert_eq!(n.display.as_deref(), Some("caller"));
    let n = parse_name_addr("<tel:+123>").unwrap();
    assert_eq!(n.display, None);
    assert_eq!(n.uri.user(), Some("+123"));
    let n = parse_name_addr("<sip:a@h>;p=\"quoted;value,x\"").unwrap();
    assert_eq!(param(&n.params, "p"), Some(Some("\"quoted;value,x\"")));
}

#[test]
fn bare_addr_spec_params_belong_to_the_header() {
    let n = parse_name_addr("sip:a@b;tag=x").unwrap();
    assert_eq!(n.uri.to_string(), "sip:a@b");
    assert_eq!(n.tag(), Some("x"));
    let n = parse_name_addr("sip:a@b ;  tag   = y").unwrap();
    assert_eq!(n.tag(), Some("y"));
    // A URI with headers must be in <> (RFC 4475 §3.1.2.13).
    assert!(parse_name_addr("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
    assert!(parse_name_addr("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").is_ok());
}

#[test]
fn name_addr_rejects_malformed() {
    for bad in [
        "",
        "\"Mr. J. User <sip:j.user@example.com>",
        "\"unterminated \\\"",
        "Bell, Alexander <sip:a@h>",
        "< sip:a@h >",
        "<sip:a@h",
        "\"x\" sip:a@h",
        "<sip:a@h>;;",
        "<sip:a@h>;tag=",
        "<sip:a@h> junk",
        "<sip:a@h>;p=\"open",
        "sip:a@h, sip:b@h",
    ] {
        assert!(parse_name_addr(bad).is_err(), "{bad}");
    }
}

#[test]
fn name_addr_never_panics_on_multibyte_input() {
    for s in [
        "\"é",
        "é<",
        "<é>",
        "\"\\é\" <sip:a@h>",
        "sip:é",
        "\"\\",
        "<sip:a@h>;é=é",
        "é",
        "\"é\"é<sip:a@h>",
    ] {
        let _ = parse_name_addr(s);
        let _ = parse_via(s);
        let _ = parse_uri(s);
    }
    let n = parse_name_addr("\"Zoë \\é\" <sip:z@h>").unwrap();
    assert_eq!(n.display.as_deref(), Some("\"Zoë \\é\""));
}

// ------------------------------------------------------------------ parse_via

#[test]
fn via_forms() {
    let v = parse_via("SIP/2.0/udp pc33.example.com:5066;branch=z9hG4bK776;rport").unwrap();
    assert_eq!(v.transport, "UDP");
    assert_eq!(v.host, Host::Name("pc33.example.com".into()));
    assert_eq!(v.port, Some(5066));
    assert_eq!(v.branch(), Some("z9hG4bK776"));
    assert_eq!(v.rport(), Some(None));
    let v = parse_via("SIP  /   2.0 /UDP    192.0.2.2 ; branch = 390skdjuw").unwrap();
    assert_eq!(v.host, Host::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(v.branch(), Some("390skdjuw"));
    let v = parse_via("SIP/2.0/TCP [2001:db8::9:1]:5061;received=2001:db8::9:255;branch=z9hG4bKas")
        .unwrap();
    assert_eq!(v.host, Host::V6("2001:db8::9:1".parse().unwrap()));
    assert_eq!(v.port, Some(5061));
    assert_eq!(v.received(), Some("2001:db8::9:255"));
    let v = parse_via("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255]").unwrap();
    assert_eq!(v.port, None);
    assert_eq!(v.received(), Some("[2001:db8::9:255]"));
    let v = parse_via("SIP/2.0/SCTP h : 5060").unwrap();
    assert_eq!((v.transport.as_str(), v.port), ("SCTP", Some(5060)));
    assert_eq!(
        parse_via("SIP/2.0/UDP h;branch=z9;rport=5060")
            .unwrap()
            .to_string(),
        "SIP/2.0/UDP h;branch=z9;rport=5060"
    );
}

#[test]
fn via_rejects_malformed() {
    for bad in [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 h",
        "SIP/7.0/UDP h",
        "HTTP/2.0/UDP h",
        "SIP/2.0/UDP h;;",
        "SIP/2.0/UDP h;",
        "SIP/2.0/UDP h:",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP [2001:db8::1",
        "SIP/2.0/UDP [2001:db8::1]x",
        "SIP/2.0/UDP h junk",
        "SIP/2.0/UDPh",
    ] {
        assert!(parse_via(bad).is_err(), "{bad}");
    }
}

// ------------------------------------------------------------------ parse_cseq / parse_rack

#[test]
fn cseq_and_rack() {
    assert_eq!(
        parse_cseq("0009  INVITE"),
        Ok(CSeq {
            seq: 9,
            method: Method::Invite
        })
    );
    assert_eq!(
        parse_cseq("2147483647 FOO").unwrap().method,
        Method::Other("FOO".into())
    );
    for bad in [
        "2147483648 INVITE",
        "36893488147419103232 REGISTER",
        "INVITE",
        "1",
        "-1 BYE",
        "1 BYE x",
        "1 B@D",
        "",
    ] {
        assert!(parse_cseq(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_rack("776656 1 INVITE"),
        Ok(RAck {
            rseq: 776656,
            cseq: 1,
            method: Method::Invite
        })
    );
    for bad in ["1 INVITE", "1 2 ?", "a 1 INVITE", "1 1 INVITE x"] {
        assert!(parse_rack(bad).is_err(), "{bad}");
    }
}

// ------------------------------------------------------------------ sanity checks

#[test]
fn request_sanity() {
    let ok = req(INVITE);
    check_request_sanity(&ok).unwrap();
    let broken = |from: &str, to: &str| req(&INVITE.replacen(from, to, 1));
    assert_eq!(
        check_request_sanity(&broken("CSeq: 314159 INVITE", "CSeq: 314159 BYE")),
        Err(BadHeader("CSeq"))
    );
    assert_eq!(
        check_request_sanity(&broken("Call-ID: a84b", "X-Call-ID: a84b")),
        Err(MissingHeader("Call-ID"))
    );
    assert_eq!(
        check_request_sanity(&broken("Max-Forwards: 70", "Max-Forwards: 300")),
        Err(BadHeader("Max-Forwards"))
    );
    assert_eq!(
        check_request_sanity(&broken("Max-Forwards: 70", "Max-Forwards: x")),
        Err(BadHeader("Max-Forwards"))
    );
    assert_eq!(
        check_request_sanity(&broken("To: Bob <sip", "To: \"Bob <sip")),
        Err(BadHeader("To"))
    );
    assert_eq!(
        check_request_sanity(&broken("Via: SIP/2.0/UDP", "Via: SIP/2.0/UDP h;;,")),
        Err(BadHeader("Via"))
    );
    assert_eq!(
        check_request_sanity(&broken("Via: ", "X-Via: ")),
        Err(MissingHeader("Via"))
    );
    assert_eq!(
        check_request_sanity(&broken("Call-ID: a84b", "Call-ID: x\r\nCall-ID: a84b")),
        Err(BadHeader("Call-ID"))
    );
    assert_eq!(
        check_request_sanity(&broken(
            "Contact: <sip:alice@pc33",
            "Contact: <sip: alice@pc33"
        )),
        Err(BadHeader("Contact"))
    );
    assert_eq!(
        check_request_sanity(&broken(
            "sip:bob@biloxi.example.com SIP",
            "sip:bob@biloxi.example.com?h=v SIP"
        )),
        Err(BadUri)
    );
    check_request_sanity(&broken(
        "Contact: <sip:alice@pc33.atlanta.example.com>",
        "Contact: *",
    ))
    .unwrap();
}

#[test]
fn response_sanity() {
    let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
                To: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
    check_response_sanity(&resp(text)).unwrap();
    assert_eq!(
        check_response_sanity(&resp(
            &text.replace("CSeq: 1", "CSeq: 9292394834772304023312")
        )),
        Err(BadHeader("CSeq"))
    );
}

#[test]
fn header_name_lookup_without_allocation_edge_cases() {
    assert_eq!(
        HeaderName::parse("P-PREFERRED-IDENTITY"),
        HeaderName::PPreferredIdentity
    );
    assert_eq!(HeaderName::parse("L"), HeaderName::ContentLength);
    let long = "X-A-Very-Long-Header-Name-Indeed";
    assert_eq!(HeaderName::parse(long), HeaderName::Other(long.into()));
    assert_eq!(
        HeaderName::parse("X-Mixed"),
        HeaderName::Other("X-Mixed".into())
    );
}

#[test]
fn ipv4_hosts_parse_as_std_does() {
    for h in [
        "0.0.0.0",
        "127.0.0.1",
        "255.255.255.255",
        "1.10.100.200",
        "256.1.1.1",
        "1.1.1.256",
        "01.2.3.4",
        "1.2.3.04",
        "1.2.3.0",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4.",
        ".1.2.3",
        "1..2.3",
        "1.2.3.4 ",
        "1.2.3.1000",
        "0001.2.3.4",
        "+1.2.3.4",
        "1.2.3.-4",
        "a.b.c.d",
        "example.com",
        "",
        "1.2.3.4:5060",
        "١.٢.٣.٤",
        "000.0.0.0",
        "100.200.250.255",
    ] {
        assert_eq!(parse_ipv4(h), h.parse().ok(), "{h:?}");
    }
}

/// The sanity checks as they were before they read borrowed views: every Via, From, To
/// and Contact fully parsed into owned values.
fn owned_sanity(req: &Request) -> Result<(), ParseError> {
    if let Uri::Sip(u) = &req.uri
        && u.headers.is_some()
    {
        return Err(BadUri);
    }
    let h = &req.headers;
    req.vias()?;
    parse_name_addr(single(h, &HeaderName::From, "From")?).map_err(|_| BadHeader("From"))?;
    parse_name_addr(single(h, &HeaderName::To, "To")?).map_err(|_| BadHeader("To"))?;
    let call_id = single(h, &HeaderName::CallId, "Call-ID")?;
    if call_id.is_empty() || !call_id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(BadHeader("Call-ID"));
    }
    let cseq = parse_cseq(single(h, &HeaderName::CSeq, "CSeq")?)?;
    if cseq.method != req.method {
        return Err(BadHeader("CSeq"));
    }
    let mut mf = h.get_all(&HeaderName::MaxForwards);
    if let Some(v) = mf.next()
        && (mf.next().is_some() || parse_digits(v.as_bytes()).is_none_or(|n| n > 255))
    {
        return Err(BadHeader("Max-Forwards"));
    }
    for c in h.values(&HeaderName::Contact) {
        if c != "*" {
            parse_name_addr(c).map_err(|_| BadHeader("Contact"))?;
        }
    }
    Ok(())
}

#[test]
fn fast_checks_agree_with_the_parsers() {
    let name_addrs = [
        "<sip:a@b>",
        "<sip:a@b>;tag=x",
        "\"A;b\" <sip:a@b;tag=no>;tag=yes",
        "Bob <sip:bob@10.0.0.1:5070;transport=tcp>;TAG=Up;tag=low",
        " <sip:a@b> ; tag = x ",
        "<sip:a@b>;tag",
        "<sip:a@b>;tag;tag=late",
        "<sip:a@b>;tag=",
        "<sip:a@b>;tag=\"quoted\"",
        "<sip:a@b>;tag=x;",
        "<sip:a@b>x",
        "<sip:a@b",
        "sip:a@b;tag=t1;x",
        "sip:a@b?x;tag=1",
        "sip:a@b,c;tag=1",
        "<tel:+1-555-0100;phone-context=x>;tag=t",
        "<tel:abc-xyz>;tag=t",
        "<mailto:a@b>;tag=t",
        "<sip:@b>;tag=t",
        "<sip:a@b;;x>;tag=t",
        "<sip:a@[2001:db8::1]:5060>;tag=v6",
        "<sip:a@[2001:db8::1>;tag=v6",
        "<sip:a@256.1.1.1>;tag=name",
        "<sip:a@01.2.3.4>;tag=name",
        "<sip:a@1.2.3.4:99999>;tag=t",
        "\"unterminated <sip:a@b>;tag=t",
        "<sip:a@b>;tag=t;p=\"x\\\"y\"",
        "<sip:a@b>;tag=t;p=\"open",
        "<sip:a@b> ;tag=é",
        "",
        "*",
    ];
    let vias = [
        "SIP/2.0/UDP 127.0.0.2:15060;branch=z9hG4bK-1",
        "SIP/2.0/UDP 127.0.0.2:15060;branch=z9hG4bK-1;rport, SIP/2.0/TCP b;branch=2",
        "SIP / 2.0 / tcp [2001:db8::1] : 5061 ; BRANCH = z9hG4bKx ; received=1.2.3.4",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host:;branch=x",
        "SIP/2.0/UDP 1.2.3.4:5060 ;branch=x junk",
        "SIP/3.0/UDP host;branch=x",
        "SIP/2.0 host;branch=x",
        "SIP/2.0/UDP",
        ", , SIP/2.0/UDP h;branch=x",
        "",
    ];
    let mut messages = Vec::new();
    for (i, &na) in name_addrs.iter().enumerate() {
        let via = vias[i % vias.len()];
        for (from, to, contact) in [(na, "<sip:b@c>", "<sip:c@d>"), ("<sip:b@c>;tag=f", na, na)] {
            messages.push(format!(
                "INVITE sip:u@h SIP/2.0\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ));
        }
    }
    for via in vias {
        messages.push(format!(
            "BYE sip:u@h SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        ));
    }
    messages.push("OPTIONS sip:u@h SIP/2.0\r\nFrom: <sip:a@b>\r\nTo: <sip:b@c>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n".into());
    let mut rejected = 0;
    for m in &messages {
        let r = req(m);
        assert_eq!(check_request_sanity(&r), owned_sanity(&r), "{m}");
        rejected += usize::from(owned_sanity(&r).is_err());
        assert_eq!(
            r.to_tag(),
            r.to_hdr()
                .ok()
                .and_then(|t| t.tag().map(str::to_owned))
                .as_deref(),
            "{m}"
        );
        assert_eq!(
            r.from_ref()
                .ok()
                .map(|f| (f.tag().map(str::to_owned), f.to_owned_name_addr())),
            r.from_hdr().ok().map(|f| (f.tag().map(str::to_owned), f)),
            "{m}"
        );
        assert_eq!(
            r.top_via_ref()
                .map(|v| (v.branch().map(str::to_owned), v.to_owned_via())),
            r.top_via().map(|v| (v.branch().map(str::to_owned), v)),
            "{m}"
        );
    }
    // The set exercises both outcomes.
    assert!(
        rejected > 10 && rejected < messages.len() - 10,
        "{rejected}"
    );
}
