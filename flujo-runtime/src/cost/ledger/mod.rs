//! The cost ledger: every model call that reported usage becomes a [`CostRecord`]. Records
//! live in memory, or in a SQLite file (feature `sqlite`, `FLUJO_COST_LEDGER=path`) written
//! by a thread of its own in batches, so that neither the calling thread nor the export
//! worker waits on the disk.
//!
//! Reports never hold the ledger's lock while they read a file: a report over a large
//! ledger in a live service leaves the worker (and every call) free to go on.

mod memory;
pub(crate) mod record;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use flujo_pricing::{Date, Usd};

use self::memory::MemoryLedger;
pub use self::record::CostRecord;
use super::error::CostError;
use super::pricing::utc_date;
use super::report::CostReport;
#[cfg(feature = "sqlite")]
use crate::collect::sink;
use crate::collect::worker::LATE_COST_RECORDS;
use crate::core::sync::lock;

/// The most cost records waiting for the durable ledger's writer (and so the most in one
/// transaction). At SQLite's insert rate (about 370,000 rows a second on the project's CI
/// machine) that is about 11 ms of work: with the records of model calls handed to the
/// writer when the call ends (not when the export worker next drains), it bounds what a hard
/// kill can lose at any rate of calls. A cost path faster than the disk waits for room
/// (back-pressure) rather than queue without bound.
pub const MAX_QUEUED_COST_RECORDS: usize = 4096;
/// The most bytes of cost records (strings included, about) waiting for the writer.
pub const MAX_QUEUED_COST_RECORD_BYTES: usize = 16 << 20;
/// What a process killed outright (SIGKILL, a crash, the OOM killer) can lose of its durable
/// ledger: cost records of the calls that ended in this window before the kill, never older
/// ones, at any rate of calls (a disk slower than SQLite on a local disk widens it).
pub const KILL_LOSS_WINDOW: std::time::Duration = std::time::Duration::from_millis(300);

enum Store {
    Memory(MemoryLedger),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Writer),
    /// A durable ledger was closed at shutdown: reports still read its file, records
    /// arriving now (from calls that outlived the session) are counted as late, never kept in
    /// memory as if no durable ledger had been configured.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Closed(PathBuf),
}

static STORE: Mutex<Store> = Mutex::new(Store::Memory(MemoryLedger::new()));

/// The records of a live `testing::Capture`, besides the ledger.
static CAPTURED: Mutex<Option<Vec<CostRecord>>> = Mutex::new(None);

/// Starts (`true`) or ends keeping a copy of every record for a capture.
pub(crate) fn capture(active: bool) {
    *lock(&CAPTURED) = active.then(Vec::new);
}

/// The records kept for the live capture.
pub(crate) fn captured() -> Vec<CostRecord> {
    lock(&CAPTURED).clone().unwrap_or_default()
}

