//! baresip, a real softphone, on both legs of one audio call through veil: each phone
//! plays a tone of its own (made with sox), and what the other phone decoded is checked
//! for that tone's frequency. Over UDP, and with the caller over TLS dialling a
//! `sip:...;transport=tls` URI (RFC 5630: veil's Contact must then be `sip:`, not `sips:`,
//! or baresip cannot complete the call). Skips loudly when baresip or sox is absent.

mod common;

use std::time::Duration;

use common::baresip::{self, Phone, PhoneCfg, tone_share};
use common::pki::Pki;
use common::{CALLEE_NUMBER, Lab, Setup, Side};

const CALLER_HZ: f64 = 1000.0;
const CALLEE_HZ: f64 = 600.0;

fn skip_without_baresip() -> bool {
    if baresip::available() {
        return false;
    }
    eprintln!(
        "SKIPPED: baresip or sox is not installed (apt-get install baresip-core sox); .ci/run installs them"
    );
    true
}

/// baresip binds its RTP sockets to the wildcard address, so on loopback its packets
/// leave from 127.0.0.1: neither its signalling address nor its SDP's, which the default
/// `media.latching: ip` requires (on a real network the kernel picks the interface's own
/// address, the one in the SDP). These tests are about SIP and audio, not latching.
fn any_latching(config: String) -> String {
    let anchor = "  rtp_timeout: 60s";
    assert!(config.contains(anchor), "{config}");
    config.replacen(anchor, &format!("{anchor}\n  latching: any"), 1)
}

fn phone_cfg<'a>(lab: &Lab, side: Side, user: &'a str, tone: &'a std::path::Path) -> PhoneCfg<'a> {
    let media = lab.ports.sipp_media(side);
    PhoneCfg {
        name: side.peer_name(),
        ip: side.ip(),
        port: lab.ports.sip(side),
        user,
        tone,
        rtp_ports: (media, media + 7),
        extra: String::new(),
        aor_params: "",
    }
}

/// One call: the callee answers, the caller hangs up after 6 s; both recordings checked.
/// Returns the caller's log (with its SIP trace).
fn call_and_check(lab: &Lab, caller: PhoneCfg, dial: &str, callee: PhoneCfg) -> String {
    let mut b = Phone::start(lab.dir(), &callee, None, 14);
    let mut a = Phone::start(lab.dir(), &caller, Some(dial), 6);
    a.wait(Duration::from_secs(15));
    b.wait(Duration::from_secs(15));
    assert!(
        a.log_has("Call established"),
        "the caller's call was not established:\n{}\n---- callee\n{}",
        a.log_text(),
        b.log_text()
    );
    for (phone, want, other, who) in [
        (&b, CALLER_HZ, CALLEE_HZ, "callee"),
        (&a, CALLEE_HZ, CALLER_HZ, "caller"),
    ] {
        let rec = phone
            .recording()
            .unwrap_or_else(|| panic!("the {who} recorded nothing:\n{}", phone.log_text()));
        let s = baresip::samples(&rec);
        let share = tone_share(&s, want);
        let echo = tone_share(&s, other).unwrap_or(0.0);
        assert!(
            share.is_some_and(|v| v > 0.8) && echo < 0.05,
            "the {who} should hear {want} Hz: share {share:?}, {other} Hz share {echo} ({} samples in {})",
            s.len(),
            rec.display()
        );
        // At least two seconds of audible tone crossed the relay.
        assert!(s.len() >= 16000, "{who}: only {} samples", s.len());
    }
    assert!(
        b.log_has("terminated"),
        "the caller's hang-up did not reach the callee:\n{}",
        b.log_text()
    );
    let m = lab.metrics();
    m.assert_at_least("veil_calls_total", &[("outcome", "answered")], 1.0);
    m.assert_at_least("veil_calls_ended_total", &[("reason", "caller_bye")], 1.0);
    a.log_text()
}

#[test]
fn baresip_to_baresip_over_udp_carries_both_tones() {
    if skip_without_baresip() {
        return;
    }
    let lab = Lab::start_edited(105, &Setup::standard(), any_latching);
    let (t1, t2) = (
        baresip::tone(lab.dir(), CALLER_HZ as u32, 10),
        baresip::tone(lab.dir(), CALLEE_HZ as u32, 14),
    );
    let caller = phone_cfg(&lab, Side::Pbx, "1001", &t1);
    let callee = phone_cfg(&lab, Side::Carrier, CALLEE_NUMBER, &t2);
    let dial = format!("sip:{CALLEE_NUMBER}@{}", lab.veil_sip());
    let a_log = call_and_check(&lab, caller, &dial, callee);
    let contact = format!("Contact: <sip:{};transport=", lab.veil_sip());
    assert!(
        !a_log.contains(&contact),
        "no transport parameter over UDP:\n{a_log}"
    );
}

/// veil's TLS port in a slot (the slot's 10 ports leave +7 free).
fn tls_port(lab: &Lab) -> u16 {
    lab.ports.veil_sip() + 7
}

#[test]
fn baresip_over_tls_with_a_sip_uri_gets_a_sip_contact_and_completes() {
    if skip_without_baresip() {
        return;
    }
    let pki = Pki::new();
    let slot = 106;
    let ports = common::Ports::new(slot);
    let listener = format!(
        "    - {{name: tls, transport: tls, address: 127.0.0.1:{}, tls: {{cert: {}, key: {}}}}}\n",
        ports.veil_sip() + 7,
        pki.p("veil.pem"),
        pki.p("veil.key"),
    );
    let udp_pbx = format!(
        "    address: {}\n    transport: udp\n    listen: udp\n",
        ports.sip_addr(Side::Pbx)
    );
    let tls_pbx = format!(
        "    address: {}\n    transport: tls\n    listen: tls\n    tls: {{ca: {}}}\n",
        ports.sip_addr(Side::Pbx),
        pki.p("ca.pem")
    );
    let lab = Lab::start_edited(slot, &Setup::standard(), |c| {
        let anchor = "    - {name: tcp,";
        assert!(c.contains(anchor) && c.contains(&udp_pbx), "{c}");
        // baresip 1.0 does not bind its TLS connections to its address: they come from
        // 127.0.0.1, which nothing else in this lab sends from.
        any_latching(c)
            .replacen(anchor, &format!("{listener}{anchor}"), 1)
            .replacen(&udp_pbx, &tls_pbx, 1)
            .replacen(
                "sources: [127.0.0.2/32]",
                "sources: [127.0.0.2/32, 127.0.0.1/32]",
                1,
            )
    });
    let (t1, t2) = (
        baresip::tone(lab.dir(), CALLER_HZ as u32, 10),
        baresip::tone(lab.dir(), CALLEE_HZ as u32, 14),
    );
    let mut caller = phone_cfg(&lab, Side::Pbx, "1001", &t1);
    caller.extra = format!("sip_cafile {}\n", pki.p("ca.pem"));
    caller.aor_params = ";transport=tls";
    let callee = phone_cfg(&lab, Side::Carrier, CALLEE_NUMBER, &t2);
    let dial = format!(
        "sip:{CALLEE_NUMBER}@127.0.0.1:{};transport=tls",
        tls_port(&lab)
    );
    let a_log = call_and_check(&lab, caller, &dial, callee);
    let contact = format!("Contact: <sip:127.0.0.1:{};transport=tls>", tls_port(&lab));
    assert!(
        a_log.contains(&contact) && !a_log.contains("Contact: <sips:"),
        "veil's Contact to a sip: dialog over TLS must be {contact:?}:\n{a_log}"
    );
}
