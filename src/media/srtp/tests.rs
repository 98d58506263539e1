use super::*;

fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

/// A receiver report with no blocks.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1, 0, 0, 0, 0];
    p[4..8].copy_from_slice(&ssrc.to_be_bytes());
    p
}

fn pair(suite: Suite) -> (SrtpSession, SrtpSession) {
    let key = SrtpKey::generate(suite);
    (SrtpSession::new(key.clone()), SrtpSession::new(key))
}

#[test]
fn every_suite_round_trips_rtp_and_rtcp() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite);
        let plain = rtp(7, 1);
        let sealed = tx.protect_rtp(&plain).unwrap();
        assert_ne!(&sealed[..], &plain[..]);
        assert_eq!(
            &rx.unprotect_rtp(&sealed).unwrap()[..],
            &plain[..],
            "{suite:?}"
        );
        let plain = rtcp(7);
        let sealed = tx.protect_rtcp(&plain).unwrap();
        assert_eq!(
            &rx.unprotect_rtcp(&sealed).unwrap()[..],
            &plain[..],
            "{suite:?}"
        );
    }
}

#[test]
fn wrong_key_is_rejected() {
    let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80);
    let mut rx = SrtpSession::new(SrtpKey::generate(Suite::AesCm128HmacSha1_80));
    let sealed = tx.protect_rtp(&rtp(7, 1)).unwrap();
    assert_eq!(rx.unprotect_rtp(&sealed), Err(SrtpError::Rejected));
}

#[test]
fn short_packets_are_dropped_not_parsed() {
    for suite in Suite::ALL {
        let (_, mut rx) = pair(suite);
        for len in 0..=40 {
            let mut p = vec![0x80u8; len];
            if len > 1 {
                p[1] = 201;
            }
            // SRTCP of 4-13 bytes panicked webrtc-srtp 0.17: any error will do, no panic.
            assert!(rx.unprotect_rtcp(&p).is_err(), "{suite:?} {len}");
            assert!(rx.unprotect_rtp(&p).is_err(), "{suite:?} {len}");
        }
        for len in 4..14 {
            assert_eq!(
                rx.unprotect_rtcp(&vec![0x80; len]),
                Err(SrtpError::TooShort),
                "{suite:?} {len}"
            );
        }
    }
}

#[test]
fn srtcp_with_e_bit_clear_is_refused_on_aes_cm() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let (_, mut rx) = pair(suite);
        // A forged "unencrypted" SRTCP packet: RTCP, E=0 and index 1, a made-up tag. The
        // crate alone returns its RTCP as authentic.
        let mut forged = rtcp(9);
        forged.extend_from_slice(&[0, 0, 0, 1]);
        forged.extend_from_slice(&[0xab; 10]);
        assert_eq!(rx.unprotect_rtcp(&forged), Err(SrtpError::Unencrypted));
        assert_eq!(rx.ssrcs(), (0, 0));
    }
}

#[test]
fn replayed_packets_are_rejected() {
    for suite in Suite::OFFERED {
        let (mut tx, mut rx) = pair(suite);
        let sealed = tx.protect_rtp(&rtp(7, 100)).unwrap();
        assert!(rx.unprotect_rtp(&sealed).is_ok());
        assert_eq!(
            rx.unprotect_rtp(&sealed),
            Err(SrtpError::Rejected),
            "{suite:?}"
        );
        let sealed = tx.protect_rtcp(&rtcp(7)).unwrap();
        assert!(rx.unprotect_rtcp(&sealed).is_ok());
        assert_eq!(
            rx.unprotect_rtcp(&sealed),
            Err(SrtpError::Rejected),
            "{suite:?}"
        );
    }
}

#[test]
fn ssrc_state_exists_only_after_authentication() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
    for ssrc in 0..100u32 {
        let mut forged = rtp(ssrc, 1);
        forged.extend_from_slice(&[0; 10]);
        assert_eq!(rx.unprotect_rtp(&forged), Err(SrtpError::Rejected));
        let mut forged = rtcp(ssrc);
        forged.extend_from_slice(&[0x80, 0, 0, 1]);
        forged.extend_from_slice(&[0; 10]);
        assert_eq!(rx.unprotect_rtcp(&forged), Err(SrtpError::Rejected));
    }
    assert_eq!(rx.ssrcs(), (0, 0));
    // A forged packet must not spoil the state of an SSRC that later authenticates.
    let sealed = tx.protect_rtp(&rtp(5, 1)).unwrap();
    assert!(rx.unprotect_rtp(&sealed).is_ok());
    assert_eq!(rx.ssrcs(), (1, 0));
}

#[test]
fn ssrcs_are_bounded() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
    for ssrc in 0..MAX_SSRCS as u32 {
        let sealed = tx.protect_rtp(&rtp(ssrc, 1)).unwrap();
        assert!(rx.unprotect_rtp(&sealed).is_ok());
    }
    assert_eq!(tx.protect_rtp(&rtp(999, 1)), Err(SrtpError::TooManySsrcs));
}

#[test]
fn debug_never_shows_key_material() {
    let key = SrtpKey::new(Suite::AesCm128HmacSha1_80, vec![0x5a; 30]).unwrap();
    let session = SrtpSession::new(key.clone());
    for text in [
        format!("{key:?}"),
        format!("{session:?}"),
        format!("{key:#?}"),
    ] {
        assert!(!text.contains("90"), "{text}");
        assert!(!text.contains("5a"), "{text}");
        assert!(text.contains("redacted"));
    }
    assert!(SrtpKey::new(Suite::AesCm128HmacSha1_80, vec![0; 29]).is_none());
}
