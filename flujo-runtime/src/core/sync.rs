//! Locking that outlives a panic.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`; a panic while it was held leaves plain data behind, which stays usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
