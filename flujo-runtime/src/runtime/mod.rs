//! The composition root: the only module that knows every layer. It resolves the settings,
//! starts the ledger, exporters and log subscriber, installs the observers, and runs the
//! lifecycle: init, captures and shutdown agree through one lock.

mod lifecycle;
pub(crate) mod otel_hook;

use std::time::{Duration, Instant};

use self::lifecycle::{LIFECYCLE, switch_on};
pub(crate) use self::lifecycle::{begin_capture, end_capture, refresh_flags};
use crate::accounting::{budget, pricing};
use crate::bridge::log;
use crate::calls::content;
use crate::collect::sink::{self, SinkId, SpanExporter};
use crate::collect::{bridged, ring, worker};
use crate::config::error::TelemetryError;
use crate::config::settings::{TelemetryConfig, TelemetrySettings};
use crate::core::genai;
use crate::core::state;
use crate::core::sync::lock;
use crate::ledger;
use crate::ledger::Unwritten;
#[cfg(feature = "opentelemetry")]
use crate::sinks::otel::destination::{ExporterDestination, ProcessorDestination};

/// The least the last drain gets, however long the calls in flight took: it only moves
/// records already in memory to the observers and exporters (which hand them on, never send
/// inline), so it ends long before this.
const LAST_DRAIN_MIN_WAIT: Duration = Duration::from_secs(2);

/// How often a shutdown looks whether the calls it waits for have ended.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(1);

/// Initialises telemetry from defaults and the environment.
///
/// Keep the returned guard alive for as long as telemetry should run (typically the whole
/// `main`); dropping it delivers what is buffered and switches recording off. A guard dropped
/// by mistake (`let _ = init_telemetry()`, or an init in a helper function that returns) is
/// said in a WARN line, and so is the first call that starts after it (once per process).
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
/// A second call while the first guard is alive returns [`TelemetryError::AlreadyInitialized`];
/// a call while a guard is being dropped on another thread waits for that shutdown to finish.
pub fn init_telemetry_with(config: TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let settings = config.resolve()?;
    let mut lifecycle = lock(&LIFECYCLE);
    if lifecycle.guard {
        return Err(TelemetryError::AlreadyInitialized);
    }
    let mut guard = TelemetryGuard {
        settings,
        live: false,
        logs_installed: false,
        durable_ledger: false,
        exporters: Vec::new(),
        created: Instant::now(),
        calls_at_init: state::calls_started(state::current_session()),
        #[cfg(feature = "otlp")]
        log_exports: Vec::new(),
        #[cfg(feature = "otlp")]
        otlp_metrics: None,
    };
    // Before the exporters and the ledger start: the counters they register at zero reach
    // flujo's recorder, not the facade's no-op one.
    crate::metrics::recorder::install();
    // On error the guard is dropped before it is live: it releases what it started.
    guard.start()?;
    guard.live = true;
    lifecycle.guard = true;
    switch_on(&lifecycle);
    Ok(guard)
}

/// Keeps telemetry running; dropping it shuts telemetry down (see
/// [`Drop`](#impl-Drop-for-TelemetryGuard)).
#[must_use = "telemetry shuts down when the guard is dropped: bind it, e.g. `let _telemetry = ...`"]
#[derive(Debug)]
pub struct TelemetryGuard {
    settings: TelemetrySettings,
    /// Started completely and switched on: only a live guard runs the shutdown.
    live: bool,
    logs_installed: bool,
    durable_ledger: bool,
    exporters: Vec<SinkId>,
    /// When it was made, and the calls started by then: a guard dropped within
    /// [`EARLY_DROP`] with no call in between says so.
    created: Instant,
    calls_at_init: u64,
    #[cfg(feature = "otlp")]
    log_exports: Vec<crate::sinks::otlp::logs::OtlpLogs>,
    #[cfg(feature = "otlp")]
    otlp_metrics: Option<crate::sinks::otlp::metrics::OtlpMetrics>,
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
    /// wants them; metrics and cost are recorded regardless.
    pub fn add_span_exporter(&mut self, exporter: impl SpanExporter + 'static) {
        self.exporters.push(sink::add_sink(Box::new(exporter)));
        refresh_flags();
    }

