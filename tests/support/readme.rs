//! The README's quoted output, for the tests that keep it equal to what flujo prints.

/// The first ```text block after `marker` in the README.
pub fn quoted_after(marker: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README reads");
    readme
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split("```text\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("the README quotes a text block after {marker:?}"))
        .to_owned()
}
