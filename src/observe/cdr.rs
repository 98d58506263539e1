//! CDRs: one row per call in SQLite table `cdr` (CONTRACT.md), inserted at setup, updated at
//! answer and end, by a writer thread fed through a bounded queue so that a slow disk never
//! delays SIP.
//!
//! Design choices:
//! - rusqlite is blocking, so the writer is a plain `std::thread`, not a tokio task; the
//!   engine only ever does a non-blocking `try_send`. When the queue is full the event is
//!   dropped and counted ([`CdrWriter::dropped`]): losing a CDR row is bad, but stalling
//!   call setup for every caller because the disk is slow is worse.
//! - The thread moves whatever is queued into its spool ([`spool`]) and writes it in one
//!   transaction, so under load (thousands of calls/s) the cost of a commit is shared by
//!   many events.
//! - A full disk, an I/O error or a lock held too long never costs a batch (issue 15): the
//!   batch stays at the front of the spool and is retried, 100 ms after the failure, then
//!   doubling up to every 5 s. Meanwhile the writer keeps draining the queue into the
//!   spool, which holds up to `cdr.spool_rows` rows (100,000 by default; roughly 1 KiB
//!   each); beyond that rows are lost and counted in `veil_cdr_rows_lost_total` (what a row
//!   is and when it counts: [`spool`]). The first success after an outage logs it; once
//!   the spool has drained, the WAL (grown by the catch-up) is truncated by one
//!   `wal_checkpoint(TRUNCATE)`, giving the space back.
//! - Disk full, busy and locked leave the connection usable (tested on a full tmpfs,
//!   `tests/cdr_full_disk.rs`: every attempt fails with SQLITE_FULL, never an I/O error,
//!   and the same connection writes again once space is back). Any other failure repeated
//!   [`writer::REOPEN_AFTER`] times in a row reopens the connection, pragmas and schema
//!   included: SQLite keeps a connection read-only if the file was not writable when it was
//!   opened, and an I/O error may be tied to the file handle.
//! - `close` keeps retrying for [`CLOSE_RETRY`]; rows still unwritten then are counted as
//!   lost (stop log `cdr_rows_lost`), so shutdown never hangs on a dead disk.
//! - `journal_mode=WAL` + `synchronous=NORMAL` (`cdr.fsync: normal`, the default): a
//!   committed transaction survives a crash of the veil process, kill -9 included (it is in
//!   the WAL file, which the OS holds), but a power loss or kernel crash may lose the last
//!   batches, because the WAL is only fsynced at checkpoints. `cdr.fsync: full` sets
//!   `synchronous=FULL`: every batch is fsynced before the next one, so nothing committed is
//!   lost even on power loss, at the price of one fsync per batch (batches grow under load,
//!   so throughput degrades gracefully). WAL also lets operators read the file (`sqlite3`,
//!   exporters) while veil writes.
//! - Crash recovery: the writer records a heartbeat (`cdr_heartbeat`, one row per instance)
//!   every [`HEARTBEAT`], in the same transaction as the events before it. A row still open
//!   at start (`ended_at` NULL: veil died mid-call) is closed with end reason `error` at the
//!   last time veil is known to have seen the call: the later of its answer (or start) and
//!   the last heartbeat, so at most one heartbeat interval early. `final_code` becomes 200
//!   for answered calls; packet counts stay NULL (unknown).
//! - Retention (`cdr.retention`): rows of ended calls that started longer ago are deleted at
//!   start and then every [`PURGE_INTERVAL`] by the writer thread.
//! - Times are stored as RFC 3339 UTC text with milliseconds (`2026-11-23T13:05:01.123Z`):
//!   readable with `sqlite3`, sortable as text, and understood by SQLite's date functions.

mod spool;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use crate::observe::metrics::CdrMetrics;

use rusqlite::{Connection, TransactionBehavior, params};
use time::OffsetDateTime;
use time::macros::format_description;

/// One change to a call's CDR row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdrEvent {
    /// The call was accepted for routing: the row is inserted.
    Start {
        id: String,
        a_call_id: String,
        source_peer: String,
        from_user: String,
        to_user: String,
        started_at: SystemTime,
    },
    /// Leg B was (re)originated towards a target (updated on each failover).
    Route {
        id: String,
        b_call_id: String,
        dest_peer: String,
    },
    Answer {
        id: String,
        answered_at: SystemTime,
    },
    End {
        id: String,
        ended_at: SystemTime,
        final_code: u16,
        /// One of the `veil_calls_ended_total` reasons, or `failed`/`cancelled`/`rejected`
        /// for calls that were never answered.
        end_reason: String,
        a_packets: u64,
        b_packets: u64,
        /// Loss, jitter and MOS per direction (zero/absent without media).
        quality: CallQuality,
    },
}

/// Media quality of a call per direction (`a_*`: what side A sent to veil), over all its
/// streams: losses summed, worst jitter, worst MOS. Integers so events stay `Eq`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallQuality {
    pub a_lost: u64,
    pub b_lost: u64,
    pub a_jitter_us: u64,
    pub b_jitter_us: u64,
    /// MOS x 100 (e.g. 441 = 4.41); `None` when that side sent no RTP.
    pub a_mos_centi: Option<u16>,
    pub b_mos_centi: Option<u16>,
}

/// Why the CDR store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CdrError {
    #[error("CDR database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("starting CDR writer thread: {0}")]
    Thread(std::io::Error),
}

