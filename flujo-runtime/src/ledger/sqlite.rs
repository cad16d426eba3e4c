//! The durable cost ledger (feature `sqlite`): one table in a SQLite file, appended by the
//! ledger's writer thread in one transaction per batch, readable by any number of processes
//! (WAL).

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime};

use flujo_pricing::{Date, Usd};
use rusqlite::{Connection, OpenFlags, params};

use super::record::CostRecord;
use super::stored::{Stored, count, timestamp_nanos, to_i64};
use super::writer::{Backend, QueuePolicy, WriteError, Writer};
use super::{COST_RECORD_BUFFER_BYTES, SUMMED, summed_group};
use crate::accounting::budget;
use crate::accounting::pricing::utc_date;
use crate::ledger::error::CostError;
use crate::ledger::report::{CostReport, parse_date};

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
    cache_write_1h_input_tokens INTEGER NOT NULL DEFAULT 0,
    record_id BLOB
);
CREATE INDEX IF NOT EXISTS cost_records_day ON cost_records(day);
";

/// Columns that came after the first version of the table, each with how a ledger written
/// before it gains it when opened for writing, and what a read finds where it is missing.
struct LaterColumn {
    name: &'static str,
    added_by: &'static str,
    missing_reads_as: &'static str,
}

const ONE_HOUR_WRITES: LaterColumn = LaterColumn {
    name: "cache_write_1h_input_tokens",
    added_by: "ALTER TABLE cost_records ADD COLUMN cache_write_1h_input_tokens \
               INTEGER NOT NULL DEFAULT 0",
    missing_reads_as: "0",
};

/// The most cost records waiting for a SQLite ledger's writer unless `FLUJO_COST_LEDGER_BUFFER`
/// says (and the most in one transaction). At SQLite's insert rate (about 370,000 rows a
/// second on the project's CI machine) that is about 11 ms of work: with the records of model
/// calls handed to the writer when the call ends (not when the export worker next drains), it
/// bounds what a hard kill can lose at any rate of calls. A cost path faster than the disk
/// waits for room (back-pressure) rather than queue without bound.
const MAX_QUEUED_COST_RECORDS: usize = 4096;

/// Each record's identity: a second copy of a record is refused (a batch written again
/// because its commit's outcome was not known).
const RECORD_ID: LaterColumn = LaterColumn {
    name: "record_id",
    added_by: "ALTER TABLE cost_records ADD COLUMN record_id BLOB",
    missing_reads_as: "NULL",
};

/// The index that refuses a second copy of a record (rows without an identity, written by
/// an earlier flujo, are never refused).
const RECORD_ID_INDEX: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS cost_records_record_id ON cost_records(record_id)";

