//! Probe tests: HTTP and TCP checks against real local servers, Docker checks against a real engine
//! (and a fake API on a Unix socket), host metrics against `df`.

mod docker;
mod host;
mod http;
mod options;
mod tcp;

/// Set in the copy of the test binary that runs inside the network namespace.
const NETNS_CHILD_ENV: &str = "HB_PROBES_NETNS_CHILD";

/// Whether this process is the copy [`run_in_loopback_netns`] started.
fn in_netns_child() -> bool {
    std::env::var_os(NETNS_CHILD_ENV).is_some()
}

/// Runs the test `name` (its full path in this binary) again in a copy of the binary inside a
/// network namespace that has only loopback (`unshare -n`, then `ip link set lo up`), where a
/// name lookup or a route to anywhere else fails at once, and asserts that it passed there.
/// Without `unshare` the test is skipped, or fails under `CI=true`.
fn run_in_loopback_netns(name: &str) {
    let probe = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .output();
    match probe {
        Err(e) => {
            crate::require(false, &format!("unshare unavailable ({e})"));
            return;
        }
        Ok(out) if !out.status.success() => {
            crate::require(
                false,
                &format!(
                    "unshare -n failed ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            return;
        }
        Ok(_) => {}
    }
    let exe = std::env::current_exe().expect("own test binary");
    let out = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(exe)
        .args([name, "--exact", "--nocapture"])
        .env(NETNS_CHILD_ENV, "1")
        .output()
        .expect("run the test binary in a netns");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
}
