//! Span attribute values and the conversions `fields(...)` relies on.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// The most bytes a recorded text value keeps: a field's string, `Display` or `Debug` output,
/// an error's message, a bridged `tracing` field. Longer text keeps its first
/// `MAX_ATTRIBUTE_VALUE_BYTES` (cut at a character boundary), and formatting stops there, so
/// a huge value costs at most this much memory per value.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1 << 20;

/// `text`'s first [`MAX_ATTRIBUTE_VALUE_BYTES`], owned.
pub fn capped_copy(text: &str) -> String {
    text[..floor_char_boundary(text, MAX_ATTRIBUTE_VALUE_BYTES)].to_owned()
}

/// What `value` displays, at most [`MAX_ATTRIBUTE_VALUE_BYTES`] of it: formatting stops once
/// the cap is reached. (`format_args!("{x:?}")` gives a `Debug` output the same way.)
pub fn capped_text(value: &dyn fmt::Display) -> String {
    let mut text = CappedText(String::new());
    // An error means the cap was reached (or the `Display` failed): what was written stays.
    let _ = write!(text, "{value}");
    text.0
}

/// The largest index `<= at` that is a character boundary of `text`.
pub fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// A `String` that takes [`MAX_ATTRIBUTE_VALUE_BYTES`] and then refuses more.
struct CappedText(String);

impl fmt::Write for CappedText {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let room = MAX_ATTRIBUTE_VALUE_BYTES - self.0.len();
        if piece.len() <= room {
            self.0.push_str(piece);
            return Ok(());
        }
        self.0.push_str(&piece[..floor_char_boundary(piece, room)]);
        Err(fmt::Error)
    }
}

/// The value of a span attribute, typed as OpenTelemetry types it: integers stay integers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AttributeValue {
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer (OpenTelemetry's only integer type).
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string; static strings are kept without allocating.
    String(Cow<'static, str>),
    /// An array of strings (OpenTelemetry's `string[]`, e.g. `gen_ai.response.finish_reasons`).
    StringArray(Vec<Cow<'static, str>>),
}

impl AttributeValue {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttributeValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is a float value.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttributeValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The strings, if this is an array of strings.
    pub fn as_str_array(&self) -> Option<&[Cow<'static, str>]> {
        match self {
            AttributeValue::StringArray(strings) => Some(strings),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttributeValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Bool(b) => b.fmt(f),
            AttributeValue::Int(i) => i.fmt(f),
            AttributeValue::Float(x) => x.fmt(f),
            AttributeValue::String(s) => s.fmt(f),
            AttributeValue::StringArray(strings) => f.debug_list().entries(strings).finish(),
        }
    }
}

impl PartialEq<&str> for AttributeValue {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<i64> for AttributeValue {
    fn eq(&self, other: &i64) -> bool {
        self.as_i64() == Some(*other)
    }
}

impl PartialEq<bool> for AttributeValue {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

/// A value that `#[pipeline_step(fields(key = value))]` can record as a span attribute.
///
/// Implemented for integers, floats, `bool`, strings, references to those and `Option`s of
/// them (`None` records nothing). For any other type write `key = %value` to record its
/// `Display` output or `key = ?value` for its `Debug` output.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be recorded as a span attribute",
    label = "not an integer, float, bool or string",
    note = "write `key = %value` to record its `Display` output, or `key = ?value` for `Debug`"
)]
pub trait ToAttributeValue {
    /// Converts into an attribute value; `None` means "record nothing".
    fn to_attribute_value(&self) -> Option<AttributeValue>;
}

macro_rules! int_attribute {
    ($($t:ty),*) => {$(
        impl ToAttributeValue for $t {
            fn to_attribute_value(&self) -> Option<AttributeValue> {
                Some(AttributeValue::Int(i64::from(*self)))
            }
        }
    )*};
}
int_attribute!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! wide_int_attribute {
    ($($t:ty),*) => {$(
        impl ToAttributeValue for $t {
            fn to_attribute_value(&self) -> Option<AttributeValue> {
                // OpenTelemetry integers are i64: a larger value keeps its exact digits as a string.
                Some(match i64::try_from(*self) {
                    Ok(v) => AttributeValue::Int(v),
                    Err(_) => AttributeValue::String(Cow::Owned(self.to_string())),
                })
            }
        }
    )*};
}
wide_int_attribute!(u64, usize, isize, i128, u128);

impl ToAttributeValue for f64 {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        Some(AttributeValue::Float(*self))
    }
}

impl ToAttributeValue for f32 {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        Some(AttributeValue::Float(f64::from(*self)))
    }
}

