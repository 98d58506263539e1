//! Reading RTP headers and keeping per-direction statistics, sans-IO: packets, bytes,
//! loss from sequence numbers (RFC 3550 A.1), interarrival jitter (RFC 3550 A.8) and an
//! E-model MOS estimate (ITU-T G.107, the simplified form most SBCs and probes use).

use std::time::Instant;

/// The RTP fields the relay uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// RTCP packet types 192-223 sit where RTP's marker+PT byte is (RFC 5761 §4): that is
/// how RTP and RTCP are told apart on a multiplexed port.
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (192..=223).contains(&data[1])
}

impl RtpHeader {
    /// Version 2, at least the fixed 12-byte header, not RTCP.
    pub fn parse(data: &[u8]) -> Option<RtpHeader> {
        if data.len() < 12 || data[0] >> 6 != 2 || is_rtcp(data) {
            return None;
        }
        Some(RtpHeader {
            payload_type: data[1] & 0x7f,
            seq: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        })
    }
}

/// RTP clock rate of a payload type: the RFC 3551 static ones, 8000 Hz (narrowband
/// voice, by far the most common on SIP trunks) for dynamic types.
pub fn clock_rate(pt: u8) -> u32 {
    match pt {
        6 => 16000,
        10 | 11 => 44100,
        16 => 11025,
        17 => 22050,
        14 | 25 | 26 | 28 | 31..=34 => 90000,
        _ => 8000,
    }
}

/// A jump this large in sequence numbers is a new source/restart, not loss (RFC 3550 A.1
/// MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;

/// Totals of one direction (packets received by veil from one side), as reported at close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    pub packets: u64,
    pub bytes: u64,
    /// Packets expected from the sequence numbers but never received (never negative).
    pub lost: u64,
    /// RFC 3550 interarrival jitter at the end, microseconds.
    pub jitter_us: u64,
    /// Highest jitter seen, microseconds.
    pub max_jitter_us: u64,
}

impl DirectionStats {
    /// Loss in percent of expected packets.
    pub fn loss_percent(&self) -> f64 {
        let expected = self.packets + self.lost;
        if expected == 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / expected as f64
        }
    }

    /// MOS (1.0 to 4.5) from loss and jitter; `None` without packets. One-way delay is
    /// not known to a relay, so only the jitter buffer's share of it is counted.
    pub fn mos(&self) -> Option<f64> {
        (self.packets > 0).then(|| mos(self.loss_percent(), self.jitter_us as f64 / 1000.0))
    }

    /// Adds another stream's totals (a call with several streams).
    pub fn merge(&mut self, other: &DirectionStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.lost += other.lost;
        self.jitter_us = self.jitter_us.max(other.jitter_us);
        self.max_jitter_us = self.max_jitter_us.max(other.max_jitter_us);
    }
}

/// G.107 simplified: effective latency = delay + 2 x jitter + 10 ms (codec), R = 93.2
/// minus the delay impairment and 2.5 per percent of loss, MOS from R by the G.107 curve.
pub fn mos(loss_percent: f64, jitter_ms: f64) -> f64 {
    let latency = 2.0 * jitter_ms + 10.0;
    let mut r = if latency < 160.0 {
        93.2 - latency / 40.0
    } else {
        93.2 - (latency - 120.0) / 10.0
    };
    r -= 2.5 * loss_percent;
    if r <= 0.0 {
        return 1.0;
    }
    let r = r.min(100.0);
    (1.0 + 0.035 * r + 0.000007 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5)
}

/// Sequence and jitter state of the current source of one direction.
#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    base_seq: u32,
    /// Extended highest sequence number (cycles in the high bits).
    max_seq: u32,
    received: u64,
    /// Previous packet's transit time in RTP units, and its clock rate.
    transit: Option<(i64, u32)>,
    /// Jitter in RTP timestamp units, x16 (RFC 3550 A.8 keeps it scaled to avoid floats).
    jitter16: u64,
}

/// Per-direction accounting, fed with every packet veil receives from one side.
#[derive(Debug, Clone, Default)]
pub struct DirectionMeter {
    totals: DirectionStats,
    source: Option<Source>,
    /// Loss of earlier sources (SSRC changes on re-INVITE or transfer).
    lost_before: u64,
    /// Arrival times are measured from here.
    epoch: Option<Instant>,
    /// Clock rates signalled in SDP (dynamic types such as opus at 48000 Hz); others
    /// use `clock_rate`.
    rates: Vec<(u8, u32)>,
}

