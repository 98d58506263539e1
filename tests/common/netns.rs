//! Running a test inside a fresh network namespace that has only loopback, for tests whose
//! messages name foreign hosts (RFC 4475's 192.0.2.x Vias): whatever veil might send
//! outside 127.0.0.0/8 has no route and goes nowhere.
//!
//! The test calls [`isolate`] first: outside the namespace it re-executes the test binary
//! for just this test under `unshare -rn` (a user + network namespace; works as root and,
//! where user namespaces are enabled, unprivileged), brings `lo` up, and reports the
//! child's result; inside (`VEIL_NETNS=1`) it returns `true` and the test runs. Where
//! namespaces are unavailable the test is skipped with a loud message: such tests must
//! never run in the host's namespace.

use std::process::Command;

const MARK: &str = "VEIL_NETNS";

/// `true`: run the test body now (we are inside the namespace). `false`: the test ran in
/// a child (its failure has already panicked here) or was skipped.
pub fn isolate(test_name: &str) -> bool {
    if std::env::var_os(MARK).is_some() {
        return true;
    }
    let probe = Command::new("unshare").args(["-rn", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "\n!!!! SKIPPED {test_name}: network namespaces are unavailable here \
             (`unshare -rn true` failed). This test sends messages naming non-loopback \
             hosts and only ever runs inside an isolated namespace.\n"
        );
        return false;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("unshare")
        .arg("-rn")
        .arg("sh")
        .arg("-c")
        .arg("ip link set lo up && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(MARK, "1")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "{test_name} failed inside its network namespace ({})",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "{test_name} did not run inside its network namespace"
    );
    false
}
