//! The durable cost ledger (feature `sqlite`): one table in a SQLite file, appended by a
//! writer thread in one transaction per batch, readable by any number of processes (WAL).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flujo_pricing::{Date, TokenUsage, Usd};
use rusqlite::{Connection, OpenFlags, params};

use super::record::CostRecord;
use crate::core::ids::TraceId;
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
    price_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cost_records_day ON cost_records(day);
";

/// Records the writer takes into one transaction at most.
const MAX_BATCH: usize = 4096;

enum Message {
    Record(Box<CostRecord>),
    Sync(mpsc::SyncSender<()>),
}

/// The writer thread of an open ledger.
pub(crate) struct Writer {
    path: PathBuf,
    sender: Sender<Message>,
    /// Records sent and not yet committed.
    pending: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Waits for the writer to commit what it was given, without holding the ledger's lock.
pub(crate) struct SyncHandle(Sender<Message>);

impl SyncHandle {
    /// Waits until everything sent so far is committed; false after `timeout`.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let (done, wait) = mpsc::sync_channel(1);
        self.0.send(Message::Sync(done)).is_ok() && wait.recv_timeout(timeout).is_ok()
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

impl Writer {
    /// Opens (creating if needed) the ledger at `path`; returns the writer and what the
    /// ledger holds for today (UTC), for the daily limit.
    pub(crate) fn start(path: PathBuf) -> Result<(Writer, Usd), CostError> {
        let connection = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        set_up(&connection).map_err(|e| ledger_error(&path, e))?;
        let spent = spent_on(&connection, utc_date(SystemTime::now()))
            .map_err(|e| ledger_error(&path, e))?;
        let (sender, receiver) = mpsc::channel();
        let thread_path = path.clone();
        let pending = Arc::new(AtomicU64::new(0));
        let committed = Arc::clone(&pending);
        let thread = thread::Builder::new()
            .name("flujo-ledger".to_owned())
            .spawn(move || write_loop(&connection, &thread_path, &receiver, &committed))
            .map_err(|e| ledger_error(&path, e))?;
        Ok((
            Writer {
                path,
                sender,
                pending,
                thread: Some(thread),
            },
            spent,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn send(&self, record: CostRecord) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        // The writer only stops when this handle is closed.
        let _ = self.sender.send(Message::Record(Box::new(record)));
    }

    pub(crate) fn sync_handle(&self) -> SyncHandle {
        SyncHandle(self.sender.clone())
    }

    /// Commits everything and stops the writer, waiting at most `timeout`. Returns how many
    /// records were not committed by then (the writer goes on with them in the background).
    pub(crate) fn close(mut self, timeout: Duration) -> u64 {
        if self.sync_handle().wait(timeout) {
            drop(std::mem::replace(&mut self.sender, mpsc::channel().0));
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        self.pending.load(Ordering::Acquire)
    }
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
            .and_then(|()| connection.execute_batch(SCHEMA));
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

fn write_loop(
    connection: &Connection,
    path: &Path,
    receiver: &Receiver<Message>,
    pending: &AtomicU64,
) {
    let mut batch = Vec::new();
    let mut waiting = Vec::new();
    let mut retry_in = RETRY_FIRST;
    loop {
        // A batch that failed is retried after its backoff, whether or not more arrives.
        let wait = if batch.is_empty() {
            Duration::from_secs(3600)
        } else {
            retry_in
        };
        match receiver.recv_timeout(wait) {
            Ok(message) => take(message, &mut batch, &mut waiting),
            Err(RecvTimeoutError::Timeout) if batch.is_empty() => continue,
            Err(RecvTimeoutError::Timeout) => {}
            // Closed with records still failing: they are counted as uncommitted.
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(message) => take(message, &mut batch, &mut waiting),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            match insert(connection, &batch) {
                Ok(()) => {
                    pending.fetch_sub(batch.len() as u64, Ordering::AcqRel);
                    batch.clear();
                    retry_in = RETRY_FIRST;
                }
                Err(error) => {
                    metrics::counter!("flujo_cost_ledger_write_errors_total").increment(1);
                    tracing::error!(target: "flujo", ledger = %path.display(), %error,
                        records = batch.len(), retry_in_ms = retry_in.as_millis() as u64,
                        "could not write cost records; retrying");
                    retry_in = (retry_in * 2).min(RETRY_MAX);
                    continue;
                }
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

fn take(message: Message, batch: &mut Vec<CostRecord>, waiting: &mut Vec<mpsc::SyncSender<()>>) {
    match message {
        Message::Record(record) => batch.push(*record),
        Message::Sync(done) => waiting.push(done),
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
             cache_write_input_tokens, reasoning_output_tokens, cost_nano_usd, price_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
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
        .prepare(
            "SELECT timestamp_ns, request_id, trace_id, pipeline, step, model, provider, \
             operation, input_tokens, output_tokens, cache_read_input_tokens, \
             cache_write_input_tokens, reasoning_output_tokens, cost_nano_usd, price_version \
             FROM cost_records WHERE day BETWEEN ?1 AND ?2 ORDER BY timestamp_ns, id",
        )
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
                usage: token_usage_at(row, 8)?,
                cost: cost.map(|c| Usd::from_nanos(count(c))),
                price_version: row.get(14)?,
            })
        })
        .map_err(|e| ledger_error(path, e))?;
    rows.collect::<Result<_, _>>()
        .map_err(|e| ledger_error(path, e))
}

/// The report of the UTC days `start..=end` in the ledger at `path`, summed in SQL: one row
/// per (day, model, step, pipeline) is read, however many calls there were.
pub(crate) fn report_between(path: &Path, start: Date, end: Date) -> Result<CostReport, CostError> {
    let connection = open_existing(path)?;
    let mut statement = connection
        .prepare(
            "SELECT day, model, step, pipeline, COUNT(*), COUNT(*) - COUNT(cost_nano_usd), \
             SUM(input_tokens), SUM(output_tokens), SUM(cache_read_input_tokens), \
             SUM(cache_write_input_tokens), SUM(reasoning_output_tokens), \
             COALESCE(SUM(cost_nano_usd), 0) \
             FROM cost_records WHERE day BETWEEN ?1 AND ?2 \
             GROUP BY day, model, step, pipeline",
        )
        .map_err(|e| ledger_error(path, e))?;
    let mut report = CostReport::default();
    let mut rows = statement
        .query([start.to_string(), end.to_string()])
        .map_err(|e| ledger_error(path, e))?;
    while let Some(row) = rows.next().map_err(|e| ledger_error(path, e))? {
        let read = || -> rusqlite::Result<_> {
            let day: String = row.get(0)?;
            let group = CostGroup {
                requests: count(row.get(4)?),
                unpriced_requests: count(row.get(5)?),
                tokens: token_usage_at(row, 6)?,
                cost: Usd::from_nanos(count(row.get(11)?)),
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

/// The five token columns starting at `first`, in the table's order.
fn token_usage_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<TokenUsage> {
    Ok(TokenUsage {
        input: count(row.get(first)?),
        output: count(row.get(first + 1)?),
        cache_read_input: count(row.get(first + 2)?),
        cache_write_input: count(row.get(first + 3)?),
        reasoning_output: count(row.get(first + 4)?),
    })
}

fn open_existing(path: &Path) -> Result<Connection, CostError> {
    if !path.exists() {
        return Err(ledger_error(path, "no such file"));
    }
    open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}
