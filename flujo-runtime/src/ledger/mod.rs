//! The cost ledger: every model call that reported usage becomes a [`CostRecord`]. Records
//! live in memory, in a SQLite file (feature `sqlite`, `FLUJO_COST_LEDGER=path`), or in a
//! PostgreSQL database shared by a fleet (feature `postgres`,
//! `FLUJO_COST_LEDGER=postgres://...`), written by a thread of its own in batches, so that
//! neither the calling thread nor the export worker waits on the disk or the network.
//!
//! Reports never hold the ledger's lock while they read: a report over a large ledger in a
//! live service leaves the writer (and every call) free to go on.

pub(crate) mod error;
mod location;
mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod query;
pub(crate) mod record;
pub(crate) mod report;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
#[cfg(durable_ledger)]
mod stored;
#[cfg(durable_ledger)]
mod writer;

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use flujo_pricing::Date;

use self::error::CostError;
pub use self::location::LedgerLocation;
pub(crate) use self::location::Location;
use self::memory::MemoryLedger;
pub use self::record::CostRecord;
use self::report::CostReport;
use crate::accounting::budget::WhenUnreachable;
use crate::accounting::pricing::utc_date;
#[cfg(durable_ledger)]
use crate::collect::sink;
use crate::collect::worker::LATE_COST_RECORDS;
use crate::core::sync::lock;

/// The most records `FLUJO_COST_LEDGER_BUFFER` may ask a ledger to buffer.
pub(crate) const MAX_COST_LEDGER_BUFFER: usize = 1 << 20;
/// Bytes (about, strings included) a ledger's buffer holds per record it may hold: a buffer of
/// `n` records holds at most `n` x 4 KiB, whatever the records' sizes.
#[cfg(durable_ledger)]
pub(crate) const COST_RECORD_BUFFER_BYTES: usize = 4096;

/// The columns a durable ledger's report sums, in the order [`summed_group`] reads them.
#[cfg_attr(not(durable_ledger), allow(dead_code))]
const SUMMED: [&str; 7] = [
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "cache_write_1h_input_tokens",
    "reasoning_output_tokens",
    "cost_nano_usd",
];

/// A report's group from its counts and the sums of [`SUMMED`] (`sum(i)` is column `i`).
#[cfg_attr(not(durable_ledger), allow(dead_code))]
fn summed_group<E>(
    requests: u64,
    unpriced_requests: u64,
    sum: impl Fn(usize) -> Result<u64, E>,
) -> Result<self::report::CostGroup, E> {
    Ok(self::report::CostGroup {
        requests,
        unpriced_requests,
        tokens: flujo_pricing::TokenUsage::new(sum(0)?, sum(1)?)
            .with_cache_read(sum(2)?)
            .with_cache_write(sum(3)?)
            .with_cache_write_1h(sum(4)?)
            .with_reasoning(sum(5)?),
        cost: flujo_pricing::Usd::from_nanos(sum(6)?),
    })
}

/// How a session's durable ledger is opened.
#[derive(Clone, Debug)]
pub(crate) struct LedgerOptions {
    pub(crate) location: LedgerLocation,
    /// Records buffered at most (`None`: the store's default).
    #[cfg_attr(not(durable_ledger), allow(dead_code))]
    pub(crate) buffer: Option<usize>,
    /// How often a shared ledger's fleet spending is read.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) refresh: Duration,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) when_unreachable: WhenUnreachable,
}

