//! RTCP SDES rewriting for topology hiding (RFC 3550 §6.5): phones fill the SDES CNAME
//! with their AOR and address (`sip:alice@10.1.2.3`), and NAME/EMAIL/PHONE/LOC/TOOL/NOTE
//! with the user's identity and the product; relayed as is, RTCP tells the far party what
//! veil's SDP hides. Every chunk's CNAME becomes the CNAME veil uses towards the
//! destination leg (the one in the `a=ssrc` lines of veil's SDP to it), the personal and
//! product items go. Other packets of the compound pass byte for byte.
//!
//! Sans-IO, on the packet path: one pass validates the compound's lengths, a second one
//! (only when there is SDES) writes into a buffer the caller reuses, so a warm relay does
//! not allocate.

/// SDES packet type.
const SDES: u8 = 202;
/// SDES item types (RFC 3550 §6.5, RFC 7022).
const END: u8 = 0;
const CNAME: u8 = 1;
/// NAME, EMAIL, PHONE, LOC, TOOL, NOTE, PRIV (RFC 3550) and H323-CADDR (RFC 3550's
/// registry, an H.323 call signalling address): identity, product or address. Later
/// types (APSI, MID, RtpStreamId, ...) carry negotiated identifiers and stay.
const REMOVED: std::ops::RangeInclusive<u8> = 2..=9;
/// The longest SDES item text: its length is one octet.
pub const MAX_ITEM: usize = 255;

/// The compound packet's lengths do not add up (RFC 3550 §6.1, A.2): a packet header
/// running past the datagram, a version other than 2, bad padding, SDES chunks or items
/// running past their packet. Such a packet is dropped, not repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// What `rewrite` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// No SDES: the packet is forwarded as received (`out` untouched).
    Unchanged,
    /// `out` holds the compound to forward instead.
    Rewritten,
}