    /// Sends every finished span to an OpenTelemetry SDK span exporter (of
    /// `opentelemetry_sdk` 0.33: OTLP, stdout, Zipkin, Datadog, an in-memory one...) until
    /// this guard is dropped, with flujo's resource (`OTEL_SERVICE_NAME`,
    /// `FLUJO_SERVICE_VERSION`, `FLUJO_ENVIRONMENT`). flujo drives it on a thread of its own, inside
    /// a small tokio runtime, through a queue bounded like OTLP's (`max_queue_size`, 64 MiB);
    /// each attempt is bounded by `otlp_timeout` (plus half); spans it loses are counted in
    /// `flujo_telemetry_spans_dropped_total`. Needs feature `opentelemetry`.
    ///
    /// An exporter of another `opentelemetry_sdk` version does not implement this trait: the
    /// call does not compile (there is no silent drop to look for at run time).
    #[cfg(feature = "opentelemetry")]
    pub fn add_otel_exporter(
        &mut self,
        exporter: impl opentelemetry_sdk::trace::SpanExporter + 'static,
    ) -> Result<(), TelemetryError> {
        let resource = crate::sinks::otel::convert::resource(&self.settings.resource);
        self.add_otel_destination(
            "OpenTelemetry exporter",
            ExporterDestination::new(exporter, &resource, &self.settings.spans),
        )
    }

    /// Sends every finished span to an OpenTelemetry SDK span processor of flujo's own (a
    /// `BatchSpanProcessor` around any exporter, or a processor of the application's) until
    /// this guard is dropped, which shuts the processor down. The processor gets flujo's
    /// resource, and is handed spans on a thread of flujo's, never on the application's or
    /// the export worker's. Needs feature `opentelemetry`.
    #[cfg(feature = "opentelemetry")]
    pub fn add_otel_processor(
        &mut self,
        processor: impl opentelemetry_sdk::trace::SpanProcessor + 'static,
    ) -> Result<(), TelemetryError> {
        let resource = crate::sinks::otel::convert::resource(&self.settings.resource);
        self.add_otel_destination(
            "OpenTelemetry span processor",
            ProcessorDestination::owned(processor, &resource, &self.settings.spans),
        )
    }