/// How long a statement waits for a lock held by another connection (an operator's
/// `sqlite3` session, a checkpoint) before the batch attempt fails (and is retried).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound on events written in one transaction, so one huge backlog does not become
/// one huge transaction (memory, and latency for concurrent readers).
const MAX_BATCH: usize = 4096;

/// Minimum interval between two "CDR dropped" warnings: under overload the warning itself
/// must not flood the log.
const DROP_WARN_INTERVAL: Duration = Duration::from_secs(1);

/// How often the writer records that this instance is alive (crash recovery granularity).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How often rows older than `cdr.retention` are deleted.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// `cdr.spool_rows` when not configured.
pub const DEFAULT_SPOOL_ROWS: usize = 100_000;

/// How long `close` keeps retrying a database that refuses writes before the rows still
/// spooled are given up (and counted as lost): shutdown must not hang on a dead disk.
pub const CLOSE_RETRY: Duration = Duration::from_secs(5);

/// Writer settings beyond the path (from `cdr.*`).
#[derive(Debug, Clone)]
pub struct CdrOptions {
    /// Delete rows of calls that started longer ago than this.
    pub retention: Option<Duration>,
    /// `synchronous=FULL` instead of `NORMAL`.
    pub fsync_full: bool,
    /// Rows the spool holds while writes fail (`cdr.spool_rows`).
    pub spool_rows: usize,
    /// Where backlog, write errors and lost rows are counted (unregistered by default).
    pub metrics: CdrMetrics,
}

