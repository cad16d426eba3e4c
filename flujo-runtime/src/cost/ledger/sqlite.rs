//! The durable cost ledger (feature `sqlite`): one table in a SQLite file, appended by a
//! writer thread in one transaction per batch, readable by any number of processes (WAL).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flujo_pricing::{Date, TokenUsage, Usd};
use rusqlite::{Connection, OpenFlags, params};

use super::record::CostRecord;
use super::{MAX_QUEUED_COST_RECORD_BYTES, MAX_QUEUED_COST_RECORDS, Unwritten};
use crate::core::ids::TraceId;
use crate::core::sync::{lock, wait_at_most};
use crate::cost::error::CostError;
use crate::cost::pricing::utc_date;
use crate::cost::report::{CostGroup, CostReport, parse_date};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cost_records (
    id INTEGER PRIMARY KEY,
    timestamp_ns INTEGER NOT NULL,
    day TEXT NOT NULL,
    request_id TEXT,
    trace_id TEXT,
    pipeline TEXT,
    step TEXT,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_input_tokens INTEGER NOT NULL,
    cache_write_input_tokens INTEGER NOT NULL,
    reasoning_output_tokens INTEGER NOT NULL,
    cost_nano_usd INTEGER,
    price_version TEXT NOT NULL,
    cache_write_1h_input_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cost_records_day ON cost_records(day);
";

/// The column that came after the first version of the table; a ledger written before it
/// gains it when opened for writing, and reads as 0 where it is missing.
const ONE_HOUR_WRITES: &str = "cache_write_1h_input_tokens";

/// Whether the ledger's table has [`ONE_HOUR_WRITES`].
fn has_one_hour_writes(connection: &Connection) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('cost_records')")?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?;
    for name in names {
        if name? == ONE_HOUR_WRITES {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `cache_write_1h_input_tokens`, or `0` in a ledger written before that column.
fn one_hour_writes(connection: &Connection) -> &'static str {
    match has_one_hour_writes(connection) {
        Ok(true) => ONE_HOUR_WRITES,
        _ => "0",
    }
}

/// Adds [`ONE_HOUR_WRITES`] to a ledger written before it.
fn migrate(connection: &Connection) -> rusqlite::Result<()> {
    if has_one_hour_writes(connection)? {
        return Ok(());
    }
    connection.execute_batch(&format!(
        "ALTER TABLE cost_records ADD COLUMN {ONE_HOUR_WRITES} INTEGER NOT NULL DEFAULT 0"
    ))
}

/// How long a call's record waits for room in a full queue while the ledger writes (the
/// back-pressure of a cost path faster than the disk) before it is refused and counted.
const ROOM_PATIENCE: Duration = Duration::from_secs(10);

/// Records waiting for the writer, and what callers and the writer tell each other.
#[derive(Default)]
struct Queue {
    records: Vec<CostRecord>,
    bytes: usize,
    /// Records accepted, ever; committed, ever; refused (the ledger could not write and the
    /// queue was full).
    accepted: u64,
    committed: u64,
    refused: u64,
    /// The last write failed: a full queue then refuses records at once, rather than make
    /// calls wait on a disk that may stay full.
    failing: bool,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Records arrived, or the queue closed.
    arrived: Condvar,
    /// The writer took the queue, or committed: room, or progress to wait for.
    progressed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    fn wait_for_progress<'a>(
        &self,
        queue: MutexGuard<'a, Queue>,
        at_most: Duration,
    ) -> MutexGuard<'a, Queue> {
        wait_at_most(&self.progressed, queue, at_most)
    }
}

