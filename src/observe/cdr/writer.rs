//! The writer thread: queue -> spool -> SQLite batches, retried with backoff while the
//! database refuses them (see the module doc of `observe::cdr`).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::Connection;

use super::spool::{Admit, Spool};
use super::{
    CLOSE_RETRY, CdrEvent, CdrMetrics, CdrOptions, DROP_WARN_INTERVAL, HEARTBEAT, MAX_BATCH, Msg,
    PURGE_INTERVAL, open, purge, write_batch,
};

/// First retry after a failed batch; doubled after each further failure up to
/// [`RETRY_MAX`]: quick recovery from a blip, one attempt (and log line) per 5 s at most
/// during a long outage.
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(100);
pub(super) const RETRY_MAX: Duration = Duration::from_secs(5);

/// Failures in a row (other than disk full, busy, locked) after which the connection is
/// reopened.
pub const REOPEN_AFTER: u32 = 3;

/// Events taken from the queue per turn of the loop before writing: keeps the queue empty
/// (senders never see it full) without starving the writes under a flood.
const MAX_INTAKE: usize = 4 * MAX_BATCH;

/// Run before each batch attempt with the connection; an error fails the attempt. Lets
/// tests make SQLite refuse writes (`max_page_count`, `query_only`, or a plain error).
pub(super) type BatchHook = Box<dyn FnMut(&Connection) -> rusqlite::Result<()> + Send>;

/// Writes are failing: since when, how often in a row, when to try again.
struct Outage {
    since: Instant,
    attempts: u32,
    delay: Duration,
    retry_at: Instant,
}