    /// Sends every finished span to a span processor that the application's `SdkTracerProvider`
    /// also feeds: flujo's spans go wherever the provider's go, with the provider's resource.
    /// Dropping this guard flushes the processor; the provider shuts it down. Needs feature
    /// `opentelemetry`.
    #[cfg(feature = "opentelemetry")]
    pub fn share_otel_processor<P: opentelemetry_sdk::trace::SpanProcessor + 'static>(
        &mut self,
        processor: &crate::sinks::otel::destination::SharedSpanProcessor<P>,
    ) -> Result<(), TelemetryError> {
        self.add_otel_destination(
            "OpenTelemetry span processor",
            ProcessorDestination::shared(processor.clone(), &self.settings.spans),
        )
    }

    /// Feeds an OpenTelemetry destination: the application has an OpenTelemetry setup, so a
    /// running step becomes its current context unless `otel_context_activation` says
    /// otherwise.
    #[cfg(feature = "opentelemetry")]
    fn add_otel_destination(
        &mut self,
        name: &'static str,
        destination: impl crate::sinks::otel::sender::Destination<
            Batch = Vec<crate::collect::finished::FinishedSpan>,
        >,
    ) -> Result<(), TelemetryError> {
        let exporter = crate::sinks::otel::start(name, destination, &self.settings.spans)?;
        if self.settings.otel_context_activation.is_none() {
            crate::core::otel_current::set_activation(true);
        }
        self.add_span_exporter(exporter);
        Ok(())
    }

    /// Prices, the daily limit, the ledger, the exporters and the log subscriber.
    fn start(&mut self) -> Result<(), TelemetryError> {
        let settings = &self.settings;
        pricing::configure(
            settings.pricing.prices_file.as_deref(),
            settings.pricing.pricing_file.as_deref(),
            settings.pricing.strict,
        )?;
        budget::set_limits(settings.ledger.daily_limit, settings.ledger.monthly_limit);
        self.durable_ledger = settings.ledger.location.is_some();
        ledger::open_session(settings.ledger.location.clone().map(|location| {
            ledger::LedgerOptions {
                location,
                buffer: settings.ledger.buffer,
                refresh: settings.ledger.refresh,
                when_unreachable: settings.ledger.unreachable,
            }
        }))?;
        #[cfg(feature = "otlp")]
        if settings.exporters.otlp_metrics || settings.exporters.console_metrics {
            self.otlp_metrics = Some(crate::sinks::otlp::metrics::OtlpMetrics::start(
                settings
                    .exporters
                    .otlp_metrics
                    .then_some(&settings.otlp.metrics),
                settings.exporters.console_metrics,
                settings.exporters.metrics_export_interval,
                &settings.resource,
            )?);
        }
        #[allow(unused_mut)]
        let mut log_layers: Vec<log::ExtraLayer> = Vec::new();
        #[cfg(feature = "logfire")]
        if settings.exporters.logfire
            && let Some(token) = &settings.logfire.api_key
        {
            let timeout = settings.otlp.traces.timeout;
            let spans =
                crate::sinks::logfire::signal(&settings.logfire, token, "/v1/traces", timeout);
            let exporter = crate::sinks::otlp::traces::start(
                "Logfire",
                &spans,
                &settings.spans,
                &settings.resource,
            )?;
            self.exporters.push(sink::add_sink(Box::new(exporter)));
            let logs = crate::sinks::logfire::signal(&settings.logfire, token, "/v1/logs", timeout);
            let (logs, bridge) =
                crate::sinks::otlp::logs::OtlpLogs::start("Logfire", &logs, &settings.resource)?;
            self.log_exports.push(logs);
            log_layers.push(Box::new(bridge));
        }
        #[cfg(feature = "otlp")]
        if settings.exporters.otlp_logs {
            let (logs, bridge) = crate::sinks::otlp::logs::OtlpLogs::start(
                "OTLP",
                &settings.otlp.logs,
                &settings.resource,
            )?;
            self.log_exports.push(logs);
            log_layers.push(Box::new(bridge));
        }
        #[cfg(feature = "otlp")]
        if settings.exporters.otlp_traces {
            let exporter = crate::sinks::otlp::traces::start(
                "OTLP",
                &settings.otlp.traces,
                &settings.spans,
                &settings.resource,
            )?;
            self.exporters.push(sink::add_sink(Box::new(exporter)));
        }
        #[cfg(feature = "otlp")]
        if settings.exporters.console_traces {
            let resource = crate::sinks::otel::convert::resource(&settings.resource);
            let exporter = crate::sinks::otel::start(
                "console",
                crate::sinks::otel::destination::ExporterDestination::new(
                    opentelemetry_stdout::SpanExporter::default(),
                    &resource,
                    &settings.spans,
                ),
                &settings.spans,
            )?;
            self.exporters.push(sink::add_sink(Box::new(exporter)));
        }
        #[cfg(feature = "prometheus")]
        if settings.exporters.prometheus {
            crate::sinks::prometheus::attach()?;
        }
        self.logs_installed = log::install(settings.logs.format, &settings.logs.filter, log_layers);
        for notice in &settings.notices {
            if notice.warn {
                tracing::warn!(target: "flujo", "{}", notice.text);
            } else {
                tracing::info!(target: "flujo", "{}", notice.text);
            }
        }
        state::set_sampling_rate(settings.sampling_rate);
        genai::set_compat(settings.genai.compat);
        genai::set_conventions(settings.genai.conventions);
        crate::core::propagation::set(settings.propagators);
        #[cfg(feature = "opentelemetry")]
        crate::core::otel_current::set_activation(settings.otel_context_activation == Some(true));
        // The configured secrets are never captured, whatever a prompt or an answer holds.
        let otlp = &settings.otlp;
        let secrets = [&otlp.traces, &otlp.metrics, &otlp.logs]
            .into_iter()
            .flat_map(|signal| signal.headers.iter().map(|(_, value)| value))
            .chain(&settings.logfire.api_key)
            .map(|secret| secret.expose().to_owned())
            .collect();
        content::configure(
            settings.genai.capture_message_content,
            settings.genai.max_content_bytes,
            secrets,
        );
        worker::set_flush_interval(settings.spans.schedule_delay);
        bridged::set_event_limit(settings.spans.span_event_count_limit);
        Ok(())
    }

    /// Closes the ledger and shuts the exporters down side by side, each until `deadline`
    /// (cost records are not dropped because spans took long to export, nor the reverse);
    /// returns how many cost records the ledger had not committed and how many spans the
    /// exporters could not deliver.
    fn release(&mut self, deadline: Instant) -> (Unwritten, u64) {
        let remaining = || deadline.saturating_duration_since(Instant::now());
        std::thread::scope(|scope| {
            let ledger = self
                .durable_ledger
                .then(|| scope.spawn(|| ledger::close_session(remaining())));
            budget::set_limits(None, None);
            let mut undelivered_spans = 0;
            for exporter in self.exporters.drain(..) {
                if let Some(mut exporter) = sink::remove_sink(exporter) {
                    exporter.shutdown(remaining());
                    undelivered_spans += exporter.undelivered();
                }
            }
            #[cfg(feature = "otlp")]
            for mut logs in self.log_exports.drain(..) {
                logs.shutdown(remaining());
            }
            #[cfg(feature = "otlp")]
            if let Some(mut metrics) = self.otlp_metrics.take() {
                metrics.shutdown(remaining());
            }
            let unwritten = ledger
                .map(|closing| closing.join().unwrap_or_default())
                .unwrap_or_default();
            (unwritten, undelivered_spans)
        })
    }
}

/// What a shutdown could not deliver within its timeout.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Undelivered {
    calls_running: u64,
    queued_spans: u64,
    queued_cost_records: u64,
    uncommitted_cost_records: u64,
    /// Refused by a ledger whose buffer was full (a full disk, a database down).
    unwritten_cost_records: u64,
}

