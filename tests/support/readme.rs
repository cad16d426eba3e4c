//! The guide's quoted output, for the tests that keep it equal to what flujo prints.

/// The first ```text block after `marker` in the guide page `page` (`docs/guide/{page}.md`).
pub fn quoted_after(page: &str, marker: &str) -> String {
    let path = format!("{}/docs/guide/{page}.md", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split(marker)
        .nth(1)
        .and_then(|rest| rest.split("```text\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("{path} quotes a text block after {marker:?}"))
        .to_owned()
}
