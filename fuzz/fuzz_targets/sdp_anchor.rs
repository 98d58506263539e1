//! Any input as an SDP body: `Sdp::parse` must not panic; whatever parses must survive
//! `endpoints` and `anchor`, and the anchored SDP must parse again with every stream that
//! has an address pointing at veil.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use veil::sdp::{Origin, Sdp};

const VEIL: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 77));

fuzz_target!(|data: &[u8]| {
    let Ok(mut sdp) = Sdp::parse(data) else {
        return;
    };
    let endpoints = sdp.endpoints();
    let ports: Vec<u16> = (0..endpoints.len()).map(|i| 40000 + 2 * i as u16).collect();
    let origin = Origin {
        session_id: 7,
        version: 1,
    };
    sdp.anchor(VEIL, &ports, &origin);
    let wire = sdp.to_bytes();
    let again = Sdp::parse(&wire).expect("anchored SDP must parse");
    for e in again.endpoints() {
        if let Some(rtp) = e.rtp {
            assert_eq!(rtp.ip(), VEIL, "a stream still points elsewhere: {e:?}");
        }
    }
});
