//! The export worker's thread handle, so that a full ring (or a switch to on) can wake it.

use std::sync::OnceLock;
use std::thread::Thread;

/// Set once, when the worker starts (`None`: the OS refused a thread).
pub(crate) static WORKER: OnceLock<Option<Thread>> = OnceLock::new();

/// Wakes the worker (a ring filled up, or recording was switched on).
pub(crate) fn wake() {
    if let Some(Some(worker)) = WORKER.get() {
        worker.unpark();
    }
}
