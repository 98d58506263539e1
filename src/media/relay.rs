//! The RTP/RTCP relay (tokio): executes `MediaCommand`s, forwards packets between the two
//! sides of each stream with latching, counts packets.
//! SKELETON: implemented by the media work item.

use std::net::IpAddr;

use tokio::sync::mpsc;

use super::{MediaCommand, MediaEvent};

/// Handle to the relay; cheap to clone.
#[derive(Debug, Clone)]
pub struct Relay {
    tx: mpsc::UnboundedSender<MediaCommand>,
}

impl Relay {
    /// Start the relay on the current tokio runtime. Events go to `events`.
    pub fn start(
        _bind: IpAddr,
        _events: mpsc::UnboundedSender<MediaEvent>,
        _metrics: crate::observe::Metrics,
    ) -> Relay {
        let (tx, _rx) = mpsc::unbounded_channel();
        Relay { tx }
    }
    pub fn command(&self, cmd: MediaCommand) {
        let _ = self.tx.send(cmd);
    }
}
