//! `FLUJO_*` variables flujo does not read: a misspelt setting would otherwise be silently
//! ignored.

use super::declare::Env;
use super::groups::GROUPS;
use flujo_pricing::edit_distance as distance;

/// Prefixes of variables that are not settings: test harnesses' and examples' own.
const RESERVED: &[&str] = &["FLUJO_TEST_", "FLUJO_EXAMPLE_"];

/// The `FLUJO_*` variables set in the process environment.
pub(super) fn present() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("FLUJO_"))
        .collect()
}

/// One WARN per unknown variable of `present`, naming the nearest declared ones (two when
/// they are about as near, as `FLUJO_PRICING_FILE` and `FLUJO_GENAI_PRICES_DATA` are to
/// many a typo) and what each is.
pub(super) fn check(present: &[String], env: &Env<'_>) {
    // Every FLUJO_ variable, with the name its declaration goes by (an old alias points to
    // the current name) and what it is.
    let declared: Vec<(&str, &str, &str)> = GROUPS
        .iter()
        .flat_map(|(_, declared)| declared.iter())
        .flat_map(|setting| {
            let meta = setting.meta();
            meta.env
                .iter()
                .map(move |name| (*name, meta.env[0], meta.doc))
        })
        .filter(|(name, _, _)| name.starts_with("FLUJO_"))
        .collect();
    for name in present {
        if declared.iter().any(|(known, _, _)| known == name)
            || RESERVED.iter().any(|prefix| name.starts_with(prefix))
        {
            continue;
        }
        let best = declared
            .iter()
            .map(|(known, _, _)| distance(known, name))
            .min()
            .unwrap_or(0);
        let mut nearest: Vec<(&str, &str)> = Vec::new();
        for (known, current, doc) in &declared {
            if distance(known, name) <= best + 2 && !nearest.iter().any(|(n, _)| n == current) {
                nearest.push((current, doc));
            }
        }
        let hint = nearest
            .iter()
            .take(2)
            .map(|(known, doc)| format!("{known} ({doc})"))
            .collect::<Vec<_>>()
            .join(", or ");
        env.warn(format!(
            "{name} is set, but flujo reads no such variable, so it does nothing: did you mean \
             {hint}? (every variable: the settings table of flujo's guide)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(present: &[&str]) -> Vec<String> {
        let read = |_: &str| None;
        let env = Env::new(&read);
        let present: Vec<String> = present.iter().map(|name| (*name).to_owned()).collect();
        check(&present, &env);
        env.into_notices().into_iter().map(|n| n.text).collect()
    }

    #[test]
    fn an_unknown_flujo_variable_is_one_warn_naming_the_nearest_and_what_it_is() {
        let said = warnings(&["FLUJO_PRICE_FILE"]);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("FLUJO_PRICE_FILE is set"), "{said:?}");
        assert!(
            said[0].contains("did you mean FLUJO_PRICING_FILE (your own price rows (TOML)"),
            "{said:?}"
        );
        let said = warnings(&["FLUJO_COST_LEDGER_BUFER"]);
        assert!(
            said[0].contains("did you mean FLUJO_COST_LEDGER_BUFFER"),
            "{said:?}"
        );
        // Known names, the old alias and reserved prefixes are not warned about.
        assert!(
            warnings(&[
                "FLUJO_COST_LEDGER",
                "FLUJO_PRICES_FILE",
                "FLUJO_GENAI_PRICES_DATA",
                "FLUJO_TEST_ROTEL",
                "FLUJO_EXAMPLE_SECONDS"
            ])
            .is_empty()
        );
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("FLUJO_PRICING_FILE", "FLUJO_PRICING_FILE"), 0);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
