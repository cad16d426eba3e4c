//! The settings table of the guide, written from the declarations.

use std::fmt::Write as _;

#[cfg(test)]
use super::config::TelemetryConfig;
use super::declare::Declared;
use super::groups::GROUPS;

/// The markdown table of every setting, by group: its [`TelemetryConfig`](super::config::TelemetryConfig)
/// field, its environment variables in precedence order, what it accepts, its default and
/// what it does. The guide's settings page shows it; `flujo settings` prints it.
pub fn settings_table() -> String {
    let mut table = String::new();
    for (group, declared) in GROUPS {
        let _ = write!(
            table,
            "\n#### {group}\n\n| code (`TelemetryConfig`) | variables (the first set wins) | accepted | default | what it does |\n|---|---|---|---|---|\n"
        );
        for setting in *declared {
            let _ = writeln!(table, "{}", row(*setting));
        }
    }
    table
}

fn row(setting: &dyn Declared) -> String {
    let meta = setting.meta();
    let code = meta
        .field
        .map_or_else(|| "".to_owned(), |field| format!("`{field}`"));
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let variables = match (setting.signal_env(), meta.env) {
        ([], env) => quoted(env),
        (signals, []) => format!("{} (each signal's own)", quoted(signals)),
        (signals, env) => format!(
            "{} (each signal's own), then {}",
            quoted(signals),
            quoted(env)
        ),
    };
    let cell = |text: &str| text.replace('|', "\\|");
    format!(
        "| {code} | {variables} | {} | {} | {}{} |",
        cell(meta.accepts),
        cell(setting.default_text()),
        cell(meta.doc),
        if meta.secret { " (secret)" } else { "" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's table is the declarations': `UPDATE_SETTINGS_TABLE=1` writes it.
    #[test]
    fn settings_table_in_the_guide_is_the_declarations() {
        let generated = format!("{}\n", settings_table());
        crate::core::names::keep_equal(
            "settings.md",
            "settings",
            &generated,
            "UPDATE_SETTINGS_TABLE",
        );
    }

    #[test]
    fn every_variable_is_declared_once_and_every_field_has_a_declaration() {
        let mut seen = std::collections::HashSet::new();
        for (_, declared) in GROUPS {
            for setting in *declared {
                for variable in setting.signal_env().iter().chain(setting.meta().env) {
                    assert!(seen.insert(*variable), "{variable} is declared twice");
                }
            }
        }
        let fields: Vec<&str> = GROUPS
            .iter()
            .flat_map(|(_, declared)| declared.iter().filter_map(|s| s.meta().field))
            .collect();
        // Every `TelemetryConfig` field (its Debug names them all) has its declaration.
        let debug = format!("{:?}", TelemetryConfig::default());
        let config_fields: Vec<&str> = debug
            .split([',', '{'])
            .filter_map(|part| part.split_once(':').map(|(name, _)| name.trim()))
            .collect();
        assert!(config_fields.len() > 30, "{config_fields:?}");
        for field in config_fields {
            assert!(fields.contains(&field), "`{field}` has no declaration");
        }
    }
}