impl DirectionMeter {
    /// Merge payload type clock rates from SDP (latest wins; a zero rate is ignored).
    pub fn set_clock_rates(&mut self, rates: &[(u8, u32)]) {
        for &(pt, rate) in rates.iter().filter(|(_, r)| *r > 0) {
            match self.rates.iter_mut().find(|(p, _)| *p == pt) {
                Some(entry) => entry.1 = rate,
                None => self.rates.push((pt, rate)),
            }
        }
    }

    fn rate_of(&self, pt: u8) -> u32 {
        self.rates
            .iter()
            .find(|(p, _)| *p == pt)
            .map_or_else(|| clock_rate(pt), |(_, r)| *r)
    }

    /// Count one received datagram; RTP ones also update loss and jitter.
    pub fn record(&mut self, data: &[u8], now: Instant) {
        self.totals.packets += 1;
        self.totals.bytes += data.len() as u64;
        let Some(h) = RtpHeader::parse(data) else {
            return;
        };
        let rate = self.rate_of(h.payload_type);
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = now.saturating_duration_since(epoch);
        let seq = u32::from(h.seq);
        let src = match &mut self.source {
            Some(s) if s.ssrc == h.ssrc => s,
            other => {
                if let Some(old) = other {
                    self.lost_before += lost(old);
                }
                *other = Some(Source {
                    ssrc: h.ssrc,
                    base_seq: seq,
                    max_seq: seq,
                    received: 0,
                    transit: None,
                    jitter16: 0,
                });
                match other {
                    Some(s) => s,
                    None => return,
                }
            }
        };
        src.received += 1;
        let max_low = src.max_seq as u16;
        let delta = h.seq.wrapping_sub(max_low);
        if delta != 0 && delta < MAX_DROPOUT {
            if h.seq < max_low {
                src.max_seq = src.max_seq.wrapping_add(1 << 16);
            }
            src.max_seq = (src.max_seq & 0xffff_0000) | seq;
        } else if (MAX_DROPOUT..=u16::MAX - 100).contains(&delta) {
            // A big jump (sender restarted): start counting again from here.
            self.lost_before += lost(src);
            src.base_seq = seq;
            src.max_seq = seq;
            src.received = 1;
        }
        // Jitter (A.8): transit = arrival (in RTP units) - timestamp.
        let arrival_units = (arrival.as_micros() as i128 * i128::from(rate) / 1_000_000) as i64;
        let transit = arrival_units.wrapping_sub(i64::from(h.timestamp));
        if let Some((prev, prev_rate)) = src.transit
            && prev_rate == rate
        {
            let d = transit.wrapping_sub(prev).unsigned_abs();
            // Timestamp wraps and restarts show up as absurd jumps: skip them.
            if d < u64::from(rate) * 10 {
                // J += (|D| - J) / 16, with J kept x16.
                src.jitter16 = src.jitter16 + d - (src.jitter16 + 8) / 16;
            }
        }
        src.transit = Some((transit, rate));
        let jitter_us = src.jitter16 * 1_000_000 / 16 / u64::from(rate);
        self.totals.jitter_us = jitter_us;
        self.totals.max_jitter_us = self.totals.max_jitter_us.max(jitter_us);
    }

    pub fn stats(&self) -> DirectionStats {
        let mut s = self.totals;
        s.lost = self.lost_before + self.source.as_ref().map_or(0, lost);
        s
    }
}

