//! Opt-in capture of a model call's content, as the GenAI conventions record it:
//! `gen_ai.input.messages`, `gen_ai.output.messages` and `gen_ai.system_instructions`, JSON
//! strings in the conventions' schemas. Off by default (the conventions require it):
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` or `capture_message_content`.
//! What is captured has credentials redacted (API keys, bearer tokens, the secrets flujo was
//! configured with) and is cut at `max_content_bytes`.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

/// The text each captured content attribute keeps, unless `max_content_bytes` says: 64 KiB
/// over all of its messages.
pub(crate) const DEFAULT_MAX_CONTENT_BYTES: usize = 64 << 10;

/// What replaces a credential in captured content.
pub const REDACTED: &str = "[REDACTED]";

static CAPTURE: AtomicBool = AtomicBool::new(false);
static MAX_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_CONTENT_BYTES);
/// The configured secrets (OTLP header values, the Logfire token): never captured.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Secrets shorter than this are not looked for: a short value would redact ordinary words.
const SHORTEST_SECRET: usize = 8;

/// Sets what is captured from now on (the composition root calls this at init).
pub(crate) fn configure(capture: bool, max_bytes: usize, secrets: Vec<String>) {
    // Each is searched for in every captured text, so once each (the OTLP signals often share
    // their headers).
    let mut seen = std::collections::HashSet::new();
    *SECRETS.lock().unwrap_or_else(PoisonError::into_inner) = secrets
        .into_iter()
        .filter(|secret| secret.len() >= SHORTEST_SECRET && seen.insert(secret.clone()))
        .collect();
    MAX_BYTES.store(max_bytes, Ordering::Relaxed);
    CAPTURE.store(capture, Ordering::Relaxed);
}

/// Whether content is captured.
pub(crate) fn is_captured() -> bool {
    CAPTURE.load(Ordering::Relaxed)
}

/// Messages a `#[track_cost(input_messages = ...)]` expression gives: a prompt (`&str`,
/// `String`: one user message), or `(role, content)` pairs in the order they were sent.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be captured as a model call's messages",
    label = "`input_messages` takes a prompt or a list of (role, content) pairs",
    note = "pass a `&str`/`String` (one user message), or a slice or Vec of `(role, content)` \
            string pairs such as `[(\"user\", prompt)]`"
)]
pub trait GenAiMessages {
    /// The messages, as (role, content).
    fn messages(&self) -> Vec<(&str, &str)>;
}

impl GenAiMessages for str {
    fn messages(&self) -> Vec<(&str, &str)> {
        vec![("user", self)]
    }
}

impl GenAiMessages for String {
    fn messages(&self) -> Vec<(&str, &str)> {
        self.as_str().messages()
    }
}

impl<R: AsRef<str>, C: AsRef<str>> GenAiMessages for [(R, C)] {
    fn messages(&self) -> Vec<(&str, &str)> {
        self.iter()
            .map(|(role, content)| (role.as_ref(), content.as_ref()))
            .collect()
    }
}

impl<R: AsRef<str>, C: AsRef<str>> GenAiMessages for Vec<(R, C)> {
    fn messages(&self) -> Vec<(&str, &str)> {
        self.as_slice().messages()
    }
}

impl<R: AsRef<str>, C: AsRef<str>, const N: usize> GenAiMessages for [(R, C); N] {
    fn messages(&self) -> Vec<(&str, &str)> {
        self.as_slice().messages()
    }
}

impl<T: GenAiMessages + ?Sized> GenAiMessages for &T {
    fn messages(&self) -> Vec<(&str, &str)> {
        (**self).messages()
    }
}

/// Captured content: its attributes' JSON, and whether any text was cut to fit.
pub(crate) struct Captured {
    pub(crate) json: String,
    pub(crate) truncated: bool,
}

/// What the budget of `max_content_bytes` leaves of texts, in order: each text is redacted,
/// then cut (at a character boundary) to what is left.
struct Budget {
    left: usize,
    truncated: bool,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            left: MAX_BYTES.load(Ordering::Relaxed),
            truncated: false,
        }
    }

    fn take(&mut self, text: &str) -> String {
        let text = redact(text);
        let keep = crate::core::attribute::floor_char_boundary(&text, self.left);
        self.truncated |= keep < text.len();
        self.left -= keep;
        text[..keep].to_owned()
    }

    fn captured(self, json: Value) -> Captured {
        Captured {
            json: json.to_string(),
            truncated: self.truncated,
        }
    }
}

