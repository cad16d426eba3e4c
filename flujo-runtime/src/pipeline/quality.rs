//! Quality metrics of the guide: checklists, score distributions, validation results (and
//! retry frequency, which the step metrics already give as `flujo_step_retries_total`).
//! Each result is also a `gen_ai.evaluation.result` event (the GenAI conventions' evaluation
//! event) on the span it was recorded in.
//!
//! ```
//! use flujo::quality;
//!
//! let result = quality::record_checklist("answer_review", &[
//!     ("cites a source", true),
//!     ("under 200 words", true),
//!     ("no speculation", false),
//! ]);
//! assert_eq!((result.passed, result.total), (2, 3));
//! quality::record_score("faithfulness", 0.82);
//! ```

use crate::core::names::Metric;
use crate::core::names::{
    GEN_AI_EVALUATION_EXPLANATION, GEN_AI_EVALUATION_NAME, GEN_AI_EVALUATION_RESULT,
    GEN_AI_EVALUATION_SCORE_LABEL, GEN_AI_EVALUATION_SCORE_VALUE,
};
use std::fmt;

use std::borrow::Cow;

use crate::core::attribute::{AttributeValue, capped_text};
use crate::core::context::SpanContext;
use crate::core::record::SpanEvent;
use crate::metrics::recorder::RECORDER;
use crate::run::scope;
use crate::step::call::StepCall;
use crate::step::current::add_event_to_current_span;

/// The outcome of one checklist evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChecklistResult {
    /// Items that passed.
    pub passed: u64,
    /// Items checked.
    pub total: u64,
}

impl ChecklistResult {
    /// `passed / total` (1.0 for an empty checklist).
    pub fn pass_rate(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.passed as f64 / self.total as f64
        }
    }

    /// Whether every item passed.
    pub fn all_passed(&self) -> bool {
        self.passed == self.total
    }
}

/// A `gen_ai.evaluation.result` event: the evaluation's name, its score and label, and what
/// the evaluator said.
fn evaluation_event(
    name: &str,
    score: Option<f64>,
    label: Option<&'static str>,
    explanation: Option<&str>,
) -> SpanEvent {
    let text = |text: &str| AttributeValue::String(Cow::Owned(capped_text(&text)));
    let mut attributes = vec![(GEN_AI_EVALUATION_NAME.into(), text(name))];
    if let Some(score) = score {
        attributes.push((
            GEN_AI_EVALUATION_SCORE_VALUE.into(),
            AttributeValue::Float(score),
        ));
    }
    if let Some(label) = label {
        attributes.push((
            GEN_AI_EVALUATION_SCORE_LABEL.into(),
            AttributeValue::String(label.into()),
        ));
    }
    if let Some(explanation) = explanation {
        attributes.push((GEN_AI_EVALUATION_EXPLANATION.into(), text(explanation)));
    }
    SpanEvent::now(GEN_AI_EVALUATION_RESULT, attributes)
}

fn pass_or_fail(passed: bool) -> &'static str {
    if passed { "pass" } else { "fail" }
}

/// Counts a checklist's items in `flujo_checklist_items_total{checklist,result}` (`pass` or
/// `fail`); the pass rate over time is `rate(..{result="pass"}) / rate(..)` in PromQL, or
/// [`checklist_pass_rate`] in process.
pub fn record_checklist(checklist: &str, items: &[(&str, bool)]) -> ChecklistResult {
    let passed = items.iter().filter(|(_, ok)| *ok).count() as u64;
    let total = items.len() as u64;
    for (result, count) in [("pass", passed), ("fail", total - passed)] {
        metrics::counter!(Metric::ChecklistItems.name(),
            "checklist" => checklist.to_owned(), "result" => result)
        .increment(count);
    }
    let result = ChecklistResult { passed, total };
    add_event_to_current_span(|| {
        let failed: Vec<&str> = items
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(item, _)| *item)
            .collect();
        let explanation = (!failed.is_empty()).then(|| format!("failed: {}", failed.join("; ")));
        evaluation_event(
            checklist,
            Some(result.pass_rate()),
            Some(pass_or_fail(result.all_passed())),
            explanation.as_deref(),
        )
    });
    result
}

/// The share of `checklist`'s items that passed since the process started (`None` before
/// any was recorded, or when the application installed its own `metrics` recorder).
pub fn checklist_pass_rate(checklist: &str) -> Option<f64> {
    let snapshot = RECORDER.store.snapshot();
    let count = |result| {
        snapshot.counter(
            Metric::ChecklistItems.name(),
            &[("checklist", checklist), ("result", result)],
        )
    };
    let (passed, failed) = (count("pass"), count("fail"));
    (passed + failed > 0).then(|| passed as f64 / (passed + failed) as f64)
}

