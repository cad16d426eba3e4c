//! The cost ledger in PostgreSQL (feature `postgres`), shared by every replica of a service:
//! records written in batches (binary `COPY`) by the ledger's writer thread, each batch adding
//! its cost to the fleet's spend of its day in the same transaction; reports summed in SQL;
//! the fleet's spend today and this month read back at an interval for the fleet-wide limits.
//!
//! The client is rust-postgres's synchronous `postgres` crate: the most used PostgreSQL
//! driver written in Rust, maintained with `tokio-postgres` (which it drives on a small
//! runtime of its own), so applications need no async runtime and the writer thread, which
//! may block, is the only place that talks to the database.

use std::time::{Duration, Instant, SystemTime};

use flujo_pricing::{Date, Usd};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::config::SslMode;
use postgres::types::Type;
use postgres::{Client, Config, NoTls, Row};

use super::location::PostgresUrl;
use super::record::CostRecord;
use super::stored::{Stored, count, timestamp_nanos, to_i64};
use super::writer::{Backend, QueuePolicy, WriteError, Writer};
use super::{COST_RECORD_BUFFER_BYTES, LedgerOptions, SUMMED, summed_group};
use crate::accounting::budget::{self, FleetSpend};
use crate::accounting::pricing::utc_date;
use crate::ledger::error::CostError;
use crate::ledger::report::CostReport;

/// The most cost records a PostgreSQL ledger buffers (queued, or being written) unless
/// `FLUJO_COST_LEDGER_BUFFER` says: what an outage of the database can hold, about 11
/// minutes of 100 calls a second. Calls never wait for room: beyond it records are dropped
/// and counted.
const DEFAULT_POSTGRES_BUFFER: usize = 1 << 16;

