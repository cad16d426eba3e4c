//! A call's wall-clock time in UTC, as pricing (a price's dates and hours) and the daily
//! budgets read it. `OffsetDateTime::from(SystemTime)` finds the calendar date anew each time
//! (about 170 instructions); a model call asked it three times. Each thread keeps the last day
//! it converted: a time of that day is its date and its seconds into the day.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use flujo_pricing::Date;
use time::{OffsetDateTime, PrimitiveDateTime, Time};

const SECONDS_PER_DAY: u64 = 86_400;

thread_local! {
    /// The day (since the Unix epoch) this thread converted last, and its date.
    static LAST_DAY: Cell<Option<(u64, Date)>> = const { Cell::new(None) };
}

/// The UTC calendar date of `time`.
pub(crate) fn utc_date(time: SystemTime) -> Date {
    match split(time) {
        Some((day, _, _)) => date_of(day, time),
        None => OffsetDateTime::from(time).date(),
    }
}

/// `time` in UTC.
pub(crate) fn utc_time(time: SystemTime) -> OffsetDateTime {
    let Some((day, seconds, nanos)) = split(time) else {
        return OffsetDateTime::from(time);
    };
    let date = date_of(day, time);
    // In range by construction: under 24 hours, 60 minutes, 60 seconds, 1e9 nanoseconds.
    let hms = Time::from_hms_nano(
        (seconds / 3_600) as u8,
        (seconds / 60 % 60) as u8,
        (seconds % 60) as u8,
        nanos,
    );
    match hms {
        Ok(hms) => PrimitiveDateTime::new(date, hms).assume_utc(),
        Err(_) => OffsetDateTime::from(time),
    }
}

/// The day since the epoch, the seconds into it and the nanoseconds of `time`; `None` before
/// the epoch (converted the slow way).
fn split(time: SystemTime) -> Option<(u64, u64, u32)> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    let seconds = since.as_secs();
    Some((
        seconds / SECONDS_PER_DAY,
        seconds % SECONDS_PER_DAY,
        since.subsec_nanos(),
    ))
}

/// The date of `day`, from this thread's memo when it is the day converted last.
fn date_of(day: u64, time: SystemTime) -> Date {
    let remembered = LAST_DAY.try_with(Cell::get).ok().flatten();
    if let Some((last, date)) = remembered
        && last == day
    {
        return date;
    }
    let date = OffsetDateTime::from(time).date();
    // A thread that is exiting converts without the memo.
    let _ = LAST_DAY.try_with(|last| last.set(Some((day, date))));
    date
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_convert_as_the_time_crate_converts_them() {
        // Across midnights, month and year ends, a leap day, and before the epoch; the same
        // day twice (from the memo) and a day left and come back to.
        let instants = [
            0_i64,
            1,
            86_399,
            86_400,
            951_782_399, // 2000-02-28T23:59:59Z
            951_782_400, // 2000-02-29
            951_868_800, // 2000-03-01
            1_704_067_199,
            1_704_067_200, // 2024-01-01
            1_796_605_618,
            1_796_605_619,
            1_704_067_199,
            -1,
            -86_401,
        ];
        for seconds in instants {
            for nanos in [0, 1, 999_999_999] {
                let time = if seconds >= 0 {
                    UNIX_EPOCH + Duration::new(seconds as u64, nanos)
                } else {
                    UNIX_EPOCH - Duration::new(seconds.unsigned_abs(), 0) + Duration::new(0, nanos)
                };
                let expected = OffsetDateTime::from(time);
                assert_eq!(utc_time(time), expected, "{seconds}.{nanos}");
                assert_eq!(utc_date(time), expected.date(), "{seconds}.{nanos}");
            }
        }
    }
}