/// `gen_ai.input.messages`: `[{"role": .., "parts": [{"type": "text", "content": ..}]}]`.
pub(crate) fn input_messages(messages: &[(&str, &str)]) -> Captured {
    let mut budget = Budget::new();
    let messages: Vec<Value> = messages
        .iter()
        .map(|(role, content)| {
            json!({"role": role, "parts": [{"type": "text", "content": budget.take(content)}]})
        })
        .collect();
    budget.captured(Value::Array(messages))
}

/// `gen_ai.system_instructions`: `[{"type": "text", "content": ..}]`.
pub(crate) fn system_instructions(text: &str) -> Captured {
    let mut budget = Budget::new();
    let parts = json!([{"type": "text", "content": budget.take(text)}]);
    budget.captured(parts)
}

/// `gen_ai.output.messages`: one assistant message per choice, with its finish reason.
pub(crate) fn output_messages(texts: &[Cow<'_, str>], finish_reasons: &[Cow<'_, str>]) -> Captured {
    let mut budget = Budget::new();
    let messages: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(choice, text)| {
            let mut message = json!({
                "role": "assistant",
                "parts": [{"type": "text", "content": budget.take(text)}],
            });
            if let Some(reason) = finish_reasons.get(choice) {
                message["finish_reason"] = Value::from(reason.as_ref());
            }
            message
        })
        .collect();
    budget.captured(Value::Array(messages))
}

/// `text` with credentials replaced by [`REDACTED`]: provider API keys (`sk-…`, `sk-ant-…`,
/// `AIza…`), AWS access key ids (`AKIA…`), GitHub tokens (`ghp_…`), the token after
/// `Bearer `, and the secrets flujo was configured with (each whole, also where one overlaps
/// another: one key the prefix of another).
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut redacted = crate::core::redact::hide(text, &secrets, REDACTED);
    drop(secrets);
    for (prefix, shortest_rest) in [
        ("sk-", 16),
        ("AKIA", 16),
        ("AIza", 30),
        ("ghp_", 30),
        ("Bearer ", 8),
    ] {
        if redacted.contains(prefix) {
            redacted = Cow::Owned(redact_tokens(&redacted, prefix, shortest_rest));
        }
    }
    redacted
}

/// Replaces every `prefix` followed by at least `shortest_rest` token characters (letters,
/// digits, `-`, `_`; a bearer token also `.~+/=`) with the prefix's redaction.
fn redact_tokens(text: &str, prefix: &str, shortest_rest: usize) -> String {
    let bearer = prefix == "Bearer ";
    let is_token = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_')
            || (bearer && matches!(c, '.' | '~' | '+' | '/' | '='))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let token_len = after.find(|c: char| !is_token(c)).unwrap_or(after.len());
        // A key is its own word: `task-1234…` does not contain the key `sk-…`.
        let starts_word = rest[..at].chars().next_back().is_none_or(|c| !is_token(c));
        out.push_str(&rest[..at]);
        if starts_word && token_len >= shortest_rest {
            if bearer {
                out.push_str(prefix);
            }
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[at..at + prefix.len() + token_len]);
        }
        rest = &after[token_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_words_are_not() {
        let text = "key sk-proj-abcdefghijklmnop1234 and Authorization: Bearer abc.def-123456 \
                    then task-sk-aaaaaaaaaaaaaaaaaaaa, sk-short, AKIAIOSFODNN7EXAMPLE.";
        assert_eq!(
            redact(text),
            "key [REDACTED] and Authorization: Bearer [REDACTED] then \
             task-sk-aaaaaaaaaaaaaaaaaaaa, sk-short, [REDACTED]."
        );
        assert_eq!(
            redact(
                "AIzaSyA1234567890abcdefghijklmnopqrstu ghp_abcdefghijklmnopqrstuvwxyz0123456789"
            ),
            "[REDACTED] [REDACTED]"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn messages_follow_the_conventions_schema_and_share_one_budget() {
        configure(true, 10, vec!["the-configured-secret".to_owned()]);
        let captured = input_messages(&[("system", "be brief"), ("user", "hello world")]);
        let value: Value = serde_json::from_str(&captured.json).unwrap();
        assert_eq!(
            value,
            json!([
                {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
                {"role": "user", "parts": [{"type": "text", "content": "he"}]},
            ])
        );
        assert!(captured.truncated);
        configure(true, 1000, vec!["the-configured-secret".to_owned()]);
        let out = output_messages(&["token the-configured-secret!".into()], &["stop".into()]);
        let value: Value = serde_json::from_str(&out.json).unwrap();
        assert_eq!(
            value,
            json!([{
                "role": "assistant",
                "parts": [{"type": "text", "content": "token [REDACTED]!"}],
                "finish_reason": "stop",
            }])
        );
        assert!(!out.truncated);
        configure(false, DEFAULT_MAX_CONTENT_BYTES, Vec::new());
    }
}
