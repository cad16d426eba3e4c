//! Events added to whatever span is running here, by code that holds no handle to it (a
//! quality score recorded deep inside a step): kept until that span ends, which takes them.

use crate::collect::bridged;
use crate::core::context::SpanContext;
use crate::core::record::SpanEvent;
use crate::core::state;

/// Adds `event` to the span running here, if one is recorded (`event` is only called then).
pub(crate) fn add_event_to_current_span(event: impl FnOnce() -> SpanEvent) {
    let context = SpanContext::current();
    if context.is_sampled() && context.raw_span_id() != 0 && state::state().records_spans() {
        bridged::activate();
        bridged::push(context.raw_span_id(), event());
    }
}
