//! Identifiers veil mints for its own side of every leg: tags, branches, Call-IDs, call ids.
//! Random and unrelated to anything received, so nothing of one leg can be derived on the other.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// RFC 3261 magic cookie; veil's branches also carry a fixed marker so that a request
/// carrying veil's own Via can be recognised as a loop.
pub const BRANCH_PREFIX: &str = "z9hG4bK-vl";

pub struct IdGen {
    rng: SmallRng,
}

impl std::fmt::Debug for IdGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdGen")
    }
}

impl Default for IdGen {
    fn default() -> Self {
        IdGen {
            rng: SmallRng::from_os_rng(),
        }
    }
}

impl IdGen {
    pub fn seeded(seed: u64) -> Self {
        IdGen {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    fn hex(&mut self, bytes: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(bytes * 2);
        for _ in 0..bytes {
            let b: u8 = self.rng.random();
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    pub fn tag(&mut self) -> String {
        self.hex(8)
    }

    pub fn branch(&mut self) -> String {
        let mut b = String::from(BRANCH_PREFIX);
        b.push_str(&self.hex(10));
        b
    }

    /// A Call-ID with no host part: nothing about veil's addresses either.
    pub fn call_id(&mut self) -> String {
        self.hex(16)
    }

    /// veil's own id of a call, used in logs and as the CDR row id.
    pub fn call_ref(&mut self) -> String {
        self.hex(12)
    }

    pub fn u64(&mut self) -> u64 {
        self.rng.random()
    }

    /// First CSeq of a new leg: random in the lower half of the space (RFC 3261 §8.1.1.5).
    pub fn cseq(&mut self) -> u32 {
        self.rng.random_range(1..65536)
    }
}