enum Store {
    Memory(MemoryLedger),
    #[cfg(durable_ledger)]
    Durable {
        location: LedgerLocation,
        writer: writer::Writer,
    },
    /// A durable ledger was closed at shutdown: reports still read it, records arriving now
    /// (from calls that outlived the session) are counted as late, never kept in memory as if
    /// no durable ledger had been configured.
    #[cfg_attr(not(durable_ledger), allow(dead_code))]
    Closed(LedgerLocation),
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
    #[cfg_attr(not(durable_ledger), allow(unused_variables))]
    let durable = match &mut *lock(&STORE) {
        Store::Memory(ledger) => return ledger.add(record),
        #[cfg(durable_ledger)]
        Store::Durable { writer, .. } => writer.handle(),
        Store::Closed(_) => {
            LATE_COST_RECORDS.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    // Outside the ledger's lock: a full queue may make this wait for the disk.
    #[cfg(durable_ledger)]
    durable.send(record);
}

/// A durable ledger, to read without holding the ledger's lock.
struct Reader {
    location: LedgerLocation,
    #[cfg(durable_ledger)]
    writer: Option<writer::Handle>,
}

impl Reader {
    /// Waits (bounded) until what the writer was given is committed, then reads.
    fn read<T>(
        self,
        read: impl FnOnce(&LedgerLocation) -> Result<T, CostError>,
    ) -> Result<T, CostError> {
        #[cfg(durable_ledger)]
        if let Some(writer) = &self.writer {
            writer.wait(SYNC_TIMEOUT);
        }
        read(&self.location)
    }
}

/// What a read of the ledger needs: done already (the in-memory ledger, read under its lock),
/// or a durable ledger to read after the lock is released.
enum Read<T> {
    Done(T),
    Durable(Reader),
}

fn read<T>(memory: impl FnOnce(&MemoryLedger) -> T) -> Read<T> {
    match &*lock(&STORE) {
        Store::Memory(ledger) => Read::Done(memory(ledger)),
        #[cfg(durable_ledger)]
        Store::Durable { location, writer } => Read::Durable(Reader {
            location: location.clone(),
            writer: Some(writer.handle()),
        }),
        Store::Closed(location) => Read::Durable(Reader {
            location: location.clone(),
            #[cfg(durable_ledger)]
            writer: None,
        }),
    }
}

/// The report of `start..=end` (UTC days) of the process ledger.
pub(crate) fn report_between(start: Date, end: Date) -> Result<CostReport, CostError> {
    match read(|ledger| ledger.report(start, end)) {
        Read::Done(report) => Ok(report),
        Read::Durable(reader) => reader.read(|location| location.report_between(start, end)),
    }
}

impl LedgerLocation {
    /// The report of `start..=end` (UTC days) of the ledger here.
    #[cfg_attr(not(durable_ledger), allow(unused_variables))]
    pub(crate) fn report_between(&self, start: Date, end: Date) -> Result<CostReport, CostError> {
        match &self.0 {
            #[cfg(feature = "sqlite")]
            Location::File(path) => sqlite::report_between(path, start, end),
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => postgres::report_between(url, start, end),
            _ => Err(self.unusable()),
        }
    }

    /// The records of `start..=end` (UTC days) of the ledger here, oldest first.
    #[cfg_attr(not(durable_ledger), allow(unused_variables))]
    pub(crate) fn read_between(
        &self,
        start: Date,
        end: Date,
    ) -> Result<Vec<CostRecord>, CostError> {
        match &self.0 {
            #[cfg(feature = "sqlite")]
            Location::File(path) => sqlite::read_between(path, start, end),
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => postgres::read_between(url, start, end),
            _ => Err(self.unusable()),
        }
    }

    /// Checks that a ledger is here, for reading.
    #[cfg(durable_ledger)]
    pub(crate) fn check_readable(&self) -> Result<(), CostError> {
        match &self.0 {
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => postgres::open_for_reading(url),
            // Reading an empty range checks that it is a ledger.
            _ => self.report_between(Date::MIN, Date::MIN).map(drop),
        }
    }

    /// The cargo feature this kind of ledger needs (none for a location flujo refuses).
    pub(crate) fn feature(&self) -> Option<&'static str> {
        match &self.0 {
            Location::File(_) => Some("sqlite"),
            Location::Postgres(_) => Some("postgres"),
            Location::Unsupported(_) => None,
        }
    }

    /// Whether this build has the feature of this kind of ledger (a refused location needs
    /// none: its error is [`LedgerLocation::refusal`]'s).
    pub(crate) fn is_built(&self) -> bool {
        match &self.0 {
            Location::File(_) => cfg!(feature = "sqlite"),
            Location::Postgres(_) => cfg!(feature = "postgres"),
            Location::Unsupported(_) => true,
        }
    }

    /// Why no ledger can be read or written here by this build.
    fn unusable(&self) -> CostError {
        self.refusal().unwrap_or_else(|| CostError::Ledger {
            path: self.to_string(),
            reason: format!(
                "this build has no `{}` feature",
                self.feature().unwrap_or_default()
            ),
        })
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
        Read::Durable(reader) => reader
            .read(|location| location.read_between(today, today))
            .unwrap_or_default(),
    }
}

/// How long a report waits for the writer to commit what it was given.
#[cfg_attr(not(durable_ledger), allow(dead_code))]
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the ledger of a new session: the durable one `options` name, or the in-memory
/// ledger; seeds the daily and monthly limits with what it already holds.
pub(crate) fn open_session(options: Option<LedgerOptions>) -> Result<(), CostError> {
    crate::accounting::budget::share_with_fleet(None);
    let Some(options) = options else {
        let mut store = lock(&STORE);
        if !matches!(*store, Store::Memory(_)) {
            *store = Store::Memory(MemoryLedger::new());
        }
        return Ok(());
    };
    open_durable(options)
}

#[cfg(durable_ledger)]
fn open_durable(options: LedgerOptions) -> Result<(), CostError> {
    let writer = match &options.location.0 {
        #[cfg(feature = "sqlite")]
        Location::File(path) => sqlite::open_writer(path.clone(), options.buffer)?,
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => postgres::open_writer(url.clone(), &options)?,
        _ => return Err(options.location.unusable()),
    };
    *lock(&STORE) = Store::Durable {
        location: options.location,
        writer,
    };
    sink::observe_model_calls_at_once(true);
    Ok(())
}

/// Without a durable ledger's feature (which the configuration checks first, naming it).
#[cfg(not(durable_ledger))]
fn open_durable(options: LedgerOptions) -> Result<(), CostError> {
    Err(options.location.unusable())
}

/// What a durable ledger did not write in its session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unwritten {
    /// Accepted, and not committed when closing gave up waiting.
    pub(crate) uncommitted: u64,
    /// Refused: the ledger's buffer was full.
    pub(crate) refused: u64,
}

/// Ends the session's ledger: a durable one commits everything accepted (waiting at most
/// `timeout`) and is closed. Returns what it did not write.
#[cfg_attr(not(durable_ledger), allow(unused_variables))]
pub(crate) fn close_session(timeout: Duration) -> Unwritten {
    let mut store = lock(&STORE);
    match std::mem::replace(&mut *store, Store::Memory(MemoryLedger::new())) {
        #[cfg(durable_ledger)]
        Store::Durable { location, writer } => {
            sink::observe_model_calls_at_once(false);
            *store = Store::Closed(location);
            drop(store);
            crate::accounting::budget::share_with_fleet(None);
            writer.close(timeout)
        }
        other => {
            *store = other;
            Unwritten::default()
        }
    }
}
