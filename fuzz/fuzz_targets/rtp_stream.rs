//! The media input path's sans-IO core: any latching policy and any sequence of packets
//! (socket, source address, SSRC, time step), SDP and signalling-address updates.
//! `StreamState` must never panic, must count exactly the packets it accepts, must never
//! send a packet back out of the socket it came in on, and must send only to a signalled
//! or latched address.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use veil::media::Side;

use veil::media::stream::{LatchPolicy, Latching, Socket, StreamState};

fn addr(b: &[u8]) -> SocketAddr {
    let port = u16::from_be_bytes([b[1], b[2]]);
    if b[0] & 1 == 0 {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, b[0], b[3])), port)
    } else {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                b[0].into(),
                b[3].into(),
            )),
            port,
        )
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let latching = match mode % 3 {
        0 => Latching::Ip,
        1 => Latching::Strict,
        _ => Latching::Any,
    };
    let policy = LatchPolicy {
        latching,
        relatch_after: Duration::from_millis(u64::from(mode >> 2) * 10),
    };
    let mut s = StreamState::new(policy);
    let mut now = Instant::now();
    let mut seen: Vec<SocketAddr> = Vec::new();
    let (mut a, mut b) = (0u64, 0u64);
    for op in data.chunks_exact(6) {
        let side = if op[0] & 1 == 0 { Side::A } else { Side::B };
        let source = addr(&op[1..5]);
        now += Duration::from_millis(u64::from(op[5] & 0x0f) * 50);
        if op[0] & 0x80 != 0 {
            if op[0] & 0x10 != 0 {
                s.set_party(side, Some(source.ip()));
                continue;
            }
            let rtcp =
                (op[0] & 0x40 != 0).then(|| addr(&[op[1], op[2], op[3].wrapping_add(1), op[4]]));
            let rtp = (op[0] & 0x20 != 0).then_some(source);
            seen.extend(rtp.iter().chain(rtcp.iter()));
            s.set_remote(side, rtp, rtcp);
            continue;
        }
        let on = Socket::ALL[usize::from(op[0] >> 1) % 4];
        seen.push(source);
        // RTP (or RTCP when bit 6 is set) with a one-of-16 SSRC.
        let mut packet = vec![
            0x80,
            if op[0] & 0x40 != 0 { 200 } else { 0 },
            0,
            1,
            0,
            0,
            0,
            0,
        ];
        packet.extend_from_slice(&u32::from(op[5] >> 4).to_be_bytes());
        packet.truncate(usize::from(op[4] % 13));
        if s.check(on, source, &packet, now).is_ok() {
            match on.side {
                Side::A => a += 1,
                Side::B => b += 1,
            }
        }
        if let Some((out, dest)) = s.on_datagram(on, source, &packet, now) {
            assert_ne!(out, on, "sent back out of the socket it came in on");
            assert_ne!(out.side, on.side, "stayed on the same leg");
            assert!(
                seen.contains(&dest),
                "sent to an address never signalled or seen"
            );
        }
        assert_eq!(s.counters(), (a, b));
    }
});
