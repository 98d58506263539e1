//! Hold crosses with its meaning (RFC 3264 §8.4): `c=0.0.0.0` becomes veil's address plus
//! the direction attribute that says the same; veil's o= version moves exactly when what it
//! sends on that leg changes.

use super::*;

const FROM: &str = "\"Alice\" <sip:alice@127.0.0.2>;tag=pbxtag";

fn version(body: &[u8]) -> u64 {
    let s = std::str::from_utf8(body).unwrap();
    s.lines()
        .find(|l| l.starts_with("o="))
        .and_then(|l| l.split(' ').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn reinvite(to_hdr: &str, cseq: u32, sdp: &str) -> String {
    in_dialog("INVITE", FROM, to_hdr, "a-call-1", cseq, "127.0.0.2:5060").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    )
}

#[test]
fn zero_address_hold_reaches_the_other_side_as_sendonly_with_a_new_version() {
    let (mut h, b_inv, ok) = answered_call();
    let to_hdr = ok.headers.get(&HeaderName::To).unwrap().to_string();
    h.inject(
        PBX,
        &in_dialog("ACK", FROM, &to_hdr, "a-call-1", 10, "127.0.0.2:5060"),
    );
    let held = offer_sdp("127.0.0.2", 6000, "pbxsecret")
        .replace("c=IN IP4 127.0.0.2", "c=IN IP4 0.0.0.0")
        + "a=sendrecv\r\n";
    h.inject(PBX, &reinvite(&to_hdr, 12, &held));
    let b_re = h.take_request(CARRIER, "INVITE");
    let body = std::str::from_utf8(&b_re.body).unwrap();
    assert!(body.contains("a=sendonly\r\n"), "{body}");
    assert!(!body.contains("a=sendrecv"), "{body}");
    assert!(!body.contains("0.0.0.0"), "{body}");
    assert_eq!(version(&b_re.body), version(&b_inv.body) + 1, "{body}");
}
