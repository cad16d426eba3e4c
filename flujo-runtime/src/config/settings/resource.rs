//! What exported telemetry says about the service: the resource.

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};
use crate::core::names::OPENINFERENCE_PROJECT_NAME;

/// The resource of everything flujo exports.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ResourceSettings {
    /// `service.name`.
    pub(crate) service_name: String,
    /// `deployment.environment.name`.
    pub(crate) environment: String,
    /// `service.version`, if known.
    pub(crate) version: Option<String>,
    /// `openinference.project.name`, the project Arize Phoenix files spans under (`None`
    /// when the OpenInference names are off, see `genai_compat`).
    pub(crate) project_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded.
    pub(crate) attributes: Vec<(String, String)>,
}

pub(super) const SERVICE_NAME: Setting<String> = Setting {
    meta: Meta {
        field: Some("service_name"),
        env: &["OTEL_SERVICE_NAME"],
        accepts: "any text",
        doc: "`service.name` of exported telemetry",
        secret: false,
    },
    parse: values::text,
    valid: values::any,
    default: || "flujo".to_owned(),
    default_text: "`flujo`",
};

pub(super) const ENVIRONMENT: Setting<String> = Setting {
    meta: Meta {
        field: Some("environment"),
        env: &["FLUJO_ENVIRONMENT"],
        accepts: "any text",
        doc: "`deployment.environment.name` (`production`, ...)",
        secret: false,
    },
    parse: values::text,
    valid: values::any,
    default: || "development".to_owned(),
    default_text: "`development`",
};

pub(super) const VERSION: Setting<Option<String>> = Setting {
    meta: Meta {
        field: Some("version"),
        env: &["FLUJO_SERVICE_VERSION"],
        accepts: "any text",
        doc: "`service.version`",
        secret: false,
    },
    parse: |v| values::text(v).map(Some),
    valid: values::any,
    default: || None,
    default_text: "none",
};

pub(super) const PROJECT_NAME: Setting<Option<String>> = Setting {
    meta: Meta {
        field: Some("project_name"),
        env: &["PHOENIX_PROJECT_NAME"],
        accepts: "any text",
        doc: "`openinference.project.name`: the project Arize Phoenix files spans under (with the OpenInference names on, see `genai_compat`)",
        secret: false,
    },
    parse: |v| values::text(v).map(Some),
    valid: values::any,
    default: || None,
    default_text: "`openinference.project.name` of `OTEL_RESOURCE_ATTRIBUTES`, else the service name",
};

pub(super) const ATTRIBUTES: Setting<Vec<(String, String)>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_RESOURCE_ATTRIBUTES"],
        accepts: "comma-separated key=value pairs, values URL-encoded, e.g. team=search,region=eu",
        doc: "more resource attributes (`service.name` and the settings above win)",
        secret: false,
    },
    parse: values::pairs,
    valid: values::any,
    default: Vec::new,
    default_text: "none",
};

pub(super) const DECLARED: &[&dyn Declared] = &[
    &SERVICE_NAME,
    &ENVIRONMENT,
    &VERSION,
    &PROJECT_NAME,
    &ATTRIBUTES,
];

const PROJECT_ATTRIBUTE: &str = OPENINFERENCE_PROJECT_NAME;

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
    openinference: bool,
) -> Result<ResourceSettings, TelemetryError> {
    let service_name = SERVICE_NAME.get(config.service_name.clone(), env)?;
    let attributes = ATTRIBUTES.get(None, env)?;
    let project_name = PROJECT_NAME
        .get(config.project_name.clone().map(Some), env)?
        .or_else(|| {
            attributes
                .iter()
                .find(|(key, _)| key == PROJECT_ATTRIBUTE)
                .map(|(_, value)| value.clone())
        })
        .unwrap_or_else(|| service_name.clone());
    Ok(ResourceSettings {
        environment: ENVIRONMENT.get(config.environment.clone(), env)?,
        version: VERSION.get(config.version.clone().map(Some), env)?,
        project_name: openinference.then_some(project_name),
        attributes,
        service_name,
    })
}
