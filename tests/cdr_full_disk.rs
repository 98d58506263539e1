//! CDRs on a full disk (issue 15), with the real binary: the CDR file sits on a 2 MiB
//! tmpfs of the test's own (a user + network + mount namespace), which a filler file
//! fills up while 400 calls go through veil. Signalling must not notice; once the filler
//! is deleted, every call must have its complete row and nothing may be counted as lost.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Lab, Setup, Side, assert_all_succeeded};

const TEST: &str = "cdr_rows_survive_a_full_disk";
/// Where the tmpfs is mounted, inside the namespace (a dir the parent creates).
const DISK_ENV: &str = "VEIL_CDR_DISK";
const CALLS: u32 = 400;
/// Longest wait from freeing the disk to every row complete: one retry interval at the
/// 5 s backoff cap, plus the catch-up.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

#[test]
fn cdr_rows_survive_a_full_disk() {
    let disk = tempfile::Builder::new()
        .prefix("veil-cdr-disk-")
        .tempdir()
        .expect("create mount point");
    let setup = format!("mount -t tmpfs -o size=2m veil-cdr \"${DISK_ENV}\"");
    let env = [(DISK_ENV, disk.path().as_os_str())];
    if common::netns::isolate_with_mounts(TEST, &setup, &env) {
        let mount = std::env::var_os(DISK_ENV).expect("mount point passed in");
        full_disk_calls(Path::new(&mount));
    }
}

/// Runs inside the namespace, `disk` being the small tmpfs.
fn full_disk_calls(disk: &Path) {
    let cdr = disk.join("cdr.sqlite");
    let mut setup = Setup::standard();
    // Our own network namespace: no port is shared with any other test.
    setup.media_ports = Some((28000, 28999));
    let lab = Lab::start_edited(80, &setup, |c| {
        c.replace("sqlite: cdr.sqlite", &format!("sqlite: {}", cdr.display()))
            .replace("level: debug", "level: info")
    });
    let filler = disk.join("filler");
    let filled = fill(&filler);
    println!("disk full: filler of {filled} bytes");
    assert!(
        filled < 4 << 20,
        "{} is not the 2 MiB tmpfs",
        disk.display()
    );

    let callee = lab
        .sipp(Side::Carrier, "uas_basic.xml")
        .calls(CALLS)
        .spawn();
    let caller = lab
        .sipp(Side::Pbx, "uac_basic.xml")
        .calls(CALLS)
        .arg("-r")
        .arg("50")
        .to(lab.veil_sip())
        .run();
    let callee = callee.wait(Duration::from_secs(30));
    // Signalling never waited on the disk: every call went through.
    assert_all_succeeded(&[&caller, &callee]);
    let during = lab.metrics();
    let backlog_full = gauge(&during, "veil_cdr_backlog");
    let errors_full = gauge(&during, "veil_cdr_write_errors_total");
    println!(
        "after {CALLS} calls on the full disk: backlog {backlog_full} events, {errors_full} write errors"
    );
    assert!(
        errors_full > 0.0,
        "no CDR write failed: the disk was not full"
    );
    assert!(
        backlog_full > 0.0,
        "no CDR event waiting while the disk is full"
    );

    std::fs::remove_file(&filler).expect("delete the filler");
    let freed = Instant::now();
    let rows = wait_complete(&lab, &cdr);
    let took = freed.elapsed();
    let after = lab.metrics();
    let lost = gauge(&after, "veil_cdr_rows_lost_total");
    let errors = gauge(&after, "veil_cdr_write_errors_total");
    let backlog = gauge(&after, "veil_cdr_backlog");
    let wal = std::fs::metadata(wal_of(&cdr)).map_or(0, |m| m.len());
    println!(
        "disk freed: {rows} complete rows after {took:?}; rows lost {lost}, write errors {errors}, \
         backlog {backlog}, WAL now {wal} bytes"
    );
    assert_eq!(rows, CALLS as usize);
    assert_eq!(lost, 0.0, "rows counted as lost");
    assert_eq!(backlog, 0.0, "events still waiting");
    assert!(errors >= errors_full);
    assert!(
        lab.veil()
            .wait_log("CDR writes succeed again", 1, Duration::from_secs(1)),
        "recovery not logged"
    );
    assert!(
        lab.veil()
            .wait_log("CDR WAL truncated after outage", 1, Duration::from_secs(2)),
        "WAL not truncated after the outage:\n{}",
        lab.veil().log_tail(20)
    );
}

/// Writes `path` until the file system is full; returns its size.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0xa5u8; 4096];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let _ = f.sync_all();
    written
}

/// Waits until every call of the PBX has a complete row; returns how many.
fn wait_complete(lab: &Lab, cdr: &Path) -> usize {
    let deadline = Instant::now() + RECOVERY_LIMIT;
    loop {
        let rows = common::observe::read_cdr(cdr).unwrap_or_default();
        let complete = rows
            .iter()
            .filter(|r| {
                r.get("a_call_id")
                    .is_some_and(|c| c.starts_with("pbx-call-"))
                    && r.get("final_code") == Some("200")
                    && r.get("ended_at").is_some_and(|e| !e.is_empty())
                    && r.get("end_reason") == Some("caller_bye")
            })
            .count();
        let settled = gauge(&lab.metrics(), "veil_cdr_backlog") == 0.0;
        if (complete >= CALLS as usize && settled) || Instant::now() >= deadline {
            assert!(
                complete >= CALLS as usize,
                "{complete} of {CALLS} rows complete {RECOVERY_LIMIT:?} after the disk was \
                 freed ({} rows in the table)",
                rows.len()
            );
            return complete;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gauge(m: &common::Metrics, name: &str) -> f64 {
    m.sum(name, &[])
        .unwrap_or_else(|| panic!("metric {name} missing:\n{}", m.raw))
}

fn wal_of(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}
