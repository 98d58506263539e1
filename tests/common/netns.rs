//! Running a test inside a fresh network namespace that has only loopback, for tests whose
//! messages name foreign hosts (RFC 4475's 192.0.2.x Vias): whatever veil might send
//! outside 127.0.0.0/8 has no route and goes nowhere.
//!
//! The test calls [`isolate`] first: outside the namespace it re-executes the test binary
//! for just this test under `unshare -rn` (a user + network namespace; works as root and,
//! where user namespaces are enabled, unprivileged), brings `lo` up, and reports the
//! child's result; inside (`VEIL_NETNS=1`) it returns `true` and the test runs. Where
//! namespaces are unavailable the test is skipped with a loud message: such tests must
//! never run in the host's namespace. [`isolate_with_mounts`] adds a mount namespace, for
//! tests that need a file system of their own (a small tmpfs that can be filled).

use std::ffi::OsStr;
use std::process::Command;

const MARK: &str = "VEIL_NETNS";

/// `true`: run the test body now (we are inside the namespace). `false`: the test ran in
/// a child (its failure has already panicked here) or was skipped.
pub fn isolate(test_name: &str) -> bool {
    if std::env::var_os(MARK).is_some() {
        return true;
    }
    if !available("-rn") {
        eprintln!(
            "\n!!!! SKIPPED {test_name}: network namespaces are unavailable here \
             (`unshare -rn true` failed). This test sends messages naming non-loopback \
             hosts and only ever runs inside an isolated namespace.\n"
        );
        return false;
    }
    run_inside(test_name, "-rn", "", &[]);
    false
}

/// [`isolate`] with a private mount namespace as well: `setup` (a shell command, run as
/// the namespace's root before the test, with `env` set) may mount file systems that only
/// the test sees, e.g. a small tmpfs. `false` also when namespaces or mounts are
/// unavailable: the test is then skipped with a loud `SKIPPED` message.
pub fn isolate_with_mounts(test_name: &str, setup: &str, env: &[(&str, &OsStr)]) -> bool {
    if std::env::var_os(MARK).is_some() {
        return true;
    }
    // The setup itself is tried in a throwaway namespace: its mounts vanish with it.
    let probe = Command::new("unshare")
        .args(["-rnm", "sh", "-c", setup])
        .envs(env.iter().copied())
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "\n!!!! SKIPPED {test_name}: a user + network + mount namespace where `{setup}` \
             works is unavailable here ({}). This test mounts its own file system and only \
             ever runs inside an isolated namespace.\n",
            probe.map_or_else(
                |e| e.to_string(),
                |o| String::from_utf8_lossy(&o.stderr).trim().to_string()
            )
        );
        return false;
    }
    run_inside(test_name, "-rnm", setup, env);
    false
}

fn available(flags: &str) -> bool {
    Command::new("unshare")
        .args([flags, "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Re-executes the test binary for `test_name` alone under `unshare <flags>` with `lo` up
/// and `setup` run first; panics here if it failed there.
fn run_inside(test_name: &str, flags: &str, setup: &str, env: &[(&str, &OsStr)]) {
    let exe = std::env::current_exe().expect("test binary path");
    let setup = if setup.is_empty() {
        String::new()
    } else {
        format!("{setup} && ")
    };
    let out = Command::new("unshare")
        .arg(flags)
        .arg("sh")
        .arg("-c")
        .arg(format!("ip link set lo up && {setup}exec \"$0\" \"$@\""))
        .arg(&exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
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
}
