//! The queue every span exporter is fed by (`OTEL_BSP_*`) and the limits of exported spans.

use std::time::Duration;

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};
use crate::core::attribute::MAX_ATTRIBUTE_VALUE_BYTES;
use crate::core::record::DEFAULT_SPAN_EVENT_LIMIT;

/// The export queue's size in spans unless `OTEL_BSP_MAX_QUEUE_SIZE` / `max_queue_size` say.
pub(crate) const DEFAULT_QUEUE_SIZE: usize = 1 << 17;
/// The most spans `OTEL_BSP_MAX_QUEUE_SIZE` / `max_queue_size` may ask to queue for export.
pub(crate) const MAX_QUEUE_SIZE: usize = 1 << 20;
/// The most spans `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` / `max_export_batch_size` may put in one
/// export request.
pub(crate) const MAX_EXPORT_BATCH_SIZE: usize = 1 << 16;
/// The most attributes `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` may keep on a span.
const MAX_ATTRIBUTE_COUNT: usize = 1 << 16;
/// The most events `OTEL_SPAN_EVENT_COUNT_LIMIT` may keep on a span: a step's `tracing` events
/// wait in memory until it ends, for up to 4,096 steps at once.
const MAX_EVENT_COUNT: usize = 1 << 10;

/// How finished spans wait for their exporters, and what of them is exported.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SpanQueueSettings {
    /// Spans that may wait for export before new ones are dropped (and counted).
    pub(crate) max_queue_size: usize,
    /// Spans per export request.
    pub(crate) max_export_batch_size: usize,
    /// How often the export worker drains recorded spans.
    pub(crate) schedule_delay: Duration,
    /// How long an exporter of the application's (`add_otel_exporter`) may take with a batch.
    pub(crate) export_timeout: Duration,
    /// The most characters an exported attribute value keeps.
    pub(crate) attribute_value_length_limit: Option<usize>,
    /// The most attributes an exported span keeps; the rest are counted as dropped.
    pub(crate) span_attribute_count_limit: usize,
    /// The most events a span keeps; the rest are counted as dropped.
    pub(crate) span_event_count_limit: usize,
    /// The most attributes an exported span event keeps; the rest are counted as dropped.
    pub(crate) event_attribute_count_limit: usize,
}

pub(super) const MAX_QUEUE: Setting<usize> = Setting {
    meta: Meta {
        field: Some("max_queue_size"),
        env: &["OTEL_BSP_MAX_QUEUE_SIZE"],
        accepts: "a whole number of spans from 1 to 1048576 (at most 1048576)",
        doc: "spans that may wait for export before new ones are dropped and counted (131,072: a 5 s collector outage at 20,000 spans/s); at most 64 MiB of them",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_QUEUE_SIZE),
    valid: |n| (1..=MAX_QUEUE_SIZE).contains(n),
    default: || DEFAULT_QUEUE_SIZE,
    default_text: "131072",
};

pub(super) const MAX_BATCH: Setting<usize> = Setting {
    meta: Meta {
        field: Some("max_export_batch_size"),
        env: &["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
        accepts: "a whole number of spans from 1 to 65536 (at most 65536), and at most the queue size",
        doc: "spans per export request (and at most 3 MiB of them)",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_EXPORT_BATCH_SIZE),
    valid: |n| (1..=MAX_EXPORT_BATCH_SIZE).contains(n),
    default: || 512,
    default_text: "512",
};

pub(super) const SCHEDULE_DELAY: Setting<Duration> = Setting {
    meta: Meta {
        field: Some("flush_interval"),
        env: &["OTEL_BSP_SCHEDULE_DELAY"],
        accepts: "a whole number of milliseconds from 1 to 3600000 (an hour)",
        doc: "how often the export worker drains recorded spans",
        secret: false,
    },
    parse: |v| values::millis(v, 1..=3_600_000),
    valid: |d| values::within_millis(d, 1..=3_600_000),
    default: || Duration::from_millis(100),
    default_text: "100 ms",
};

pub(super) const EXPORT_TIMEOUT: Setting<Duration> = Setting {
    meta: Meta {
        field: Some("export_timeout"),
        env: &["OTEL_BSP_EXPORT_TIMEOUT"],
        accepts: "a whole number of milliseconds from 1 to 600000 (ten minutes)",
        doc: "how long an exporter of the application's (`add_otel_exporter`, `add_otel_processor`) may take with one batch (OTLP's own requests have `otlp_timeout`)",
        secret: false,
    },
    parse: |v| values::millis(v, 1..=600_000),
    valid: |d| values::within_millis(d, 1..=600_000),
    default: || Duration::from_secs(30),
    default_text: "30 s",
};

pub(super) const VALUE_LENGTH_LIMIT: Setting<Option<usize>> = Setting {
    meta: Meta {
        field: None,
        env: &[
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        ],
        accepts: "a whole number of characters from 1 to 1048576 (MAX_ATTRIBUTE_VALUE_BYTES, 1 MiB)",
        doc: "longer string values (and elements of string arrays) of exported spans and their events are cut, over OTLP and to Logfire",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_ATTRIBUTE_VALUE_BYTES).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "no limit",
};

pub(super) const COUNT_LIMIT: Setting<usize> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_ATTRIBUTE_COUNT_LIMIT"],
        accepts: "a whole number of attributes from 1 to 65536",
        doc: "attributes an exported span or span event keeps, unless the variables below say",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_ATTRIBUTE_COUNT),
    valid: |_| true,
    // The specification's default.
    default: || 128,
    default_text: "128",
};