impl Undelivered {
    fn warn(&self, timeout: Duration) {
        if self.unwritten_cost_records > 0 {
            tracing::warn!(
                target: "flujo",
                cost_records = self.unwritten_cost_records,
                "the cost ledger could not write {} cost records in this session: its buffer was \
                 full (see its WARN and ERROR lines; counted in \
                 flujo_cost_records_dropped_total{{reason}}): reports and the ledger miss them, \
                 budgets and metrics counted them",
                self.unwritten_cost_records
            );
        }
        let Undelivered {
            calls_running,
            queued_spans,
            queued_cost_records,
            uncommitted_cost_records,
            unwritten_cost_records: _,
        } = *self;
        if calls_running + queued_spans + queued_cost_records + uncommitted_cost_records == 0 {
            return;
        }
        let cost_records = queued_cost_records + uncommitted_cost_records;
        tracing::warn!(
            target: "flujo",
            timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            calls_running,
            spans = queued_spans,
            cost_records,
            "flujo telemetry shutdown did not deliver everything within shutdown_timeout: \
             {queued_spans} spans and {cost_records} cost records were not delivered (counted \
             in flujo_telemetry_spans_dropped_total and flujo_cost_records_dropped_total: \
             reason=\"shutdown\" for what the exporters and the ledger had not sent, \"late\" for \
             what was still queued), and {calls_running} calls were still running (their \
             spans and cost records are counted as late when they end)",
        );
    }
}

impl Drop for TelemetryGuard {
    /// Shuts telemetry down, within `shutdown_timeout` in all: new calls stop recording
    /// first; calls already running (sync and async) get until the timeout less a quarter of
    /// it (at most 500 ms) to end; the records are drained one last time and handed to every
    /// sink and the ledger; then the durable ledger is committed and closed and the exporters
    /// shut down, side by side, in what is left. Calls that end later are counted as late and
    /// never reach a later `init_telemetry`; records the ledger had not committed are counted
    /// (`reason="shutdown"`). What could not be delivered in time is said in one WARN line.
    fn drop(&mut self) {
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        if !self.live {
            self.release(deadline);
            return;
        }
        let mut lifecycle = lock(&LIFECYCLE);
        lifecycle.guard = false;
        let session = state::current_session();
        let unused = self.created.elapsed() < EARLY_DROP
            && state::calls_started(session) == self.calls_at_init;
        let mut undelivered = Undelivered::default();
        if !lifecycle.capture {
            state::set_flags(0);
            let calls_deadline = deadline - delivery_reserve(self.settings.shutdown_timeout);
            undelivered.calls_running = wait_for_calls(session, calls_deadline);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if !worker::flush(remaining.max(LAST_DRAIN_MIN_WAIT)) {
            (undelivered.queued_spans, undelivered.queued_cost_records) = ring::queued();
        }
        if !lifecycle.capture {
            sink::accept_session(None);
        }
        let (unwritten, exporter_spans) = self.release(deadline);
        undelivered.uncommitted_cost_records = unwritten.uncommitted;
        undelivered.unwritten_cost_records = unwritten.refused;
        undelivered.queued_spans += exporter_spans;
        state::set_sampling_rate(1.0);
        if lifecycle.capture {
            lifecycle::refresh_locked(&lifecycle);
        } else {
            state::next_session(true);
        }
        drop(lifecycle);
        undelivered.warn(self.settings.shutdown_timeout);
        if unused {
            dropped_early(self.created.elapsed());
        }
    }
}

/// The part of `shutdown_timeout` kept for delivery: calls still running get the rest, so
/// that the records of the calls that ended in time are committed and exported within the
/// timeout (a quarter of it, at most 500 ms).
fn delivery_reserve(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_millis(500))
}

/// A guard dropped this soon after `init_telemetry`, with no call in between, was most likely
/// not meant to be dropped.
const EARLY_DROP: Duration = Duration::from_secs(1);

/// Says that the guard was dropped moments after it was made, before anything was recorded.
#[cold]
fn dropped_early(lived: Duration) {
    tracing::warn!(
        target: "flujo",
        lived_ms = u64::try_from(lived.as_millis()).unwrap_or(u64::MAX),
        "telemetry was shut down moments after init_telemetry, before anything was recorded: \
         its guard was dropped (`let _ = ...` drops it at once, and so does the end of the \
         function that holds it). If that was not meant, keep it for as long as the program \
         runs: `let _telemetry = flujo::init_telemetry()?;`"
    );
}

/// Waits until no call of `session` is running, or until `deadline`; returns how many still
/// were.
fn wait_for_calls(session: u16, deadline: Instant) -> u64 {
    loop {
        let running = state::calls_in_flight(session);
        if running == 0 || Instant::now() >= deadline {
            return running;
        }
        std::thread::sleep(IN_FLIGHT_POLL);
    }
}
