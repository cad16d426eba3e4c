//! Head sampling: what decides a root span (children follow their parent).

use super::declare::{Declared, Env, Meta, Setting};
use super::{TelemetryConfig, TelemetryError};

const RATE: &str = "a number from 0.0 to 1.0";

/// `OTEL_TRACES_SAMPLER`: flujo's sampling is parent-based whichever is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio,
}

impl Sampler {
    fn parse(value: &str) -> Option<Sampler> {
        let value = value.trim().to_ascii_lowercase();
        match value.strip_prefix("parentbased_").unwrap_or(&value) {
            "always_on" => Some(Sampler::AlwaysOn),
            "always_off" => Some(Sampler::AlwaysOff),
            "traceidratio" => Some(Sampler::TraceIdRatio),
            _ => None,
        }
    }
}

fn rate(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(valid_rate)
}

fn valid_rate(rate: &f64) -> bool {
    (0.0..=1.0).contains(rate)
}

pub(super) const SAMPLING_RATE: Setting<f64> = Setting {
    meta: Meta {
        field: Some("sampling_rate"),
        env: &[],
        accepts: RATE,
        doc: "fraction of traces recorded, decided at the root (metrics are never sampled); wins over `OTEL_TRACES_SAMPLER`",
        secret: false,
    },
    parse: rate,
    valid: valid_rate,
    default: || 1.0,
    default_text: "from `OTEL_TRACES_SAMPLER`",
};

pub(super) const SAMPLER: Setting<Option<Sampler>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_TRACES_SAMPLER"],
        accepts: "one of always_on, always_off, traceidratio, parentbased_always_on, \
                  parentbased_always_off, parentbased_traceidratio (flujo's sampling is \
                  parent-based: a child follows its parent)",
        doc: "the sampler of root spans",
        secret: false,
    },
    parse: |v| Sampler::parse(v).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "`parentbased_always_on`",
};

pub(super) const SAMPLER_ARG: Setting<Option<f64>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_TRACES_SAMPLER_ARG"],
        accepts: RATE,
        doc: "the ratio of `traceidratio` samplers (without one it is not used, and a WARN says so)",
        secret: false,
    },
    parse: |v| rate(v).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "1.0",
};

pub(super) const DECLARED: &[&dyn Declared] = &[&SAMPLING_RATE, &SAMPLER, &SAMPLER_ARG];

/// The head-sampling ratio.
pub(super) fn resolve(config: &TelemetryConfig, env: &Env<'_>) -> Result<f64, TelemetryError> {
    if let Some(rate) = SAMPLING_RATE.lookup(config.sampling_rate, &[], env)? {
        return Ok(rate);
    }
    let sampler = SAMPLER.get(None, env)?;
    let argument = SAMPLER_ARG.get(None, env)?;
    Ok(match (sampler, argument) {
        (Some(Sampler::AlwaysOn), _) => 1.0,
        (Some(Sampler::AlwaysOff), _) => 0.0,
        // The specification's default argument of a ratio sampler: 1.0.
        (Some(Sampler::TraceIdRatio), argument) => argument.unwrap_or(1.0),
        (None, Some(argument)) => {
            env.warn(format!(
                "OTEL_TRACES_SAMPLER_ARG={argument} is not used: it is the argument of a ratio \
                 sampler, and OTEL_TRACES_SAMPLER names none (its default, \
                 parentbased_always_on, samples every trace); set \
                 OTEL_TRACES_SAMPLER=parentbased_traceidratio to sample by it"
            ));
            1.0
        }
        (None, None) => 1.0,
    })
}
