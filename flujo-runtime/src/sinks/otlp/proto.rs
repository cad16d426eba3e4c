//! OTLP trace requests (`ExportTraceServiceRequest`) written as protobuf straight from flujo's
//! finished spans, on the export worker as it hands them over: no SDK `SpanData`, no `String`
//! per attribute, no message struct per span, no copy of a span. Field numbers are those of
//! opentelemetry-proto's `collector/trace/v1`, `trace/v1`, `common/v1` and `resource/v1`; a
//! test decodes what this writes with `opentelemetry-proto` and compares it, field by field,
//! with what the SDK's exporter would have sent for the same spans.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry::{Array, Value};

use crate::collect::finished::{FinishedSpan, SpanKind, SpanStatus};
use crate::core::attribute::AttributeValue;
use crate::sinks::otel::convert::{SpanLimits, cut_chars};
use crate::sinks::otel::sender::Pack;

/// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `Span.flags`: the W3C `sampled` flag, and the two bits that say whether the parent is
/// remote (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`, `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`).
const FLAG_SAMPLED: u32 = 0x1;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// The most `tracestate` list members the W3C recommendation (and the SDK) keep.
const MAX_TRACE_STATE_MEMBERS: usize = 32;

/// The most bytes the varint of a request's or scope's length takes (lengths under 4 GiB).
const MAX_LENGTH_BYTES: usize = 5;

/// `value` as a varint: its bytes, and how many of them.
fn varint_bytes(mut value: u64) -> ([u8; 10], usize) {
    let (mut bytes, mut n) = ([0; 10], 0);
    while value >= 0x80 {
        bytes[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    bytes[n] = value as u8;
    (bytes, n + 1)
}

fn varint(buf: &mut Vec<u8>, value: u64) {
    let (bytes, n) = varint_bytes(value);
    buf.extend_from_slice(&bytes[..n]);
}

fn varint_len(value: u64) -> usize {
    // One byte per started group of seven bits; zero takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn tag(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from(field << 3 | wire));
}

fn bytes(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(buf, field, LEN);
    varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// A string field; proto3 leaves an empty one out.
fn string(buf: &mut Vec<u8>, field: u32, value: &str) {
    if !value.is_empty() {
        bytes(buf, field, value.as_bytes());
    }
}

/// A varint field; proto3 leaves a zero out.
fn uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(buf, field, VARINT);
        varint(buf, value);
    }
}

fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(buf, field, FIXED64);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        tag(buf, field, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// A message field whose body `write` appends. Its length is only known afterwards: room for
/// a `guess`-byte length is left before the body, and the body moved when the length takes
/// more or fewer bytes (the guess fits nearly every body, so that move is rare and short).
fn message(buf: &mut Vec<u8>, field: u32, guess: usize, write: impl FnOnce(&mut Vec<u8>)) {
    tag(buf, field, LEN);
    let at = buf.len();
    buf.resize(at + guess, 0);
    write(buf);
    let (length, needed) = varint_bytes((buf.len() - at - guess) as u64);
    if needed != guess {
        let end = buf.len();
        if needed > guess {
            buf.resize(end + needed - guess, 0);
            buf.copy_within(at + guess..end, at + needed);
        } else {
            buf.copy_within(at + guess..end, at + needed);
            buf.truncate(end - (guess - needed));
        }
    }
    buf[at..at + needed].copy_from_slice(&length[..needed]);
}

/// A `common.v1.AnyValue` body.
fn any_value(buf: &mut Vec<u8>, value: &AttributeValue, chars: Option<usize>) {
    match value {
        AttributeValue::String(text) => bytes(buf, 1, cut_chars(text, chars).as_bytes()),
        AttributeValue::Bool(b) => {
            tag(buf, 2, VARINT);
            buf.push(u8::from(*b));
        }
        AttributeValue::Int(i) => {
            tag(buf, 3, VARINT);
            varint(buf, *i as u64);
        }
        AttributeValue::Float(f) => {
            tag(buf, 4, FIXED64);
            buf.extend_from_slice(&f.to_le_bytes());
        }
        AttributeValue::StringArray(texts) => message(buf, 5, 1, |buf| {
            for text in texts {
                message(buf, 1, 1, |buf| {
                    bytes(buf, 1, cut_chars(text, chars).as_bytes())
                });
            }
        }),
    }
}

/// A `common.v1.KeyValue` field numbered `field`.
fn key_value(
    buf: &mut Vec<u8>,
    field: u32,
    key: &str,
    value: &AttributeValue,
    chars: Option<usize>,
) {
    message(buf, field, 1, |buf| {
        string(buf, 1, key);
        message(buf, 2, 1, |buf| any_value(buf, value, chars));
    });
}

/// The same, from an SDK value (the resource's attributes, written once).
fn sdk_key_value(buf: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let value = match value {
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::I64(i) => AttributeValue::Int(*i),
        Value::F64(f) => AttributeValue::Float(*f),
        Value::String(text) => AttributeValue::String(text.as_str().to_owned().into()),
        Value::Array(Array::String(texts)) => AttributeValue::StringArray(
            texts
                .iter()
                .map(|text| text.as_str().to_owned().into())
                .collect(),
        ),
        // flujo's resource holds strings only; anything else is said as text.
        other => AttributeValue::String(other.to_string().into()),
    };
    key_value(buf, field, key, &value, None);
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    })
}

