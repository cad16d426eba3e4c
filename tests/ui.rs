//! Compile-time behaviour of the macros: what compiles, and the errors misuse produces.
//! Expected compiler output lives next to each case in `ui-tests/fail/*.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui-tests/pass/*.rs");
    cases.compile_fail("ui-tests/fail/*.rs");
}
