//! Process-wide telemetry state: whether anything records, the sampling ratio, and the
//! `init_telemetry` lifecycle.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use crate::config::{TelemetryConfig, TelemetryError, TelemetrySettings};
use crate::export::{self, SpanExporter};
use crate::{clock, log, metrics};

/// The least a shutdown waits for the cost ledger to commit, whatever the export timeout:
/// cost records are not dropped because spans took long to export.
const LEDGER_MIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Steps record metrics.
pub(crate) const METRICS: u8 = 1;
/// Steps record spans (some sink wants them).
pub(crate) const SPANS: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(0);
static INITIALIZED: AtomicBool = AtomicBool::new(false);
static CAPTURE_ACTIVE: AtomicBool = AtomicBool::new(false);
/// A root trace is sampled when the low 64 bits of its id are below this (`u64::MAX`: all).
static SAMPLE_THRESHOLD: AtomicU64 = AtomicU64::new(u64::MAX);

/// What steps record right now; 0 when telemetry is off. One relaxed load on the hot path.
#[inline(always)]
pub(crate) fn state() -> u8 {
    STATE.load(Ordering::Relaxed)
}

/// Head sampling at the root: a trace-id ratio, so that every service that sees the same
/// trace id makes the same decision.
pub(crate) fn sample_root(trace_id: u128) -> bool {
    let threshold = SAMPLE_THRESHOLD.load(Ordering::Relaxed);
    threshold == u64::MAX || (trace_id as u64) < threshold
}

fn set_sampling_rate(rate: f64) {
    let threshold = if rate >= 1.0 {
        u64::MAX
    } else {
        // Saturating float-to-int conversion; 0.0 samples nothing.
        (rate * u64::MAX as f64) as u64
    };
    SAMPLE_THRESHOLD.store(threshold, Ordering::Relaxed);
}

/// Recomputes [`state`] after telemetry or a capture was switched on or off.
pub(crate) fn refresh_state() {
    let active = INITIALIZED.load(Ordering::SeqCst) || CAPTURE_ACTIVE.load(Ordering::SeqCst);
    let state = match (active, export::has_sinks()) {
        (false, _) => 0,
        (true, false) => METRICS,
        (true, true) => METRICS | SPANS,
    };
    STATE.store(state, Ordering::SeqCst);
    if state != 0 {
        clock::init();
        export::ensure_worker();
    }
}

pub(crate) fn set_capture_active(active: bool) {
    CAPTURE_ACTIVE.store(active, Ordering::SeqCst);
    refresh_state();
}

/// Initialises telemetry from defaults and the environment.
///
/// Keep the returned guard alive for as long as telemetry should run (typically the whole
/// `main`); dropping it flushes what is buffered and switches recording off.
///
/// ```
/// fn main() -> Result<(), flujo::TelemetryError> {
///     let _telemetry = flujo::init_telemetry()?;
///     // ... run pipelines ...
///     Ok(())
/// }
/// ```
pub fn init_telemetry() -> Result<TelemetryGuard, TelemetryError> {
    init_telemetry_with(TelemetryConfig::default())
}

/// Initialises telemetry with explicit settings; fields left `None` come from the
/// environment, then from defaults (see [`TelemetryConfig`]).
///
/// A second call while the first guard is alive returns [`TelemetryError::AlreadyInitialized`].
pub fn init_telemetry_with(config: TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let settings = config.resolve()?;
    if INITIALIZED
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(TelemetryError::AlreadyInitialized);
    }
    let mut guard = TelemetryGuard {
        settings,
        logs_installed: false,
        durable_ledger: false,
        exporters: Vec::new(),
        #[cfg(feature = "logfire")]
        logfire_logs: None,
        #[cfg(feature = "otlp")]
        otlp_metrics: None,
    };
    crate::pricing::configure(
        guard.settings.pricing_file.as_deref(),
        guard.settings.strict_pricing,
    )?;
    crate::ledger::set_daily_limit(guard.settings.daily_cost_limit);
    if let Some(path) = &guard.settings.cost_ledger {
        crate::ledger::open_durable(path.clone())?;
        guard.durable_ledger = true;
    }
    #[cfg(feature = "otlp")]
    if guard.settings.export_otlp_metrics {
        guard.otlp_metrics = Some(crate::otlp_metrics::OtlpMetrics::start(&guard.settings)?);
    }
    #[allow(unused_mut)]
    let mut extra_log_layer: Option<log::ExtraLayer> = None;
    #[cfg(feature = "logfire")]
    if guard.settings.export_telemetry
        && let Some(token) = guard.settings.logfire_api_key.clone()
    {
        let spans = crate::logfire_export::otlp_settings(&guard.settings, &token);
        let exporter = crate::otlp::OtlpExporter::start(&spans)?;
        guard.exporters.push(export::add_sink(Box::new(exporter)));
        let (logs, bridge) = crate::logfire_export::LogfireLogs::start(&guard.settings, &token)?;
        guard.logfire_logs = Some(logs);
        extra_log_layer = Some(Box::new(bridge));
    }
    #[cfg(feature = "otlp")]
    if guard.settings.export_otlp {
        // On error the guard is dropped, which undoes the initialisation.
        let exporter = crate::otlp::OtlpExporter::start(&guard.settings)?;
        guard.exporters.push(export::add_sink(Box::new(exporter)));
    }
    #[cfg(feature = "prometheus")]
    if guard.settings.export_prometheus {
        crate::prometheus::attach()?;
    }
    guard.logs_installed = log::install(
        guard.settings.log_format,
        &guard.settings.log_filter,
        extra_log_layer,
    );
    metrics::install();
    set_sampling_rate(guard.settings.sampling_rate);
    export::set_flush_interval(guard.settings.flush_interval);
    refresh_state();
    Ok(guard)
}