impl ToAttributeValue for bool {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        Some(AttributeValue::Bool(*self))
    }
}

impl ToAttributeValue for str {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        Some(AttributeValue::String(Cow::Owned(capped_copy(self))))
    }
}

impl ToAttributeValue for String {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        self.as_str().to_attribute_value()
    }
}

impl ToAttributeValue for Cow<'_, str> {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        self.as_ref().to_attribute_value()
    }
}

/// A slice of strings is recorded as a `string[]` (each element capped like a string).
impl<T: AsRef<str>> ToAttributeValue for [T] {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        Some(AttributeValue::StringArray(
            self.iter()
                .map(|text| Cow::Owned(capped_copy(text.as_ref())))
                .collect(),
        ))
    }
}

impl<T: AsRef<str>> ToAttributeValue for Vec<T> {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        self.as_slice().to_attribute_value()
    }
}

impl ToAttributeValue for AttributeValue {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        Some(self.clone())
    }
}

impl<T: ToAttributeValue> ToAttributeValue for Option<T> {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        self.as_ref().and_then(ToAttributeValue::to_attribute_value)
    }
}

impl<T: ToAttributeValue + ?Sized> ToAttributeValue for &T {
    fn to_attribute_value(&self) -> Option<AttributeValue> {
        (**self).to_attribute_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_stay_integers_and_oversized_ones_keep_their_digits() {
        assert_eq!(7u32.to_attribute_value(), Some(AttributeValue::Int(7)));
        assert_eq!(
            u64::MAX.to_attribute_value(),
            Some(AttributeValue::String(Cow::Owned(u64::MAX.to_string())))
        );
        assert_eq!(None::<i32>.to_attribute_value(), None);
        assert_eq!((&&"x".to_string()).to_attribute_value().unwrap(), "x");
    }

    #[test]
    fn string_slices_are_string_arrays() {
        let reasons = vec!["stop".to_owned(), "length".to_owned()];
        let value = reasons.to_attribute_value().unwrap();
        assert_eq!(value.as_str_array().unwrap(), ["stop", "length"]);
        assert_eq!(value.to_string(), r#"["stop", "length"]"#);
        assert_eq!(
            ["a"][..]
                .to_attribute_value()
                .unwrap()
                .as_str_array()
                .unwrap(),
            ["a"]
        );
    }

    #[test]
    fn long_text_keeps_its_first_bytes_cut_at_a_character_boundary() {
        // 'é' is two bytes: the cap falls inside the last one kept whole.
        let long = format!("a{}", "é".repeat(MAX_ATTRIBUTE_VALUE_BYTES));
        let copy = long.as_str().to_attribute_value().unwrap();
        let copy = copy.as_str().unwrap();
        assert_eq!(copy.len(), MAX_ATTRIBUTE_VALUE_BYTES - 1);
        assert!(long.starts_with(copy));
        assert_eq!(capped_text(&long), copy);
        assert_eq!(capped_text(&format_args!("{:?}", "short")), "\"short\"");
        assert_eq!(capped_copy("short"), "short");
    }

    /// Formatting stops at the cap: a `Display` that would write forever ends.
    #[test]
    fn formatting_stops_at_the_cap() {
        struct Endless;
        impl fmt::Display for Endless {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                loop {
                    f.write_str("more ")?;
                }
            }
        }
        assert_eq!(capped_text(&Endless).len(), MAX_ATTRIBUTE_VALUE_BYTES);
    }
}
