//! A text with given secrets hidden: for captured content and for a database driver's
//! messages, which may quote what they were given.

use std::borrow::Cow;

/// `text` with every occurrence of each secret replaced by `with`. Occurrences are found in the
/// text as given, overlapping ones included, and replaced as one where they overlap or touch:
/// replacing one secret first would cut through another that overlaps it (one key the prefix
/// of another) and leave that one's tail in the text.
pub(crate) fn hide<'a, S: AsRef<str>>(text: &'a str, secrets: &[S], with: &str) -> Cow<'a, str> {
    let mut found = Vec::new();
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(at) = text[from..].find(secret) {
            let at = from + at;
            found.push((at, at + secret.len()));
            from = at + text[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    found.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
    for (start, end) in found {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut kept_from = 0;
    for (start, end) in merged {
        out.push_str(&text[kept_from..start]);
        out.push_str(with);
        kept_from = end;
    }
    out.push_str(&text[kept_from..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_hidden_whole_where_secrets_overlap() {
        // One is the other's prefix, in either order.
        for list in [
            ["abcd1234", "abcd1234efgh5678"],
            ["abcd1234efgh5678", "abcd1234"],
        ] {
            assert_eq!(
                hide("key=abcd1234efgh5678; short=abcd1234.", &list, "***"),
                "key=***; short=***.",
                "{list:?}"
            );
        }
        // One's tail is the other's head; one inside the other.
        assert_eq!(
            hide(
                "xxSECRET-ONE-TWO-THREEyy",
                &["SECRET-ONE-TWO", "ONE-TWO-THREE"],
                "***"
            ),
            "xx***yy"
        );
        assert_eq!(
            hide(
                "a 0123456789abcdef b",
                &["456789ab", "0123456789abcdef"],
                "***"
            ),
            "a *** b"
        );
        // A secret overlapping itself.
        assert_eq!(hide("<ababababab>", &["abababab"], "***"), "<***>");
        assert!(matches!(
            hide("nothing here", &["abcd1234"], "***"),
            Cow::Borrowed(_)
        ));
    }
}
