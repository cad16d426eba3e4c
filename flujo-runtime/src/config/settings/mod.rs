//! Telemetry settings: defaults, overridden by the environment, overridden by code.
//!
//! Every setting is declared once, in the file of the group that owns it (a
//! [`Setting`](declare::Setting) constant): its [`TelemetryConfig`] field, its environment
//! variables in precedence order, its parser and accepted values, its default and one line of
//! documentation. Resolution, the errors (naming the variable, the value, unless secret, and
//! what is accepted), the unknown-`FLUJO_*` check and the settings table of the guide
//! (`docs/guide/settings.md`, kept equal to the declarations by a test) all read the
//! declarations. Each exporter is handed only its group.
//!
//! Adding a setting is one declaration plus its use:
//!
//! 1. declare it in its group's file (`otlp.rs`, `ledger.rs`, ...) and list it in the group's
//!    `DECLARED`;
//! 2. if code may set it, add the [`TelemetryConfig`] field and its setter (`config.rs`);
//! 3. read it in the group's `resolve` into the group's settings struct, and use it;
//! 4. run `UPDATE_SETTINGS_TABLE=1 cargo test -p flujo-runtime --lib settings_table` to
//!    write the guide's table.

mod config;
mod declare;
mod exporters;
mod genai;
mod groups;
mod ledger;
mod lifecycle;
mod logfire;
mod logs;
mod otlp;
mod pricing;
mod propagation;
mod resource;
mod sampling;
mod spans;
mod table;
#[cfg(test)]
mod tests;
mod unknown;
mod values;

use std::time::Duration;

use super::error::TelemetryError;
use crate::core::genai::GenAiCompat;
use crate::core::propagation::Propagators;

pub use self::config::TelemetryConfig;
use self::declare::Env;
pub(crate) use self::declare::Notice;
pub(crate) use self::exporters::ExporterSettings;
pub(crate) use self::genai::GenAiSettings;
pub(crate) use self::ledger::LedgerSettings;
pub(crate) use self::logfire::LogfireSettings;
pub use self::logs::LogFormat;
pub(crate) use self::logs::LogSettings;
pub use self::otlp::OtlpProtocol;
pub(crate) use self::otlp::OtlpSettings;
#[cfg(feature = "otlp")]
pub(crate) use self::otlp::OtlpSignal;
pub(crate) use self::pricing::PricingSettings;
pub(crate) use self::resource::ResourceSettings;
pub(crate) use self::spans::SpanQueueSettings;
pub use self::table::settings_table;

/// The settings in force after defaults, environment and code were combined and validated.
///
/// Its `Debug` shows every setting, by owner, with secrets redacted (`flujo settings` lists
/// what each one accepts and its default). Its parts stay private, as each exporter is handed
/// only its group: a new setting is not a new public field.
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetrySettings {
    /// What exported telemetry says about the service.
    pub(crate) resource: ResourceSettings,
    /// Head-sampling ratio in `0.0..=1.0`.
    pub(crate) sampling_rate: f64,
    /// Which exporters run.
    pub(crate) exporters: ExporterSettings,
    /// The queue every span exporter is fed by, and the limits of exported spans.
    pub(crate) spans: SpanQueueSettings,
    /// OTLP's transport, per signal.
    pub(crate) otlp: OtlpSettings,
    /// Logfire's token and URL.
    pub(crate) logfire: LogfireSettings,
    /// The cost ledger and its budgets.
    pub(crate) ledger: LedgerSettings,
    /// Where prices come from.
    pub(crate) pricing: PricingSettings,
    /// What model-call spans say.
    pub(crate) genai: GenAiSettings,
    /// flujo's log lines.
    pub(crate) logs: LogSettings,
    /// The headers that carry a trace across processes.
    pub(crate) propagators: Propagators,
    /// Longest wait, in all, when the guard is dropped.
    pub(crate) shutdown_timeout: Duration,
    /// A running step is the current OpenTelemetry context (`None`: once the application
    /// hands flujo an OpenTelemetry exporter or processor).
    pub(crate) otel_context_activation: Option<bool>,
    /// What resolving had to say, logged at init.
    pub(crate) notices: Vec<Notice>,
}

