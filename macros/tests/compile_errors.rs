//! Misuses that must not compile, each with a message that says what to do
//! instead (`tests/ui/*.stderr` hold the exact messages), and the uses next
//! to them that must compile and run.

#[test]
fn misuses_are_compile_errors() {
    let cases = trybuild::TestCases::new();
    // A `pass` case makes trybuild build rather than check, which is what
    // surfaces `unregister`'s compile-time refusal of capturing closures.
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/*.rs");
}
