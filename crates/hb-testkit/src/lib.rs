//! What the test suites of every crate share; a dev-dependency only, never linked into the
//! binary.

/// A test's prerequisite (root, a tool, an engine). When it is missing under `CI=true` the test
/// fails, so a broken CI machine can never pass green; elsewhere it says why and the caller
/// skips (returns false).
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!under_ci(), "prerequisite missing under CI: {what}");
    eprintln!("skipped: {what}");
    false
}

/// Whether `CI` is set to something other than empty, `0` or `false`.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}
