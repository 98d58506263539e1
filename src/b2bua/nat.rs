//! Peers behind NAT and peer liveness.
//!
//! RFC 3581: the top Via of every request veil answers gets `received` (the source IP)
//! and, when the sender asked with a bare `rport`, `rport=<source port>`; responses go to
//! the source address anyway (the flow), so they cross the sender's NAT binding. veil's own
//! Via always carries `rport`. A peer with `nat: true` is reached wherever its traffic last
//! came from: in-dialog requests from it move its leg's flow.
//!
//! Keep-alive: a peer with `keepalive` is sent OPTIONS at that interval; any response means
//! up, a transaction timeout means down (`veil_peer_up{peer}` 0, skipped by routing) until
//! it answers again.

use std::net::SocketAddr;
use std::time::Instant;

use crate::sip::uri::{write_ip, write_u32};
use crate::sip::{HeaderName, Method, Request, Uri};
use crate::transaction::Flow;

use super::deadline::after;
use super::engine::{Engine, Timer};
use super::owner::TxOwner;

/// Add `received`/`rport` to the top Via of a request that came from `src`. Runs on
/// every request, so the new value is written in one pass, without splitting into parts.
pub(super) fn stamp_via(req: &mut Request, src: SocketAddr) {
    let Some(h) = req.headers.0.iter_mut().find(|h| h.name == HeaderName::Via) else {
        return;
    };
    // The first header line may hold several Vias; only the first is the sender's.
    let mut parts = crate::sip::header::list_items(&h.value);
    let Some(top) = parts.next() else { return };
    let mut value = String::with_capacity(h.value.len() + 32);
    stamp(top, src, &mut value);
    for p in parts {
        value.push_str(", ");
        value.push_str(p);
    }
    h.value = value;
}

/// `via` (one element) with its parameters trimmed, any `received` dropped, and
/// `received=<ip>` (plus `rport=<port>` when a bare `rport` asked for it) appended.
fn stamp(via: &str, src: SocketAddr, out: &mut String) {
    let mut params = via.split(';');
    out.push_str(params.next().unwrap_or("").trim());
    let mut asked_rport = false;
    for p in params.map(str::trim) {
        let name = p.split('=').next().unwrap_or("");
        if name.eq_ignore_ascii_case("rport") && !p.contains('=') {
            asked_rport = true;
        } else if !name.eq_ignore_ascii_case("received") {
            out.push(';');
            out.push_str(p);
        }
    }
    out.push_str(";received=");
    write_ip(out, src.ip());
    if asked_rport {
        out.push_str(";rport=");
        write_u32(out, src.port().into());
    }
}

impl Engine {
    /// Arm the first keep-alive of every peer that has one.
    pub(super) fn start_keepalives(&mut self, now: Instant) {
        let peers = self.peers.clone();
        for (i, p) in peers.peers.iter().enumerate() {
            if p.cfg.keepalive.is_some() && p.addr.is_some() {
                self.set_timer(
                    now,
                    self.keepalive_epoch,
                    Timer::Keepalive { peer: i as u32 },
                );
            }
        }
    }

    pub(super) fn on_keepalive_timer(&mut self, peer: usize, now: Instant) {
        let peers = self.peers.clone();
        let Some(p) = peers.peers.get(peer) else {
            return;
        };
        let Some(interval) = p.cfg.keepalive else {
            return;
        };
        self.set_timer(
            after(now, interval.0),
            self.keepalive_epoch,
            Timer::Keepalive { peer: peer as u32 },
        );
        let probing = |o: &TxOwner| matches!(o, TxOwner::Probe { peer } if peer == &p.name);
        if self.owners.values().any(probing) {
            // The last probe is still waiting for its answer or its timeout.
            return;
        }
        let Some(flow) = self.peer_flow(peer) else {
            return;
        };
        let listener = peers.listeners[p.listener].clone();
        let uri = p.uri_for("");
        let from = format!("<sip:veil@{}>;tag={}", listener.sent_by(), self.ids.tag());
        let (to, call_id) = (format!("<{uri}>"), self.ids.call_id());
        let req = super::outbound::Outbound {
            method: Method::Options,
            uri: Uri::Sip(uri),
            route: &[],
            from: &from,
            to: &to,
            call_id: &call_id,
            cseq: 1,
            max_forwards: 70,
        }
        .build(&listener, &mut self.ids);
        let ctx = self.tx.send_request(req, flow, now);
        self.owners.insert(
            ctx,
            TxOwner::Probe {
                peer: p.name.clone(),
            },
        );
    }