/// Appends a record (called by the cost observer).
pub(crate) fn accept(record: CostRecord) {
    if let Some(captured) = &mut *lock(&CAPTURED) {
        captured.push(record.clone());
    }
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    let durable = match &mut *lock(&STORE) {
        Store::Memory(ledger) => return ledger.add(record),
        #[cfg(feature = "sqlite")]
        Store::Sqlite(writer) => writer.handle(),
        Store::Closed(_) => {
            LATE_COST_RECORDS.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    // Outside the ledger's lock: a full queue may make this wait for the disk.
    #[cfg(feature = "sqlite")]
    durable.send(record);
}

/// A durable ledger's file, to read without holding the ledger's lock.
struct FileReader {
    path: PathBuf,
    #[cfg(feature = "sqlite")]
    writer: Option<sqlite::Handle>,
}

impl FileReader {
    /// Waits (bounded) until what the writer was given is committed, then reads.
    fn read<T>(
        self,
        read: impl FnOnce(&std::path::Path) -> Result<T, CostError>,
    ) -> Result<T, CostError> {
        #[cfg(feature = "sqlite")]
        if let Some(writer) = &self.writer {
            writer.wait(SYNC_TIMEOUT);
        }
        read(&self.path)
    }
}

/// What a read of the ledger needs: done already (the in-memory ledger, read under its lock),
/// or a file to read after the lock is released.
enum Read<T> {
    Done(T),
    File(FileReader),
}

fn read<T>(memory: impl FnOnce(&MemoryLedger) -> T) -> Read<T> {
    match &*lock(&STORE) {
        Store::Memory(ledger) => Read::Done(memory(ledger)),
        #[cfg(feature = "sqlite")]
        Store::Sqlite(writer) => Read::File(FileReader {
            path: writer.path().to_owned(),
            writer: Some(writer.handle()),
        }),
        Store::Closed(path) => Read::File(FileReader {
            path: path.clone(),
            #[cfg(feature = "sqlite")]
            writer: None,
        }),
    }
}

/// The report of `start..=end` (UTC days) of the process ledger.
pub(crate) fn report_between(start: Date, end: Date) -> Result<CostReport, CostError> {
    match read(|ledger| ledger.report(start, end)) {
        Read::Done(report) => Ok(report),
        Read::File(file) => file.read(|path| read_report(path, start, end)),
    }
}

#[cfg(feature = "sqlite")]
fn read_report(path: &std::path::Path, start: Date, end: Date) -> Result<CostReport, CostError> {
    sqlite::report_between(path, start, end)
}

#[cfg(not(feature = "sqlite"))]
fn read_report(path: &std::path::Path, _: Date, _: Date) -> Result<CostReport, CostError> {
    Err(no_sqlite(path))
}

#[cfg(not(feature = "sqlite"))]
fn no_sqlite(path: &std::path::Path) -> CostError {
    CostError::Ledger {
        path: path.display().to_string(),
        reason: "this build has no `sqlite` feature".to_owned(),
    }
}

/// The most recent cost records of this process, oldest first: the last 10,000 with the
/// in-memory ledger (whose reports still cover every call), or today's with a durable
/// ledger (read any range with `CostLedger`).
pub fn recent_cost_records() -> Vec<CostRecord> {
    crate::collect::worker::flush(Duration::from_secs(10));
    let today = utc_date(SystemTime::now());
    match read(|ledger| ledger.recent.iter().cloned().collect()) {
        Read::Done(records) => records,
        Read::File(file) => file
            .read(|path| read_records(path, today))
            .unwrap_or_default(),
    }
}

#[cfg(feature = "sqlite")]
fn read_records(path: &std::path::Path, day: Date) -> Result<Vec<CostRecord>, CostError> {
    sqlite::read_between(path, day, day)
}

#[cfg(not(feature = "sqlite"))]
fn read_records(path: &std::path::Path, _: Date) -> Result<Vec<CostRecord>, CostError> {
    Err(no_sqlite(path))
}

/// How long a report waits for the writer to commit what it was given.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the ledger of a new session: the SQLite file at `durable`, or the in-memory
/// ledger. Returns what the durable ledger holds for today (UTC), for the daily limit.
pub(crate) fn open_session(durable: Option<PathBuf>) -> Result<Option<Usd>, CostError> {
    let Some(path) = durable else {
        let mut store = lock(&STORE);
        if !matches!(*store, Store::Memory(_)) {
            *store = Store::Memory(MemoryLedger::new());
        }
        return Ok(None);
    };
    open_durable(path)
}

#[cfg(feature = "sqlite")]
fn open_durable(path: PathBuf) -> Result<Option<Usd>, CostError> {
    let (writer, today) = sqlite::Writer::start(path)?;
    *lock(&STORE) = Store::Sqlite(writer);
    sink::observe_model_calls_at_once(true);
    Ok(Some(today))
}

/// Without the `sqlite` feature (which the configuration checks first, naming the feature).
#[cfg(not(feature = "sqlite"))]
fn open_durable(path: PathBuf) -> Result<Option<Usd>, CostError> {
    Err(no_sqlite(&path))
}

/// What a durable ledger did not write in its session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unwritten {
    /// Accepted, and not committed when closing gave up waiting.
    pub(crate) uncommitted: u64,
    /// Refused: the ledger could not write and its queue was full.
    pub(crate) refused: u64,
}

/// Ends the session's ledger: a durable one commits everything accepted (waiting at most
/// `timeout`) and is closed. Returns what it did not write.
#[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
pub(crate) fn close_session(timeout: Duration) -> Unwritten {
    let mut store = lock(&STORE);
    match std::mem::replace(&mut *store, Store::Memory(MemoryLedger::new())) {
        #[cfg(feature = "sqlite")]
        Store::Sqlite(writer) => {
            sink::observe_model_calls_at_once(false);
            *store = Store::Closed(writer.path().to_owned());
            drop(store);
            writer.close(timeout)
        }
        other => {
            *store = other;
            Unwritten::default()
        }
    }
}
