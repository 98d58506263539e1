//! The metrics of CONTRACT.md, registered once; handles are cheap clones of atomics, so the
//! engine increments them directly. `serve` answers `GET /metrics`.
//! SKELETON: implemented by the observability work item.

#[derive(Clone, Debug)]
pub struct Metrics {
    pub calls_active: prometheus::IntGauge,
    pub calls_total: prometheus::IntCounterVec,
    pub calls_ended: prometheus::IntCounterVec,
    pub sip_requests_received: prometheus::IntCounterVec,
    pub sip_responses_sent: prometheus::IntCounterVec,
    pub sip_invalid_messages: prometheus::IntCounter,
    pub media_streams_active: prometheus::IntGauge,
    pub media_packets_relayed: prometheus::IntCounter,
    pub peer_up: prometheus::IntGaugeVec,
    pub registry: prometheus::Registry,
}
