//! Media the tests send themselves, from their own sockets to the ports in veil's SDP.

/// An RTP packet: PCMA (payload type 8), 160 bytes of payload, timestamp following `seq`.
pub fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}
