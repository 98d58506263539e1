//! Allocation of even RTP ports (RTCP = port + 1) from `media.ports`. Plain data: the
//! engine owns it, so allocation is deterministic and testable.
//!
//! `allocate` draws uniformly at random from the free ports, so the next call's relay
//! ports cannot be guessed from the last one's (an attacker who could would race the
//! caller to them). A released port cools down first: it rejoins the free set only after
//! half a pool's worth of allocations (earlier only when nothing else is free), so late
//! packets of an ended call are unlikely to land in a new one.
//!
//! A port whose bind failed is quarantined: something outside veil probably holds it. It
//! is skipped for one full cycle (as many allocations as the pool has ports) and then
//! returns to the free queue; if nothing else is free it is retried early rather than
//! refusing a call. Quarantine is temporary because the other holder may go away, and a
//! permanent one would shrink the pool for the life of the process.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config::PortRange;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    InUse,
    Quarantined,
}

#[derive(Debug, Clone)]
pub struct PortPool {
    /// The lowest port of the pool (even, never 0).
    base: u16,
    /// State of port `base + 2 * i`.
    slots: Vec<Slot>,
    /// Free ports, in no particular order (drawn at random).
    free: Vec<u16>,
    /// Released ports with the allocation count at which they become free again.
    cooling: VecDeque<(u16, u64)>,
    /// Quarantined ports with the allocation count at which they return, in that order.
    quarantined: VecDeque<(u16, u64)>,
    allocations: u64,
    in_use: usize,
    rng: SmallRng,
}

impl PortPool {
    /// The pool holds every even port `p` of `range` with `p + 1` also in `range`. Port 0
    /// is left out: in SDP it means "stream disabled".
    pub fn new(range: PortRange) -> Self {
        let first = u32::from(range.first).max(2);
        let base = first + first % 2;
        let last = u32::from(range.last);
        let count = if base < last {
            ((last - 1 - base) / 2 + 1) as usize
        } else {
            0
        };
        let base = u16::try_from(base).unwrap_or(u16::MAX);
        let free = (0..count).map(|i| base + 2 * i as u16).collect();
        PortPool {
            base,
            slots: vec![Slot::Free; count],
            free,
            cooling: VecDeque::new(),
            quarantined: VecDeque::new(),
            allocations: 0,
            in_use: 0,
            rng: SmallRng::from_os_rng(),
        }
    }

    /// An even port whose pair (port, port+1) is free, or `None` when exhausted.
    pub fn allocate(&mut self) -> Option<u16> {
        self.allocations += 1;
        while let Some(&(port, due)) = self.cooling.front() {
            if due > self.allocations {
                break;
            }
            self.cooling.pop_front();
            self.free.push(port);
        }
        while let Some(&(port, due)) = self.quarantined.front() {
            if due > self.allocations {
                break;
            }
            self.quarantined.pop_front();
            self.set(port, Slot::Free);
            self.free.push(port);
        }
        let port = if self.free.is_empty() {
            match self.cooling.pop_front() {
                Some((port, _)) => port,
                None => self.quarantined.pop_front()?.0,
            }
        } else {
            let i = self.rng.random_range(0..self.free.len());
            self.free.swap_remove(i)
        };
        self.set(port, Slot::InUse);
        self.in_use += 1;
        Some(port)
    }

    /// Give back an allocated port. Ports not currently allocated are ignored, so a double
    /// release cannot duplicate a port in the free set.
    pub fn release(&mut self, port: u16) {
        if self.slot(port) == Some(Slot::InUse) {
            self.set(port, Slot::Free);
            self.in_use -= 1;
            let due = self.allocations + (self.slots.len() / 2) as u64;
            self.cooling.push_back((port, due));
        }
    }

