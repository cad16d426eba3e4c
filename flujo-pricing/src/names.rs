//! Model names as providers spell them: dated snapshots, `-latest` aliases, router and
//! cloud prefixes. Each rule removes one decoration; a lookup tries every stage.

/// Bedrock's cross-region inference prefixes (`us.anthropic.claude-...`).
const REGION_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au."];
/// Bedrock's vendor prefixes (`anthropic.claude-...`).
const VENDOR_PREFIXES: &[&str] = &[
    "anthropic.",
    "meta.",
    "mistral.",
    "amazon.",
    "cohere.",
    "ai21.",
    "deepseek.",
    "openai.",
    "google.",
];

/// `name` and the names it reduces to, most specific first: the lower-cased name, then
/// with each decoration removed in turn (`us.anthropic.claude-3-5-sonnet-20241022-v2:0` ->
/// ... -> `claude-3-5-sonnet`).
pub fn name_candidates(name: &str) -> Vec<String> {
    let mut current = name.trim().to_ascii_lowercase();
    let mut candidates = vec![current.clone()];
    while let Some(next) = strip_one(&current) {
        if next.is_empty() {
            break;
        }
        candidates.push(next.clone());
        current = next;
    }
    candidates
}

fn strip_one(name: &str) -> Option<String> {
    // Router and resource paths: `openai/gpt-4o`, `publishers/google/models/gemini-1.5-pro`.
    if let Some((_, last)) = name.rsplit_once('/') {
        return Some(last.to_owned());
    }
    // Vertex AI snapshots: `claude-3-5-sonnet@20240620`.
    if let Some((base, _)) = name.split_once('@') {
        return Some(base.to_owned());
    }
    if let Some(rest) = REGION_PREFIXES.iter().find_map(|p| name.strip_prefix(p))
        && VENDOR_PREFIXES.iter().any(|v| rest.starts_with(v))
    {
        return Some(rest.to_owned());
    }
    if let Some(rest) = VENDOR_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) {
        return Some(rest.to_owned());
    }
    // Bedrock versions: `...-v2:0`, `...-v1`.
    if let Some((base, version)) = name.rsplit_once(':')
        && all_digits(version)
    {
        return Some(base.to_owned());
    }
    if let Some((base, version)) = name.rsplit_once("-v")
        && all_digits(version)
    {
        return Some(base.to_owned());
    }
    for suffix in ["-latest", "-preview"] {
        if let Some(base) = name.strip_suffix(suffix) {
            return Some(base.to_owned());
        }
    }
    strip_date_suffix(name)
}

/// `-2024-08-06`, `-20241022`, `-05-20` (month-day), `-2411`/`-0613` (Mistral, old OpenAI),
/// `-001` (Gemini revisions).
fn strip_date_suffix(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('-').collect();
    let n = parts.len();
    let is = |part: &str, len: usize| part.len() == len && all_digits(part);
    if n > 3 && is(parts[n - 3], 4) && is(parts[n - 2], 2) && is(parts[n - 1], 2) {
        return Some(parts[..n - 3].join("-"));
    }
    if n > 2 && is(parts[n - 2], 2) && is(parts[n - 1], 2) {
        return Some(parts[..n - 2].join("-"));
    }
    if n > 1 && (is(parts[n - 1], 8) || is(parts[n - 1], 4) || is(parts[n - 1], 3)) {
        return Some(parts[..n - 1].join("-"));
    }
    None
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// The Levenshtein distance between two names: what flujo's messages use to suggest the
/// nearest known name (a model, a setting, a macro argument, a price key) for a misspelt one.
///
/// ```
/// assert_eq!(flujo_pricing::edit_distance("modle", "model"), 2);
/// ```
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// The provider of a model, as `gen_ai.provider.name` spells it, from its name; `None`
/// when the name does not tell.
///
/// ```
/// use flujo_pricing::infer_provider;
///
/// assert_eq!(infer_provider("gpt-4o-mini"), Some("openai"));
/// assert_eq!(infer_provider("claude-sonnet-4-5"), Some("anthropic"));
/// assert_eq!(infer_provider("anthropic.claude-3-5-sonnet-20241022-v2:0"), Some("aws.bedrock"));
/// assert_eq!(infer_provider("my-finetune"), None);
/// ```
pub fn infer_provider(model: &str) -> Option<&'static str> {
    let lower = model.trim().to_ascii_lowercase();
    let bedrock = REGION_PREFIXES
        .iter()
        .chain(VENDOR_PREFIXES)
        .any(|prefix| lower.starts_with(prefix) && lower.contains('.'));
    if bedrock {
        return Some("aws.bedrock");
    }
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    const PREFIXES: &[(&str, &str)] = &[
        ("gpt-", "openai"),
        ("chatgpt-", "openai"),
        ("o1", "openai"),
        ("o3", "openai"),
        ("o4", "openai"),
        ("text-embedding-3", "openai"),
        ("text-embedding-ada", "openai"),
        ("claude", "anthropic"),
        ("gemini", "gcp.gemini"),
        ("gemma", "gcp.gemini"),
        ("mistral", "mistral_ai"),
        ("ministral", "mistral_ai"),
        ("codestral", "mistral_ai"),
        ("pixtral", "mistral_ai"),
        ("magistral", "mistral_ai"),
        ("open-mistral", "mistral_ai"),
        ("deepseek", "deepseek"),
        ("grok", "x_ai"),
        ("command", "cohere"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| base.starts_with(prefix))
        .map(|(_, provider)| *provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(name: &str) -> String {
        name_candidates(name).pop().unwrap()
    }

    #[test]
    fn decorations_are_removed_down_to_the_family_name() {
        for (name, expected) in [
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("GPT-4o-mini-2024-07-18", "gpt-4o-mini"),
            ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
            ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
            (
                "anthropic.claude-3-5-sonnet-20241022-v2:0",
                "claude-3-5-sonnet",
            ),
            (
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
                "claude-sonnet-4",
            ),
            ("claude-sonnet-4-5", "claude-sonnet-4-5"),
            ("claude-opus-4-1-20250805", "claude-opus-4-1"),
            ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
            ("openai/gpt-4.1", "gpt-4.1"),
            ("gemini-1.5-pro-002", "gemini-1.5-pro"),
            ("gemini-2.5-pro-preview-05-06", "gemini-2.5-pro"),
            ("mistral-large-2411", "mistral-large"),
            ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
            ("o3-2025-04-16", "o3"),
            ("grok-4-0709", "grok-4"),
            ("text-embedding-3-small", "text-embedding-3-small"),
        ] {
            assert_eq!(base(name), expected, "{name}");
        }
    }

    #[test]
    fn candidates_start_with_the_exact_name() {
        assert_eq!(
            name_candidates("gpt-4o-2024-08-06"),
            vec!["gpt-4o-2024-08-06", "gpt-4o"]
        );
    }
}