/// What every request of one exporter starts with: its resource and its scope, written once.
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// A `resource.v1.Resource` body.
    resource: Vec<u8>,
    /// A `common.v1.InstrumentationScope` body.
    scope: Vec<u8>,
}

impl RequestHead {
    pub(crate) fn new(
        resource: &opentelemetry_sdk::Resource,
        scope_name: &str,
        version: &str,
    ) -> RequestHead {
        let mut body = Vec::new();
        for (key, value) in resource.iter() {
            sdk_key_value(&mut body, 1, key.as_str(), value);
        }
        let mut scope = Vec::new();
        string(&mut scope, 1, scope_name);
        string(&mut scope, 2, version);
        RequestHead {
            resource: body,
            scope,
        }
    }
}

/// Packs spans, on the export worker, into `ExportTraceServiceRequest`s: each span is written
/// as it is handed over, after room for the request's head, whose lengths are only known once
/// the batch is complete.
pub(crate) struct Requests {
    head: RequestHead,
    limits: SpanLimits,
    buf: Vec<u8>,
    /// The room left for the head.
    room: usize,
    /// The size of the last request: what the next one's buffer starts with.
    last: usize,
}

impl Requests {
    pub(crate) fn new(head: RequestHead, limits: SpanLimits) -> Requests {
        // request.resource_spans(1) { resource(1), scope_spans(2) { scope(1), spans(2)... } }:
        // four tags and lengths before the spans, besides the resource and scope bodies.
        let room = 4 * (1 + MAX_LENGTH_BYTES) + head.resource.len() + head.scope.len();
        Requests {
            head,
            limits,
            buf: Vec::new(),
            room,
            last: 0,
        }
    }
}

impl Pack for Requests {
    type Batch = Bytes;

    /// The batch's size is what is written, not the span's estimate.
    fn push(&mut self, span: &FinishedSpan, _: usize) {
        if self.buf.is_empty() {
            self.buf.reserve(self.last.max(self.room));
            self.buf.resize(self.room, 0);
        }
        let limits = &self.limits;
        message(&mut self.buf, 2, 2, |buf| write_span(buf, span, limits));
    }

    fn take(&mut self) -> (Bytes, usize) {
        let head = &self.head;
        let room = self.room;
        if self.buf.is_empty() {
            self.buf.resize(room, 0);
        }
        let spans_len = self.buf.len() - room;
        let mut front = Vec::with_capacity(room);
        let scope_message = 1 + varint_len(head.scope.len() as u64) + head.scope.len();
        let scope_spans_len = scope_message + spans_len;
        let resource_message = 1 + varint_len(head.resource.len() as u64) + head.resource.len();
        let resource_spans_len =
            resource_message + 1 + varint_len(scope_spans_len as u64) + scope_spans_len;
        tag(&mut front, 1, LEN);
        varint(&mut front, resource_spans_len as u64);
        bytes(&mut front, 1, &head.resource);
        tag(&mut front, 2, LEN);
        varint(&mut front, scope_spans_len as u64);
        bytes(&mut front, 1, &head.scope);
        let start = room - front.len();
        self.buf[start..room].copy_from_slice(&front);
        let request = Bytes::from(std::mem::take(&mut self.buf)).slice(start..);
        self.last = request.len() + start;
        let len = request.len();
        (request, len)
    }
}

