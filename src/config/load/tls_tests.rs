//! `tls:` blocks of listeners and peers: files resolved, parsed as PEM, keys matched to
//! their certificates, names checked; every problem at its key and line.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;

const POLICY: &str = "rules:\n  - name: out\n    then: {route: [carrier]}\n";

/// Listener `public` (UDP) and `tls`; peer `pbx` (UDP) and `carrier` (TLS, `{carrier}`).
fn config(listener_tls: &str, carrier: &str) -> String {
    format!(
        "\
instance: t
sip:
  listen:
    - name: public
      transport: udp
      address: 127.0.0.1:5060
    - name: tls
      transport: tls
      address: 127.0.0.1:5061
      tls: {listener_tls}
peers:
  - name: pbx
    address: 127.0.0.2:5060
  - name: carrier
    address: sips:127.0.0.3
{carrier}policy: policy.yaml
"
    )
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed for these tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ca.pem`, and `a.pem`/`a.key`, `b.pem`/`b.key` signed by it, in `dir`.
pub(super) fn write_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=t-ca",
    ]);
    openssl(dir, &ca);
    fs::write(dir.join("leaf.ext"), "subjectAltName=DNS:t.test\n").unwrap();
    for name in ["a", "b"] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=t"]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
    }
    fs::write(dir.join("junk.pem"), "not a certificate\n").unwrap();
}

fn load_with_pki(config: &str) -> Result<LoadedConfig, Vec<ConfigError>> {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    fs::write(dir.path().join("config.yaml"), config).unwrap();
    fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    load(&dir.path().join("config.yaml"))
}

fn errors(config: &str) -> Vec<(Option<usize>, String, String)> {
    match load_with_pki(config) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.into_iter().map(|e| (e.line, e.key, e.message)).collect(),
    }
}

#[test]
fn good_tls_blocks_load_with_paths_resolved() {
    let l = load_with_pki(&config(
        "{cert: a.pem, key: a.key, ca: ca.pem, verify_client: true}",
        "    tls: {ca: ./ca.pem, server_name: t.test, cert: b.pem, key: b.key}\n",
    ))
    .unwrap();
    let t = l.config.sip.listen[1].tls.as_ref().unwrap();
    assert!(t.verify_client && t.cert.is_absolute() && t.cert.ends_with("a.pem"));
    let carrier = &l.config.peers[1];
    assert_eq!(carrier.transport, Transport::Tls);
    let p = carrier.tls.as_ref().unwrap();
    assert!(
        p.ca.as_ref()
            .is_some_and(|c| c.is_absolute() && c.ends_with("ca.pem"))
    );
    assert_eq!(p.server_name.as_deref(), Some("t.test"));
}

#[test]
fn listener_files_must_parse_and_the_key_must_match() {
    let e = errors(&config("{cert: junk.pem, key: a.key}", ""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (Some(10), "sip.listen[1].tls.cert")
    );
    assert!(e[0].2.contains("junk.pem"), "{}", e[0].2);

    let e = errors(&config("{cert: a.pem, key: b.key}", ""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "sip.listen[1].tls.key");
    assert!(e[0].2.contains("does not match"), "{}", e[0].2);

    let e = errors(&config("{cert: a.pem, key: a.pem}", ""));
    assert_eq!(e[0].1, "sip.listen[1].tls.key");

    let e = errors(&config(
        "{cert: a.pem, key: a.key, verify_client: true}",
        "",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "sip.listen[1].tls.verify_client");

    let e = errors(&config("{cert: a.pem, key: a.key, ca: junk.pem}", ""));
    assert_eq!(e[0].1, "sip.listen[1].tls.ca");
}

#[test]
fn peer_tls_blocks_are_checked() {
    let e = errors(&config(
        "{cert: a.pem, key: a.key}",
        "    tls: {ca: missing.pem, cert: a.pem, server_name: 'not a name!'}\n",
    ));
    let keys: Vec<(Option<usize>, &str)> = e.iter().map(|e| (e.0, e.1.as_str())).collect();
    assert_eq!(
        keys,
        [
            (Some(16), "peers[1].tls.ca"),
            (Some(16), "peers[1].tls.key"),
            (Some(16), "peers[1].tls.server_name"),
        ]
    );
    assert!(
        e[0].2.contains("cannot read") && e[0].2.contains("missing.pem"),
        "{}",
        e[0].2
    );

    let e = errors(&config(
        "{cert: a.pem, key: a.key}",
        "    tls: {cert: a.pem, key: b.key}\n",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "peers[1].tls.key");

    // A tls block on a peer that is not reached over TLS is a mistake, not ignored.
    let udp = config("{cert: a.pem, key: a.key}", "") + "";
    let udp = udp.replace(
        "    address: 127.0.0.2:5060\n",
        "    address: 127.0.0.2:5060\n    tls: {ca: ca.pem}\n",
    );
    let e = errors(&udp);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "peers[0].tls");
}

#[test]
fn connection_idle_must_be_above_zero() {
    let c =
        config("{cert: a.pem, key: a.key}", "").replace("sip:\n", "sip:\n  connection_idle: 0s\n");
    let e = errors(&c);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "sip.connection_idle");
}
