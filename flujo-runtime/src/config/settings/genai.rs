//! The GenAI attributes of model-call spans: whose names, which version, and content.

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};
use crate::calls::content::DEFAULT_MAX_CONTENT_BYTES;
use crate::core::attribute::MAX_ATTRIBUTE_VALUE_BYTES;
use crate::core::genai::{GenAiCompat, GenAiConventions};

/// What model-call spans say.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GenAiSettings {
    /// Back-ends whose names model-call spans carry.
    pub(crate) compat: GenAiCompat,
    /// The version of the GenAI conventions' names.
    pub(crate) conventions: GenAiConventions,
    /// Model calls' content is captured.
    pub(crate) capture_message_content: bool,
    /// Text a call's captured content keeps, at most.
    pub(crate) max_content_bytes: usize,
}

pub(super) const COMPAT: Setting<GenAiCompat> = Setting {
    meta: Meta {
        field: Some("genai_compat"),
        env: &["FLUJO_GENAI_COMPAT"],
        accepts: GenAiCompat::VALUES,
        doc: "the back-ends whose cost and usage names model-call spans carry besides the OpenTelemetry GenAI ones",
        secret: false,
    },
    parse: GenAiCompat::parse,
    valid: values::any,
    default: GenAiCompat::default,
    default_text: "`all`",
};

pub(super) const CONVENTIONS: Setting<GenAiConventions> = Setting {
    meta: Meta {
        field: Some("genai_conventions"),
        env: &["OTEL_SEMCONV_STABILITY_OPT_IN"],
        accepts: "a comma-separated list; `gen_ai_latest_experimental` among its values asks for the current draft's names",
        doc: "which version of the GenAI conventions' names to emit",
        secret: false,
    },
    parse: |v| Some(GenAiConventions::from_opt_in(v)),
    valid: values::any,
    default: GenAiConventions::default,
    default_text: "v1.41",
};

pub(super) const CAPTURE: Setting<bool> = Setting {
    meta: Meta {
        field: Some("capture_message_content"),
        env: &["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"],
        accepts: values::BOOL,
        doc: "capture model calls' content (`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions`), redacted and cut at `max_content_bytes`",
        secret: false,
    },
    parse: values::boolean,
    valid: values::any,
    default: || false,
    default_text: "`false`, as the GenAI conventions require",
};

pub(super) const MAX_CONTENT: Setting<usize> = Setting {
    meta: Meta {
        field: Some("max_content_bytes"),
        env: &["FLUJO_GENAI_CONTENT_MAX_BYTES"],
        accepts: "a whole number of bytes from 1 to 1048576 (MAX_ATTRIBUTE_VALUE_BYTES)",
        doc: "the most bytes of text each captured content attribute of a model call keeps",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_ATTRIBUTE_VALUE_BYTES),
    valid: |n| (1..=MAX_ATTRIBUTE_VALUE_BYTES).contains(n),
    default: || DEFAULT_MAX_CONTENT_BYTES,
    default_text: "65536",
};

pub(super) const DECLARED: &[&dyn Declared] = &[&COMPAT, &CONVENTIONS, &CAPTURE, &MAX_CONTENT];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<GenAiSettings, TelemetryError> {
    Ok(GenAiSettings {
        compat: COMPAT.get(config.genai_compat, env)?,
        conventions: CONVENTIONS.get(config.genai_conventions, env)?,
        capture_message_content: CAPTURE.get(config.capture_message_content, env)?,
        max_content_bytes: MAX_CONTENT.get(config.max_content_bytes, env)?,
    })
}