impl TelemetrySettings {
    /// What resolving the settings found worth a WARN (a variable not used, two that
    /// disagree, an unknown `FLUJO_*` variable); `init_telemetry` logs them.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.notices
            .iter()
            .filter(|notice| notice.warn)
            .map(|notice| notice.text.as_str())
    }

    /// The service's name (`service.name`): `OTEL_SERVICE_NAME`, `service_name`, or the
    /// default.
    pub fn service_name(&self) -> &str {
        &self.resource.service_name
    }

    /// The durable cost ledger (`FLUJO_COST_LEDGER`, `cost_ledger`), if any.
    pub fn cost_ledger(&self) -> Option<&crate::ledger::LedgerLocation> {
        self.ledger.location.as_ref()
    }
}

impl TelemetryConfig {
    /// Combines this configuration with the process environment and validates the result.
    pub fn resolve(&self) -> Result<TelemetrySettings, TelemetryError> {
        // A value that is not UTF-8 is an error naming its variable, never taken as unset.
        let not_unicode = std::cell::RefCell::new(None);
        let read = |variable: &str| match std::env::var(variable) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                not_unicode
                    .borrow_mut()
                    .get_or_insert_with(|| variable.to_owned());
                None
            }
        };
        let settings = self.resolve_with(&read, unknown::present());
        match not_unicode.into_inner() {
            Some(variable) => Err(TelemetryError::NotUnicode { variable }),
            None => settings,
        }
    }

    /// Like [`TelemetryConfig::resolve`], with `env` standing in for the environment.
    ///
    /// ```
    /// use flujo::{TelemetryConfig, TelemetryError};
    ///
    /// let err = TelemetryConfig::default()
    ///     .resolve_from(|var| (var == "TELEMETRY_EXPORT_ENABLED").then(|| "maybe".to_string()))
    ///     .unwrap_err();
    /// assert!(matches!(err, TelemetryError::InvalidEnvVar { variable: "TELEMETRY_EXPORT_ENABLED", .. }));
    /// ```
    pub fn resolve_from(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TelemetrySettings, TelemetryError> {
        self.resolve_with(&env, Vec::new())
    }

    /// `present`: the `FLUJO_*` variables set, checked against the declared ones.
    fn resolve_with(
        &self,
        read: &dyn Fn(&str) -> Option<String>,
        present: Vec<String>,
    ) -> Result<TelemetrySettings, TelemetryError> {
        let env = Env::new(read);
        unknown::check(&present, &env);
        let genai = genai::resolve(self, &env)?;
        let exporters = exporters::resolve(self, &env)?;
        let logfire = logfire::resolve(self, &env)?;
        if exporters.logfire && logfire.api_key.is_none() {
            return Err(TelemetryError::MissingSetting {
                setting: if self.export_telemetry.is_some() {
                    "`export_telemetry = true`"
                } else {
                    "TELEMETRY_EXPORT_ENABLED=true"
                },
                needs: "a Logfire write token: set LOGFIRE_API_KEY (or LOGFIRE_TOKEN), or `logfire_api_key`",
            });
        }
        let settings = TelemetrySettings {
            resource: resource::resolve(
                self,
                &env,
                genai.compat.contains(GenAiCompat::OPENINFERENCE),
            )?,
            sampling_rate: sampling::resolve(self, &env)?,
            spans: spans::resolve(self, &env)?,
            otlp: otlp::resolve(self, &env)?,
            ledger: ledger::resolve(self, &env)?,
            pricing: pricing::resolve(self, &env)?,
            logs: logs::resolve(self, &env)?,
            propagators: propagation::resolve(self, &env)?,
            shutdown_timeout: lifecycle::shutdown_timeout(self, &env)?,
            otel_context_activation: lifecycle::context_activation(self, &env)?,
            exporters,
            logfire,
            genai,
            notices: Vec::new(),
        };
        Ok(TelemetrySettings {
            notices: env.into_notices(),
            ..settings
        })
    }
}