    /// Mark a port as unusable for a while (bind failed: something else holds it).
    /// Normally called instead of `release` for an allocated port; a free port is taken
    /// out of the free queue (linear, but rare). Other ports are ignored.
    pub fn quarantine(&mut self, port: u16) {
        match self.slot(port) {
            Some(Slot::InUse) => self.in_use -= 1,
            Some(Slot::Free) => self.forget_free(port),
            Some(Slot::Quarantined) | None => return,
        }
        self.set(port, Slot::Quarantined);
        let due = self.allocations + self.slots.len() as u64;
        self.quarantined.push_back((port, due));
    }

    /// Mark a free port as allocated without handing it out: a pool built for a new port
    /// range on reload takes the ports that calls in progress still hold. Returns whether
    /// the port was free in this pool (linear in the free queue, once per held port).
    pub fn reserve(&mut self, port: u16) -> bool {
        if self.slot(port) != Some(Slot::Free) {
            return false;
        }
        self.forget_free(port);
        self.set(port, Slot::InUse);
        self.in_use += 1;
        true
    }

    /// Take a free (or cooling) port out of the free set.
    fn forget_free(&mut self, port: u16) {
        self.free.retain(|&p| p != port);
        self.cooling.retain(|&(p, _)| p != port);
    }

    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// How many ports (pairs) the pool holds in total.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, port: u16) -> Option<usize> {
        let offset = port.checked_sub(self.base)?;
        let i = usize::from(offset / 2);
        (offset % 2 == 0 && i < self.slots.len()).then_some(i)
    }

    fn slot(&self, port: u16) -> Option<Slot> {
        self.index(port).map(|i| self.slots[i])
    }

    fn set(&mut self, port: u16, slot: Slot) {
        if let Some(i) = self.index(port) {
            self.slots[i] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn pool(first: u16, last: u16) -> PortPool {
        PortPool::new(PortRange { first, last })
    }

    fn drain(p: &mut PortPool) -> Vec<u16> {
        std::iter::from_fn(|| p.allocate()).collect()
    }

    fn sorted(mut v: Vec<u16>) -> Vec<u16> {
        v.sort_unstable();
        v
    }

    #[test]
    fn reserved_ports_are_not_handed_out_and_release_normally() {
        let mut p = pool(30000, 30009);
        assert!(p.reserve(30002));
        assert!(!p.reserve(30002), "already held");
        assert!(!p.reserve(30003), "odd ports are not in the pool");
        assert!(!p.reserve(40000), "outside the range");
        assert_eq!(p.in_use(), 1);
        assert_eq!(sorted(drain(&mut p)), [30000, 30004, 30006, 30008]);
        p.release(30002);
        assert_eq!(p.allocate(), Some(30002));
    }

    #[test]
    fn even_ports_with_room_for_rtcp() {
        assert_eq!(
            sorted(drain(&mut pool(30000, 30009))),
            [30000, 30002, 30004, 30006, 30008]
        );
        // First rounded up; the last even port needs last >= port + 1.
        assert_eq!(
            sorted(drain(&mut pool(30001, 30008))),
            [30002, 30004, 30006]
        );
        assert_eq!(
            sorted(drain(&mut pool(65530, 65535))),
            [65530, 65532, 65534]
        );
        assert_eq!(sorted(drain(&mut pool(0, 5))), [2, 4]);
    }

    #[test]
    fn empty_ranges() {
        for (first, last) in [
            (30000, 30000),
            (30001, 30001),
            (30001, 30002),
            (40000, 30000),
            (65535, 65535),
        ] {
            let mut p = pool(first, last);
            assert_eq!(p.capacity(), 0, "{first}-{last}");
            assert_eq!(p.allocate(), None);
        }
    }

    #[test]
    fn exhaustion_and_release() {
        let mut p = pool(30000, 30005);
        assert_eq!(p.capacity(), 3);
        let got = drain(&mut p);
        assert_eq!(got.len(), 3);
        assert_eq!(p.in_use(), 3);
        assert_eq!(p.allocate(), None);
        p.release(got[1]);
        assert_eq!(p.in_use(), 2);
        assert_eq!(p.allocate(), Some(got[1]));
        assert_eq!(p.allocate(), None);
    }

    #[test]
    fn released_port_cools_down_for_half_a_pool() {
        let mut p = pool(30000, 30199); // 100 ports
        for _ in 0..50 {
            let a = p.allocate().unwrap();
            p.release(a);
            // The next 49 allocations (each released at once) never hand it out again.
            for _ in 0..49 {
                let b = p.allocate().unwrap();
                assert_ne!(a, b);
                p.release(b);
            }
        }
    }

    #[test]
    fn allocation_is_random_not_sequential() {
        // Two fresh pools draw different sequences, and consecutive ports are rarely
        // neighbours (sequential allocation would always be +2).
        let a = drain(&mut pool(30000, 39999));
        let b = drain(&mut pool(30000, 39999));
        assert_ne!(a[..20], b[..20]);
        let neighbours = a.windows(2).filter(|w| w[1] == w[0] + 2).count();
        assert!(neighbours < 50, "{neighbours} of {} steps were +2", a.len());
    }

    #[test]
    fn double_and_foreign_release_are_ignored() {
        let mut p = pool(30000, 30005);
        let a = p.allocate().unwrap();
        p.release(a);
        p.release(a);
        p.release(30001);
        p.release(29998);
        p.release(40000);
        assert_eq!(p.in_use(), 0);
        let all = drain(&mut p);
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 3);
    }

    #[test]
    fn quarantined_port_skipped_for_a_cycle() {
        let mut p = pool(30000, 30007); // 4 ports
        let bad = p.allocate().unwrap();
        p.quarantine(bad);
        assert_eq!(p.in_use(), 0);
        // A full cycle of allocate/release never hands out the bad port...
        for _ in 0..3 {
            let port = p.allocate().unwrap();
            assert_ne!(port, bad);
            p.release(port);
        }
        // ...after that it is back in the rotation.
        let later: Vec<u16> = (0..8)
            .map(|_| {
                let port = p.allocate().unwrap();
                p.release(port);
                port
            })
            .collect();
        assert!(later.contains(&bad), "{later:?}");
    }

    #[test]
    fn quarantined_port_used_when_nothing_else_is_free() {
        let mut p = pool(30000, 30003); // 2 ports
        let bad = p.allocate().unwrap();
        p.quarantine(bad);
        let other = p.allocate().unwrap();
        assert_ne!(other, bad);
        assert_eq!(p.allocate(), Some(bad));
        assert_eq!(p.allocate(), None);
        assert_eq!(p.in_use(), 2);
    }

    #[test]
    fn quarantine_of_free_port_removes_it_from_rotation() {
        let mut p = pool(30000, 30005);
        p.quarantine(30002);
        p.quarantine(30002);
        let first_two = sorted(vec![p.allocate().unwrap(), p.allocate().unwrap()]);
        assert_eq!(first_two, [30000, 30004]);
        assert_eq!(p.allocate(), Some(30002));
        assert_eq!(p.allocate(), None);
    }

    #[test]
    fn ten_thousand_cycles_do_not_leak() {
        let mut p = pool(30000, 30199);
        let cap = p.capacity();
        let mut held: VecDeque<u16> = VecDeque::new();
        let mut seen = HashSet::new();
        for i in 0..10_000u32 {
            if let Some(port) = p.allocate() {
                assert!(!held.contains(&port), "port {port} handed out twice");
                seen.insert(port);
                held.push_back(port);
            }
            // Keep a varying number of ports allocated; quarantine one now and then.
            while held.len() > (i % 37) as usize {
                let port = held.pop_front().unwrap();
                if i % 101 == 0 {
                    p.quarantine(port);
                } else {
                    p.release(port);
                }
            }
            assert_eq!(p.in_use(), held.len());
        }
        for port in held.drain(..) {
            p.release(port);
        }
        assert_eq!(p.in_use(), 0);
        assert_eq!(seen.len(), cap);
        // Every port (quarantined ones included) can still be allocated, once.
        let all = drain(&mut p);
        assert_eq!(all.len(), cap);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), cap);
    }
}