/// The writer thread of an open ledger.
pub(crate) struct Writer {
    path: PathBuf,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// What callers hold of an open ledger's writer, to give it records and wait for it without
/// holding the ledger's lock.
#[derive(Clone)]
pub(crate) struct Handle(Arc<Shared>);

impl Handle {
    /// Queues `record` for the writer. A full queue makes the caller wait for room while the
    /// ledger writes (at most [`ROOM_PATIENCE`]); while it cannot write, a full queue refuses
    /// the record, counted in `flujo_cost_records_dropped_total{reason="ledger_unwritable"}`.
    pub(crate) fn send(&self, record: CostRecord) {
        let size = record_size(&record);
        let deadline = Instant::now() + ROOM_PATIENCE;
        let mut queue = self.0.lock();
        loop {
            let full = queue.records.len() >= MAX_QUEUED_COST_RECORDS
                || queue.bytes + size > MAX_QUEUED_COST_RECORD_BYTES;
            if !full {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if queue.failing || queue.closed || left.is_zero() {
                queue.refused += 1;
                drop(queue);
                metrics::counter!("flujo_cost_records_dropped_total", "reason" => "ledger_unwritable")
                    .increment(1);
                return;
            }
            queue = self.0.wait_for_progress(queue, left);
        }
        queue.accepted += 1;
        queue.bytes += size;
        queue.records.push(record);
        drop(queue);
        self.0.arrived.notify_one();
    }

    /// Waits until everything accepted so far is committed; false after `timeout`.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.0.lock();
        let target = queue.accepted;
        while queue.committed < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self.0.wait_for_progress(queue, left);
        }
        true
    }
}

fn ledger_error(path: &Path, error: impl std::fmt::Display) -> CostError {
    CostError::Ledger {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, CostError> {
    let connection = Connection::open_with_flags(path, flags).map_err(|e| ledger_error(path, e))?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(|e| ledger_error(path, e))?;
    Ok(connection)
}

/// About how many bytes `record` holds.
fn record_size(record: &CostRecord) -> usize {
    let optional = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    std::mem::size_of::<CostRecord>()
        + optional(&record.request_id)
        + optional(&record.pipeline)
        + optional(&record.step)
        + record.model.len()
        + record.provider.len()
        + record.operation.len()
        + record.price_version.len()
}

impl Writer {
    /// Opens (creating if needed) the ledger at `path`; returns the writer and what the
    /// ledger holds for today (UTC), for the daily limit. A ledger that cannot be written
    /// (a read-only file or directory) is an error here, not lost records later.
    pub(crate) fn start(path: PathBuf) -> Result<(Writer, Usd), CostError> {
        check_path(&path).map_err(|reason| ledger_error(&path, reason))?;
        let connection = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        set_up(&connection).map_err(|error| match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => ledger_error(
                &path,
                "the file is not a SQLite database (the ledger is one): point FLUJO_COST_LEDGER \
                 (cost_ledger) at a new file, or at an existing flujo ledger",
            ),
            _ => ledger_error(&path, error),
        })?;
        check_writable(&connection).map_err(|reason| ledger_error(&path, reason))?;
        let spent = spent_on(&connection, utc_date(SystemTime::now()))
            .map_err(|e| ledger_error(&path, e))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            arrived: Condvar::new(),
            progressed: Condvar::new(),
        });
        let thread_path = path.clone();
        let writer_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("flujo-ledger".to_owned())
            .spawn(move || write_loop(&connection, &thread_path, &writer_shared))
            .map_err(|e| ledger_error(&path, e))?;
        Ok((
            Writer {
                path,
                handle: Handle(shared),
                thread: Some(thread),
            },
            spent,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Commits everything and stops the writer, waiting at most `timeout`. Returns how many
    /// records were not committed by then (the writer goes on with them in the background)
    /// and how many the ledger refused during the session because it could not write.
    pub(crate) fn close(mut self, timeout: Duration) -> Unwritten {
        let done = self.handle.wait(timeout);
        let shared = &self.handle.0;
        let mut queue = shared.lock();
        queue.closed = true;
        let closed = Unwritten {
            uncommitted: queue.accepted - queue.committed,
            refused: queue.refused,
        };
        drop(queue);
        shared.arrived.notify_all();
        shared.progressed.notify_all();
        if done && let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        closed
    }
}

/// The checks SQLite's own errors ("unable to open database file") would not explain.
fn check_path(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(
            "is a directory: FLUJO_COST_LEDGER (cost_ledger) names the ledger's file, \
             created if missing, e.g. costs.sqlite"
                .to_owned(),
        );
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
            "its directory {} does not exist: create it, or set FLUJO_COST_LEDGER \
             (cost_ledger) to a file in an existing directory",
            dir.display()
        )),
        _ => Ok(()),
    }
}