impl Default for CdrOptions {
    fn default() -> CdrOptions {
        CdrOptions {
            retention: None,
            fsync_full: false,
            spool_rows: DEFAULT_SPOOL_ROWS,
            metrics: CdrMetrics::default(),
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cdr_heartbeat (
    instance TEXT PRIMARY KEY,
    seen_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cdr (
    id          TEXT PRIMARY KEY,
    instance    TEXT,
    a_call_id   TEXT,
    b_call_id   TEXT,
    source_peer TEXT,
    dest_peer   TEXT,
    from_user   TEXT,
    to_user     TEXT,
    started_at  TEXT,
    answered_at TEXT,
    ended_at    TEXT,
    duration_ms INTEGER,
    final_code  INTEGER,
    end_reason  TEXT,
    a_packets   INTEGER,
    b_packets   INTEGER,
    a_lost      INTEGER,
    b_lost      INTEGER,
    a_jitter_ms REAL,
    b_jitter_ms REAL,
    a_mos       REAL,
    b_mos       REAL
);
CREATE INDEX IF NOT EXISTS cdr_started_at ON cdr (started_at);
";

/// Columns added after the first schema: added to databases created before them.
const ADDED_COLUMNS: [(&str, &str); 6] = [
    ("a_lost", "INTEGER"),
    ("b_lost", "INTEGER"),
    ("a_jitter_ms", "REAL"),
    ("b_jitter_ms", "REAL"),
    ("a_mos", "REAL"),
    ("b_mos", "REAL"),
];

const INSERT: &str = "INSERT OR IGNORE INTO cdr (id, instance, a_call_id, source_peer, from_user, \
    to_user, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const HEARTBEAT_SQL: &str = "INSERT INTO cdr_heartbeat (instance, seen_at) VALUES (?1, ?2) \
    ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at";
/// Rows this instance left open (it died mid-call): closed at the last known time.
const RECOVER_END: &str = "UPDATE cdr SET end_reason = 'error', \
    ended_at = max(coalesce(answered_at, started_at), \
        coalesce((SELECT seen_at FROM cdr_heartbeat WHERE instance = ?1), '')), \
    final_code = CASE WHEN answered_at IS NULL THEN final_code ELSE 200 END \
    WHERE ended_at IS NULL AND instance = ?1";
/// Second step of recovery: `duration_ms` from the `ended_at` just written (a single UPDATE
/// would see the old NULL).
const RECOVER_DURATION: &str = "UPDATE cdr SET duration_ms = CASE WHEN answered_at IS NULL \
    THEN 0 ELSE MAX(0, CAST(ROUND((unixepoch(ended_at, 'subsec') - \
    unixepoch(answered_at, 'subsec')) * 1000) AS INTEGER)) END \
    WHERE duration_ms IS NULL AND end_reason = 'error' AND instance = ?1";
const PURGE: &str = "DELETE FROM cdr WHERE started_at < ?1 AND ended_at IS NOT NULL";
const ROUTE: &str = "UPDATE cdr SET b_call_id = ?2, dest_peer = ?3 WHERE id = ?1";
const ANSWER: &str = "UPDATE cdr SET answered_at = ?2 WHERE id = ?1";
/// `duration_ms` is computed by SQLite from the stored `answered_at`, so the engine does not
/// have to carry the answer time until the end; `unixepoch(.., 'subsec')` keeps milliseconds.
const END: &str = "UPDATE cdr SET ended_at = ?2, \
    duration_ms = CASE WHEN answered_at IS NULL THEN 0 ELSE \
        MAX(0, CAST(ROUND((unixepoch(?2, 'subsec') - unixepoch(answered_at, 'subsec')) * 1000) \
        AS INTEGER)) END, \
    final_code = ?3, end_reason = ?4, a_packets = ?5, b_packets = ?6, \
    a_lost = ?7, b_lost = ?8, a_jitter_ms = ?9, b_jitter_ms = ?10, a_mos = ?11, b_mos = ?12 \
    WHERE id = ?1";

enum Msg {
    Event(CdrEvent),
    /// Write everything queued before this, then exit.
    Close,
}

struct Inner {
    /// `None` for [`CdrWriter::disabled`].
    tx: Option<SyncSender<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    dropped: AtomicU64,
    /// Shared with the writer thread.
    metrics: CdrMetrics,
    created: Instant,
    /// Milliseconds since `created` of the last drop warning (+1, 0 = never).
    last_warn_ms: AtomicU64,
}

/// Handle to the writer thread. Cheap to clone; all clones feed the same thread.
#[derive(Clone)]
pub struct CdrWriter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CdrWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdrWriter")
            .field("enabled", &self.inner.tx.is_some())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl CdrWriter {
    /// Opens (creating if needed) the database at `path`, prepares the schema, and starts
    /// the writer thread with room for `queue` pending events (at least 1).
    ///
    /// Schema and pragmas are applied here, on the caller's thread, so that a bad path or a
    /// read-only file is a startup error rather than a log line from a background thread.
    pub fn start(path: &Path, instance: &str, queue: usize) -> Result<CdrWriter, CdrError> {
        Self::start_with(path, instance, queue, CdrOptions::default())
    }

    /// [`CdrWriter::start`] with retention, fsync, spool and metrics settings. Rows this
    /// instance left open in an earlier run are closed first (logged with their number), so
    /// they never stay "in progress" after a crash.
    pub fn start_with(
        path: &Path,
        instance: &str,
        queue: usize,
        opts: CdrOptions,
    ) -> Result<CdrWriter, CdrError> {
        Self::start_hooked(path, instance, queue, opts, None)
    }

    /// [`CdrWriter::start_with`] with a hook run before each batch attempt (tests inject
    /// write failures through it).
    fn start_hooked(
        path: &Path,
        instance: &str,
        queue: usize,
        opts: CdrOptions,
        hook: Option<writer::BatchHook>,
    ) -> Result<CdrWriter, CdrError> {
        let sql_err = |source| CdrError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = open(path, opts.fsync_full).map_err(sql_err)?;
        let recovered = recover(&conn, instance).map_err(sql_err)?;
        if recovered > 0 {
            tracing::warn!(
                rows = recovered,
                "CDR rows left open by an earlier run closed with end_reason error"
            );
        }
        let (tx, rx) = sync_channel(queue.max(1));
        let metrics = opts.metrics.clone();
        let w = writer::Writer::new(conn, path, instance, opts, hook);
        let thread = std::thread::Builder::new()
            .name("veil-cdr".into())
            .spawn(move || w.run(&rx))
            .map_err(CdrError::Thread)?;
        Ok(CdrWriter::with(Some(tx), Some(thread), metrics))
    }

    /// A writer that discards every event, for when `cdr.sqlite` is not configured; lets
    /// the engine send unconditionally.
    pub fn disabled() -> CdrWriter {
        CdrWriter::with(None, None, CdrMetrics::default())
    }

    fn with(
        tx: Option<SyncSender<Msg>>,
        thread: Option<JoinHandle<()>>,
        metrics: CdrMetrics,
    ) -> CdrWriter {
        CdrWriter {
            inner: Arc::new(Inner {
                tx,
                thread: Mutex::new(thread),
                dropped: AtomicU64::new(0),
                metrics,
                created: Instant::now(),
                last_warn_ms: AtomicU64::new(0),
            }),
        }
    }

    /// Queues `ev` for writing; never blocks, whatever the disk does. If the queue is full
    /// (or the writer has been closed) the event is dropped, counted and warned about (at
    /// most once per second).
    pub fn send(&self, ev: CdrEvent) {
        let Some(tx) = &self.inner.tx else { return };
        // Counted before the send, so the writer can never take it off the gauge first.
        self.inner.metrics.backlog.inc();
        match tx.try_send(Msg::Event(ev)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.note_drop("queue full"),
            Err(TrySendError::Disconnected(_)) => self.note_drop("writer stopped"),
        }
    }

    /// Events dropped so far because the queue was full or the writer was closed.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Rows missing or incomplete so far (`veil_cdr_rows_lost_total`): rows the full spool
    /// could not take, events dropped at the queue (one each), events SQLite refused on
    /// their own (one each), and rows still spooled when `close` gave up.
    pub fn rows_lost(&self) -> u64 {
        self.inner.metrics.rows_lost.get()
    }

    /// Events waiting in the queue and the spool (`veil_cdr_backlog`).
    pub fn backlog(&self) -> i64 {
        self.inner.metrics.backlog.get()
    }

    /// Failed write attempts so far (`veil_cdr_write_errors_total`).
    pub fn write_errors(&self) -> u64 {
        self.inner.metrics.write_errors.get()
    }

    /// A dropped event leaves its row missing or incomplete: counted as a lost row (a call
    /// losing several events this way counts several times; the count errs high).
    fn note_drop(&self, why: &'static str) {
        let inner = &self.inner;
        inner.metrics.backlog.dec();
        inner.metrics.rows_lost.inc();
        let total = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now_ms = u64::try_from(inner.created.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = inner.last_warn_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= DROP_WARN_INTERVAL.as_millis() as u64;
        // The compare-exchange makes exactly one of several concurrent senders log.
        if due
            && inner
                .last_warn_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(reason = why, dropped_total = total, "CDR event dropped");
        }
    }

    /// Writes everything queued so far and stops the writer thread; blocks until done.
    /// Called at shutdown so that no CDR is lost. Later `send`s on any clone are counted as
    /// dropped. Idempotent; also done automatically when the last clone is dropped.
    ///
    /// This blocks on disk I/O: from async code call it via `spawn_blocking`, or at the end
    /// of shutdown when nothing else is running.
    pub fn close(&self) {
        self.inner.close();
    }
}

impl Inner {
    fn close(&self) {
        let handle = match self.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(handle) = handle else { return };
        if let Some(tx) = &self.tx {
            // A blocking send is fine here: the thread is draining, so room appears. An
            // error means the thread already exited, and join below reports why.
            let _ = tx.send(Msg::Close);
        }
        if handle.join().is_err() {
            tracing::error!("CDR writer thread panicked; queued CDRs may be lost");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

fn open(path: &Path, fsync_full: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode returns the resulting mode as a row; query it rather than execute.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "CDR database is not in WAL mode");
    }
    let sync = if fsync_full { "FULL" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.execute_batch(SCHEMA)?;
    for (name, kind) in ADDED_COLUMNS {
        let present: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('cdr') WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?;
        if present == 0 {
            conn.execute_batch(&format!("ALTER TABLE cdr ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(conn)
}

/// Close the rows `instance` left open; returns how many.
fn recover(conn: &Connection, instance: &str) -> rusqlite::Result<usize> {
    let n = conn.execute(RECOVER_END, [instance])?;
    if n > 0 {
        conn.execute(RECOVER_DURATION, [instance])?;
    }
    Ok(n)
}

/// Delete rows of ended calls that started before `now - retention`; returns how many.
fn purge(conn: &Connection, retention: Duration, now: SystemTime) -> rusqlite::Result<usize> {
    let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
    conn.execute(PURGE, [rfc3339(cutoff)])
}

/// One transaction per batch; returns how many events SQLite refused on their own. Such a
/// statement (e.g. a constraint) is logged and skipped so that one bad event does not hold
/// up the batch; a lock that outlasted [`BUSY_TIMEOUT`], a full disk, an I/O error or a
/// failing commit fails the whole batch (returned, for the caller to retry), rather than
/// waiting out the timeout once per event.
///
/// `BEGIN IMMEDIATE` takes the write lock up front, where SQLite's busy handler applies;
/// a deferred transaction could instead fail with `SQLITE_BUSY_SNAPSHOT` mid-batch.
///
/// `seen`: record the heartbeat at this time, after the events (so an open row at that
/// moment was still up as far as veil knew).
fn write_batch(
    conn: &mut Connection,
    instance: &str,
    batch: &[CdrEvent],
    seen: Option<SystemTime>,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut refused = 0;
    for ev in batch {
        match apply(&tx, instance, ev) {
            Ok(0) => tracing::debug!(
                id = event_id(ev),
                "CDR event matched no row (duplicate start or unknown id)"
            ),
            Ok(_) => {}
            Err(e) if is_fatal_for_batch(&e) => return Err(e),
            Err(e) => {
                refused += 1;
                tracing::error!(id = event_id(ev), error = %e, "CDR event not written");
            }
        }
    }
    if let Some(t) = seen {
        tx.prepare_cached(HEARTBEAT_SQL)?
            .execute(params![instance, rfc3339(t)])?;
    }
    tx.commit()?;
    Ok(refused)
}

/// Errors that fail the whole batch (kept and retried) rather than one event.
fn is_fatal_for_batch(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{
        CannotOpen, DatabaseBusy, DatabaseCorrupt, DatabaseLocked, DiskFull, OutOfMemory, ReadOnly,
        SystemIoFailure,
    };
    matches!(
        e.sqlite_error_code(),
        Some(
            DatabaseBusy
                | DatabaseLocked
                | SystemIoFailure
                | DiskFull
                | ReadOnly
                | DatabaseCorrupt
                | CannotOpen
                | OutOfMemory
        )
    )
}

fn apply(tx: &rusqlite::Transaction<'_>, instance: &str, ev: &CdrEvent) -> rusqlite::Result<usize> {
    match ev {
        CdrEvent::Start {
            id,
            a_call_id,
            source_peer,
            from_user,
            to_user,
            started_at,
        } => tx.prepare_cached(INSERT)?.execute(params![
            id,
            instance,
            a_call_id,
            source_peer,
            from_user,
            to_user,
            rfc3339(*started_at)
        ]),
        CdrEvent::Route {
            id,
            b_call_id,
            dest_peer,
        } => tx
            .prepare_cached(ROUTE)?
            .execute(params![id, b_call_id, dest_peer]),
        CdrEvent::Answer { id, answered_at } => tx
            .prepare_cached(ANSWER)?
            .execute(params![id, rfc3339(*answered_at)]),
        CdrEvent::End {
            id,
            ended_at,
            final_code,
            end_reason,
            a_packets,
            b_packets,
            quality: q,
        } => {
            // SQLite integers are i64; packet counts beyond that are not physically reachable.
            let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            let ms = |us: u64| us as f64 / 1000.0;
            let mos = |m: Option<u16>| m.map(|m| f64::from(m) / 100.0);
            tx.prepare_cached(END)?.execute(params![
                id,
                rfc3339(*ended_at),
                final_code,
                end_reason,
                int(*a_packets),
                int(*b_packets),
                int(q.a_lost),
                int(q.b_lost),
                ms(q.a_jitter_us),
                ms(q.b_jitter_us),
                mos(q.a_mos_centi),
                mos(q.b_mos_centi),
            ])
        }
    }
}

fn event_id(ev: &CdrEvent) -> &str {
    match ev {
        CdrEvent::Start { id, .. }
        | CdrEvent::Route { id, .. }
        | CdrEvent::Answer { id, .. }
        | CdrEvent::End { id, .. } => id,
    }
}

/// `2026-11-23T13:05:01.123Z`: UTC, millisecond precision, fixed width (so text order is
/// time order for the index on `started_at`).
pub fn rfc3339(t: SystemTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let dt = OffsetDateTime::from(t);
    // Only years outside 0..=9999 fail to format; fall back to the epoch rather than panic.
    dt.format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn start(id: &str, t: SystemTime) -> CdrEvent {
        CdrEvent::Start {
            id: id.into(),
            a_call_id: format!("a-{id}"),
            source_peer: "pbx".into(),
            from_user: "alice".into(),
            to_user: "+4930123".into(),
            started_at: t,
        }
    }

    fn end(id: &str, t: SystemTime, code: u16, reason: &str) -> CdrEvent {
        CdrEvent::End {
            id: id.into(),
            ended_at: t,
            final_code: code,
            end_reason: reason.into(),
            a_packets: 1500,
            b_packets: 1499,
            quality: CallQuality {
                a_lost: 3,
                b_lost: 0,
                a_jitter_us: 2500,
                b_jitter_us: 0,
                a_mos_centi: Some(435),
                b_mos_centi: None,
            },
        }
    }

    type Row = (
        String,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );

    fn row(path: &Path, id: &str) -> Row {
        let conn = Connection::open(path).unwrap();
        conn.query_row(
            "SELECT id, instance, a_call_id, b_call_id, source_peer, dest_peer, from_user, \
             to_user, started_at, answered_at, ended_at, duration_ms, final_code, end_reason, \
             a_packets, b_packets FROM cdr WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                    r.get(14)?,
                    r.get(15)?,
                ))
            },
        )
        .unwrap()
    }

    fn count(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.query_row("SELECT count(*) FROM cdr", [], |r| r.get(0))
            .unwrap()
    }

    /// Columns of `id` relevant to recovery: (ended_at, end_reason, final_code, duration_ms).
    fn closed(path: &Path, id: &str) -> (Option<String>, Option<String>, Option<i64>, Option<i64>) {
        let conn = Connection::open(path).unwrap();
        conn.query_row(
            "SELECT ended_at, end_reason, final_code, duration_ms FROM cdr WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    }

    #[test]
    fn rows_left_open_are_closed_at_the_last_heartbeat_on_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let now = SystemTime::now();
        let w = CdrWriter::start(&path, "edge-1", 64).unwrap();
        w.send(start("answered", now - Duration::from_secs(60)));
        w.send(CdrEvent::Answer {
            id: "answered".into(),
            answered_at: now - Duration::from_secs(50),
        });
        w.send(start("ringing", now - Duration::from_secs(5)));
        w.send(start("done", now - Duration::from_secs(40)));
        w.send(end("done", now - Duration::from_secs(30), 486, "failed"));
        // The process dies here: what was committed stays, nothing completes the rows.
        w.close();
        drop(w);
        let beat: String = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT seen_at FROM cdr_heartbeat WHERE instance = 'edge-1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(beat >= rfc3339(now), "heartbeat {beat} written at close");
        // Another instance's open row in the same file is not touched.
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO cdr (id, instance, started_at) VALUES ('other', 'edge-2', ?1)",
                [rfc3339(now)],
            )
            .unwrap();

        let w = CdrWriter::start(&path, "edge-1", 64).unwrap();
        w.close();
        let (ended, reason, code, dur) = closed(&path, "answered");
        assert_eq!(
            ended.as_deref(),
            Some(beat.as_str()),
            "ended at the heartbeat"
        );
        assert_eq!(reason.as_deref(), Some("error"));
        assert_eq!(code, Some(200), "an answered call had its 200");
        let dur = dur.unwrap();
        assert!((50_000..60_000).contains(&dur), "duration {dur}");
        let (ended, reason, code, dur) = closed(&path, "ringing");
        assert_eq!(
            (ended.as_deref(), reason.as_deref()),
            (Some(beat.as_str()), Some("error"))
        );
        assert_eq!((code, dur), (None, Some(0)));
        let (_, reason, code, _) = closed(&path, "done");
        assert_eq!(
            (reason.as_deref(), code),
            (Some("failed"), Some(486)),
            "ended rows untouched"
        );
        let (ended, _, _, _) = closed(&path, "other");
        assert_eq!(ended, None, "rows of other instances untouched");
    }

    #[test]
    fn a_row_newer_than_the_heartbeat_ends_at_its_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let t0 = 1_795_439_101_123;
        let w = CdrWriter::start(&path, "edge-1", 64).unwrap();
        w.send(start("c1", at(t0)));
        w.send(CdrEvent::Answer {
            id: "c1".into(),
            answered_at: at(t0 + 2_000),
        });
        w.close();
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE cdr_heartbeat SET seen_at = ?1",
                [rfc3339(at(t0 - 10_000))],
            )
            .unwrap();
        CdrWriter::start(&path, "edge-1", 64).unwrap().close();
        let (ended, reason, _, dur) = closed(&path, "c1");
        assert_eq!(ended, Some(rfc3339(at(t0 + 2_000))));
        assert_eq!((reason.as_deref(), dur), (Some("error"), Some(0)));
    }

    #[test]
    fn retention_deletes_old_ended_rows_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let w = CdrWriter::start(&path, "edge-1", 64).unwrap();
        w.send(start("old", now - 100 * day));
        w.send(end("old", now - 100 * day, 200, "caller_bye"));
        w.send(start("recent", now - 10 * day));
        w.send(end("recent", now - 10 * day, 200, "caller_bye"));
        w.close();
        // An old row still open (another instance's long call) is left alone.
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO cdr (id, instance, started_at) VALUES ('open', 'edge-2', ?1)",
                [rfc3339(now - 100 * day)],
            )
            .unwrap();
        let opts = CdrOptions {
            retention: Some(90 * day),
            fsync_full: true,
            ..CdrOptions::default()
        };
        CdrWriter::start_with(&path, "edge-1", 64, opts)
            .unwrap()
            .close();
        let ids: Vec<String> = Connection::open(&path)
            .unwrap()
            .prepare("SELECT id FROM cdr ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ids, ["open", "recent"]);
    }

    #[test]
    fn fsync_full_sets_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let conn = open(&path, true).unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let conn = open(&path, false).unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn rfc3339_format() {
        // 2026-11-23T13:05:01.123Z
        assert_eq!(rfc3339(at(1_795_439_101_123)), "2026-11-23T13:05:01.123Z");
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00.000Z");
        // Sub-millisecond digits are truncated, not rounded up into the next second.
        let t = at(1_000) + Duration::from_micros(999_999);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:01.999Z");
    }

    #[test]
    fn full_call_lifecycle_makes_one_complete_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let w = CdrWriter::start(&path, "edge-1", 64).unwrap();
        let t0 = 1_795_439_101_123;
        w.send(start("c1", at(t0)));
        w.send(CdrEvent::Route {
            id: "c1".into(),
            b_call_id: "b-1".into(),
            dest_peer: "carrier-a".into(),
        });
        // Failover: the second route wins.
        w.send(CdrEvent::Route {
            id: "c1".into(),
            b_call_id: "b-2".into(),
            dest_peer: "carrier-b".into(),
        });
        w.send(CdrEvent::Answer {
            id: "c1".into(),
            answered_at: at(t0 + 2_500),
        });
        w.send(end("c1", at(t0 + 2_500 + 61_007), 200, "caller_bye"));
        w.close();
        assert_eq!(w.dropped(), 0);

        let r = row(&path, "c1");
        assert_eq!(r.0, "c1");
        assert_eq!(r.1, "edge-1");
        assert_eq!(r.2, "a-c1");
        assert_eq!(r.3.as_deref(), Some("b-2"));
        assert_eq!(r.4, "pbx");
        assert_eq!(r.5.as_deref(), Some("carrier-b"));
        assert_eq!(r.6, "alice");
        assert_eq!(r.7, "+4930123");
        assert_eq!(r.8, "2026-11-23T13:05:01.123Z");
        assert_eq!(r.9.as_deref(), Some("2026-11-23T13:05:03.623Z"));
        assert_eq!(r.10.as_deref(), Some("2026-11-23T13:06:04.630Z"));
        assert_eq!(r.11, Some(61_007));
        assert_eq!(r.12, Some(200));
        assert_eq!(r.13.as_deref(), Some("caller_bye"));
        assert_eq!(r.14, Some(1500));
        assert_eq!(r.15, Some(1499));
        assert_eq!(count(&path), 1);
    }

    #[test]
    fn unanswered_call_has_zero_duration_and_null_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let w = CdrWriter::start(&path, "edge-1", 64).unwrap();
        w.send(start("c2", at(10_000)));
        w.send(CdrEvent::Route {
            id: "c2".into(),
            b_call_id: "b".into(),
            dest_peer: "carrier-a".into(),
        });
        w.send(end("c2", at(40_000), 486, "failed"));
        w.close();
        let r = row(&path, "c2");
        assert_eq!(r.9, None);
        assert_eq!(r.11, Some(0));
        assert_eq!(r.12, Some(486));
        assert_eq!(r.13.as_deref(), Some("failed"));
        assert_eq!(r.10.as_deref(), Some("1970-01-01T00:00:40.000Z"));
    }

    #[test]
    fn pragmas_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let w = CdrWriter::start(&path, "i", 4).unwrap();
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info('cdr') ORDER BY cid")
            .unwrap();
        let cols: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            cols,
            [
                "id",
                "instance",
                "a_call_id",
                "b_call_id",
                "source_peer",
                "dest_peer",
                "from_user",
                "to_user",
                "started_at",
                "answered_at",
                "ended_at",
                "duration_ms",
                "final_code",
                "end_reason",
                "a_packets",
                "b_packets",
                "a_lost",
                "b_lost",
                "a_jitter_ms",
                "b_jitter_ms",
                "a_mos",
                "b_mos"
            ]
        );
        let idx: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_index_list('cdr') i \
                 JOIN pragma_index_info(i.name) c WHERE c.name = 'started_at'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(idx, 1);
        w.close();
        // Reopening an existing database keeps working (CREATE ... IF NOT EXISTS).
        CdrWriter::start(&path, "i", 4).unwrap().close();
    }