/// A `trace.v1.Span` body, as the SDK's exporter would write the span.
fn write_span(buf: &mut Vec<u8>, span: &FinishedSpan, limits: &SpanLimits) {
    bytes(buf, 1, &span.trace_id.0.to_be_bytes());
    bytes(buf, 2, &span.span_id.0.to_be_bytes());
    if let Some(state) = span.trace_state() {
        write_trace_state(buf, state);
    }
    if let Some(parent) = span.parent_span_id {
        bytes(buf, 4, &parent.0.to_be_bytes());
    }
    string(buf, 5, &span.name);
    let kind = match span.kind() {
        SpanKind::Client => 3,
        _ => 1,
    };
    uint(buf, 6, kind);
    fixed64(buf, 7, nanos(span.start_time()));
    fixed64(buf, 8, nanos(span.end_time()));
    let mut count = 0usize;
    // The fields by reference: no copy of their text.
    for (key, value) in span.standard_attributes() {
        if count < limits.attributes {
            key_value(buf, 9, key, &value, limits.value_chars);
        }
        count += 1;
    }
    for (key, value) in span.fields() {
        if count < limits.attributes {
            key_value(buf, 9, key, value, limits.value_chars);
        }
        count += 1;
    }
    let dropped = count.saturating_sub(limits.attributes);
    uint(
        buf,
        10,
        u64::try_from(dropped)
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX)),
    );
    let (events, dropped_events) = limits.events(span);
    for event in events {
        message(buf, 11, 1, |buf| {
            fixed64(buf, 1, nanos(event.time()));
            string(buf, 2, &event.name);
            for (key, value) in event.attributes.iter().take(limits.event_attributes) {
                key_value(buf, 3, key, value, limits.value_chars);
            }
            uint(
                buf,
                4,
                u64::from(limits.dropped_event_attributes(event.attributes.len())),
            );
        });
    }
    uint(buf, 12, u64::from(dropped_events));
    // Status is always present (the SDK sends an unset one too).
    message(buf, 15, 1, |buf| {
        let (code, text) = match &span.status {
            SpanStatus::Unset => (0, ""),
            SpanStatus::Ok => (1, ""),
            SpanStatus::Error { message } => (2, message.as_str()),
        };
        string(buf, 2, text);
        uint(buf, 3, code);
    });
    let remote = if span.parent_is_remote() {
        FLAG_IS_REMOTE
    } else {
        0
    };
    fixed32(buf, 16, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | remote);
}

/// The `tracestate` as the SDK re-writes it: members trimmed of optional white space, empty
/// ones left out, at most 32.
fn write_trace_state(buf: &mut Vec<u8>, state: &str) {
    let members = || {
        state
            .split_terminator(',')
            .take(MAX_TRACE_STATE_MEMBERS)
            .map(|member| member.trim_matches([' ', '\t']))
            .filter(|member| !member.is_empty())
    };
    let len: usize = members()
        .map(|member| member.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    if len == 0 {
        return;
    }
    tag(buf, 3, LEN);
    varint(buf, len as u64);
    for (i, member) in members().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(member.as_bytes());
    }
}

/// The OTLP request of `spans` as flujo writes it, and as the SDK's exporter writes it (the
/// spans as `SpanData`, through opentelemetry-proto), with the resource and the attribute
/// limits of `settings`: what the test that compares the two decodes.
#[doc(hidden)]
pub fn trace_request_both_ways(
    spans: &[FinishedSpan],
    settings: &crate::config::settings::TelemetrySettings,
) -> (Vec<u8>, Vec<u8>) {
    use crate::sinks::otel::convert::{resource, scope, span_data};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use prost::Message as _;

    let limits = SpanLimits::of(&settings.spans);
    let (resource, scope) = (resource(&settings.resource), scope());
    let head = RequestHead::new(&resource, scope.name(), scope.version().unwrap_or_default());
    let mut requests = Requests::new(head, limits);
    for span in spans {
        requests.push(span, span.approximate_size());
    }
    let flujo = requests.take().0.to_vec();
    let data = spans
        .iter()
        .map(|span| span_data(span, &scope, &limits))
        .collect();
    let sdk = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            data,
            &ResourceAttributesWithSchema::from(&resource),
        ),
    }
    .encode_to_vec();
    (flujo, sdk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_is_written_in_as_many_bytes_as_it_takes() {
        for (len, guess) in [
            (0usize, 1usize),
            (5, 2),
            (127, 1),
            (128, 1),
            (300, 2),
            (20_000, 2),
            (70_000, 1),
        ] {
            let mut buf = Vec::new();
            message(&mut buf, 1, guess, |buf| buf.resize(buf.len() + len, 7));
            let mut expected = Vec::new();
            tag(&mut expected, 1, LEN);
            varint(&mut expected, len as u64);
            expected.resize(expected.len() + len, 7);
            assert_eq!(buf, expected, "{len} bytes, {guess} guessed");
            assert_eq!(varint_len(len as u64), {
                let mut v = Vec::new();
                varint(&mut v, len as u64);
                v.len()
            });
        }
    }
}