    /// Where a peer is reached: its latched source (`nat: true`) or its resolved address.
    pub(super) fn peer_flow(&self, peer: usize) -> Option<Flow> {
        let p = self.peers.peers.get(peer)?;
        let mut flow = p.flow()?;
        if p.cfg.nat
            && let Some(src) = self.nat_sources.get(&p.name)
        {
            flow.remote = *src;
        }
        Some(flow)
    }

    /// The keep-alive probe of peer `name` was answered (`Some(code)`) or timed out (`None`).
    pub(super) fn on_probe_result(&mut self, name: &str, code: Option<u16>) {
        let name = name.to_string();
        let up = code.is_some();
        let was_down = self.down.contains(&name);
        if up && was_down {
            tracing::info!(peer = %name, "peer answers again: back in routing");
            self.down.remove(&name);
        } else if !up && !was_down {
            tracing::warn!(peer = %name, "peer does not answer OPTIONS: out of routing");
            self.down.insert(name.clone());
        }
        self.metrics.set_peer_up(&name, up);
    }

    /// Traffic from a `nat: true` peer: remember where it comes from, and move the legs of
    /// its calls there.
    pub(super) fn latch_nat_source(&mut self, flow: &Flow) {
        let Some(i) = self.peers.identify(flow) else {
            return;
        };
        let p = &self.peers.peers[i];
        if !p.cfg.nat {
            return;
        }
        self.nat_sources.insert(p.name.clone(), flow.remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SocketAddr {
        "198.51.100.7:40123".parse().unwrap()
    }

    fn stamp(via: &str, src: SocketAddr) -> String {
        let mut out = String::new();
        super::stamp(via, src, &mut out);
        out
    }

    #[test]
    fn stamp_trims_drops_received_and_keeps_a_filled_rport() {
        let v6: SocketAddr = "[2001:db8::1]:5070".parse().unwrap();
        assert_eq!(
            stamp(" SIP/2.0/UDP h ; RPORT ;Received=1.2.3.4 ; rport=5;x ", v6),
            "SIP/2.0/UDP h;rport=5;x;received=2001:db8::1;rport=5070"
        );
    }

    #[test]
    fn rport_is_filled_and_received_added() {
        assert_eq!(
            stamp("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx;rport", src()),
            "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx;received=198.51.100.7;rport=40123"
        );
        assert_eq!(
            stamp("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx", src()),
            "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx;received=198.51.100.7"
        );
    }

    #[test]
    fn only_the_top_via_is_stamped() {
        let text = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKa;rport, SIP/2.0/UDP 10.0.0.6;branch=z9hG4bKb;rport\r\nVia: SIP/2.0/UDP 10.0.0.7;branch=z9hG4bKc\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let crate::sip::Message::Request(mut req) =
            crate::sip::Message::parse(text.as_bytes()).unwrap()
        else {
            panic!()
        };
        stamp_via(&mut req, src());
        let vias = req.headers.values(&HeaderName::Via);
        assert_eq!(
            vias[0],
            "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKa;received=198.51.100.7;rport=40123"
        );
        assert_eq!(vias[1], "SIP/2.0/UDP 10.0.0.6;branch=z9hG4bKb;rport");
        assert_eq!(vias[2], "SIP/2.0/UDP 10.0.0.7;branch=z9hG4bKc");
    }
}
