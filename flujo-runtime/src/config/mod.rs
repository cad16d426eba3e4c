//! Settings from defaults, the environment and code; `Secret`; the configuration's error.

pub(crate) mod error;
pub(crate) mod secret;
pub(crate) mod settings;

// Also at the crate root: one page each.
#[doc(no_inline)]
pub use self::error::TelemetryError;
pub use self::secret::Secret;
#[doc(no_inline)]
pub use self::settings::TelemetryConfig;
pub use self::settings::{
    ExporterSettings, GenAiSettings, LedgerSettings, LogFormat, LogSettings, LogfireSettings,
    OtlpProtocol, OtlpSettings, OtlpSignal, PricingSettings, ResourceSettings, SpanQueueSettings,
    TelemetrySettings, settings_table,
};
pub use crate::core::attribute::MAX_ATTRIBUTE_VALUE_BYTES;
pub use crate::core::genai::{GenAiCompat, GenAiConventions};
#[doc(no_inline)]
pub use crate::core::propagation::Propagators;
