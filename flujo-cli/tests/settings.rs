//! `flujo settings` prints the settings table the guide shows.

use std::process::Command;

#[test]
fn flujo_settings_prints_the_guides_settings_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_flujo"))
        .arg("settings")
        .output()
        .expect("flujo runs");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/guide/settings.md"
    ))
    .unwrap();
    let table = page
        .split_once("<!-- settings:begin -->")
        .and_then(|(_, rest)| rest.split_once("<!-- settings:end -->"))
        .map(|(table, _)| table)
        .expect("the guide's table");
    assert_eq!(printed.trim(), table.trim());
    for variable in [
        "OTEL_SDK_DISABLED",
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
        "OTEL_PROPAGATORS",
        "FLUJO_COST_LEDGER",
        "FLUJO_GENAI_PRICES_DATA",
    ] {
        assert!(printed.contains(&format!("`{variable}`")), "{variable}");
    }
}
