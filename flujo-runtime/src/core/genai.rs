//! Which observability back-ends' names a model-call span carries besides the OpenTelemetry
//! GenAI ones: each reads cost and usage under names of its own, and a name one back-end
//! reads can be misread by another, so the set is the user's to narrow.

use super::names::{GEN_AI_CONVERSATION_ID, SESSION_ID};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::attribute::AttributeValue;

/// A set of back-ends whose attribute names model-call spans carry (`FLUJO_GENAI_COMPAT`).
/// The OpenTelemetry GenAI names (`gen_ai.*`) are always there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenAiCompat(u8);

impl GenAiCompat {
    /// Only the OpenTelemetry GenAI names.
    pub const OTEL: GenAiCompat = GenAiCompat(0);
    /// Logfire: `operation.cost`.
    pub const LOGFIRE: GenAiCompat = GenAiCompat(1);
    /// Langfuse: `gen_ai.usage.cost` (the call's total cost).
    pub const LANGFUSE: GenAiCompat = GenAiCompat(2);
    /// OpenInference (Arize Phoenix): `openinference.span.kind`, `llm.*`.
    pub const OPENINFERENCE: GenAiCompat = GenAiCompat(4);
    /// Every back-end above (the default).
    pub const ALL: GenAiCompat = GenAiCompat(7);

    /// What `FLUJO_GENAI_COMPAT` accepts, for error messages.
    pub const VALUES: &'static str =
        "a comma-separated list of otel, logfire, langfuse, openinference, or all";

    /// Whether every back-end of `other` is in this set.
    pub fn contains(self, other: GenAiCompat) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    pub fn with(self, other: GenAiCompat) -> GenAiCompat {
        GenAiCompat(self.0 | other.0)
    }

    /// Parses a comma-separated list of back-end names (case and spaces ignored); `None`
    /// for an empty list or an unknown name.
    pub fn parse(list: &str) -> Option<GenAiCompat> {
        let mut set = None::<GenAiCompat>;
        for name in list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let backend = match name.to_ascii_lowercase().as_str() {
                "otel" | "opentelemetry" => GenAiCompat::OTEL,
                "logfire" => GenAiCompat::LOGFIRE,
                "langfuse" => GenAiCompat::LANGFUSE,
                "openinference" | "phoenix" | "arize" => GenAiCompat::OPENINFERENCE,
                "all" => GenAiCompat::ALL,
                _ => return None,
            };
            set = Some(set.unwrap_or(GenAiCompat::OTEL).with(backend));
        }
        set
    }
}

impl Default for GenAiCompat {
    fn default() -> GenAiCompat {
        GenAiCompat::ALL
    }
}

/// Which version of the GenAI conventions' names flujo emits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenAiConventions {
    /// The names of semantic conventions v1.41, the last core release that carries them
    /// (the default).
    #[default]
    V1_41,
    /// The current draft's names (`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`,
    /// the conventions' own switch): the `gen_ai.client.inference.usage.*` metrics, and the
    /// cost proposal's `gen_ai.usage.cost.amount` and `.currency` on spans (only when Langfuse
    /// is not in [`GenAiCompat`]: it would read them as usage counts).
    LatestExperimental,
}

impl GenAiConventions {
    /// The value of `OTEL_SEMCONV_STABILITY_OPT_IN` that asks for the current draft.
    pub const LATEST_OPT_IN: &'static str = "gen_ai_latest_experimental";

    /// The conventions an `OTEL_SEMCONV_STABILITY_OPT_IN` list asks for: its other values
    /// opt other domains in (`http`, `database`, ...) and are not flujo's to judge.
    pub fn from_opt_in(list: &str) -> GenAiConventions {
        if list.split(',').any(|value| {
            value
                .trim()
                .eq_ignore_ascii_case(GenAiConventions::LATEST_OPT_IN)
        }) {
            GenAiConventions::LatestExperimental
        } else {
            GenAiConventions::V1_41
        }
    }
}

static COMPAT: AtomicU8 = AtomicU8::new(GenAiCompat::ALL.0);
static LATEST: AtomicBool = AtomicBool::new(false);

/// Sets the conventions that spans and metrics are named by from now on.
pub(crate) fn set_conventions(conventions: GenAiConventions) {
    LATEST.store(
        conventions == GenAiConventions::LatestExperimental,
        Ordering::Relaxed,
    );
}

/// The conventions that spans and metrics are named by.
pub(crate) fn conventions() -> GenAiConventions {
    if LATEST.load(Ordering::Relaxed) {
        GenAiConventions::LatestExperimental
    } else {
        GenAiConventions::V1_41
    }
}

/// Sets the back-ends that spans converted from now on are written for.
pub(crate) fn set_compat(compat: GenAiCompat) {
    COMPAT.store(compat.0, Ordering::Relaxed);
}

/// The back-ends spans are written for.
pub(crate) fn compat() -> GenAiCompat {
    GenAiCompat(COMPAT.load(Ordering::Relaxed))
}

/// The attributes that name the conversation `id` on a span: `gen_ai.conversation.id`, and
/// `session.id`, which Langfuse and OpenInference group traces by.
pub(crate) fn conversation_attributes(id: &str) -> Vec<(&'static str, AttributeValue)> {
    let value = || AttributeValue::String(Cow::Owned(id.to_owned()));
    let mut attributes = vec![(GEN_AI_CONVERSATION_ID, value())];
    let compat = compat();
    if compat.contains(GenAiCompat::LANGFUSE) || compat.contains(GenAiCompat::OPENINFERENCE) {
        attributes.push((SESSION_ID, value()));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_backends_parse_and_unknown_names_do_not() {
        let langfuse_and_phoenix = GenAiCompat::parse(" Langfuse , phoenix").unwrap();
        assert!(langfuse_and_phoenix.contains(GenAiCompat::LANGFUSE));
        assert!(langfuse_and_phoenix.contains(GenAiCompat::OPENINFERENCE));
        assert!(!langfuse_and_phoenix.contains(GenAiCompat::LOGFIRE));
        assert_eq!(GenAiCompat::parse("otel"), Some(GenAiCompat::OTEL));
        assert_eq!(GenAiCompat::parse("all"), Some(GenAiCompat::ALL));
        assert_eq!(GenAiCompat::parse("otel,datadog"), None);
        assert_eq!(GenAiCompat::parse(" , "), None);
    }

    #[test]
    fn the_latest_conventions_are_asked_for_among_other_opt_ins() {
        use GenAiConventions::*;
        assert_eq!(
            GenAiConventions::from_opt_in("http, gen_ai_latest_experimental"),
            LatestExperimental
        );
        assert_eq!(GenAiConventions::from_opt_in("http,database"), V1_41);
        assert_eq!(GenAiConventions::from_opt_in(""), V1_41);
    }
}