/// Records a score (0.0 to 1.0 fits the buckets best) in the histogram `flujo_score{name}`,
/// and as a `gen_ai.evaluation.result` event on the span running here.
pub fn record_score(name: &str, value: f64) {
    metrics::histogram!(Metric::Score.name(), "name" => name.to_owned()).record(value);
    add_event_to_current_span(|| evaluation_event(name, Some(value), None, None));
}

/// Counts a validation in `flujo_validations_total{step,validator,result}`.
pub fn record_validation(step: &str, validator: &str, passed: bool) {
    metrics::counter!(Metric::Validations.name(),
        "step" => step.to_owned(),
        "validator" => validator.to_owned(),
        "result" => pass_or_fail(passed))
    .increment(1);
}

/// Validates `value` inside a step, as `#[pipeline_step(validate = ...)]` does around it:
/// counts the result in `flujo_validations_total` (labelled with the current step), keeps the
/// feedback for the run's step history, and returns the rejection for the step to propagate
/// with `?` (which retries the step like any error).
///
/// ```
/// use flujo::quality::{self, ValidationError};
/// use flujo::pipeline_step;
///
/// #[pipeline_step(retries = 2)]
/// fn summarise(text: &str) -> Result<String, anyhow::Error> {
///     let summary = text.split('.').next().unwrap_or_default().to_owned();
///     quality::validate("not_empty", &summary, |s: &String| {
///         if s.is_empty() { Err("empty summary") } else { Ok(()) }
///     })?;
///     Ok(summary)
/// }
/// # assert_eq!(summarise("One. Two.").unwrap(), "One");
/// ```
pub fn validate<T: ?Sized, V: fmt::Display>(
    validator: &'static str,
    value: &T,
    check: impl FnOnce(&T) -> Result<(), V>,
) -> Result<(), ValidationError> {
    let step = SpanContext::current().step().unwrap_or("");
    let verdict = check(value);
    record_validation(step, validator, verdict.is_ok());
    match verdict {
        Ok(()) => {
            add_event_to_current_span(|| validation_event(validator, None));
            Ok(())
        }
        Err(feedback) => {
            let feedback = feedback.to_string();
            add_event_to_current_span(|| validation_event(validator, Some(&feedback)));
            scope::note_feedback(&feedback);
            Err(ValidationError {
                step,
                validator,
                feedback,
            })
        }
    }
}

/// A validator's verdict as a `gen_ai.evaluation.result` event: `pass` (score 1), or `fail`
/// (score 0) with the validator's feedback as the explanation.
fn validation_event(validator: &str, rejection: Option<&str>) -> SpanEvent {
    let passed = rejection.is_none();
    evaluation_event(
        validator,
        Some(if passed { 1.0 } else { 0.0 }),
        Some(pass_or_fail(passed)),
        rejection,
    )
}

/// Checks an attempt's `Ok` value with `#[pipeline_step(validate = check)]`: a rejected
/// value becomes an error (a [`ValidationError`] converted into `E`), so the step retries or
/// fails as for any error; a `gen_ai.evaluation.result` event on the step's span for each
/// verdict, and `flujo_validations_total`.
#[doc(hidden)]
pub fn validate_attempt<T, E: FromValidationError, V: fmt::Display>(
    call: &mut StepCall,
    result: Result<T, E>,
    validator: &'static str,
    check: impl FnOnce(&T) -> Result<(), V>,
) -> Result<T, E> {
    let Ok(value) = result else {
        return result;
    };
    let step = call.step_name();
    let verdict = check(&value);
    record_validation(step, validator, verdict.is_ok());
    let feedback = match verdict {
        Ok(()) => {
            call.push_event(|| validation_event(validator, None));
            return Ok(value);
        }
        Err(feedback) => feedback.to_string(),
    };
    scope::note_feedback(&feedback);
    call.note_invalid();
    call.push_event(|| validation_event(validator, Some(&feedback)));
    Err(E::from_validation_error(ValidationError {
        step,
        validator,
        feedback,
    }))
}

/// A step's output failed its validator (`#[pipeline_step(validate = ...)]`): the attempt
/// counts as failed and is retried like an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The step.
    pub step: &'static str,
    /// The validator.
    pub validator: &'static str,
    /// What the validator said.
    pub feedback: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "validator `{}` rejected the output of step `{}`: {}",
            self.validator, self.step, self.feedback
        )
    }
}

impl std::error::Error for ValidationError {}

/// Converts a failed validation into the step's error type.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a step with `validate` cannot hold a `flujo::quality::ValidationError`",
    label = "a rejected output becomes this error, so that the step retries or fails",
    note = "implement `From<flujo::quality::ValidationError>` for `{Self}` (e.g. a `#[from]` variant), or return \
            `anyhow::Error`"
)]
pub trait FromValidationError {
    /// The error to return.
    fn from_validation_error(error: ValidationError) -> Self;
}

impl<E: From<ValidationError>> FromValidationError for E {
    fn from_validation_error(error: ValidationError) -> Self {
        E::from(error)
    }
}