/// Keeps telemetry running; dropping it flushes buffered spans (waiting at most the
/// configured `shutdown_timeout`) and switches recording off.
#[must_use = "telemetry shuts down when the guard is dropped: bind it, e.g. `let _telemetry = ...`"]
#[derive(Debug)]
pub struct TelemetryGuard {
    settings: TelemetrySettings,
    logs_installed: bool,
    durable_ledger: bool,
    exporters: Vec<export::SinkId>,
    #[cfg(feature = "logfire")]
    logfire_logs: Option<crate::logfire_export::LogfireLogs>,
    #[cfg(feature = "otlp")]
    otlp_metrics: Option<crate::otlp_metrics::OtlpMetrics>,
}

impl TelemetryGuard {
    /// The settings in force.
    pub fn settings(&self) -> &TelemetrySettings {
        &self.settings
    }

    /// Whether flujo installed its stderr log subscriber (false when the application had
    /// already installed a `tracing` subscriber, which then receives flujo's logs).
    pub fn logs_installed(&self) -> bool {
        self.logs_installed
    }

    /// Sends every finished span to `exporter` (on the export worker) until this guard is
    /// dropped. Spans are only recorded while at least one exporter (or a test capture)
    /// wants them; metrics are recorded regardless.
    pub fn add_span_exporter(&mut self, exporter: impl SpanExporter + 'static) {
        self.exporters.push(export::add_sink(Box::new(exporter)));
        refresh_state();
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + self.settings.shutdown_timeout;
        let remaining = || deadline.saturating_duration_since(std::time::Instant::now());
        if !export::flush(self.settings.shutdown_timeout) {
            tracing::warn!(
                target: "flujo",
                timeout_ms = self.settings.shutdown_timeout.as_millis() as u64,
                "flujo telemetry shutdown timed out; spans still queued were not exported"
            );
        }
        // The flush above handed every cost record to the ledger: commit them.
        if self.durable_ledger && !crate::ledger::close_durable(remaining().max(LEDGER_MIN_WAIT)) {
            tracing::error!(target: "flujo", "cost records were not all committed to the ledger at shutdown");
        }
        crate::ledger::set_daily_limit(None);
        for exporter in self.exporters.drain(..) {
            if let Some(mut exporter) = export::remove_sink(exporter) {
                exporter.shutdown(remaining());
            }
        }
        #[cfg(feature = "logfire")]
        if let Some(mut logs) = self.logfire_logs.take() {
            logs.shutdown(remaining());
        }
        #[cfg(feature = "otlp")]
        if let Some(mut metrics) = self.otlp_metrics.take() {
            metrics.shutdown(remaining());
        }
        set_sampling_rate(1.0);
        INITIALIZED.store(false, Ordering::SeqCst);
        refresh_state();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_threshold_follows_the_rate() {
        set_sampling_rate(0.0);
        assert!(!sample_root(0x1234_0000_0000_0000_0000_0000_0000_0001));
        set_sampling_rate(1.0);
        assert!(sample_root(u128::MAX));
        set_sampling_rate(0.5);
        assert!(sample_root(1));
        assert!(!sample_root(u128::from(u64::MAX)));
        set_sampling_rate(1.0);
    }
}
