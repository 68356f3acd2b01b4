//! Host metrics: plausible ranges, and disk use as `df` reports it.

use std::path::Path;
use std::time::Duration;

use hb_agent::probes::{HostCollector, raise_nofile_limit};

#[test]
fn samples_are_in_range_and_disk_matches_df() {
    let mut host = HostCollector::new(Path::new("/"));
    let first = host.sample();
    // CPU usage is the average since the previous sample; give it an interval to measure.
    std::thread::sleep(Duration::from_millis(250));
    let second = host.sample();
    for m in [first, second] {
        assert!((0.0..=100.0).contains(&m.cpu_percent), "{m:?}");
        assert!(m.ram_percent > 0.0 && m.ram_percent <= 100.0, "{m:?}");
        assert!(m.ram_used_mb > 0.0, "{m:?}");
        assert!((0.0..=100.0).contains(&m.disk_percent), "{m:?}");
        assert!(m.uptime_seconds.expect("uptime on Linux") > 0.0, "{m:?}");
    }
    assert!(second.uptime_seconds >= first.uptime_seconds);

    let out = std::process::Command::new("df")
        .args(["--output=pcent", "/"])
        .output()
        .expect("run df");
    let text = String::from_utf8_lossy(&out.stdout);
    let df: f64 = text
        .lines()
        .nth(1)
        .and_then(|l| l.trim().trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("df output: {text}"));
    // df rounds up to a whole percent.
    assert!(
        (second.disk_percent - df).abs() <= 1.0,
        "ours {} vs df {df}",
        second.disk_percent
    );
}

#[test]
fn missing_disk_path_reports_zero_not_a_panic() {
    let mut host = HostCollector::new(Path::new("/definitely/not/here"));
    let m = host.sample();
    assert_eq!(m.disk_percent, 0.0);
    assert!(m.ram_used_mb > 0.0);
}

#[test]
fn nofile_soft_limit_is_raised_to_the_hard_limit() {
    use rustix::process::{Resource, getrlimit};
    raise_nofile_limit();
    let limit = getrlimit(Resource::Nofile);
    assert_eq!(limit.current, limit.maximum);
}
