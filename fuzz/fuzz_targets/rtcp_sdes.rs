//! RTCP SDES rewriting on the relay's packet path: any datagram, any CNAME. `rewrite` must
//! never panic; what it produces must be well framed, carry no SDES item but veil's CNAME
//! and the kept types, leave the other packets as they were, and be a fixed point (a
//! second rewrite changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil::media::rtcp_sdes::{Rewrite, rewrite};

/// (type, bytes) of each packet; panics on bad framing.
fn packets(mut p: &[u8]) -> Vec<(u8, &[u8])> {
    let mut v = Vec::new();
    while !p.is_empty() {
        assert!(p.len() >= 4 && p[0] >> 6 == 2, "bad header");
        let len = (usize::from(u16::from_be_bytes([p[2], p[3]])) + 1) * 4;
        v.push((p[1], &p[..len]));
        p = &p[len..];
    }
    v
}

/// Every item of an SDES packet veil wrote: CNAME equal to `cname`, or a kept type.
fn check_sdes(one: &[u8], cname: Option<&[u8]>) {
    assert_eq!(one[0] & 0x20, 0, "padding left on a rewritten SDES");
    let mut at = 4;
    for _ in 0..one[0] & 0x1f {
        at += 4;
        while one[at] != 0 {
            let (kind, n) = (one[at], usize::from(one[at + 1]));
            let text = &one[at + 2..at + 2 + n];
            match kind {
                1 => assert_eq!(Some(text), cname, "a CNAME other than veil's"),
                2..=9 => panic!("item {kind} crossed"),
                _ => {}
            }
            at += 2 + n;
        }
        at = (at + 4) & !3;
    }
    assert_eq!(at, one.len(), "SDES length");
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, data)) = data.split_first() else {
        return;
    };
    // The first byte picks the CNAME: none, or 0..=63 octets (cut from the input's end).
    let cname: Option<Vec<u8>> = (n != 0xff).then(|| vec![b'c'; usize::from(n % 64)]);
    let cname = cname.as_deref();
    let mut out = Vec::new();
    match rewrite(data, cname, &mut out) {
        Err(_) => {}
        Ok(Rewrite::Unchanged) => {
            assert!(
                packets(data).iter().all(|(pt, _)| *pt != 202),
                "SDES left unchanged"
            );
        }
        Ok(Rewrite::Rewritten) => {
            let (before, after) = (packets(data), packets(&out));
            assert_eq!(before.len(), after.len());
            for ((pt_in, one_in), (pt_out, one_out)) in before.iter().zip(&after) {
                assert_eq!(pt_in, pt_out);
                if *pt_out == 202 {
                    check_sdes(one_out, cname);
                } else {
                    assert_eq!(one_in, one_out, "a non-SDES packet changed");
                }
            }
            let mut again = Vec::new();
            assert_eq!(rewrite(&out, cname, &mut again), Ok(Rewrite::Rewritten));
            assert_eq!(again, out, "not a fixed point");
        }
    }
});