/// Whether the ledger's table has `column`.
fn has_column(connection: &Connection, column: &LaterColumn) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('cost_records')")?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?;
    for name in names {
        if name? == column.name {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `column`'s name, or what it reads as in a ledger written before it.
fn read_of(connection: &Connection, column: &LaterColumn) -> &'static str {
    match has_column(connection, column) {
        Ok(true) => column.name,
        _ => column.missing_reads_as,
    }
}

/// Adds the later columns a ledger written before them lacks.
fn migrate(connection: &Connection) -> rusqlite::Result<()> {
    for column in [ONE_HOUR_WRITES, RECORD_ID] {
        if !has_column(connection, &column)? {
            connection.execute_batch(column.added_by)?;
        }
    }
    connection.execute_batch(RECORD_ID_INDEX)
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

/// The SQLite store of a ledger's writer.
struct SqliteStore {
    connection: Connection,
}

impl Backend for SqliteStore {
    fn write(&mut self, records: &[CostRecord]) -> Result<(), WriteError> {
        insert(&self.connection, records).map_err(|error| WriteError {
            message: error.to_string(),
            // A full disk may still take a smaller transaction.
            smaller_may_fit: true,
        })
    }
}

/// How long a call's record waits for room in a full queue while the ledger writes (the
/// back-pressure of a cost path faster than the disk) before it is refused and counted.
const ROOM_PATIENCE: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the ledger at `path`, seeds the daily and monthly limits with
/// what it holds, and starts its writer, which buffers at most `buffer` records (default
/// [`MAX_QUEUED_COST_RECORDS`]). A ledger that cannot be written (a read-only file or
/// directory) is an error here, not lost records later.
pub(crate) fn open_writer(path: PathBuf, buffer: Option<usize>) -> Result<Writer, CostError> {
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
    let today = utc_date(SystemTime::now());
    let month = today.replace_day(1).unwrap_or(today);
    let spent =
        |start| spent_between(&connection, start, today).map_err(|e| ledger_error(&path, e));
    budget::seed(today, spent(today)?, spent(month)?);
    let records = buffer.unwrap_or(MAX_QUEUED_COST_RECORDS);
    let policy = QueuePolicy {
        max_records: records,
        max_bytes: records.saturating_mul(COST_RECORD_BUFFER_BYTES),
        room_patience: ROOM_PATIENCE,
        failing_reason: "ledger_unwritable",
        name: path.display().to_string(),
    };
    Writer::start(SqliteStore { connection }, policy).map_err(|e| ledger_error(&path, e))
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

/// What the ledger recorded for the days `start..=end`, summed here with saturation: stored
/// values that an SQL `SUM` would overflow on never stop the ledger from opening.
fn spent_between(connection: &Connection, start: Date, end: Date) -> rusqlite::Result<Usd> {
    let mut statement = connection.prepare(
        "SELECT cost_nano_usd FROM cost_records \
         WHERE day BETWEEN ?1 AND ?2 AND cost_nano_usd IS NOT NULL",
    )?;
    let mut rows = statement.query([start.to_string(), end.to_string()])?;
    let mut nanos = 0u64;
    while let Some(row) = rows.next()? {
        nanos = nanos.saturating_add(count(row.get(0)?));
    }
    Ok(Usd::from_nanos(nanos))
}

fn insert(connection: &Connection, records: &[CostRecord]) -> rusqlite::Result<()> {
    let transaction = connection.unchecked_transaction()?;
    {
        let mut statement = transaction.prepare_cached(
            "INSERT INTO cost_records (timestamp_ns, day, request_id, trace_id, pipeline, step, \
             model, provider, operation, input_tokens, output_tokens, cache_read_input_tokens, \
             cache_write_input_tokens, reasoning_output_tokens, cost_nano_usd, price_version, \
             cache_write_1h_input_tokens, record_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18) ON CONFLICT (record_id) DO NOTHING",
        )?;
        for r in records {
            let nanos = timestamp_nanos(r.timestamp);
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
                r.id.map(u128::to_be_bytes),
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
             {}, {} FROM cost_records WHERE day BETWEEN ?1 AND ?2 ORDER BY timestamp_ns, id",
            read_of(&connection, &ONE_HOUR_WRITES),
            read_of(&connection, &RECORD_ID),
        ))
        .map_err(|e| ledger_error(path, e))?;
    let rows = statement
        .query_map([start.to_string(), end.to_string()], |row| {
            Ok(Stored {
                timestamp_ns: row.get(0)?,
                request_id: row.get(1)?,
                trace_id: row.get(2)?,
                pipeline: row.get(3)?,
                step: row.get(4)?,
                model: row.get(5)?,
                provider: row.get(6)?,
                operation: row.get(7)?,
                tokens: [
                    row.get(8)?,
                    row.get(9)?,
                    row.get(10)?,
                    row.get(11)?,
                    row.get(15)?,
                    row.get(12)?,
                ],
                cost_nano_usd: row.get(13)?,
                price_version: row.get(14)?,
                record_id: row.get(16)?,
            }
            .record())
        })
        .map_err(|e| ledger_error(path, e))?;
    rows.collect::<Result<_, _>>()
        .map_err(|e| ledger_error(path, e))
}

/// An SQL `SUM` raises "integer overflow" past `i64::MAX`; each column is summed in two parts
/// (billions, and the remainder) that no number of stored rows overflows in practice, and
/// put together here, saturating.
fn split_sums(one_hour_writes: &str) -> String {
    SUMMED
        .iter()
        .map(|column| {
            if *column == ONE_HOUR_WRITES.name {
                one_hour_writes
            } else {
                column
            }
        })
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
            split_sums(read_of(&connection, &ONE_HOUR_WRITES))
        ))
        .map_err(|e| ledger_error(path, e))?;
    let mut report = CostReport::default();
    let mut rows = statement
        .query([start.to_string(), end.to_string()])
        .map_err(|e| ledger_error(path, e))?;
    while let Some(row) = rows.next().map_err(|e| ledger_error(path, e))? {
        let read = || -> rusqlite::Result<_> {
            let day: String = row.get(0)?;
            let group = summed_group(count(row.get(4)?), count(row.get(5)?), |i| {
                split_sum_at(row, 6 + 2 * i)
            })?;
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

fn open_existing(path: &Path) -> Result<Connection, CostError> {
    if !path.exists() {
        return Err(ledger_error(path, "no such file"));
    }
    open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

#[cfg(test)]
mod tests {
    use flujo_pricing::Usd;

    use super::*;

    fn records(ids: std::ops::Range<u128>, at: SystemTime) -> Vec<CostRecord> {
        ids.map(|id| CostRecord::sample(id, at, Some(1_000 + id as u64)))
            .collect()
    }

    /// The writer writes a batch again when it cannot know whether its commit happened (the
    /// store acknowledged late, or not at all): the ledger keeps one copy of each record.
    #[test]
    fn a_batch_written_again_is_stored_once() {
        let dir = std::env::temp_dir().join(format!("flujo-sqlite-again-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.sqlite");
        let connection = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        set_up(&connection).unwrap();
        let now = SystemTime::now();
        let first = records(0..100, now);
        insert(&connection, &first).unwrap();
        insert(&connection, &first).unwrap();
        // A later batch that overlaps the first: only its new records are added.
        insert(&connection, &records(50..150, now)).unwrap();
        let day = utc_date(now);
        let report = report_between(&path, day, day).unwrap();
        assert_eq!(report.requests, 150);
        let nanos: u64 = (0..150).map(|id| 1_000 + id).sum();
        assert_eq!(report.total_cost, Usd::from_nanos(nanos));
        let read = read_between(&path, day, day).unwrap();
        let mut ids: Vec<u128> = read.iter().filter_map(|r| r.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..150).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
