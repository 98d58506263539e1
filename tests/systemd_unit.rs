//! systemd/veil.service: what the issue asks of it, and `systemd-analyze verify` clean
//! when that tool is installed (CI installs it; elsewhere the check is skipped, saying so).

use std::path::PathBuf;
use std::process::Command;

fn unit() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd/veil.service"))
        .unwrap()
}

#[test]
fn unit_has_the_operational_settings() {
    let u = unit();
    let lines: Vec<&str> = u.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "ExecStart=/usr/bin/veil run --config /etc/veil/veil.yaml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=veil",
        "StateDirectory=veil",
        "ConfigurationDirectory=veil",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ] {
        assert!(lines.contains(&want), "veil.service lacks `{want}`");
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("DynamicUser")),
        "static user, see the unit's comment"
    );
    let nofile: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("LimitNOFILE")
        .parse()
        .unwrap();
    // 4 sockets per relayed stream over the default 10000-port range, with room to spare.
    assert!(nofile >= 4 * 10_000, "LimitNOFILE={nofile}");
    let stop: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.strip_suffix('s'))
        .expect("TimeoutStopSec in seconds")
        .parse()
        .unwrap();
    let drain = veil::config::CallsConfig::default()
        .drain_timeout
        .0
        .as_secs();
    assert!(
        stop > drain + 5,
        "TimeoutStopSec={stop}s must exceed drain_timeout {drain}s + BYE time"
    );
}

#[test]
fn systemd_analyze_verify_is_clean() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze not installed (apt-get install systemd)");
        return;
    }
    // verify checks that ExecStart's binary exists: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("veil.service");
    std::fs::write(
        &path,
        unit().replace("/usr/bin/veil", env!("CARGO_BIN_EXE_veil")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Warnings (unknown keys, bad values) go to stderr with status 0: both must be clean.
    let own: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("veil.service"))
        .collect();
    assert!(
        out.status.success() && own.is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}
