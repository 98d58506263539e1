//! Allocation of even RTP ports (RTCP = port + 1) from `media.ports`. Plain data: the
//! engine owns it, so allocation is deterministic and testable.
//! SKELETON: implemented by the media work item.

use crate::config::PortRange;

#[derive(Debug, Clone)]
pub struct PortPool {
    range: PortRange,
}

impl PortPool {
    pub fn new(range: PortRange) -> Self {
        PortPool { range }
    }
    /// An even port whose pair (port, port+1) is free, or `None` when exhausted.
    pub fn allocate(&mut self) -> Option<u16> {
        let _ = self.range;
        None
    }
    pub fn release(&mut self, _port: u16) {}
    /// Mark a port as unusable for a while (bind failed: something else holds it).
    pub fn quarantine(&mut self, _port: u16) {}
    pub fn in_use(&self) -> usize {
        0
    }
}
