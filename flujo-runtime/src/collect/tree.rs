//! A run's spans as an indented tree, for people: the console hook and `Capture::span_tree`.

use super::finished::{FinishedSpan, SpanStatus};

/// `spans` as an indented tree, children under their parents, with status, attempts and
/// duration.
pub(crate) fn render_tree(mut spans: Vec<FinishedSpan>) -> String {
    spans.sort_by_key(FinishedSpan::start_time);
    let mut out = String::new();
    let known = |id| spans.iter().any(|span| Some(span.span_id) == id);
    for root in spans.iter().filter(|span| !known(span.parent_span_id)) {
        write_subtree(&mut out, &spans, root, 0);
    }
    out
}

fn write_subtree(out: &mut String, spans: &[FinishedSpan], span: &FinishedSpan, depth: usize) {
    use std::fmt::Write as _;
    let status = match &span.status {
        SpanStatus::Ok => "ok".to_owned(),
        SpanStatus::Unset => "unset".to_owned(),
        SpanStatus::Error { message } => format!("error: {message}"),
    };
    let attempts = span
        .attribute("flujo.step.attempts")
        .and_then(|a| a.as_i64())
        .filter(|attempts| *attempts > 1)
        .map(|attempts| format!(", {attempts} attempts"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:indent$}{} [{status}{attempts}] {:.3} ms",
        "",
        span.name,
        span.duration().as_secs_f64() * 1e3,
        indent = depth * 2
    );
    for child in spans
        .iter()
        .filter(|child| child.parent_span_id == Some(span.span_id))
    {
        write_subtree(out, spans, child, depth + 1);
    }
}