pub(super) const SPAN_COUNT_LIMIT: Setting<Option<usize>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"],
        accepts: "a whole number of attributes from 1 to 65536",
        doc: "attributes an exported span keeps: its own first, then its `fields`; the rest are counted in its dropped-attributes count",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_ATTRIBUTE_COUNT).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "`OTEL_ATTRIBUTE_COUNT_LIMIT`",
};

pub(super) const EVENT_COUNT_LIMIT: Setting<usize> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_SPAN_EVENT_COUNT_LIMIT"],
        accepts: "a whole number of events from 1 to 1024",
        doc: "events a span keeps (retries, validations, `tracing` events logged inside it), the first ones; the rest are counted in its dropped-events count",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_EVENT_COUNT),
    valid: |_| true,
    default: || DEFAULT_SPAN_EVENT_LIMIT,
    default_text: "128",
};

pub(super) const EVENT_ATTRIBUTE_COUNT_LIMIT: Setting<Option<usize>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"],
        accepts: "a whole number of attributes from 1 to 65536",
        doc: "attributes an exported span event keeps, the first ones; the rest are counted in its dropped-attributes count",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_ATTRIBUTE_COUNT).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "`OTEL_ATTRIBUTE_COUNT_LIMIT`",
};

pub(super) const DECLARED: &[&dyn Declared] = &[
    &MAX_QUEUE,
    &MAX_BATCH,
    &SCHEDULE_DELAY,
    &EXPORT_TIMEOUT,
    &VALUE_LENGTH_LIMIT,
    &COUNT_LIMIT,
    &SPAN_COUNT_LIMIT,
    &EVENT_COUNT_LIMIT,
    &EVENT_ATTRIBUTE_COUNT_LIMIT,
];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<SpanQueueSettings, TelemetryError> {
    let max_queue_size = MAX_QUEUE.get(config.max_queue_size, env)?;
    let max_export_batch_size = MAX_BATCH.get(config.max_export_batch_size, env)?;
    if max_export_batch_size > max_queue_size {
        // The specification: the batch size must be at most the queue size.
        return Err(TelemetryError::InvalidSetting {
            field: "max_export_batch_size",
            value: max_export_batch_size.to_string(),
            expected: "at most max_queue_size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE at most \
                       OTEL_BSP_MAX_QUEUE_SIZE)",
        });
    }
    let count_limit = COUNT_LIMIT.get(None, env)?;
    Ok(SpanQueueSettings {
        max_queue_size,
        max_export_batch_size,
        schedule_delay: SCHEDULE_DELAY.get(config.flush_interval, env)?,
        export_timeout: EXPORT_TIMEOUT.get(config.export_timeout, env)?,
        attribute_value_length_limit: VALUE_LENGTH_LIMIT.get(None, env)?,
        span_attribute_count_limit: SPAN_COUNT_LIMIT.get(None, env)?.unwrap_or(count_limit),
        span_event_count_limit: EVENT_COUNT_LIMIT.get(None, env)?,
        event_attribute_count_limit: EVENT_ATTRIBUTE_COUNT_LIMIT
            .get(None, env)?
            .unwrap_or(count_limit),
    })
}
