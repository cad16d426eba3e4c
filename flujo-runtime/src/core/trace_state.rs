//! W3C `tracestate`, kept with a trace continued from another service: extracted with its
//! `traceparent`, inherited by every span of the trace here, injected with the
//! `traceparent` of an outgoing call, and exported with each span.
//!
//! The span context is copied on every step call, so it holds a 4-byte id, not the text: the
//! texts live in a bounded table of [`MAX_TRACE_STATES`] distinct values (one per value, not
//! per request), the oldest forgotten first. A span whose value was forgotten (more distinct
//! values in flight than the table holds) is exported without it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::sync::lock;

/// The most distinct `tracestate` values kept at once.
pub const MAX_TRACE_STATES: usize = 4096;
/// The longest `tracestate` kept, as W3C Trace Context asks of vendors (512 bytes); a longer
/// one is not propagated.
pub const MAX_TRACE_STATE_BYTES: usize = 512;
/// The most list members of a `tracestate` (W3C: 32).
const MAX_MEMBERS: usize = 32;

struct Table {
    /// Slot `i` holds a value and the generation it was stored in.
    slots: Vec<Option<(Arc<str>, u32)>>,
    ids: HashMap<Arc<str>, u32>,
    /// The slot the next new value takes (the oldest).
    next: usize,
    generation: u32,
}

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        slots: vec![None; MAX_TRACE_STATES],
        ids: HashMap::new(),
        next: 0,
        generation: 0,
    })
});

/// Slot bits of an id; the rest is the generation (never all zero: 0 means "none").
const SLOT_BITS: u32 = 12;
const _: () = assert!(1 << SLOT_BITS == MAX_TRACE_STATES);

/// The id of `value`, a valid `tracestate` (see [`is_valid`]); 0 for an empty one.
pub(crate) fn intern(value: &str) -> u32 {
    if value.is_empty() {
        return 0;
    }
    let mut table = lock(&TABLE);
    if let Some(id) = table.ids.get(value) {
        return *id;
    }
    let slot = table.next;
    table.next = (slot + 1) % MAX_TRACE_STATES;
    if slot == 0 {
        // Generations count from 1 and wrap within 20 bits, never to 0.
        table.generation = table.generation % ((1 << (32 - SLOT_BITS)) - 1) + 1;
    }
    let generation = table.generation;
    if let Some((evicted, _)) = table.slots[slot].take() {
        table.ids.remove(&evicted);
    }
    let value: Arc<str> = Arc::from(value);
    let id = (generation << SLOT_BITS) | slot as u32;
    table.slots[slot] = Some((Arc::clone(&value), generation));
    table.ids.insert(value, id);
    id
}

/// The value of `id`, unless it is 0 or was forgotten.
pub(crate) fn lookup(id: u32) -> Option<Arc<str>> {
    if id == 0 {
        return None;
    }
    let slot = (id & ((1 << SLOT_BITS) - 1)) as usize;
    let table = lock(&TABLE);
    match &table.slots[slot] {
        Some((value, generation)) if *generation == id >> SLOT_BITS => Some(Arc::clone(value)),
        _ => None,
    }
}

/// Whether `header` is a `tracestate` worth propagating: at most [`MAX_TRACE_STATE_BYTES`]
/// and 32 members, each `key=value` with W3C's characters (a key of lowercase letters,
/// digits, `_-*/` and one `@`; a value of printable ASCII but `,` and `=`). W3C asks that an
/// invalid one be dropped, never that it fail the `traceparent`.
pub fn is_valid(header: &str) -> bool {
    let members: Vec<&str> = header
        .split(',')
        .map(|member| member.trim_matches([' ', '\t']))
        .filter(|member| !member.is_empty())
        .collect();
    let key_char = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '*' | '/' | '@')
    };
    let value_char = |c: char| (' '..='~').contains(&c) && c != ',' && c != '=';
    header.len() <= MAX_TRACE_STATE_BYTES
        && members.len() <= MAX_MEMBERS
        && members.iter().all(|member| {
            member.split_once('=').is_some_and(|(key, value)| {
                !key.is_empty()
                    && key.len() <= 256
                    && key.chars().all(key_char)
                    && key.matches('@').count() <= 1
                    && !value.is_empty()
                    && value.len() <= 256
                    && value.chars().all(value_char)
                    && !value.ends_with(' ')
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_by_id_and_the_oldest_are_forgotten() {
        let id = intern("congo=t61rcWkgMzE");
        assert_eq!(intern("congo=t61rcWkgMzE"), id, "one id per value");
        assert_eq!(lookup(id).as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(intern(""), 0);
        assert_eq!(lookup(0), None);
        for i in 0..MAX_TRACE_STATES {
            intern(&format!("v={i}"));
        }
        assert_eq!(lookup(id), None, "forgotten, never another value");
    }

    #[test]
    fn only_w3c_shaped_values_are_propagated() {
        assert!(is_valid("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
        assert!(is_valid("tenant@vendor=opaque value"));
        assert!(!is_valid("Upper=1"));
        assert!(!is_valid("novalue"));
        assert!(!is_valid("k=v,bad"));
        assert!(!is_valid(&"k=v,".repeat(40)));
        assert!(!is_valid(&format!("k={}", "x".repeat(600))));
    }
}
