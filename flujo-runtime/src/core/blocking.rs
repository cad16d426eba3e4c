//! Blocking work on a thread that may be an async runtime's worker.

/// Runs `work`, which blocks (a sleep, a wait), on this thread. With feature `tokio`, on a
/// worker of a multi-thread tokio runtime, the worker's other tasks move to another thread
/// first (`block_in_place`), so they do not wait with it. Elsewhere (no runtime, a
/// current-thread runtime, or without the feature) it simply blocks.
pub fn blocking<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(feature = "tokio")]
    if let Ok(handle) = tokio::runtime::Handle::try_current()
        && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return tokio::task::block_in_place(work);
    }
    work()
}
