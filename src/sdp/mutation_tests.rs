//! No-panic check: random byte mutations of the sample SDPs go through every public
//! operation. Whatever parses must round-trip, and must still parse after anchoring.

use super::samples::ALL;
use super::{Origin, Sdp};

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that make mutations land on interesting syntax more often than random ones.
const INTERESTING: &[u8] = b"\r\n =:/ 0123456789.amcov\xff\x00";

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        let byte = if rng.below(2) == 0 {
            INTERESTING[rng.below(INTERESTING.len())]
        } else {
            rng.next() as u8
        };
        match rng.below(5) {
            0 if at < data.len() => data[at] = byte,
            1 => data.insert(at, byte),
            2 if at < data.len() => {
                data.remove(at);
            }
            3 => data.truncate(at),
            _ => {
                let from = rng.below(data.len());
                let len = rng.below(40).min(data.len() - from);
                let chunk = data[from..from + len].to_vec();
                data.splice(at..at, chunk);
            }
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let origin = Origin {
        session_id: 1,
        version: 2,
    };
    let mut parsed = 0;
    for i in 0..20_000 {
        let mut data = ALL[i % ALL.len()].as_bytes().to_vec();
        mutate(&mut rng, &mut data);
        let Ok(mut sdp) = Sdp::parse(&data) else {
            continue;
        };
        parsed += 1;
        assert_eq!(Sdp::parse(&sdp.to_bytes()).as_ref(), Ok(&sdp));
        let eps = sdp.endpoints();
        assert_eq!(eps.len(), sdp.media.len());
        let ports: Vec<u16> = (0..rng.below(4)).map(|k| 30000 + 2 * k as u16).collect();
        let addr = if rng.below(2) == 0 {
            "203.0.113.1"
        } else {
            "2001:db8::1"
        };
        sdp.anchor(addr.parse().unwrap(), &ports, &origin);
        let again = Sdp::parse(&sdp.to_bytes()).expect("anchored SDP parses");
        assert_eq!(again, sdp);
        let _ = again.endpoints();
    }
    // The mutations must not be so destructive that nothing parses.
    assert!(parsed > 1000, "only {parsed} mutants parsed");
}
