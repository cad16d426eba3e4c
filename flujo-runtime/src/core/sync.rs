//! Locking that outlives a panic.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Locks `mutex`; a panic while it was held leaves plain data behind, which stays usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `condvar` for at most `at_most` (a wake-up may come earlier, or be spurious), the
/// same way past a panic.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub fn wait_at_most<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    at_most: Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, at_most)
        .map_or_else(|e| e.into_inner().0, |(guard, _)| guard)
}
