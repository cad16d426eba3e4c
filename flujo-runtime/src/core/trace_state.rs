//! What a trace carries from another service: its W3C `tracestate` and its W3C `baggage`,
//! extracted with its `traceparent`, inherited by every span of the trace here, injected
//! into an outgoing call's headers; the `tracestate` is exported with each span.
//!
//! The span context is copied on every step call, so it holds a 4-byte id, not the text: the
//! texts live in a bounded table of [`MAX_TRACE_STATES`] distinct pairs (one per value, not
//! per request), the oldest forgotten first. A span whose value was forgotten (more distinct
//! values in flight than the table holds) goes on without it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::sync::lock;

/// The most distinct `tracestate` values kept at once.
pub(crate) const MAX_TRACE_STATES: usize = 4096;
/// The longest `tracestate` kept, as W3C Trace Context asks of vendors (512 bytes); a longer
/// one is not propagated.
pub(crate) const MAX_TRACE_STATE_BYTES: usize = 512;
/// The most list members of a `tracestate` (W3C: 32).
const MAX_MEMBERS: usize = 32;

/// A trace's `tracestate` and `baggage` headers, either may be absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Carried {
    pub(crate) tracestate: Option<Arc<str>>,
    pub(crate) baggage: Option<Arc<str>>,
}

struct Table {
    /// Slot `i` holds a value and the generation it was stored in.
    slots: Vec<Option<(Carried, u32)>>,
    ids: HashMap<Carried, u32>,
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

/// The id of `value` (a valid `tracestate`, see [`is_valid`], and a valid `baggage`, see
/// [`is_valid_baggage`]); 0 for none.
pub(crate) fn intern(value: Carried) -> u32 {
    let value = Carried {
        tracestate: value.tracestate.filter(|v| !v.is_empty()),
        baggage: value.baggage.filter(|v| !v.is_empty()),
    };
    if value == Carried::default() {
        return 0;
    }
    let mut table = lock(&TABLE);
    if let Some(id) = table.ids.get(&value) {
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
    let id = (generation << SLOT_BITS) | slot as u32;
    table.slots[slot] = Some((value.clone(), generation));
    table.ids.insert(value, id);
    id
}

/// The `tracestate` of `id`, unless it has none or was forgotten.
pub(crate) fn lookup(id: u32) -> Option<Arc<str>> {
    carried(id).tracestate
}

/// The headers of `id` (none when it is 0 or was forgotten).
pub(crate) fn carried(id: u32) -> Carried {
    lookup_carried(id).unwrap_or_default()
}

fn lookup_carried(id: u32) -> Option<Carried> {
    if id == 0 {
        return None;
    }
    let slot = (id & ((1 << SLOT_BITS) - 1)) as usize;
    let table = lock(&TABLE);
    match &table.slots[slot] {
        Some((value, generation)) if *generation == id >> SLOT_BITS => Some(value.clone()),
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

/// The longest `baggage` kept (W3C Baggage: 8192 bytes); a longer one is not propagated.
pub(crate) const MAX_BAGGAGE_BYTES: usize = 8192;
/// The most list members of a `baggage` (W3C Baggage: 64).
const MAX_BAGGAGE_MEMBERS: usize = 64;

/// Whether `header` is a W3C `baggage` worth propagating: at most [`MAX_BAGGAGE_BYTES`] and
/// 64 members, each `key=value` (with optional `;properties`), the key a token, the value
/// without spaces, quotes, commas, semicolons or backslashes (others percent-encoded).
pub fn is_valid_baggage(header: &str) -> bool {
    let token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
    let value_char = |c: char| c.is_ascii_graphic() && !",;\\\"".contains(c);
    let members: Vec<&str> = header
        .split(',')
        .map(|member| member.trim_matches([' ', '\t']))
        .filter(|member| !member.is_empty())
        .collect();
    header.len() <= MAX_BAGGAGE_BYTES
        && members.len() <= MAX_BAGGAGE_MEMBERS
        && members.iter().all(|member| {
            let pair = member.split(';').next().unwrap_or_default();
            pair.split_once('=').is_some_and(|(key, value)| {
                let (key, value) = (key.trim(), value.trim());
                !key.is_empty() && key.chars().all(token) && value.chars().all(value_char)
            })
        })
}

/// The decoded value of `key` in a valid `baggage` header.
pub(crate) fn baggage_entry(header: &str, key: &str) -> Option<String> {
    header.split(',').find_map(|member| {
        let pair = member.split(';').next()?;
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| crate::core::percent::percent_decode(v.trim()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: &str) -> Carried {
        Carried {
            tracestate: Some(value.into()),
            baggage: None,
        }
    }

    #[test]
    fn values_are_kept_by_id_and_the_oldest_are_forgotten() {
        let id = intern(state("congo=t61rcWkgMzE"));
        assert_eq!(intern(state("congo=t61rcWkgMzE")), id, "one id per value");
        assert_eq!(lookup(id).as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(intern(state("")), 0);
        assert_eq!(lookup(0), None);
        let both = Carried {
            tracestate: Some("congo=t61rcWkgMzE".into()),
            baggage: Some("tenant=acme".into()),
        };
        let with_baggage = intern(both.clone());
        assert_ne!(with_baggage, id, "a pair is its own value");
        assert_eq!(carried(with_baggage), both);
        for i in 0..MAX_TRACE_STATES {
            intern(state(&format!("v={i}")));
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

    #[test]
    fn only_w3c_shaped_baggage_is_propagated_and_its_values_are_decoded() {
        let header = "userId=alice,serverNode=DF%2028,isProduction=false;p=1";
        assert!(is_valid_baggage(header));
        assert_eq!(
            baggage_entry(header, "serverNode").as_deref(),
            Some("DF 28")
        );
        assert_eq!(
            baggage_entry(header, "isProduction").as_deref(),
            Some("false")
        );
        assert_eq!(baggage_entry(header, "missing"), None);
        assert!(!is_valid_baggage("novalue"));
        assert!(!is_valid_baggage("k=has space"));
        assert!(!is_valid_baggage("k=\"quoted\""));
        assert!(!is_valid_baggage(&"k=v,".repeat(65)));
        assert!(!is_valid_baggage(&format!(
            "k={}",
            "x".repeat(MAX_BAGGAGE_BYTES)
        )));
    }
}