    #[test]
    fn quality_columns_written_and_added_to_an_old_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        // A database from before the quality columns existed.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE cdr (id TEXT PRIMARY KEY, instance TEXT, a_call_id TEXT, \
             b_call_id TEXT, source_peer TEXT, dest_peer TEXT, from_user TEXT, to_user TEXT, \
             started_at TEXT, answered_at TEXT, ended_at TEXT, duration_ms INTEGER, \
             final_code INTEGER, end_reason TEXT, a_packets INTEGER, b_packets INTEGER)",
        )
        .unwrap();
        drop(old);
        let w = CdrWriter::start(&path, "edge-1", 64).unwrap();
        w.send(start("q1", at(0)));
        w.send(end("q1", at(1000), 200, "rtp_timeout"));
        w.close();
        let conn = Connection::open(&path).unwrap();
        let q: (i64, i64, f64, f64, Option<f64>, Option<f64>) = conn
            .query_row(
                "SELECT a_lost, b_lost, a_jitter_ms, b_jitter_ms, a_mos, b_mos FROM cdr",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(q, (3, 0, 2.5, 0.0, Some(4.35), None));
    }

    #[test]
    fn start_reports_unopenable_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("cdr.sqlite");
        let err = CdrWriter::start(&path, "i", 4).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn close_flushes_everything_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let w = CdrWriter::start(&path, "edge-1", 10_000).unwrap();
        let clone = w.clone();
        for i in 0..2_000 {
            clone.send(start(&format!("call-{i}"), at(i)));
        }
        w.close();
        assert_eq!(w.dropped(), 0);
        assert_eq!(count(&path), 2_000);
        // After close, sends are counted as dropped rather than silently lost or blocking.
        clone.send(start("late", at(0)));
        assert_eq!(clone.dropped(), 1);
        assert_eq!(count(&path), 2_000);
    }

    #[test]
    fn dropping_last_clone_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let w = CdrWriter::start(&path, "edge-1", 100).unwrap();
        for i in 0..50 {
            w.send(start(&format!("call-{i}"), at(i)));
        }
        drop(w);
        assert_eq!(count(&path), 50);
    }

    /// The writer is blocked on a lock held by another connection; `send` must still return
    /// at once, and the overflow must be counted. If `send` blocked, the sending thread
    /// could never finish (the lock is only released after it reports back), and the
    /// `recv_timeout` below fails the test instead of hanging.
    #[test]
    fn overflow_is_counted_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let w = CdrWriter::start(&path, "edge-1", 1).unwrap();
        let locker = Connection::open(&path).unwrap();
        locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

        const N: u64 = 200;
        let (done_tx, done_rx) = mpsc::channel();
        let sender = w.clone();
        let t = std::thread::spawn(move || {
            for i in 0..N {
                sender.send(start(&format!("call-{i}"), at(i)));
            }
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("CdrWriter::send blocked while the database was locked");
        t.join().unwrap();

        // The stuck writer holds one batch: what it drained from the one-slot queue while
        // the sender was filling it, which races with the sender (CI saw 3), plus one
        // queued event. Everything else must have been counted as dropped rather than
        // waited for; a blocking or unbounded queue would drop none.
        let dropped = w.dropped();
        assert!(dropped >= N / 2, "dropped {dropped}");

        locker.execute_batch("COMMIT").unwrap();
        w.close();
        // Every event is accounted for: written or counted as dropped (and as a lost row).
        assert_eq!(w.rows_lost(), dropped);
        assert_eq!(w.backlog(), 0);
        assert_eq!(count(&path) as u64 + dropped, N);
    }

    /// Under overload the drop warning is rate-limited: many drops, one log line.
    #[test]
    fn drop_warnings_are_rate_limited() {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let make = {
            let lines = lines.clone();
            move || lines.clone()
        };
        let sub = tracing_subscriber::fmt()
            .with_writer(make)
            .with_ansi(false)
            .finish();
        let dir = tempfile::tempdir().unwrap();
        let w = CdrWriter::start(&dir.path().join("cdr.sqlite"), "i", 4).unwrap();
        w.close();
        tracing::subscriber::with_default(sub, || {
            for i in 0..500 {
                w.send(start(&format!("c{i}"), at(0)));
            }
        });
        assert_eq!(w.dropped(), 500);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("CDR event dropped").count(), 1, "{text}");
    }

    /// Polls `cond` every 10 ms for up to 10 s.
    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn spooled(spool_rows: usize) -> CdrOptions {
        CdrOptions {
            spool_rows,
            ..CdrOptions::default()
        }
    }

    /// Every call `0..n` as start, answer, end: a row is complete only if all three were
    /// applied in that order (an end before its start updates nothing).
    fn send_calls(w: &CdrWriter, n: u64) {
        for i in 0..n {
            let id = format!("call-{i}");
            w.send(start(&id, at(i)));
            w.send(CdrEvent::Answer {
                id: id.clone(),
                answered_at: at(i + 1_000),
            });
            w.send(end(&id, at(i + 61_000), 200, "caller_bye"));
        }
    }

    fn complete_rows(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM cdr WHERE ended_at IS NOT NULL AND final_code = 200 \
                 AND answered_at IS NOT NULL AND duration_ms = 60000",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn disk_full() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("injected".into()),
        )
    }

    /// A hook failing every attempt with SQLITE_FULL while `full` is set.
    fn fail_while(full: &Arc<std::sync::atomic::AtomicBool>) -> writer::BatchHook {
        let full = Arc::clone(full);
        Box::new(move |_| match full.load(Ordering::SeqCst) {
            true => Err(disk_full()),
            false => Ok(()),
        })
    }

    /// The database file may not grow beyond `pages` (SQLite raises a limit below the
    /// current size to it): inserts fail with SQLITE_FULL as on a full disk.
    #[test]
    fn a_full_disk_loses_nothing_and_every_row_completes_once_space_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let pages = Arc::new(AtomicU64::new(1));
        let limit = Arc::clone(&pages);
        let hook: writer::BatchHook = Box::new(move |conn| {
            let n = limit.load(Ordering::SeqCst);
            conn.pragma_update(None, "max_page_count", n).map(|_| ())
        });
        // The queue holds every event: this test is about the disk, not queue overflow.
        let w = CdrWriter::start_hooked(&path, "edge-1", 4096, CdrOptions::default(), Some(hook))
            .unwrap();
        const CALLS: u64 = 600;
        send_calls(&w, CALLS);
        wait_until("a retried write failing", || w.write_errors() >= 2);
        assert!(w.backlog() > 0, "nothing waiting while the disk is full");
        assert!(complete_rows(&path) < CALLS as i64);
        pages.store(1_000_000, Ordering::SeqCst);
        wait_until("the backlog to drain", || w.backlog() == 0);
        assert_eq!(complete_rows(&path), CALLS as i64);
        assert_eq!(count(&path), CALLS as i64);
        assert_eq!((w.rows_lost(), w.dropped()), (0, 0));
        let wal = dir.path().join("cdr.sqlite-wal");
        wait_until("the WAL truncated after the outage", || {
            std::fs::metadata(&wal).is_ok_and(|m| m.len() == 0)
        });
        w.close();
        assert_eq!(w.backlog(), 0);
    }

    /// Spool of 10 rows, 30 calls while writes fail: 10 rows kept with all their events
    /// (the ends arrive when the spool is already full of rows), 20 lost and counted once
    /// each although each lost three events.
    #[test]
    fn spool_overflow_counts_each_lost_row_once_and_keeps_the_spooled_rows_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let full = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let w =
            CdrWriter::start_hooked(&path, "edge-1", 1024, spooled(10), Some(fail_while(&full)))
                .unwrap();
        for i in 0..30 {
            w.send(start(&format!("call-{i}"), at(i)));
        }
        for i in 0..30 {
            let id = format!("call-{i}");
            w.send(CdrEvent::Answer {
                id: id.clone(),
                answered_at: at(i + 1_000),
            });
            w.send(end(&id, at(i + 61_000), 200, "caller_bye"));
        }
        wait_until("the lost rows counted", || w.rows_lost() == 20);
        wait_until("30 events spooled", || w.backlog() == 30);
        assert!(w.write_errors() >= 1);
        full.store(false, Ordering::SeqCst);
        wait_until("the backlog to drain", || w.backlog() == 0);
        w.close();
        assert_eq!(complete_rows(&path), 10);
        assert_eq!(count(&path), 10);
        assert_eq!(w.rows_lost(), 20);
        assert_eq!(w.dropped(), 0);
    }

    /// A connection SQLite keeps read-only (as when the file was not writable at open)
    /// fails every retry; after three the writer opens a fresh one.
    #[test]
    fn a_connection_stuck_read_only_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let mut first = true;
        let hook: writer::BatchHook = Box::new(move |conn| {
            if std::mem::take(&mut first) {
                conn.pragma_update(None, "query_only", true)?;
            }
            Ok(())
        });
        let w = CdrWriter::start_hooked(&path, "edge-1", 64, CdrOptions::default(), Some(hook))
            .unwrap();
        send_calls(&w, 5);
        wait_until("the backlog to drain", || w.backlog() == 0);
        assert_eq!(w.write_errors(), u64::from(writer::REOPEN_AFTER));
        w.close();
        assert_eq!(complete_rows(&path), 5);
        assert_eq!(w.rows_lost(), 0);
    }

    /// Shutdown retries for CLOSE_RETRY, then gives the rows up, counted, instead of
    /// hanging on a disk that never comes back.
    #[test]
    fn close_gives_up_on_a_dead_disk_and_counts_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdr.sqlite");
        let full = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let w = CdrWriter::start_hooked(
            &path,
            "edge-1",
            64,
            CdrOptions::default(),
            Some(fail_while(&full)),
        )
        .unwrap();
        send_calls(&w, 7);
        wait_until("a failed write", || w.write_errors() >= 1);
        let t = Instant::now();
        w.close();
        let took = t.elapsed();
        assert!(
            (CLOSE_RETRY..CLOSE_RETRY + Duration::from_secs(2)).contains(&took),
            "close took {took:?}"
        );
        assert_eq!((w.rows_lost(), w.backlog()), (7, 0));
        assert_eq!(count(&path), 0);
    }

    #[test]
    fn disabled_discards_quietly() {
        let w = CdrWriter::disabled();
        w.send(start("x", at(0)));
        w.close();
        assert_eq!(w.dropped(), 0);
    }

    #[test]
    fn writer_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<CdrWriter>();
    }
}
