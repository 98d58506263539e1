//! IPv6: a PBX on ::1 calls a carrier on 127.0.0.3 through veil, and the carrier calls
//! back. Each leg keeps its own family: SIP and SDP on the PBX leg are IPv6 (`IN IP6 ::1`
//! for veil's relay), on the carrier leg IPv4; media is relayed between the families.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::trace::Direction;
use common::{Lab, Ports, Setup, Side, assert_all_succeeded};

const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The standard setup with the PBX moved to [::1] (its own port) behind a veil IPv6
/// listener, and the relay also on ::1.
fn pbx_on_v6(ports: Ports) -> impl FnOnce(String) -> String {
    move |c| {
        let sip = ports.veil_sip();
        let pbx = ports.sip(Side::Pbx);
        let c = c.replace(
            "media:\n  address: 127.0.0.1\n",
            "media:\n  address: 127.0.0.1\n  address6: \"::1\"\n",
        );
        let tcp_listener =
            format!("    - {{name: tcp, transport: tcp, address: 127.0.0.1:{sip}}}\n");
        assert!(c.contains(&tcp_listener));
        let c = c.replace(
            &tcp_listener,
            &format!(
                "{tcp_listener}    - {{name: udp6, transport: udp, address: \"[::1]:{sip}\"}}\n"
            ),
        );
        let old = format!(
            "  - name: pbx\n    address: 127.0.0.2:{pbx}\n    transport: udp\n    listen: udp\n    trusted: true\n    sources: [127.0.0.2/32]\n"
        );
        assert!(c.contains(&old), "{c}");
        c.replace(
            &old,
            &format!(
                "  - name: pbx\n    address: \"[::1]:{pbx}\"\n    transport: udp\n    listen: udp6\n    trusted: true\n    sources: [\"::1/128\"]\n"
            ),
        )
    }
}

fn sdp_c_line(m: &common::trace::TracedMessage) -> String {
    m.sdp()
        .and_then(|s| s.lines().find(|l| l.starts_with("c=")).map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn call_over_ipv6_to_ipv4_and_back() {
    let ports = Ports::new(92);
    let lab = Lab::start_edited(92, &Setup::standard(), pbx_on_v6(ports));
    let veil6 = SocketAddr::new(V6, lab.ports.veil_sip());

    // ::1 -> 127.0.0.3
    let callee = lab.sipp(Side::Carrier, "uas_basic.xml").spawn();
    let caller = lab.sipp(Side::Pbx, "uac_basic.xml").ip(V6).to(veil6).run();
    let callee = callee.wait(Duration::from_secs(15));
    assert_all_succeeded(&[&caller, &callee]);
    let ok = caller
        .received()
        .find(|m| m.status() == Some(200) && m.sdp().is_some())
        .expect("200 with SDP to the PBX");
    assert_eq!(sdp_c_line(ok), "c=IN IP6 ::1", "{}", ok.text);
    let inv = callee.received_requests("INVITE")[0];
    assert_eq!(sdp_c_line(inv), "c=IN IP4 127.0.0.1", "{}", inv.text);
    for m in callee.received() {
        assert!(!m.text.contains("::1"), "IPv6 side leaked: {}", m.text);
    }
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "200");
    cdr.assert_eq("source_peer", "pbx");

    // 127.0.0.3 -> ::1
    let callee = lab.sipp(Side::Pbx, "uas_basic.xml").ip(V6).spawn();
    let caller = lab
        .sipp(Side::Carrier, "uac_basic.xml")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(15));
    assert_all_succeeded(&[&caller, &callee]);
    let inv = callee.received_requests("INVITE")[0];
    assert_eq!(sdp_c_line(inv), "c=IN IP6 ::1", "{}", inv.text);
    assert!(
        inv.header("Via").is_some_and(|v| v.contains("[::1]")),
        "{}",
        inv.text
    );
    for m in caller.received() {
        assert!(!m.text.contains("::1"), "IPv6 side leaked: {}", m.text);
    }
    let cdr = lab.ended_cdr(&caller.first_call_id(Direction::Sent));
    cdr.assert_eq("final_code", "200");
    cdr.assert_eq("dest_peer", "pbx");
}
