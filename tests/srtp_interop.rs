//! SRTP against an independent implementation: libsrtp (PyPI's pylibsrtp, driven by
//! tests/srtp_peer.py) on an SRTP side of a veil relay stream, plain RTP on the other.
//! Every offered suite both ways, RTCP too; wrong keys, forged tags, replays and
//! unencrypted SRTCP are dropped and counted in `veil_media_srtp_errors_total`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;

use veil::media::relay::Relay;
use veil::media::srtp::{SrtpKey, Suite};
use veil::media::{MediaCommand, Side, StreamId};
use veil::observe::Metrics;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An even port whose pair is free right now, and stays reserved until the sockets drop.
fn free_pair() -> u16 {
    loop {
        let probe = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        let port = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        if port > 1024
            && UdpSocket::bind((LOCALHOST, port)).is_ok()
            && UdpSocket::bind((LOCALHOST, port + 1)).is_ok()
        {
            return port;
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run_suite(suite: Suite, id: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let metrics = Metrics::new("srtp-interop").unwrap();
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (veil_a, veil_b, peer_a, peer_b) = (free_pair(), free_pair(), free_pair(), free_pair());
    let key_in = SrtpKey::generate(suite);
    let key_out = SrtpKey::generate(suite);
    let relay = rt.block_on(async {
        let relay = Relay::start(LOCALHOST, events_tx, metrics.clone());
        let id = StreamId(id);
        relay.command(MediaCommand::Open {
            id,
            a_port: veil_a,
            b_port: veil_b,
        });
        for (side, port) in [(Side::A, peer_a), (Side::B, peer_b)] {
            relay.command(MediaCommand::SetRemote {
                id,
                side,
                rtp: Some(SocketAddr::new(LOCALHOST, port)),
                rtcp: Some(SocketAddr::new(LOCALHOST, port + 1)),
            });
        }
        relay.command(MediaCommand::SetCrypto {
            id,
            side: Side::A,
            inbound: Some(key_in.clone()),
            outbound: Some(key_out.clone()),
        });
        relay.flush().await;
        assert!(events.try_recv().is_err(), "stream opened");
        relay
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/srtp_peer.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(suite.sdes_name())
        .arg(hex(key_in.material()))
        .arg(hex(key_out.material()))
        .args([veil_a, veil_b, peer_a, peer_b].map(|p| p.to_string()))
        .output()
        .expect("python3 runs (pip install pylibsrtp)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "srtp_peer.py failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> u64 {
        let at = stdout
            .find(&format!("\"{name}\": "))
            .unwrap_or_else(|| panic!("{name} in {stdout}"));
        stdout[at + name.len() + 4..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    let s = suite.sdes_name();
    assert_eq!(
        field("a_to_b_exact"),
        50,
        "{s}: SRTP in, plain out: {stdout}"
    );
    assert_eq!(field("a_to_b_received"), 50, "{s}: {stdout}");
    assert_eq!(
        field("b_to_a_exact"),
        50,
        "{s}: plain in, SRTP out: {stdout}"
    );
    assert_eq!(field("rtcp_a_to_b"), 1, "{s}: {stdout}");
    assert_eq!(field("rtcp_b_to_a"), 1, "{s}: {stdout}");
    assert_eq!(field("bad_leaked"), 0, "{s}: {stdout}");
    assert_eq!(field("replay_copies_out"), 1, "{s}: {stdout}");
    // Wrong keys, forged tags, replayed copies, the unencrypted SRTCP: each counted once.
    let bad = field("bad_sent");
    assert_eq!(metrics.media_srtp_errors.get(), bad, "{s}: {stdout}");
    rt.block_on(async move {
        relay.command(MediaCommand::Close { id: StreamId(id) });
        relay.flush().await;
    });
}

#[test]
fn libsrtp_peer_aes_cm_80() {
    run_suite(Suite::AesCm128HmacSha1_80, 1);
}

#[test]
fn libsrtp_peer_aes_cm_32() {
    run_suite(Suite::AesCm128HmacSha1_32, 2);
}

#[test]
fn libsrtp_peer_aead_aes_128_gcm() {
    run_suite(Suite::AeadAes128Gcm, 3);
}

#[test]
fn libsrtp_peer_aead_aes_256_gcm() {
    run_suite(Suite::AeadAes256Gcm, 4);
}
