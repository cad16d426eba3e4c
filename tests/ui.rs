//! Compile-time behaviour of the macros: what compiles, and the errors misuse produces.
//! Expected compiler output lives next to each case in `ui-tests/fail/*.stderr`.

#[path = "support/readme.rs"]
mod readme;

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui-tests/pass/*.rs");
    cases.compile_fail("ui-tests/fail/*.rs");
}

/// The README quotes a misuse's compile error; it is the first error of the ui-test that
/// checks it (the README shows it in a user's `src/main.rs`).
#[test]
fn the_readmes_quoted_compile_error_is_what_the_macro_prints() {
    let quoted = readme::quoted_after(
        "steps",
        "Misuse is a compile error on the offending token, all errors at once:",
    );
    let stderr = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/ui-tests/fail/unknown_argument.stderr"
    ))
    .expect("the ui-test's expected output reads");
    let first = stderr.split("\n\n").next().expect("one error at least");
    assert_eq!(
        quoted.trim_end(),
        first.replace("ui-tests/fail/unknown_argument.rs", "src/main.rs")
    );
}
