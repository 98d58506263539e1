//! Where a peer can be reached, as the shell's DNS resolution (RFC 3263) found it, and the
//! order a new attempt tries those places in (RFC 2782: lowest priority first, weighted
//! random choice within a priority). The shell resolves; the engine only orders, so that
//! the weighted choice is made per call (a list ordered once per TTL would send every
//! call of that TTL to the same target) and stays seedable in tests.

use std::net::SocketAddr;

use crate::config::Transport;

/// One transport address of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerTarget {
    pub addr: SocketAddr,
    pub transport: Transport,
}

impl std::fmt::Display for PeerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} via {}",
            self.addr,
            self.transport.via_token().to_ascii_lowercase()
        )
    }
}

/// One SRV record's worth of targets (or the single A/AAAA answer when DNS had no SRV,
/// or an IP address written in the config): its addresses are tried in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// The SRV target host (or the peer's host), for logs and `veil route`.
    pub host: String,
    pub priority: u16,
    pub weight: u16,
    pub targets: Vec<PeerTarget>,
}

impl TargetRecord {
    /// A record with no DNS behind it: one address, priority and weight 0.
    pub fn fixed(host: String, target: PeerTarget) -> TargetRecord {
        TargetRecord {
            host,
            priority: 0,
            weight: 0,
            targets: vec![target],
        }
    }
}

/// The targets of `records` in the order one call tries them: by priority, then within a
/// priority by weighted random selection (`pick(n)` returns a uniform number in `0..n`),
/// each record's addresses one after the other. Unlike RFC 2782's literal "between 0 and
/// the sum, inclusive", which favours whichever record comes first, the draw is exactly
/// proportional to the weights; zero-weight records follow the weighted ones, in order.
pub fn order(records: &[TargetRecord], pick: &mut dyn FnMut(u32) -> u32) -> Vec<PeerTarget> {
    let mut by_priority: Vec<&TargetRecord> = records.iter().collect();
    by_priority.sort_by_key(|r| r.priority);
    let mut out = Vec::new();
    let mut rest = by_priority.as_slice();
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        let mut left: Vec<&TargetRecord> = group.to_vec();
        while !left.is_empty() {
            let total: u32 = left.iter().map(|r| u32::from(r.weight)).sum();
            let mut chosen = 0;
            if total > 0 {
                let want = pick(total);
                let mut running = 0;
                for (i, r) in left.iter().enumerate() {
                    running += u32::from(r.weight);
                    if running > want {
                        chosen = i;
                        break;
                    }
                }
            }
            out.extend(left.remove(chosen).targets.iter().copied());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn rec(host: &str, priority: u16, weight: u16, port: u16) -> TargetRecord {
        TargetRecord {
            host: host.into(),
            priority,
            weight,
            targets: vec![PeerTarget {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                transport: Transport::Udp,
            }],
        }
    }

    fn ports(t: &[PeerTarget]) -> Vec<u16> {
        t.iter().map(|t| t.addr.port()).collect()
    }

    #[test]
    fn lower_priority_always_first() {
        let recs = [rec("b", 20, 100, 2), rec("a", 10, 1, 1), rec("c", 30, 0, 3)];
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..100 {
            let o = order(&recs, &mut |n| rng.random_range(0..n));
            assert_eq!(ports(&o), [1, 2, 3]);
        }
    }

    #[test]
    fn weights_are_honoured_statistically() {
        // 3:1 within one priority; 4000 draws put the heavier first about 3000 times.
        let recs = [rec("light", 10, 1, 1), rec("heavy", 10, 3, 2)];
        let mut rng = SmallRng::seed_from_u64(42);
        let heavy_first = (0..4000)
            .filter(|_| order(&recs, &mut |n| rng.random_range(0..n))[0].addr.port() == 2)
            .count();
        assert!((2850..=3150).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn zero_weights_follow_in_their_order_and_every_record_appears_once() {
        let recs = [rec("a", 0, 0, 1), rec("b", 0, 0, 2), rec("c", 0, 5, 3)];
        assert_eq!(ports(&order(&recs, &mut |_| 0)), [3, 1, 2]);
        assert_eq!(ports(&order(&recs, &mut |n| n - 1)), [3, 1, 2]);
    }

    #[test]
    fn the_draw_maps_onto_the_weights() {
        // Weights 1 and 3: draws 0 pick the first, 1..=3 the second.
        let recs = [rec("light", 0, 1, 1), rec("heavy", 0, 3, 2)];
        assert_eq!(ports(&order(&recs, &mut |_| 0)), [1, 2]);
        for d in 1..4 {
            assert_eq!(ports(&order(&recs, &mut |_| d)), [2, 1]);
        }
    }

    #[test]
    fn addresses_of_one_record_stay_together() {
        let mut r = rec("multi", 0, 1, 1);
        r.targets.push(PeerTarget {
            addr: SocketAddr::from(([127, 0, 0, 2], 1)),
            transport: Transport::Udp,
        });
        let o = order(&[r, rec("x", 1, 1, 9)], &mut |n| n - 1);
        assert_eq!(ports(&o), [1, 1, 9]);
    }
}
