//! Settings from defaults, the environment and code; `Secret`; the configuration's error.

pub(crate) mod error;
pub(crate) mod secret;
pub(crate) mod settings;

pub use self::secret::Secret;
pub use self::settings::{LogFormat, OtlpProtocol, TelemetrySettings};
pub use crate::core::attribute::MAX_ATTRIBUTE_VALUE_BYTES;
pub use crate::core::genai::{GenAiCompat, GenAiConventions};