pub(super) struct Writer {
    /// `None` after a reopen failed; opened again at the next attempt.
    conn: Option<Connection>,
    path: PathBuf,
    fsync_full: bool,
    instance: String,
    retention: Option<Duration>,
    spool: Spool,
    metrics: CdrMetrics,
    outage: Option<Outage>,
    /// Set when an outage ends; the WAL is truncated once the spool has drained.
    checkpoint_due: bool,
    next_beat: Instant,
    next_purge: Instant,
    last_lost_warn: Option<Instant>,
    hook: Option<BatchHook>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        path: &Path,
        instance: &str,
        opts: CdrOptions,
        hook: Option<BatchHook>,
    ) -> Writer {
        let now = Instant::now();
        Writer {
            conn: Some(conn),
            path: path.to_path_buf(),
            fsync_full: opts.fsync_full,
            instance: instance.to_string(),
            retention: opts.retention,
            spool: Spool::new(opts.spool_rows),
            metrics: opts.metrics,
            outage: None,
            checkpoint_due: false,
            next_beat: now,
            next_purge: now,
            last_lost_warn: None,
            hook,
        }
    }

    /// The thread's body: returns after `Close` once everything is written (or given up).
    pub(super) fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            self.purge_if_due();
            let (until, hold) = self.next_wake();
            if self.intake(rx, until, hold) {
                return self.finish(rx);
            }
            if self.write_due() {
                self.attempt();
            }
        }
    }

    /// Until when to wait for events, and whether to keep taking them until then (during
    /// an outage) rather than write as soon as some arrive.
    fn next_wake(&self) -> (Instant, bool) {
        match &self.outage {
            Some(o) => (o.retry_at, true),
            None if !self.spool.is_empty() => (Instant::now(), false),
            None => (self.next_beat, false),
        }
    }

    fn write_due(&self) -> bool {
        let now = Instant::now();
        match &self.outage {
            Some(o) => now >= o.retry_at,
            None => !self.spool.is_empty() || now >= self.next_beat,
        }
    }

    /// Moves queued events into the spool, waiting until `until` for the first; with
    /// `hold`, goes on until `until`. Returns true when the writer is to close.
    fn intake(&mut self, rx: &Receiver<Msg>, until: Instant, hold: bool) -> bool {
        loop {
            let wait = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Event(ev)) => self.admit(ev),
                Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
            for _ in 0..MAX_INTAKE {
                match rx.try_recv() {
                    Ok(Msg::Event(ev)) => self.admit(ev),
                    Ok(Msg::Close) | Err(TryRecvError::Disconnected) => return true,
                    Err(TryRecvError::Empty) => break,
                }
            }
            if !hold {
                return false;
            }
        }
    }

    fn admit(&mut self, ev: CdrEvent) {
        if let Admit::Lost { new_loss } = self.spool.admit(ev) {
            self.metrics.backlog.dec();
            if new_loss {
                self.metrics.rows_lost.inc();
                self.warn_lost();
            }
        }
    }

    /// At most one warning per [`DROP_WARN_INTERVAL`]: a long outage loses many rows.
    fn warn_lost(&mut self) {
        let now = Instant::now();
        if self
            .last_lost_warn
            .is_some_and(|t| now.duration_since(t) < DROP_WARN_INTERVAL)
        {
            return;
        }
        self.last_lost_warn = Some(now);
        tracing::error!(
            rows_lost_total = self.metrics.rows_lost.get(),
            spool_rows = self.spool.rows(),
            "CDR row lost: the spool is full (cdr.spool_rows) while the database refuses writes"
        );
    }

    /// One batch: the oldest events, with the heartbeat when it is due and the batch holds
    /// everything spooled (a heartbeat must not claim a time later than an unwritten end).
    fn attempt(&mut self) {
        let n = self.spool.len().min(MAX_BATCH);
        let beat = Instant::now() >= self.next_beat && self.spool.len() <= MAX_BATCH;
        match self.write_front(n, beat.then(SystemTime::now)) {
            Ok(refused) => self.written(n, refused, beat),
            Err(e) => self.failed(&e),
        }
    }

    fn write_front(&mut self, n: usize, seen: Option<SystemTime>) -> rusqlite::Result<u64> {
        let conn = match self.conn.take() {
            Some(conn) => self.conn.insert(conn),
            None => self.conn.insert(open(&self.path, self.fsync_full)?),
        };
        if let Some(hook) = self.hook.as_mut() {
            hook(conn)?;
        }
        write_batch(conn, &self.instance, self.spool.front(n), seen)
    }

    fn written(&mut self, n: usize, refused: u64, beat: bool) {
        self.spool.pop(n);
        self.metrics.backlog.sub(n as i64);
        self.metrics.write_errors.inc_by(refused);
        self.metrics.rows_lost.inc_by(refused);
        if beat {
            self.next_beat = Instant::now() + HEARTBEAT;
        }
        if let Some(o) = self.outage.take() {
            tracing::warn!(
                failed_attempts = o.attempts,
                outage_ms = o.since.elapsed().as_millis() as u64,
                backlog = self.spool.len(),
                "CDR writes succeed again; writing the spooled rows"
            );
            self.checkpoint_due = true;
        }
        if self.checkpoint_due && self.spool.is_empty() {
            self.checkpoint_due = false;
            self.truncate_wal();
        }
    }

    fn failed(&mut self, e: &rusqlite::Error) {
        self.metrics.write_errors.inc();
        self.roll_back();
        let now = Instant::now();
        let o = self.outage.get_or_insert(Outage {
            since: now,
            attempts: 0,
            delay: Duration::ZERO,
            retry_at: now,
        });
        o.attempts += 1;
        o.delay = (o.delay * 2).clamp(RETRY_FIRST, RETRY_MAX);
        o.retry_at = now + o.delay;
        let (attempts, delay) = (o.attempts, o.delay);
        tracing::error!(
            error = %e,
            code = ?e.sqlite_error_code(),
            attempt = attempts,
            retry_in_ms = delay.as_millis() as u64,
            backlog = self.spool.len(),
            spool_rows = self.spool.rows(),
            "CDR batch write failed; kept for retry"
        );
        if attempts.is_multiple_of(REOPEN_AFTER) && !keeps_connection(e) {
            self.reopen();
        }
    }

    /// A failed commit or statement may leave the transaction open if SQLite could not
    /// roll it back; the next `BEGIN` would then fail for ever.
    fn roll_back(&mut self) {
        if let Some(conn) = &self.conn
            && !conn.is_autocommit()
        {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }

    fn reopen(&mut self) {
        self.conn = None;
        match open(&self.path, self.fsync_full) {
            Ok(conn) => {
                tracing::warn!(path = %self.path.display(), "CDR database reopened");
                self.conn = Some(conn);
            }
            Err(e) => tracing::error!(error = %e, "CDR database reopen failed"),
        }
    }

    /// The catch-up after an outage may have grown the WAL far beyond its usual size (the
    /// automatic checkpoints reuse it, never shrink it): give the disk space back once.
    fn truncate_wal(&self) {
        let Some(conn) = &self.conn else { return };
        let wal = wal_path(&self.path);
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let busy: rusqlite::Result<i64> =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
        match busy {
            Ok(0) => tracing::info!(wal_bytes_before = before, "CDR WAL truncated after outage"),
            Ok(_) => tracing::warn!(
                wal_bytes = before,
                "CDR WAL not truncated after outage: a reader holds it"
            ),
            Err(e) => tracing::warn!(error = %e, "CDR WAL checkpoint after outage failed"),
        }
    }

    fn purge_if_due(&mut self) {
        let Some(keep) = self.retention else { return };
        if Instant::now() < self.next_purge {
            return;
        }
        self.next_purge = Instant::now() + PURGE_INTERVAL;
        let Some(conn) = &self.conn else { return };
        match purge(conn, keep, SystemTime::now()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "old CDR rows deleted (cdr.retention)"),
            Err(e) => tracing::error!(error = %e, "CDR retention purge failed"),
        }
    }

    /// Close: take what is still queued (sent concurrently with close), write everything
    /// and a last heartbeat, retrying until [`CLOSE_RETRY`]; then give up what is left.
    fn finish(mut self, rx: &Receiver<Msg>) {
        while let Ok(Msg::Event(ev)) = rx.try_recv() {
            self.admit(ev);
        }
        let give_up = Instant::now() + CLOSE_RETRY;
        self.next_beat = Instant::now();
        while !self.spool.is_empty() || Instant::now() >= self.next_beat {
            if let Some(o) = &self.outage {
                if Instant::now() >= give_up {
                    return self.abandon();
                }
                // The last retry is moved forward to the deadline rather than skipped.
                let at = o.retry_at.min(give_up);
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            self.attempt();
        }
    }

    fn abandon(&mut self) {
        let (events, rows) = self.spool.abandon();
        self.metrics.backlog.sub(events as i64);
        self.metrics.rows_lost.inc_by(rows as u64);
        if events == 0 {
            tracing::warn!(
                "CDR writer stopping without its last heartbeat: the database refuses writes"
            );
            return;
        }
        tracing::error!(
            rows,
            events,
            "CDR writer stopping while the database still refuses writes: spooled rows lost"
        );
    }
}

/// Disk full, busy and locked are about the file or other connections, not this one:
/// SQLite writes again on the same connection once space or the lock is back.
fn keeps_connection(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull};
    matches!(
        e.sqlite_error_code(),
        Some(DiskFull | DatabaseBusy | DatabaseLocked)
    )
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}
