use super::*;
use crate::sdp::crypto::{acceptable, has_crypto, is_secure};

use SrtpMode::{Off, Optional, Required};

fn sdp(proto: &str, crypto: &str) -> Sdp {
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 4000 {proto} 0\r\n{crypto}"
    );
    Sdp::parse(text.as_bytes()).unwrap()
}

fn line(tag: u32, key: &SrtpKey) -> String {
    let mut s = sdp("RTP/SAVP", "");
    crypto::add(&mut s.media[0], &[(tag, key)]);
    format!("a={}\r\n", s.media[0].lines.last().unwrap().value)
}

#[test]
fn srtp_caller_to_plain_callee_and_back() {
    let mut call = CallSrtp::default();
    let caller_key = SrtpKey::generate(Suite::AeadAes128Gcm);
    let junk = "a=crypto:1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
    let mut offer = sdp("RTP/SAVP", &format!("{junk}{}", line(2, &caller_key)));
    assert_eq!(
        call.negotiate(&mut offer, Side::A, (Required, Off), SdpRole::Offer),
        Ok(true)
    );
    // Leg B sees plain RTP and none of the caller's keys.
    assert!(!is_secure(&offer.media[0]) && !has_crypto(&offer.media[0]));
    assert_eq!(call.streams[0].a.rx.as_ref(), Some(&caller_key));
    assert_eq!(call.streams[0].a.tx, None);

    let mut answer = sdp("RTP/AVP", "");
    call.negotiate(&mut answer, Side::B, (Off, Required), SdpRole::Answer)
        .unwrap();
    let ours = acceptable(&answer.media[0]);
    assert!(is_secure(&answer.media[0]));
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].tag, 2, "the answer keeps the chosen line's tag");
    assert_eq!(ours[0].key.suite, Suite::AeadAes128Gcm);
    assert_ne!(ours[0].key, caller_key);
    assert_eq!(call.streams[0].a.tx.as_ref(), Some(&ours[0].key));
    assert_eq!(
        (&call.streams[0].b.rx, &call.streams[0].b.tx),
        (&None, &None)
    );

    // The same answer again (183 then 200) carries the same key.
    let mut again = sdp("RTP/AVP", "");
    call.negotiate(&mut again, Side::B, (Off, Required), SdpRole::Answer)
        .unwrap();
    assert_eq!(acceptable(&again.media[0]), ours);
}

#[test]
fn plain_caller_to_srtp_callee_offers_every_suite_and_takes_the_answer() {
    let mut call = CallSrtp::default();
    let mut offer = sdp("RTP/AVP", "");
    call.negotiate(&mut offer, Side::A, (Off, Required), SdpRole::Offer)
        .unwrap();
    let offered = acceptable(&offer.media[0]);
    let suites: Vec<Suite> = offered.iter().map(|c| c.key.suite).collect();
    assert_eq!(suites, Suite::OFFERED);
    assert!(is_secure(&offer.media[0]));

    let callee_key = SrtpKey::generate(Suite::AesCm128HmacSha1_32);
    let mut answer = sdp("RTP/SAVP", &line(2, &callee_key));
    call.negotiate(&mut answer, Side::B, (Required, Off), SdpRole::Answer)
        .unwrap();
    assert!(!is_secure(&answer.media[0]) && !has_crypto(&answer.media[0]));
    let b = &call.streams[0].b;
    assert_eq!(b.rx.as_ref(), Some(&callee_key));
    assert_eq!(b.tx.as_ref(), Some(&offered[1].key));
}

#[test]
fn required_without_acceptable_crypto_is_refused() {
    let mut call = CallSrtp::default();
    let mut plain = sdp("RTP/AVP", "");
    assert_eq!(
        call.negotiate(&mut plain, Side::A, (Required, Off), SdpRole::Offer),
        Err(NoCrypto)
    );
    // An RTP/SAVP offer with only lines veil cannot do, even from an optional peer.
    let mki = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n";
    let mut offer = sdp("RTP/SAVP", mki);
    assert_eq!(
        call.negotiate(&mut offer, Side::A, (Optional, Off), SdpRole::Offer),
        Err(NoCrypto)
    );
    // Optional and plain: plain.
    let mut plain = sdp("RTP/AVP", "");
    assert_eq!(
        call.negotiate(&mut plain, Side::A, (Optional, Off), SdpRole::Offer),
        Ok(true)
    );
    assert_eq!(call.streams[0].a.rx, None);
}

#[test]
fn reoffer_with_a_new_key_rekeys_both_directions() {
    let mut call = CallSrtp::default();
    let k1 = SrtpKey::generate(Suite::AesCm128HmacSha1_80);
    let mut offer = sdp("RTP/SAVP", &line(1, &k1));
    call.negotiate(&mut offer, Side::A, (Required, Off), SdpRole::Offer)
        .unwrap();
    let mut answer = sdp("RTP/AVP", "");
    call.negotiate(&mut answer, Side::B, (Off, Required), SdpRole::Answer)
        .unwrap();
    let first_tx = call.streams[0].a.tx.clone().unwrap();

    let k2 = SrtpKey::generate(Suite::AesCm128HmacSha1_80);
    let mut reoffer = sdp("RTP/SAVP", &line(1, &k2));
    call.negotiate(&mut reoffer, Side::A, (Required, Off), SdpRole::Offer)
        .unwrap();
    assert_eq!(call.streams[0].a.rx.as_ref(), Some(&k2));
    let mut answer = sdp("RTP/AVP", "");
    call.negotiate(&mut answer, Side::B, (Off, Required), SdpRole::Answer)
        .unwrap();
    let second_tx = call.streams[0].a.tx.clone().unwrap();
    assert_ne!(first_tx, second_tx);
    assert_eq!(acceptable(&answer.media[0])[0].key, second_tx);
}

#[test]
fn both_legs_off_leave_crypto_alone() {
    let mut call = CallSrtp::default();
    let k = SrtpKey::generate(Suite::AesCm128HmacSha1_80);
    let mut offer = sdp("RTP/SAVP", &line(1, &k));
    let before = offer.clone();
    assert_eq!(
        call.negotiate(&mut offer, Side::A, (Off, Off), SdpRole::Offer),
        Ok(false)
    );
    assert_eq!(offer, before);
}
