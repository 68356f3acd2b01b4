//! Integration tests of the agent crate against real local servers and a real Docker engine.

mod notify;
mod probes;

/// A test's prerequisite (root, a tool, an engine). When it is missing under `CI=true` the test
/// fails, so a broken CI machine can never pass green; elsewhere it says why and skips.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(!ci, "prerequisite missing under CI: {what}");
    eprintln!("skipped: {what}");
    false
}
