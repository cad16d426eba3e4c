//! Logging and spans in the style of the Python guide's `logfire` object, backed by
//! `tracing`.
//!
//! ```
//! use flujo::logfire;
//!
//! logfire::info!(pipeline = "default", "pipeline_start");
//! let span = logfire::span!("load_documents", count = 3);
//! let _entered = span.enter();
//! logfire::debug!("loaded");
//! logfire::warn!(attempt = 2, "retrying");
//! logfire::error!(error = "timeout", "model call failed");
//! ```
//!
//! Events go to whatever `tracing` subscriber is installed: the stderr text/JSON one that
//! [`crate::init_telemetry`] installs when no exporter takes logs, or the application's own.

pub use crate::{
    __flujo_log_debug as debug, __flujo_log_error as error, __flujo_log_info as info,
    __flujo_log_span as span, __flujo_log_warn as warn,
};

#[doc(hidden)]
#[macro_export]
macro_rules! __flujo_log_debug {
    ($($arg:tt)+) => { $crate::__private::tracing::debug!($($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __flujo_log_info {
    ($($arg:tt)+) => { $crate::__private::tracing::info!($($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __flujo_log_warn {
    ($($arg:tt)+) => { $crate::__private::tracing::warn!($($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __flujo_log_error {
    ($($arg:tt)+) => { $crate::__private::tracing::error!($($arg)+) };
}

/// `span!("name", key = value, ...)`: an INFO-level `tracing` span.
#[doc(hidden)]
#[macro_export]
macro_rules! __flujo_log_span {
    ($($arg:tt)+) => { $crate::__private::tracing::info_span!($($arg)+) };
}