fn lost(s: &Source) -> u64 {
    let expected = u64::from(s.max_seq.wrapping_sub(s.base_seq)) + 1;
    expected.saturating_sub(s.received)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn packet(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        p
    }

    #[test]
    fn parses_rtp_and_tells_rtcp_apart() {
        let p = packet(7, 160, 0xdead_beef);
        assert_eq!(
            RtpHeader::parse(&p),
            Some(RtpHeader {
                payload_type: 8,
                seq: 7,
                timestamp: 160,
                ssrc: 0xdead_beef
            })
        );
        let rtcp_sr = [0x80, 200, 0, 6, 1, 2, 3, 4];
        assert!(is_rtcp(&rtcp_sr));
        assert!(!is_rtcp(&p));
        assert_eq!(RtpHeader::parse(&rtcp_sr), None);
        assert_eq!(RtpHeader::parse(&p[..11]), None);
        assert_eq!(RtpHeader::parse(&[0x40; 20]), None, "version 1");
    }

    #[test]
    fn counts_loss_across_wrap_and_ignores_duplicates() {
        let t0 = Instant::now();
        let mut m = DirectionMeter::default();
        let mut n = 0u64;
        // 65530..=65535, 0..=9 with 3 missing (65534, 2, 5).
        for seq in (65530u32..65546).map(|s| (s % 65536) as u16) {
            if [65534, 2, 5].contains(&seq) {
                continue;
            }
            m.record(&packet(seq, 0, 1), t0 + Duration::from_millis(20 * n));
            n += 1;
        }
        m.record(&packet(9, 0, 1), t0); // duplicate: received twice, not a loss
        let s = m.stats();
        assert_eq!(s.packets, 14);
        assert_eq!(s.lost, 2, "duplicate makes up for one: {s:?}");
        assert_eq!(s.bytes, 14 * 172);
    }

    #[test]
    fn ssrc_change_keeps_earlier_loss_and_restarts_counting() {
        let t0 = Instant::now();
        let mut m = DirectionMeter::default();
        for seq in [1u16, 2, 4] {
            m.record(&packet(seq, 0, 1), t0);
        }
        for seq in [900u16, 901, 902] {
            m.record(&packet(seq, 0, 2), t0);
        }
        assert_eq!(m.stats().lost, 1);
    }

    #[test]
    fn steady_stream_has_no_jitter_irregular_one_does() {
        let t0 = Instant::now();
        let mut m = DirectionMeter::default();
        for i in 0..100u32 {
            m.record(
                &packet(i as u16, i * 160, 1),
                t0 + Duration::from_millis(20 * u64::from(i)),
            );
        }
        assert_eq!(m.stats().jitter_us, 0);
        assert_eq!(m.stats().lost, 0);
        // Every other packet 10 ms late: |D| alternates 80 units (10 ms) -> J -> 10 ms.
        let mut m = DirectionMeter::default();
        for i in 0..400u32 {
            let late = if i % 2 == 1 { 10 } else { 0 };
            m.record(
                &packet(i as u16, i * 160, 1),
                t0 + Duration::from_millis(20 * u64::from(i) + late),
            );
        }
        let j = m.stats().jitter_us;
        assert!((9_000..=10_500).contains(&j), "jitter {j} us");
    }

    fn opus_packet(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = packet(seq, ts, 7);
        p[1] = 111;
        p
    }

    /// 20 ms opus frames (960 units at 48 kHz), every other one `late_ms` late.
    fn feed_opus(m: &mut DirectionMeter, late_ms: u64) {
        let t0 = Instant::now();
        for i in 0..400u32 {
            let late = if i % 2 == 1 { late_ms } else { 0 };
            m.record(
                &opus_packet(i as u16, i * 960),
                t0 + Duration::from_millis(20 * u64::from(i) + late),
            );
        }
    }

    #[test]
    fn dynamic_payload_type_jitter_uses_the_signalled_clock_rate() {
        let mut m = DirectionMeter::default();
        m.set_clock_rates(&[(111, 48000)]);
        feed_opus(&mut m, 0);
        assert_eq!(m.stats().jitter_us, 0);
        let mut m = DirectionMeter::default();
        m.set_clock_rates(&[(0, 8000), (111, 48000)]);
        feed_opus(&mut m, 10);
        let j = m.stats().jitter_us;
        assert!((9_000..=10_500).contains(&j), "jitter {j} us");
        // Read at 8 kHz, the same steady stream looks like 80 ms of jitter per packet.
        let mut wrong = DirectionMeter::default();
        feed_opus(&mut wrong, 0);
        assert!(wrong.stats().jitter_us > 50_000, "{:?}", wrong.stats());
    }

    #[test]
    fn signalled_rates_leave_other_types_at_their_static_rate() {
        let mut m = DirectionMeter::default();
        m.set_clock_rates(&[(111, 48000), (96, 0)]);
        assert_eq!(m.rate_of(8), 8000);
        assert_eq!(m.rate_of(96), 8000);
        assert_eq!(m.rate_of(111), 48000);
        m.set_clock_rates(&[(111, 16000)]);
        assert_eq!(m.rate_of(111), 16000);
    }

    #[test]
    fn mos_falls_with_loss_and_jitter() {
        let clean = mos(0.0, 0.0);
        assert!(clean > 4.3 && clean <= 4.5, "{clean}");
        let lossy = mos(5.0, 0.0);
        assert!(lossy < clean - 0.3, "{lossy}");
        let jittery = mos(0.0, 100.0);
        assert!(jittery < clean - 0.2, "{jittery}");
        assert_eq!(mos(50.0, 0.0), 1.0);
        let s = DirectionStats::default();
        assert_eq!(s.mos(), None);
    }
}