/// Rewrite the SDES packets of the RTCP compound `packet` into `out` (cleared first):
/// CNAME items become `cname` (at most one per chunk; with `None` they are removed, which
/// never happens in the relay once the engine has named the leg's CNAME), NAME, EMAIL,
/// PHONE, LOC, TOOL, NOTE, PRIV and H323-CADDR items are removed, other items stay;
/// chunk termination, padding and the length field are recomputed and the padding bit of
/// a rewritten SDES packet is cleared (its padding is dropped). `cname` longer than 255
/// octets is cut.
pub fn rewrite(
    packet: &[u8],
    cname: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<Rewrite, Malformed> {
    if !validate(packet)? {
        return Ok(Rewrite::Unchanged);
    }
    let cname = cname.map(|c| &c[..c.len().min(MAX_ITEM)]);
    out.clear();
    out.reserve(packet.len() + 64);
    let mut rest = packet;
    while !rest.is_empty() {
        let len = packet_len(rest);
        let (one, next) = rest.split_at(len);
        if one[1] == SDES {
            rewrite_sdes(one, cname, out)?;
        } else {
            out.extend_from_slice(one);
        }
        rest = next;
    }
    Ok(Rewrite::Rewritten)
}

/// Length in octets of the packet at the start of `data` (header already checked).
fn packet_len(data: &[u8]) -> usize {
    (usize::from(u16::from_be_bytes([data[2], data[3]])) + 1) * 4
}

/// Checks the compound's framing; whether it holds an SDES packet.
fn validate(packet: &[u8]) -> Result<bool, Malformed> {
    if packet.is_empty() {
        return Err(Malformed);
    }
    let mut sdes = false;
    let mut rest = packet;
    while !rest.is_empty() {
        if rest.len() < 4 || rest[0] >> 6 != 2 {
            return Err(Malformed);
        }
        let len = packet_len(rest);
        if len > rest.len() {
            return Err(Malformed);
        }
        sdes |= rest[1] == SDES;
        rest = &rest[len..];
    }
    Ok(sdes)
}

/// One SDES packet (`one`, framing checked) rewritten onto the end of `out`.
fn rewrite_sdes(one: &[u8], cname: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), Malformed> {
    let chunks = one[0] & 0x1f;
    let mut body = &one[4..];
    if one[0] & 0x20 != 0 {
        // RFC 3550 §6.4.1: the last octet counts the padding octets, itself included.
        let pad = usize::from(*body.last().ok_or(Malformed)?);
        if pad == 0 || pad > body.len() {
            return Err(Malformed);
        }
        body = &body[..body.len() - pad];
    }
    let start = out.len();
    out.extend_from_slice(&[0x80 | chunks, SDES, 0, 0]);
    let mut at = 0;
    for _ in 0..chunks {
        let ssrc = body.get(at..at + 4).ok_or(Malformed)?;
        out.extend_from_slice(ssrc);
        at += 4;
        let mut named = false;
        loop {
            let kind = *body.get(at).ok_or(Malformed)?;
            if kind == END {
                // The null item, then nulls to the next 32-bit boundary (chunks start on
                // one, as the packet does).
                at = (at + 4) & !3;
                if at > body.len() {
                    return Err(Malformed);
                }
                break;
            }
            let len = usize::from(*body.get(at + 1).ok_or(Malformed)?);
            let text = body.get(at + 2..at + 2 + len).ok_or(Malformed)?;
            at += 2 + len;
            match kind {
                CNAME => {
                    if let (Some(ours), false) = (cname, named) {
                        out.extend_from_slice(&[CNAME, ours.len() as u8]);
                        out.extend_from_slice(ours);
                        named = true;
                    }
                }
                k if REMOVED.contains(&k) => {}
                _ => {
                    out.extend_from_slice(&[kind, len as u8]);
                    out.extend_from_slice(text);
                }
            }
        }
        out.push(END);
        while !(out.len() - start).is_multiple_of(4) {
            out.push(END);
        }
    }
    // Fewer chunks than the packet holds would leave the rest unread (and unrewritten);
    // only null octets may follow the last one.
    if body[at..].iter().any(|&b| b != 0) {
        return Err(Malformed);
    }
    let words = u16::try_from((out.len() - start) / 4 - 1).map_err(|_| Malformed)?;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &[u8] = b"0123456789abcdef";

    /// An SDES item.
    fn item(kind: u8, text: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, text.len() as u8];
        v.extend_from_slice(text);
        v
    }

    /// A chunk: SSRC, items, null termination to the next 32-bit boundary.
    fn chunk(ssrc: u32, items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = ssrc.to_be_bytes().to_vec();
        for i in items {
            v.extend_from_slice(i);
        }
        v.push(0);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    /// An RTCP packet with a correct length field around `body`.
    fn packet(count: u8, pt: u8, body: &[u8]) -> Vec<u8> {
        assert_eq!(body.len() % 4, 0);
        let words = (body.len() / 4) as u16;
        let mut v = vec![0x80 | count, pt];
        v.extend_from_slice(&words.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn sdes(chunks: &[Vec<u8>]) -> Vec<u8> {
        packet(chunks.len() as u8, SDES, &chunks.concat())
    }

    /// A sender report with one report block, as phones send them.
    fn sr(ssrc: u32) -> Vec<u8> {
        let mut body = ssrc.to_be_bytes().to_vec();
        body.extend_from_slice(&[0xe8, 0x3a, 0x1b, 0x22, 0x4d, 0x2f, 0x1a, 0x9b]); // NTP
        body.extend_from_slice(&[0, 0x01, 0xf4, 0x00]); // RTP timestamp
        body.extend_from_slice(&250u32.to_be_bytes()); // packets
        body.extend_from_slice(&40000u32.to_be_bytes()); // octets
        body.extend_from_slice(&0x5678u32.to_be_bytes()); // report block: SSRC
        body.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0x10, 0x20, 0, 0, 0, 9]);
        body.extend_from_slice(&[0x3a, 0x1b, 0x22, 0x4d, 0, 0, 0x20, 0]);
        packet(1, 200, &body)
    }

    fn run(p: &[u8], cname: Option<&[u8]>) -> Result<Vec<u8>, Malformed> {
        let mut out = Vec::new();
        match rewrite(p, cname, &mut out)? {
            Rewrite::Unchanged => Ok(p.to_vec()),
            Rewrite::Rewritten => Ok(out),
        }
    }

    /// Packets of a compound, checking every length field on the way.
    fn split(mut p: &[u8]) -> Vec<&[u8]> {
        let mut v = Vec::new();
        while !p.is_empty() {
            let len = packet_len(p);
            v.push(&p[..len]);
            p = &p[len..];
        }
        v
    }

    #[test]
    fn phone_sr_with_cname_name_tool_gets_veils_cname_only() {
        // The shape of a desk phone's compound: SR, then SDES with CNAME, NAME and TOOL.
        let phone = [
            sr(0x1234),
            sdes(&[chunk(
                0x1234,
                &[
                    item(CNAME, b"sip:alice@127.0.0.2"),
                    item(2, b"Alice Example"),
                    item(6, b"Acme Phone 5.1.2"),
                ],
            )]),
        ]
        .concat();
        let out = run(&phone, Some(OURS)).unwrap();
        let want = [sr(0x1234), sdes(&[chunk(0x1234, &[item(CNAME, OURS)])])].concat();
        assert_eq!(out, want);
        assert_eq!(split(&out)[1].len(), 4 + 4 + 2 + 16 + 2);
        assert_eq!(
            &out[out.len() - 24..out.len() - 20],
            &0x1234u32.to_be_bytes()
        );
    }

    #[test]
    fn every_personal_item_goes_and_unknown_items_stay() {
        let mut items = vec![item(CNAME, b"alice@10.1.2.3")];
        for kind in 2..=9 {
            items.push(item(kind, format!("secret{kind}").as_bytes()));
        }
        items.push(item(12, b"mid0")); // MID (RFC 8843)
        let out = run(&sdes(&[chunk(7, &items)]), Some(OURS)).unwrap();
        assert_eq!(
            out,
            sdes(&[chunk(7, &[item(CNAME, OURS), item(12, b"mid0")])])
        );
        assert!(!out.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn multiple_chunks_each_get_the_cname() {
        let p = sdes(&[
            chunk(1, &[item(CNAME, b"a"), item(7, b"on a call")]),
            chunk(
                2,
                &[
                    item(6, b"tool"),
                    item(CNAME, b"a-much-longer-cname@host.example"),
                ],
            ),
            chunk(3, &[]),
        ]);
        let out = run(&[sr(1), p].concat(), Some(OURS)).unwrap();
        let want = sdes(&[
            chunk(1, &[item(CNAME, OURS)]),
            chunk(2, &[item(CNAME, OURS)]),
            chunk(3, &[]),
        ]);
        assert_eq!(out, [sr(1), want].concat());
    }

    #[test]
    fn a_second_cname_in_a_chunk_goes_and_none_removes_them() {
        let p = sdes(&[chunk(1, &[item(CNAME, b"x@a"), item(CNAME, b"y@b")])]);
        assert_eq!(
            run(&p, Some(OURS)).unwrap(),
            sdes(&[chunk(1, &[item(CNAME, OURS)])])
        );
        assert_eq!(run(&p, None).unwrap(), sdes(&[chunk(1, &[])]));
    }

    #[test]
    fn lengths_and_termination_are_recomputed_for_every_size() {
        // Every CNAME length of ours and theirs modulo 4 lands on a 32-bit boundary with
        // at least one null octet.
        for theirs in 0..8 {
            for ours in [0usize, 1, 2, 3, 4, 5, 255, 300] {
                let ours = vec![b'v'; ours];
                let p = sdes(&[chunk(9, &[item(CNAME, &vec![b't'; theirs])])]);
                let out = run(&p, Some(&ours)).unwrap();
                let kept = ours.len().min(MAX_ITEM);
                assert_eq!(out.len() % 4, 0);
                assert_eq!(packet_len(&out), out.len());
                assert_eq!(out[0], 0x81);
                assert_eq!(out[8..10], [CNAME, kept as u8]);
                assert_eq!(&out[10..10 + kept], &ours[..kept]);
                assert!(out.len() > 10 + kept && out[10 + kept..].iter().all(|&b| b == 0));
                assert!(out.len() - (10 + kept) <= 4);
            }
        }
    }

    #[test]
    fn other_packets_pass_byte_for_byte() {
        let rr = packet(0, 201, &5u32.to_be_bytes());
        let bye = packet(1, 203, &[0, 0, 0, 5, 3, b'b', b'y', b'e']);
        let app = packet(2, 204, &[0, 0, 0, 5, b'n', b'a', b'm', b'e', 1, 2, 3, 4]);
        let xr = packet(0, 207, &[0, 0, 0, 5, 4, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        let fb = packet(1, 205, &[0, 0, 0, 5, 0, 0, 0, 6]);
        let pli = packet(1, 206, &[0, 0, 0, 5, 0, 0, 0, 6]);
        // No SDES at all (reduced-size RTCP): untouched, `out` not even written.
        let lone = [rr.clone(), fb.clone(), pli.clone()].concat();
        let mut out = vec![42];
        assert_eq!(rewrite(&lone, Some(OURS), &mut out), Ok(Rewrite::Unchanged));
        assert_eq!(out, [42]);
        let p = [
            rr.clone(),
            sdes(&[chunk(5, &[item(CNAME, b"x@y")])]),
            bye.clone(),
            app.clone(),
            xr.clone(),
            fb.clone(),
            pli.clone(),
        ]
        .concat();
        let out = run(&p, Some(OURS)).unwrap();
        let parts = split(&out);
        assert_eq!(parts.len(), 7);
        assert_eq!(parts[0], rr);
        assert_eq!(parts[1], sdes(&[chunk(5, &[item(CNAME, OURS)])]));
        for (got, want) in parts[2..].iter().zip([bye, app, xr, fb, pli]) {
            assert_eq!(*got, want);
        }
    }

    #[test]
    fn sdes_padding_is_dropped_and_the_bit_cleared() {
        // Padded to a 16-octet block, as for encryption: 4 octets of padding, the last
        // one counting them.
        let body = [chunk(1, &[item(CNAME, b"sip:al")]), vec![0, 0, 0, 4]].concat();
        let mut p = packet(1, SDES, &body);
        p[0] |= 0x20;
        let out = run(&[sr(1), p.clone()].concat(), Some(OURS)).unwrap();
        assert_eq!(
            out,
            [sr(1), sdes(&[chunk(1, &[item(CNAME, OURS)])])].concat()
        );
        // A padding count of 0 or beyond the packet body.
        for bad in [0u8, 21, 255] {
            let mut q = p.clone();
            *q.last_mut().unwrap() = bad;
            assert_eq!(run(&q, Some(OURS)), Err(Malformed), "padding {bad}");
        }
        // Padding on a packet veil does not rewrite is not its business.
        let mut rr = packet(0, 201, &[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9]);
        rr[0] |= 0x20;
        assert_eq!(run(&rr, Some(OURS)), Ok(rr.clone()));
    }

    #[test]
    fn malformed_lengths_are_refused() {
        let good = [sr(1), sdes(&[chunk(1, &[item(CNAME, b"alice@host")])])].concat();
        assert!(run(&good, Some(OURS)).is_ok());
        // Empty, shorter than a header, cut anywhere, a trailing partial header.
        assert_eq!(run(&[], Some(OURS)), Err(Malformed));
        assert_eq!(run(&[0x80, 200], Some(OURS)), Err(Malformed));
        for cut in (1..good.len()).filter(|&c| c != sr(1).len()) {
            assert_eq!(
                run(&good[..cut], Some(OURS)),
                Err(Malformed),
                "cut at {cut}"
            );
        }
        assert_eq!(
            run(&[good.clone(), vec![0x80]].concat(), Some(OURS)),
            Err(Malformed)
        );
        // Length fields one word too long and one too short (the rest then misframes).
        let mut long = good.clone();
        long[3] += 1;
        assert_eq!(run(&long, Some(OURS)), Err(Malformed));
        let mut short = good.clone();
        short[3] -= 1;
        assert_eq!(run(&short, Some(OURS)), Err(Malformed));
        // Version 0 (a NAT keepalive of zeros) and version 1.
        assert_eq!(run(&[0; 8], Some(OURS)), Err(Malformed));
        let mut v1 = good.clone();
        v1[sr(1).len()] = 0x41;
        assert_eq!(run(&v1, Some(OURS)), Err(Malformed));
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let cname = item(CNAME, b"alice@host");
        // An item running past the packet: its length octet says 40.
        let mut c = chunk(1, std::slice::from_ref(&cname));
        c[5] = 40;
        assert_eq!(run(&sdes(&[c]), Some(OURS)), Err(Malformed));
        // No null item before the end of the packet.
        let body = [1u32.to_be_bytes().to_vec(), item(CNAME, b"ab")].concat();
        assert_eq!(run(&packet(1, SDES, &body), Some(OURS)), Err(Malformed));
        // More chunks counted than present, and fewer (the CNAME of the uncounted one
        // would cross unrewritten).
        let two = [
            chunk(1, std::slice::from_ref(&cname)),
            chunk(2, std::slice::from_ref(&cname)),
        ]
        .concat();
        assert_eq!(run(&packet(3, SDES, &two), Some(OURS)), Err(Malformed));
        assert_eq!(run(&packet(1, SDES, &two), Some(OURS)), Err(Malformed));
        // Trailing null words after the last chunk are padding in all but name.
        let zeros = [chunk(1, std::slice::from_ref(&cname)), vec![0; 4]].concat();
        assert_eq!(
            run(&packet(1, SDES, &zeros), Some(OURS)),
            Ok(sdes(&[chunk(1, &[item(CNAME, OURS)])]))
        );
        // An empty SDES packet is valid and stays empty.
        assert_eq!(
            run(&packet(0, SDES, &[]), Some(OURS)),
            Ok(packet(0, SDES, &[]))
        );
    }

    #[test]
    fn out_is_reused_without_growing() {
        let p = [
            sr(1),
            sdes(&[chunk(1, &[item(CNAME, b"sip:alice@127.0.0.2")])]),
        ]
        .concat();
        let mut out = Vec::new();
        rewrite(&p, Some(OURS), &mut out).unwrap();
        let (first, cap) = (out.clone(), out.capacity());
        for _ in 0..100 {
            rewrite(&p, Some(OURS), &mut out).unwrap();
        }
        assert_eq!(out, first);
        assert_eq!(out.capacity(), cap);
    }
}
