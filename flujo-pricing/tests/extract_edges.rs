//! A response body's usage read at its edges: refused counts, fractions, counts beyond `u64`,
//! bodies that are not objects, array items matched as written, unknown providers and
//! flavors named in the error.

use flujo_pricing::extract::Count;
use flujo_pricing::genai::Catalog;
use serde_json::json;

fn catalog() -> Catalog {
    Catalog::shipped().unwrap()
}

#[test]
fn a_negative_or_boolean_count_makes_the_flavor_refuse_the_body() {
    let catalog = catalog();
    for bad in [json!(-5), json!(true), json!(-0.5)] {
        let body =
            json!({"model": "gpt-4o", "usage": {"prompt_tokens": bad, "completion_tokens": 3}});
        let error = catalog.extract("openai", Some("chat"), &body).unwrap_err();
        assert!(
            error.0.contains("input_tokens") || error.0.contains("prompt_tokens"),
            "{error}"
        );
    }
}

#[test]
fn a_string_count_is_missing_where_required_and_passed_over_where_optional() {
    let catalog = catalog();
    let required = json!({"usage": {"prompt_tokens": "12", "completion_tokens": 3}});
    assert!(catalog.extract("openai", Some("chat"), &required).is_err());
    let optional = json!({"usage": {"prompt_tokens": 12, "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": "7"}}});
    let read = catalog.extract("openai", Some("chat"), &optional).unwrap();
    assert_eq!(read.count("cache_read_tokens"), None);
    assert_eq!(read.token_usage().input, 12);
}

#[test]
fn a_fraction_of_a_token_is_rounded_down_and_said() {
    let catalog = catalog();
    let body = json!({"usage": {"prompt_tokens": 12.75, "completion_tokens": 3}});
    let read = catalog.extract("openai", Some("chat"), &body).unwrap();
    assert_eq!(read.count("input_tokens"), Some(Count::Fraction(12.75)));
    assert_eq!(read.token_usage().input, 12);
    assert!(read.has_fraction());
}

#[test]
fn a_count_beyond_u64_is_kept_as_a_number_not_wrapped() {
    let catalog = catalog();
    let body =
        json!({"usage": {"prompt_tokens": 1e30, "completion_tokens": 18446744073709551615u64}});
    let read = catalog.extract("openai", Some("chat"), &body).unwrap();
    assert_eq!(read.token_usage().input, u64::MAX);
    assert_eq!(read.token_usage().output, u64::MAX);
    assert!(!read.token_usage().is_within_bounds());
}

#[test]
fn bodies_that_are_not_objects_or_lack_the_root_are_refused_by_every_flavor() {
    let catalog = catalog();
    for body in [
        json!(null),
        json!([1, 2]),
        json!("usage"),
        json!({"usage": null}),
        json!({}),
    ] {
        assert!(catalog.extract("openai", None, &body).is_err(), "{body}");
    }
}

#[test]
fn an_array_item_is_found_by_its_field_as_written() {
    let catalog = catalog();
    let body = json!({"usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 5,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 40}, {"modality": "text", "tokenCount": 60}]}});
    let read = catalog.extract("google", Some("default"), &body).unwrap();
    assert_eq!(read.count("input_audio_tokens"), Some(Count::Whole(40)));
    // `text` is not `TEXT`: the package matches the item's field exactly.
    assert_eq!(read.count("input_text_tokens"), None);
    assert_eq!(read.other_units().count(), 1);
}

#[test]
fn an_unknown_provider_or_flavor_is_an_error_naming_what_there_is() {
    let catalog = catalog();
    let body = json!({"usage": {"prompt_tokens": 1, "completion_tokens": 1}});
    let error = catalog.extract("acme", None, &body).unwrap_err();
    assert!(error.0.contains("acme"), "{error}");
    let error = catalog
        .extract("openai", Some("completions"), &body)
        .unwrap_err();
    assert!(error.0.contains("chat, responses"), "{error}");
}
