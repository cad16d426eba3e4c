//! Prometheus metrics (feature `prometheus`) through `metrics-exporter-prometheus`.
//!
//! flujo's recorder stays the global one; the Prometheus recorder is attached to it as a
//! downstream, so it sees every flujo metric (with HELP text and explicit buckets: never
//! summaries). `/metrics` is served by a small HTTP server on a thread of its own; an upkeep
//! thread keeps histogram memory bounded when nobody scrapes.

use crate::core::names::Metric;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::collect::worker;
use crate::config::error::TelemetryError;
use crate::metrics::histogram::{
    self as metrics, DURATION_SECONDS_BUCKETS, GEN_AI_DURATION_BUCKETS, GEN_AI_TOKEN_BUCKETS,
};
use crate::metrics::recorder as flujo_recorder;

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How long a scrape waits for the export worker to apply the latest step metrics.
const SCRAPE_FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Attaches the Prometheus recorder (once per process) and returns its handle.
pub(crate) fn attach() -> Result<&'static PrometheusHandle, TelemetryError> {
    HANDLE
        .get_or_init(|| {
            // Unit suffixes as Prometheus names them: `gen_ai.client.operation.duration`
            // (seconds) is served as `gen_ai_client_operation_duration_seconds`.
            // The exporter tries full names first, then prefixes in alphabetical order
            // (`gen_ai` before any longer one): histograms with buckets of their own are
            // named in full.
            let buckets = [
                (
                    Matcher::Full(Metric::GenAiTokenUsage.name().into()),
                    GEN_AI_TOKEN_BUCKETS,
                ),
                (
                    Matcher::Full(Metric::GenAiInputTokens.name().into()),
                    GEN_AI_TOKEN_BUCKETS,
                ),
                (
                    Matcher::Full(Metric::GenAiOutputTokens.name().into()),
                    GEN_AI_TOKEN_BUCKETS,
                ),
                (
                    Matcher::Full(Metric::GenAiInvokeAgentDuration.name().into()),
                    metrics::GEN_AI_AGENT_DURATION_BUCKETS,
                ),
                (
                    Matcher::Full(Metric::GenAiWorkflowDuration.name().into()),
                    metrics::GEN_AI_WORKFLOW_DURATION_BUCKETS,
                ),
                (
                    Matcher::Full(Metric::Score.name().into()),
                    metrics::SCORE_BUCKETS,
                ),
                (Matcher::Prefix("gen_ai".into()), GEN_AI_DURATION_BUCKETS),
                (Matcher::Suffix("_seconds".into()), DURATION_SECONDS_BUCKETS),
            ];
            let recorder = buckets
                .into_iter()
                .try_fold(
                    PrometheusBuilder::new().with_recommended_naming(true),
                    |builder, (matcher, buckets)| builder.set_buckets_for_metric(matcher, buckets),
                )
                .and_then(|b| b.set_buckets(metrics::DEFAULT_BUCKETS))
                .map_err(|error| error.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            flujo_recorder::attach_downstream(
                flujo_recorder::Downstream::Prometheus,
                Box::new(recorder),
            );
            let upkeep = handle.clone();
            thread::Builder::new()
                .name("flujo-prometheus-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|error| error.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(|reason| TelemetryError::ExporterStart {
            exporter: "Prometheus",
            reason: reason.clone(),
        })
}

/// A running `/metrics` endpoint; see [`start_prometheus_server`].
#[derive(Clone)]
pub struct PrometheusServer {
    address: SocketAddr,
    server: Arc<tiny_http::Server>,
}

impl std::fmt::Debug for PrometheusServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusServer")
            .field("address", &self.address)
            .finish()
    }
}

impl PrometheusServer {
    /// The address the server listens on (with the real port when `0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The URL Prometheus scrapes.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.address)
    }

    /// Stops serving; the metrics keep being recorded.
    pub fn shutdown(&self) {
        self.server.unblock();
    }
}

/// Serves flujo's metrics in the Prometheus text format at `http://127.0.0.1:{port}/metrics`,
/// as the guide's `start_prometheus_server(8000)` does. Port 0 picks a free port; the handle
/// tells which. The server runs until [`PrometheusServer::shutdown`] or the process ends.
///
/// ```
/// let server = flujo::export::start_prometheus_server(0)?;
/// println!("scrape {}", server.metrics_url());
/// # server.shutdown();
/// # Ok::<(), flujo::TelemetryError>(())
/// ```
pub fn start_prometheus_server(port: u16) -> Result<PrometheusServer, TelemetryError> {
    start_prometheus_server_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

/// Like [`start_prometheus_server`], on any address (e.g. `0.0.0.0:9464` to be scraped from
/// other hosts).
pub fn start_prometheus_server_on(address: SocketAddr) -> Result<PrometheusServer, TelemetryError> {
    let handle = attach()?;
    let bind_error = |reason: String| TelemetryError::PrometheusServer { address, reason };
    let server = Arc::new(tiny_http::Server::http(address).map_err(|e| bind_error(e.to_string()))?);
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| bind_error("not an IP address".to_owned()))?;
    let serving = Arc::clone(&server);
    thread::Builder::new()
        .name("flujo-prometheus".to_owned())
        .spawn(move || {
            for request in serving.incoming_requests() {
                let response =
                    if request.url() == "/metrics" || request.url().starts_with("/metrics?") {
                        // Step metrics are applied by the export worker: bring them up to date.
                        worker::flush(SCRAPE_FLUSH_TIMEOUT);
                        let content_type = tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            &b"text/plain; version=0.0.4; charset=utf-8"[..],
                        )
                        .expect("a valid static header");
                        let mut body = handle.render();
                        flujo_recorder::render_usd_counters(&mut body);
                        tiny_http::Response::from_string(body).with_header(content_type)
                    } else {
                        tiny_http::Response::from_string("flujo serves metrics at /metrics\n")
                            .with_status_code(404)
                    };
                let _ = request.respond(response);
            }
        })
        .map_err(|e| bind_error(e.to_string()))?;
    Ok(PrometheusServer {
        address: bound,
        server,
    })
}

#[cfg(test)]
mod tests {
    use metrics::{Key, Metadata, Recorder as _};
    use metrics_exporter_prometheus::PrometheusBuilder;

    use crate::core::names::{Metric, MetricKind};
    use crate::metrics::describe::unit_of;

    /// `Metric::prometheus_name` is what the exporter makes of each name, as flujo builds it.
    #[test]
    fn every_metric_is_served_under_its_prometheus_name() {
        let recorder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .build_recorder();
        let handle = recorder.handle();
        let metadata = Metadata::new("flujo", metrics::Level::INFO, None);
        for &metric in Metric::ALL {
            let key = Key::from_static_name(metric.name());
            let help = metric.description().into();
            match metric.kind() {
                MetricKind::Counter => {
                    recorder.describe_counter(metric.name().into(), unit_of(metric), help);
                    recorder.register_counter(&key, &metadata).increment(1);
                }
                MetricKind::Histogram => {
                    recorder.describe_histogram(metric.name().into(), unit_of(metric), help);
                    recorder.register_histogram(&key, &metadata).record(1.0);
                }
            }
        }
        let served = handle.render();
        for &metric in Metric::ALL {
            let series = match metric.kind() {
                MetricKind::Counter => format!("\n{} 1", metric.prometheus_name()),
                MetricKind::Histogram => format!("\n{}_count 1", metric.prometheus_name()),
            };
            assert!(
                served.contains(&series),
                "{metric:?}: {series:?} in\n{served}"
            );
        }
    }
}