/// A ledger file (or directory, for WAL's side files) that cannot be written passes opening
/// and would lose every record later: tried here with a write lock taken and released.
fn check_writable(connection: &Connection) -> Result<(), String> {
    let read_only = connection
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| e.to_string())?;
    if read_only {
        return Err(
            "the ledger file is read-only: make it writable by this process, or set \
             FLUJO_COST_LEDGER (cost_ledger) to a file it can write"
                .to_owned(),
        );
    }
    connection
        .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(|error| {
            format!(
                "the ledger cannot be written ({error}): its file and directory must be \
                 writable by this process"
            )
        })
}

/// Switches the file to WAL and creates the table. Several processes may open a new ledger at
/// once: switching the journal mode does not wait on the busy handler, so a locked database is
/// retried here (up to [`SET_UP_PATIENCE`]).
fn set_up(connection: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + SET_UP_PATIENCE;
    let mut wait = Duration::from_millis(5);
    loop {
        let result = connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .and_then(|()| connection.execute_batch(SCHEMA))
            .and_then(|()| migrate(connection));
        match result {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if matches!(
                    error.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// How long opening a ledger waits for another process that is setting it up.
const SET_UP_PATIENCE: Duration = Duration::from_secs(10);

/// What the ledger recorded for `day`, summed here with saturation: stored values that an
/// SQL `SUM` would overflow on never stop the ledger from opening.
fn spent_on(connection: &Connection, day: Date) -> rusqlite::Result<Usd> {
    let mut statement = connection.prepare(
        "SELECT cost_nano_usd FROM cost_records WHERE day = ?1 AND cost_nano_usd IS NOT NULL",
    )?;
    let mut rows = statement.query([day.to_string()])?;
    let mut nanos = 0u64;
    while let Some(row) = rows.next()? {
        nanos = nanos.saturating_add(count(row.get(0)?));
    }
    Ok(Usd::from_nanos(nanos))
}

/// Waits between attempts to write a batch that failed: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

fn write_loop(connection: &Connection, path: &Path, shared: &Shared) {
    let mut batch: Vec<CostRecord> = Vec::new();
    let mut retry_in = RETRY_FIRST;
    // After a failure, records are written in smaller transactions: a full disk may still
    // take some of them.
    let mut chunk = MAX_QUEUED_COST_RECORDS;
    let mut failing = false;
    loop {
        if batch.is_empty() {
            let mut queue = shared.lock();
            while queue.records.is_empty() && !queue.closed {
                queue = shared
                    .arrived
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if queue.records.is_empty() {
                return;
            }
            batch = std::mem::take(&mut queue.records);
            queue.bytes = 0;
            drop(queue);
            shared.progressed.notify_all();
        }
        let mut failed = None;
        while !batch.is_empty() {
            let n = chunk.min(batch.len());
            match insert(connection, &batch[..n]) {
                Ok(()) => {
                    batch.drain(..n);
                    let mut queue = shared.lock();
                    queue.committed += n as u64;
                    queue.failing = false;
                    drop(queue);
                    shared.progressed.notify_all();
                    chunk = (chunk * 2).min(MAX_QUEUED_COST_RECORDS);
                }
                Err(error) if n > 1 => {
                    chunk = n / 2;
                    failed = Some(error);
                }
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        if batch.is_empty() {
            if failing {
                tracing::info!(target: "flujo", ledger = %path.display(), "cost records are written again");
                failing = false;
            }
            retry_in = RETRY_FIRST;
            continue;
        }
        let error = failed.map_or_else(String::new, |e| e.to_string());
        shared.lock().failing = true;
        metrics::counter!("flujo_cost_ledger_write_errors_total").increment(1);
        // One line per outage (a full disk fails every retry), and one when it ends.
        if !failing {
            tracing::error!(target: "flujo", ledger = %path.display(), %error,
                records = batch.len(),
                "could not write cost records; retrying with backoff (up to 5 s apart) while \
                 they wait, then refusing new records once {MAX_QUEUED_COST_RECORDS} wait \
                 (counted in flujo_cost_records_dropped_total{{reason=\"ledger_unwritable\"}})");
            failing = true;
        }
        // The whole backoff, whatever arrives meanwhile; closed while failing, what is left
        // is counted as uncommitted.
        let retry_at = Instant::now() + retry_in;
        let mut queue = shared.lock();
        loop {
            if queue.closed {
                return;
            }
            let left = retry_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            queue = wait_at_most(&shared.arrived, queue, left);
        }
        drop(queue);
        retry_in = (retry_in * 2).min(RETRY_MAX);
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn insert(connection: &Connection, records: &[CostRecord]) -> rusqlite::Result<()> {
    let transaction = connection.unchecked_transaction()?;
    {
        let mut statement = transaction.prepare_cached(
            "INSERT INTO cost_records (timestamp_ns, day, request_id, trace_id, pipeline, step, \
             model, provider, operation, input_tokens, output_tokens, cache_read_input_tokens, \
             cache_write_input_tokens, reasoning_output_tokens, cost_nano_usd, price_version, \
             cache_write_1h_input_tokens) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        for r in records {
            let nanos = r
                .timestamp
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            statement.execute(params![
                nanos,
                utc_date(r.timestamp).to_string(),
                r.request_id,
                r.trace_id.map(|t| t.to_string()),
                r.pipeline,
                r.step,
                r.model,
                r.provider,
                r.operation,
                to_i64(r.usage.input),
                to_i64(r.usage.output),
                to_i64(r.usage.cache_read_input),
                to_i64(r.usage.cache_write_input),
                to_i64(r.usage.reasoning_output),
                r.cost.map(|c| to_i64(c.nanos())),
                r.price_version,
                to_i64(r.usage.cache_write_1h_input),
            ])?;
        }
    }
    transaction.commit()
}

/// The records of the UTC days `start..=end` in the ledger at `path`, oldest first.
pub(crate) fn read_between(
    path: &Path,
    start: Date,
    end: Date,
) -> Result<Vec<CostRecord>, CostError> {
    let connection = open_existing(path)?;
    let mut statement = connection
        .prepare(&format!(
            "SELECT timestamp_ns, request_id, trace_id, pipeline, step, model, provider, \
             operation, input_tokens, output_tokens, cache_read_input_tokens, \
             cache_write_input_tokens, reasoning_output_tokens, cost_nano_usd, price_version, \
             {} FROM cost_records WHERE day BETWEEN ?1 AND ?2 ORDER BY timestamp_ns, id",
            one_hour_writes(&connection)
        ))
        .map_err(|e| ledger_error(path, e))?;
    let rows = statement
        .query_map([start.to_string(), end.to_string()], |row| {
            let nanos: i64 = row.get(0)?;
            let trace_id: Option<String> = row.get(2)?;
            let cost: Option<i64> = row.get(13)?;
            Ok(CostRecord {
                timestamp: UNIX_EPOCH + Duration::from_nanos(count(nanos)),
                request_id: row.get(1)?,
                trace_id: trace_id
                    .and_then(|t| u128::from_str_radix(&t, 16).ok())
                    .map(TraceId),
                pipeline: row.get(3)?,
                step: row.get(4)?,
                model: row.get(5)?,
                provider: row.get(6)?,
                operation: row.get(7)?,
                usage: token_usage_at(row, 8)?.with_cache_write_1h(count(row.get(15)?)),
                cost: cost.map(|c| Usd::from_nanos(count(c))),
                price_version: row.get(14)?,
            })
        })
        .map_err(|e| ledger_error(path, e))?;
    rows.collect::<Result<_, _>>()
        .map_err(|e| ledger_error(path, e))
}

/// The summed columns of a report, in the order [`report_between`] reads them (the last is
/// [`ONE_HOUR_WRITES`], or `0` in a ledger written before it).
const SUMMED: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_output_tokens",
    "cost_nano_usd",
];

/// An SQL `SUM` raises "integer overflow" past `i64::MAX`; each column is summed in two parts
/// (billions, and the remainder) that no number of stored rows overflows in practice, and
/// put together here, saturating.
fn split_sums(one_hour_writes: &str) -> String {
    SUMMED
        .iter()
        .chain([&one_hour_writes])
        .map(|column| {
            format!(
                "COALESCE(SUM({column} / 1000000000), 0), COALESCE(SUM({column} % 1000000000), 0)"
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column `first` (billions) and `first + 1` (remainder) put together.
fn split_sum_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<u64> {
    let billions: i64 = row.get(first)?;
    let remainder: i64 = row.get(first + 1)?;
    let total = i128::from(billions) * 1_000_000_000 + i128::from(remainder);
    Ok(u64::try_from(total.max(0)).unwrap_or(u64::MAX))
}

/// The report of the UTC days `start..=end` in the ledger at `path`, summed in SQL: one row
/// per (day, model, step, pipeline) is read, however many calls there were.
pub(crate) fn report_between(path: &Path, start: Date, end: Date) -> Result<CostReport, CostError> {
    let connection = open_existing(path)?;
    let mut statement = connection
        .prepare(&format!(
            "SELECT day, model, step, pipeline, COUNT(*), COUNT(*) - COUNT(cost_nano_usd), {} \
             FROM cost_records WHERE day BETWEEN ?1 AND ?2 \
             GROUP BY day, model, step, pipeline",
            split_sums(one_hour_writes(&connection))
        ))
        .map_err(|e| ledger_error(path, e))?;
    let mut report = CostReport::default();
    let mut rows = statement
        .query([start.to_string(), end.to_string()])
        .map_err(|e| ledger_error(path, e))?;
    while let Some(row) = rows.next().map_err(|e| ledger_error(path, e))? {
        let read = || -> rusqlite::Result<_> {
            let day: String = row.get(0)?;
            let sum = |i: usize| split_sum_at(row, 6 + 2 * i);
            let group = CostGroup {
                requests: count(row.get(4)?),
                unpriced_requests: count(row.get(5)?),
                tokens: TokenUsage {
                    input: sum(0)?,
                    output: sum(1)?,
                    cache_read_input: sum(2)?,
                    cache_write_input: sum(3)?,
                    cache_write_1h_input: sum(6)?,
                    reasoning_output: sum(4)?,
                },
                cost: Usd::from_nanos(sum(5)?),
            };
            let model: String = row.get(1)?;
            let step: Option<String> = row.get(2)?;
            let pipeline: Option<String> = row.get(3)?;
            Ok((day, model, step, pipeline, group))
        };
        let (day, model, step, pipeline, group) = read().map_err(|e| ledger_error(path, e))?;
        let day = parse_date(&day)
            .ok_or_else(|| ledger_error(path, format!("a record has the invalid day {day:?}")))?;
        report.add_group(day, &model, step.as_deref(), pipeline.as_deref(), &group);
    }
    Ok(report)
}

/// A stored count (never negative when flujo wrote it).
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The five token columns starting at `first`, in the table's order (one-hour writes, a later
/// column, are read apart).
fn token_usage_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<TokenUsage> {
    Ok(
        TokenUsage::new(count(row.get(first)?), count(row.get(first + 1)?))
            .with_cache_read(count(row.get(first + 2)?))
            .with_cache_write(count(row.get(first + 3)?))
            .with_reasoning(count(row.get(first + 4)?)),
    )
}

fn open_existing(path: &Path) -> Result<Connection, CostError> {
    if !path.exists() {
        return Err(ledger_error(path, "no such file"));
    }
    open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}
