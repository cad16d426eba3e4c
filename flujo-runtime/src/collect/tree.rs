//! A run's spans as a tree, for people: indented text (the console hook, `Capture::span_tree`)
//! or one JSON object (the console hook under `FLUJO_LOG_FORMAT=json`).

use crate::core::names::FLUJO_STEP_ATTEMPTS;
use serde_json::{Value, json};

use super::finished::{FinishedSpan, SpanStatus};

/// Every span with its depth, parents before their children, siblings by start time.
fn walk(mut spans: Vec<FinishedSpan>) -> Vec<(usize, FinishedSpan)> {
    spans.sort_by_key(FinishedSpan::start_time);
    let known = |id| spans.iter().any(|span| Some(span.span_id) == id);
    let roots: Vec<usize> = (0..spans.len())
        .filter(|&i| !known(spans[i].parent_span_id))
        .collect();
    let mut rows = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    while let Some((index, depth)) = stack.pop() {
        let id = spans[index].span_id;
        rows.push((depth, index));
        let children = (0..spans.len())
            .filter(|&child| spans[child].parent_span_id == Some(id))
            .collect::<Vec<_>>();
        stack.extend(children.into_iter().rev().map(|child| (child, depth + 1)));
    }
    let mut spans: Vec<Option<FinishedSpan>> = spans.into_iter().map(Some).collect();
    rows.into_iter()
        .filter_map(|(depth, index)| spans[index].take().map(|span| (depth, span)))
        .collect()
}

fn status_text(status: &SpanStatus) -> String {
    match status {
        SpanStatus::Ok => "ok".to_owned(),
        SpanStatus::Unset => "unset".to_owned(),
        SpanStatus::Error { message } => format!("error: {message}"),
    }
}

fn attempts(span: &FinishedSpan) -> i64 {
    span.attribute(FLUJO_STEP_ATTEMPTS)
        .and_then(|a| a.as_i64())
        .unwrap_or(1)
}

/// `spans` as an indented tree, children under their parents, with status, attempts and
/// duration.
pub(crate) fn render_tree(spans: Vec<FinishedSpan>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (depth, span) in walk(spans) {
        let attempts = match attempts(&span) {
            n if n > 1 => format!(", {n} attempts"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:indent$}{} [{}{attempts}] {:.3} ms",
            "",
            span.name,
            status_text(&span.status),
            span.duration().as_secs_f64() * 1e3,
            indent = depth * 2
        );
    }
    out
}

/// `spans` as a JSON array in tree order, each with its `depth`.
pub(crate) fn render_json(spans: Vec<FinishedSpan>) -> Value {
    Value::Array(
        walk(spans)
            .into_iter()
            .map(|(depth, span)| {
                json!({
                    "name": span.name,
                    "depth": depth,
                    "status": status_text(&span.status),
                    "attempts": attempts(&span),
                    "duration_ms": span.duration().as_secs_f64() * 1e3,
                    "span_id": span.span_id.to_string(),
                })
            })
            .collect(),
    )
}
