//! Which headers carry a trace across processes.

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};
use crate::core::propagation::Propagators;

pub(super) const PROPAGATORS: Setting<Propagators> = Setting {
    meta: Meta {
        field: Some("propagators"),
        env: &["OTEL_PROPAGATORS"],
        accepts: Propagators::VALUES,
        doc: "the headers `SpanContext::extract` reads and `SpanContext::inject_with` writes: W3C `traceparent`/`tracestate`, W3C `baggage`",
        secret: false,
    },
    parse: Propagators::parse,
    valid: values::any,
    default: Propagators::default,
    default_text: "`tracecontext,baggage`",
};

pub(super) const DECLARED: &[&dyn Declared] = &[&PROPAGATORS];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<Propagators, TelemetryError> {
    PROPAGATORS.get(config.propagators, env)
}