/// The schema's versions, in order: `MIGRATIONS[n]` takes a ledger from version `n` to
/// `n + 1`. Version 0 is an empty database.
const MIGRATIONS: [&str; 3] = [
    include_str!("postgres/001_cost_records.sql"),
    include_str!("postgres/002_daily_spend.sql"),
    include_str!("postgres/003_record_ids.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock under which one replica at a time migrates ("flujo_le").
const MIGRATION_LOCK: i64 = 0x666c_756a_6f5f_6c65;

/// How long connecting waits, unless the URL says (`connect_timeout=` seconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long sent data may go unacknowledged before the connection counts as broken, unless
/// the URL says (`tcp_user_timeout=`): a database host that vanished fails the write rather
/// than hold the writer.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

fn ledger_error(url: &PostgresUrl, error: impl std::fmt::Display) -> CostError {
    CostError::Ledger {
        path: url.to_string(),
        reason: url.scrub(&error.to_string()),
    }
}

/// What went wrong, whole: the server's message and SQLSTATE for an error it answered with
/// (the driver's `Display` says only "db error"), the causes of one it did not.
fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn postgres_error(url: &PostgresUrl, error: &postgres::Error) -> CostError {
    ledger_error(url, describe(error))
}

/// The driver's configuration of `url`, with flujo's timeouts where the URL sets none.
pub(crate) fn config(url: &PostgresUrl) -> Result<Config, CostError> {
    let mut config: Config = url.expose().parse().map_err(|error| {
        ledger_error(
            url,
            format!("{error}: FLUJO_COST_LEDGER (cost_ledger) takes a URL such as postgres://user:password@host:5432/database"),
        )
    })?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(ledger_error(
            url,
            "sslmode=require asks for TLS, which this build of flujo's ledger does not \
             speak: use sslmode=disable (or prefer) on a trusted network, or a TLS-terminating \
             proxy such as pgbouncer on the application's host",
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("flujo");
    }
    Ok(config)
}

/// Brings the schema to [`SCHEMA_VERSION`], one replica at a time; returns the version found.
/// A newer schema (a later flujo migrated it) is left as it is: versions only add, so this
/// build's columns are all there.
fn migrate(client: &mut Client) -> Result<i32, postgres::Error> {
    let mut transaction = client.transaction()?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS flujo_schema (version INTEGER NOT NULL)")?;
    let found = match transaction.query_opt("SELECT version FROM flujo_schema", &[])? {
        Some(row) => row.get::<_, i32>(0),
        None => {
            transaction.execute("INSERT INTO flujo_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    let from = usize::try_from(found).unwrap_or(0);
    for migration in MIGRATIONS.iter().skip(from) {
        transaction.batch_execute(migration)?;
    }
    if found < SCHEMA_VERSION {
        transaction.execute("UPDATE flujo_schema SET version = $1", &[&SCHEMA_VERSION])?;
    }
    transaction.commit()?;
    Ok(found)
}

/// The writer's connection, with the schema migrated and the session's table into which a
/// batch is copied before it joins the ledger (see [`insert`]).
fn connect(url: &PostgresUrl, config: &Config) -> Result<Client, postgres::Error> {
    let mut client = config.connect(NoTls)?;
    let found = migrate(&mut client)?;
    client.batch_execute(&format!(
        "CREATE TEMPORARY TABLE flujo_incoming ON COMMIT DELETE ROWS AS \
         SELECT {COLUMNS} FROM cost_records WITH NO DATA"
    ))?;
    if found > SCHEMA_VERSION {
        tracing::info!(target: "flujo", ledger = %url, found, knows = SCHEMA_VERSION,
            "the cost ledger's schema is newer than this flujo's; writing the columns it knows");
    }
    Ok(client)
}

/// Whether an error at opening is the configuration's (the server answered: a wrong
/// password, a missing database, no right to create the tables), not an outage.
fn is_permanent(error: &postgres::Error) -> bool {
    error.as_db_error().is_some()
}

/// The ledger's store: the writer thread's connection (made again after an outage) and the
/// fleet's spend it reads back.
pub(crate) struct PostgresStore {
    url: PostgresUrl,
    config: Config,
    client: Option<Client>,
    fleet: Fleet,
}

/// What the fleet-wide limits need: the fleet's spend read back every `interval`, less what
/// this process had committed to it when it was read (which the process counts itself).
struct Fleet {
    interval: Duration,
    next: Instant,
    /// This process's committed spend of one UTC day and of its month.
    committed_day: (Date, u64),
    committed_month: (Date, u64),
}

/// The first day of `date`'s month: the key of a month's totals.
fn month_of(date: Date) -> Date {
    date.replace_day(1).unwrap_or(date)
}

impl Fleet {
    fn note(&mut self, records: &[CostRecord]) {
        let today = utc_date(SystemTime::now());
        for (counted, key) in [
            (&mut self.committed_day, today),
            (&mut self.committed_month, month_of(today)),
        ] {
            if counted.0 != key {
                *counted = (key, 0);
            }
        }
        for record in records {
            let (Some(cost), day) = (record.cost, utc_date(record.timestamp)) else {
                continue;
            };
            if day == today {
                self.committed_day.1 = self.committed_day.1.saturating_add(cost.nanos());
            }
            if month_of(day) == month_of(today) {
                self.committed_month.1 = self.committed_month.1.saturating_add(cost.nanos());
            }
        }
    }

    fn own(counted: (Date, u64), key: Date) -> u64 {
        if counted.0 == key { counted.1 } else { 0 }
    }
}

/// How many refresh intervals the fleet's spend may go unread before the limits count it as
/// unknown (one missed read is not yet an outage).
const STALE_AFTER_REFRESHES: u32 = 3;

/// Opens the ledger at `url` for a session: connects and migrates (an error the database
/// answers with is an error here; a database that cannot be reached is not: the ledger buffers
/// and says so, so that replicas starting during an outage still start), shares the limits
/// with the fleet, and starts the writer.
pub(crate) fn open_writer(url: PostgresUrl, options: &LedgerOptions) -> Result<Writer, CostError> {
    budget::share_with_fleet(Some((
        (options.refresh * STALE_AFTER_REFRESHES).max(Duration::from_secs(1)),
        options.when_unreachable,
    )));
    let (store, unreachable) = PostgresStore::open(url.clone(), options.refresh)?;
    let name = url.to_string();
    if let Some(error) = unreachable {
        tracing::warn!(target: "flujo", ledger = %name, %error,
            "the cost ledger's database cannot be reached: cost records are buffered until it \
             can (FLUJO_COST_LEDGER_BUFFER), and the fleet's daily and monthly spending is \
             unknown until then (FLUJO_COST_LEDGER_UNREACHABLE)");
    }
    let records = options.buffer.unwrap_or(DEFAULT_POSTGRES_BUFFER);
    let policy = QueuePolicy {
        max_records: records,
        max_bytes: records.saturating_mul(COST_RECORD_BUFFER_BYTES),
        room_patience: Duration::ZERO,
        failing_reason: "ledger_unreachable",
        name,
    };
    Writer::start(store, policy).map_err(|error| ledger_error(&url, error))
}

impl PostgresStore {
    /// Connects to `url`, migrates its schema and reads the fleet's spend. A database that
    /// answers with an error (authentication, a missing database, privileges) is an error;
    /// one that cannot be reached is not: the store is returned with why.
    fn open(
        url: PostgresUrl,
        refresh: Duration,
    ) -> Result<(PostgresStore, Option<String>), CostError> {
        let config = config(&url)?;
        let today = utc_date(SystemTime::now());
        let mut store = PostgresStore {
            client: None,
            fleet: Fleet {
                interval: refresh,
                next: Instant::now(),
                committed_day: (today, 0),
                committed_month: (month_of(today), 0),
            },
            url,
            config,
        };
        let unreachable = match connect(&store.url, &store.config) {
            Ok(client) => {
                store.client = Some(client);
                store.refresh();
                None
            }
            Err(error) if is_permanent(&error) => return Err(postgres_error(&store.url, &error)),
            Err(error) => Some(store.url.scrub(&describe(&error))),
        };
        Ok((store, unreachable))
    }

    fn client(&mut self) -> Result<&mut Client, String> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let client =
                connect(&self.url, &self.config).map_err(|e| self.url.scrub(&describe(&e)))?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(String::new)
    }

    /// Reads the fleet's spend of today and this month and hands it to the limits.
    fn refresh(&mut self) {
        let today = utc_date(SystemTime::now());
        let read = self.client().and_then(|client| {
            client
                .query_one(
                    "SELECT \
                     (SELECT LEAST(cost_nano_usd, 9223372036854775807)::BIGINT \
                      FROM flujo_daily_spend WHERE day = $1), \
                     (SELECT LEAST(SUM(cost_nano_usd), 9223372036854775807)::BIGINT \
                      FROM flujo_daily_spend WHERE day BETWEEN $2 AND $1)",
                    &[&today, &month_of(today)],
                )
                .map_err(|e| describe(&e))
        });
        match read {
            Ok(row) => {
                let fleet = |i: usize| count(row.get::<_, Option<i64>>(i).unwrap_or(0));
                let others = |total: u64, own: u64| Usd::from_nanos(total.saturating_sub(own));
                budget::set_fleet_spend(FleetSpend {
                    day: today,
                    others_today: others(fleet(0), Fleet::own(self.fleet.committed_day, today)),
                    others_this_month: others(
                        fleet(1),
                        Fleet::own(self.fleet.committed_month, month_of(today)),
                    ),
                    read_at: SystemTime::now(),
                });
            }
            Err(_) => {
                // The next write reconnects; the limits see the fleet's spend grow stale.
                self.client = None;
            }
        }
    }
}

impl Backend for PostgresStore {
    fn write(&mut self, records: &[CostRecord]) -> Result<(), WriteError> {
        let outage = |message: String| WriteError {
            message,
            smaller_may_fit: false,
        };
        let client = self.client().map_err(outage)?;
        match insert(client, records) {
            Ok(()) => {
                self.fleet.note(records);
                Ok(())
            }
            Err(error) => {
                if error.as_db_error().is_none() {
                    self.client = None;
                }
                Err(outage(self.url.scrub(&describe(&error))))
            }
        }
    }

    fn tick(&mut self) -> Option<Instant> {
        if Instant::now() >= self.fleet.next {
            self.refresh();
            self.fleet.next = Instant::now() + self.fleet.interval;
        }
        Some(self.fleet.next)
    }
}

/// Text without NUL, which PostgreSQL's text cannot hold (a batch with one would fail whole,
/// every time).
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        value.replace('\0', "\u{fffd}").into()
    } else {
        value.into()
    }
}

const COLUMNS: &str = "timestamp_ns, day, request_id, trace_id, pipeline, step, model, \
                       provider, operation, input_tokens, output_tokens, \
                       cache_read_input_tokens, cache_write_input_tokens, \
                       reasoning_output_tokens, cost_nano_usd, price_version, \
                       cache_write_1h_input_tokens, record_id";

const COLUMN_TYPES: [Type; 18] = [
    Type::INT8,
    Type::DATE,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::BYTEA,
];

/// Writes `records` and adds the cost of those the ledger did not hold yet to the fleet's
/// spend of their days, in one transaction. The batch is copied (binary `COPY`) into the
/// session's `flujo_incoming` table, then moved into the ledger by one statement that skips
/// records already there (the same batch written again after a lost acknowledgement) and
/// sums only what it added.
fn insert(client: &mut Client, records: &[CostRecord]) -> Result<(), postgres::Error> {
    let mut transaction = client.transaction()?;
    {
        let sink = transaction.copy_in(&format!(
            "COPY flujo_incoming ({COLUMNS}) FROM STDIN BINARY"
        ))?;
        let mut writer = BinaryCopyInWriter::new(sink, &COLUMN_TYPES);
        for r in records {
            writer.write(&[
                &timestamp_nanos(r.timestamp),
                &utc_date(r.timestamp),
                &r.request_id.as_deref().map(text).as_deref(),
                &r.trace_id.map(|t| t.to_string()),
                &r.pipeline.as_deref().map(text).as_deref(),
                &r.step.as_deref().map(text).as_deref(),
                &text(&r.model).as_ref(),
                &text(&r.provider).as_ref(),
                &text(&r.operation).as_ref(),
                &to_i64(r.usage.input),
                &to_i64(r.usage.output),
                &to_i64(r.usage.cache_read_input),
                &to_i64(r.usage.cache_write_input),
                &to_i64(r.usage.reasoning_output),
                &r.cost.map(|c| to_i64(c.nanos())),
                &text(&r.price_version).as_ref(),
                &to_i64(r.usage.cache_write_1h_input),
                &r.id
                    .map(u128::to_be_bytes)
                    .as_ref()
                    .map(<[u8; 16]>::as_slice),
            ])?;
        }
        writer.finish()?;
    }
    // Days in order: two replicas' batches that span the same days lock their rows in the
    // same order, never each waiting on the other.
    transaction.batch_execute(&format!(
        "WITH added AS (INSERT INTO cost_records ({COLUMNS}) SELECT {COLUMNS} FROM flujo_incoming \
         ON CONFLICT (record_id) DO NOTHING RETURNING day, cost_nano_usd) \
         INSERT INTO flujo_daily_spend (day, cost_nano_usd) \
         SELECT day, SUM(cost_nano_usd) FROM added WHERE cost_nano_usd IS NOT NULL \
         GROUP BY day ORDER BY day \
         ON CONFLICT (day) DO UPDATE \
         SET cost_nano_usd = flujo_daily_spend.cost_nano_usd + EXCLUDED.cost_nano_usd"
    ))?;
    transaction.commit()
}

/// A connection for reading, made by the reader (never the writer's).
fn read_connection(url: &PostgresUrl) -> Result<Client, CostError> {
    config(url)?
        .connect(NoTls)
        .map_err(|error| postgres_error(url, &error))
}

/// Whether the database holds a flujo ledger (a read never creates one).
fn check_ledger(url: &PostgresUrl, client: &mut Client) -> Result<(), CostError> {
    let found = client
        .query_one("SELECT to_regclass('flujo_schema') IS NOT NULL", &[])
        .map_err(|e| postgres_error(url, &e))?;
    if found.get::<_, bool>(0) {
        Ok(())
    } else {
        Err(ledger_error(
            url,
            "no flujo cost ledger in this database (no flujo_schema table): a process with \
             FLUJO_COST_LEDGER set to this URL creates it",
        ))
    }
}

/// Opens the ledger at `url` for reading: it must exist.
pub(crate) fn open_for_reading(url: &PostgresUrl) -> Result<(), CostError> {
    let mut client = read_connection(url)?;
    check_ledger(url, &mut client)
}

/// The records of the UTC days `start..=end`, oldest first.
pub(crate) fn read_between(
    url: &PostgresUrl,
    start: Date,
    end: Date,
) -> Result<Vec<CostRecord>, CostError> {
    let mut client = read_connection(url)?;
    check_ledger(url, &mut client)?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM cost_records WHERE day BETWEEN $1 AND $2 \
                 ORDER BY timestamp_ns, id"
            ),
            &[&start, &end],
        )
        .map_err(|e| postgres_error(url, &e))?;
    rows.iter()
        .map(record_of)
        .collect::<Result<_, _>>()
        .map_err(|e| postgres_error(url, &e))
}

fn record_of(row: &Row) -> Result<CostRecord, postgres::Error> {
    let token = |i: usize| row.try_get::<_, i64>(i);
    Ok(Stored {
        timestamp_ns: row.try_get(0)?,
        request_id: row.try_get(2)?,
        trace_id: row.try_get(3)?,
        pipeline: row.try_get(4)?,
        step: row.try_get(5)?,
        model: row.try_get(6)?,
        provider: row.try_get(7)?,
        operation: row.try_get(8)?,
        tokens: [
            token(9)?,
            token(10)?,
            token(11)?,
            token(12)?,
            token(16)?,
            token(13)?,
        ],
        cost_nano_usd: row.try_get(14)?,
        price_version: row.try_get(15)?,
        record_id: row.try_get(17)?,
    }
    .record())
}

/// The report of the UTC days `start..=end`, summed in SQL: one row per (day, model, step,
/// pipeline) crosses the network, however many calls there were.
pub(crate) fn report_between(
    url: &PostgresUrl,
    start: Date,
    end: Date,
) -> Result<CostReport, CostError> {
    let mut client = read_connection(url)?;
    check_ledger(url, &mut client)?;
    // PostgreSQL's `SUM` of a `BIGINT` is a `NUMERIC`, which never overflows; it is capped
    // to a `BIGINT`.
    let sums = SUMMED
        .iter()
        .map(|column| format!("LEAST(COALESCE(SUM({column}), 0), 9223372036854775807)::BIGINT"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .query(
            &format!(
                "SELECT day, model, step, pipeline, COUNT(*), COUNT(*) - COUNT(cost_nano_usd), \
                 {sums} FROM cost_records WHERE day BETWEEN $1 AND $2 \
                 GROUP BY day, model, step, pipeline"
            ),
            &[&start, &end],
        )
        .map_err(|e| postgres_error(url, &e))?;
    let mut report = CostReport::default();
    for row in &rows {
        let read = || -> Result<_, postgres::Error> {
            let group = summed_group(count(row.try_get(4)?), count(row.try_get(5)?), |i| {
                row.try_get::<_, i64>(6 + i).map(count)
            })?;
            let day: Date = row.try_get(0)?;
            let model: String = row.try_get(1)?;
            let step: Option<String> = row.try_get(2)?;
            let pipeline: Option<String> = row.try_get(3)?;
            Ok((day, model, step, pipeline, group))
        };
        let (day, model, step, pipeline, group) = read().map_err(|e| postgres_error(url, &e))?;
        report.add_group(day, &model, step.as_deref(), pipeline.as_deref(), &group);
    }
    Ok(report)
}
