//! Retention: pruning at the configured age leaves everything younger and every long range
//! exact (day and hour blocks answer what the raw rows did), waits for the backfill on an older
//! tool's database, gives pages back on new databases, and survives SIGKILL.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hb_store::{DAY_MS, Retention, Source};
use hb_store_sqlite::Writer;
use rusqlite::Connection;

use crate::support::{
    BASE_MS, Rng, alert, count, cycle_at, cycles_on, incomplete_cycles, layout, meta,
    older_tool_db, orphans, read_only, schedule, windows,
};

const SERVICES: usize = 3;
const NOW_MS: i64 = BASE_MS + 60_000;

/// Long ranges, read from hour and day blocks: 1y and 90d at 30 points, 50 days by day, a
/// month by hour.
fn long_layouts() -> Vec<(i64, i64, usize)> {
    let end_s = NOW_MS / 1000;
    vec![
        layout(end_s, 1_051_200, 31),
        layout(end_s, 259_200, 31),
        layout(end_s, 86_400, 50),
        layout(end_s, 3_600, 24 * 31),
    ]
}

fn finish(w: &mut Writer, now_ms: i64) -> hb_store::Maintenance {
    let mut total = hb_store::Maintenance::default();
    for _ in 0..10_000 {
        let m = w
            .maintain(now_ms, Duration::from_millis(25))
            .expect("maintain");
        total.cycles_pruned += m.cycles_pruned;
        total.checks_pruned += m.checks_pruned;
        total.rollups_pruned += m.rollups_pruned;
        total.alerts_pruned += m.alerts_pruned;
        total.cycles_backfilled += m.cycles_backfilled;
        if !m.more {
            return total;
        }
    }
    panic!("maintenance never finished");
}

fn min_start(conn: &Connection, tier: i64) -> i64 {
    conn.query_row(
        "SELECT MIN(start_s) FROM rollup_services WHERE tier_s = ?1",
        [tier],
        |r| r.get(0),
    )
    .expect("min start")
}

fn blocks(conn: &Connection, tier: i64) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM rollup_cycles WHERE tier_s = ?1",
        [tier],
        |r| r.get(0),
    )
    .expect("blocks")
}

#[test]
fn pruning_at_the_configured_age_keeps_long_ranges_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let instants = schedule(BASE_MS, 45);
    let cycles = cycles_on(&instants, SERVICES);
    let mut w = Writer::open(&path).expect("open");
    for chunk in cycles.chunks(500) {
        w.record_cycles(chunk).expect("write");
    }
    let mut old_alert = alert("old", "svc-00");
    old_alert.created_at = "2025-09-01T10:00:00.000-05:00".to_owned();
    w.record_cycle(
        &cycle_at(9_999_999, BASE_MS + 30_000, SERVICES),
        &[old_alert, alert("young", "svc-01")],
    )
    .expect("alerts");

    let cutoff = NOW_MS - 30 * DAY_MS;
    let young = instants.iter().filter(|&&t| t >= cutoff).count() as i64 + 1;
    let total = instants.len() as i64 + 1;
    let conn = read_only(&path);
    let hours_before = blocks(&conn, 3_600);
    let days_before = blocks(&conn, 86_400);
    let ls = long_layouts();
    let before = windows(&path, &ls);
    assert!(before.iter().all(|w| w.source == Source::Rollup));

    let report = finish(&mut w, NOW_MS);

    assert_eq!(report.cycles_pruned as i64, total - young);
    assert_eq!(
        report.checks_pruned as i64,
        (total - young) * SERVICES as i64
    );
    assert_eq!(report.alerts_pruned, 1);
    // Nothing younger touched.
    assert_eq!(
        count(&conn, "SELECT count(*) FROM monitoring_cycles"),
        young
    );
    let oldest: i64 = conn
        .query_row("SELECT MIN(ts_ms) FROM monitoring_cycles", [], |r| r.get(0))
        .expect("oldest");
    assert!(oldest >= cutoff);
    assert_eq!(incomplete_cycles(&conn, SERVICES as i64), 0);
    assert_eq!(orphans(&conn), (0, 0));
    assert_eq!(
        count(&conn, "SELECT count(*) FROM alerts WHERE uid = 'young'"),
        1
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM alerts"), 1);
    // Tiers: minute blocks two days, six-minute 35 days, hour and day blocks all kept.
    assert!(min_start(&conn, 60) * 1000 >= NOW_MS - 2 * DAY_MS);
    assert!(min_start(&conn, 360) * 1000 >= NOW_MS - 35 * DAY_MS);
    assert!(min_start(&conn, 360) * 1000 < NOW_MS - 34 * DAY_MS);
    assert_eq!(blocks(&conn, 3_600), hours_before);
    assert_eq!(blocks(&conn, 86_400), days_before);
    assert!(report.rollups_pruned > 0);

    // 1y (and 90d, and day and hour buckets) are still exact with the raw rows gone.
    let after = windows(&path, &ls);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.buckets, b.buckets, "width {}", a.width_s);
    }
    let seen: u64 = after[1].buckets.iter().map(|b| b.cycles.n).sum();
    assert_eq!(seen as i64, total);

    // Nothing more to do at the same instant; a day later another day of rows goes.
    let again = w
        .maintain(NOW_MS, Duration::from_millis(25))
        .expect("again");
    assert!(again.is_empty() && !again.more, "{again:?}");
    let next = finish(&mut w, NOW_MS + DAY_MS);
    assert_eq!(next.cycles_pruned, 24 * 6);
}

#[test]
fn retention_zero_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let cycles = cycles_on(&schedule(BASE_MS, 40), 1);
    let mut w = Writer::open(&path)
        .expect("open")
        .with_retention(Retention::KEEP_ALL);
    w.record_cycles(&cycles).expect("write");
    let report = finish(&mut w, NOW_MS + 1_000 * DAY_MS);
    assert!(report.is_empty(), "{report:?}");
    let conn = read_only(&path);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM monitoring_cycles"),
        cycles.len() as i64
    );
}

#[test]
fn raw_rows_of_an_older_database_wait_for_their_rollups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let instants = schedule(BASE_MS, 40);
    let cycles = cycles_on(&instants, SERVICES);
    let fresh = dir.path().join("fresh.db");
    {
        let mut w = Writer::open(&fresh).expect("fresh");
        w.record_cycles(&cycles).expect("write");
    }
    let path = dir.path().join("older.db");
    older_tool_db(&path, &cycles);
    let mut w = Writer::open(&path).expect("upgrade");
    let conn = read_only(&path);
    let mut steps = 0;
    loop {
        let m = w.maintain(NOW_MS, Duration::ZERO).expect("step");
        steps += 1;
        // Every raw row before covered_from (no rollup holds it yet) is still there.
        let covered = meta(&conn, "covered_from_ms").expect("covered");
        let below: i64 = conn
            .query_row(
                "SELECT count(*) FROM monitoring_cycles WHERE ts_ms < ?1",
                [covered],
                |r| r.get(0),
            )
            .expect("below");
        let want = instants.iter().filter(|&&t| t < covered).count() as i64;
        assert_eq!(below, want, "step {steps}: uncovered raw rows were pruned");
        if !m.more {
            break;
        }
    }
    assert!(steps > 3, "{steps} steps");
    let cutoff = NOW_MS - 30 * DAY_MS;
    let young = instants.iter().filter(|&&t| t >= cutoff).count() as i64;
    assert_eq!(
        count(&conn, "SELECT count(*) FROM monitoring_cycles"),
        young
    );
    assert_eq!(orphans(&conn), (0, 0));
    assert_eq!(meta(&conn, "backfill_done"), Some(1));
    // The long ranges equal those of a database rolled up from the start.
    let ls = long_layouts();
    let want = windows(&fresh, &ls);
    let got = windows(&path, &ls);
    for (g, f) in got.iter().zip(&want) {
        assert_eq!(g.buckets, f.buckets, "width {}", g.width_s);
    }
}

fn page_count(conn: &Connection) -> i64 {
    count(conn, "PRAGMA page_count")
}

#[test]
fn new_databases_give_pages_back_older_ones_reuse_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cycles = cycles_on(&schedule(BASE_MS - 40 * DAY_MS, 10), 8);
    for c in &mut cycles {
        for s in &mut c.services {
            s.outcome.reason = Some("x".repeat(300));
        }
    }
    let fresh = dir.path().join("fresh.db");
    let older = dir.path().join("older.db");
    older_tool_db(&older, &cycles);
    let mut w = Writer::open(&fresh).expect("open");
    w.record_cycles(&cycles).expect("write");
    let mut o = Writer::open(&older).expect("upgrade");

    let conn = Connection::open(&fresh).expect("conn");
    let oconn = Connection::open(&older).expect("conn");
    assert_eq!(count(&conn, "PRAGMA auto_vacuum"), 2, "incremental");
    assert_eq!(count(&oconn, "PRAGMA auto_vacuum"), 0, "kept as it was");
    let before = page_count(&conn);
    let obefore = page_count(&oconn);
    finish(&mut w, NOW_MS);
    finish(&mut o, NOW_MS);
    assert_eq!(count(&conn, "SELECT count(*) FROM monitoring_cycles"), 0);
    assert_eq!(count(&oconn, "SELECT count(*) FROM monitoring_cycles"), 0);
    let after = page_count(&conn);
    assert!(after * 2 < before, "pages {before} -> {after}");
    assert!(count(&conn, "PRAGMA freelist_count") <= 512);
    // The older database keeps its size; its free pages are reused.
    assert!(page_count(&oconn) >= obefore);
    assert!(count(&oconn, "PRAGMA freelist_count") > 512);
}

const CHILD_ENV: &str = "HB_STORE_PRUNE_CHILD_DB";
const KILLS: usize = 12;
const CHILD_SERVICES: usize = 10;

/// Not a test of its own: the child process `pruning_survives_sigkill` starts and kills. It
/// backfills and prunes an older database while writing cycles, as the agent does.
#[test]
fn prune_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let retention = Retention {
        raw_days: 1,
        ..Retention::default()
    };
    let mut w = Writer::open(Path::new(&path))
        .expect("child open")
        .with_retention(retention);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let mut now = BASE_MS;
    for i in 0.. {
        w.maintain(now, Duration::from_millis(20))
            .expect("maintain");
        let mut c = cycle_at(i, now, CHILD_SERVICES);
        c.id = format!("{nanos}-{i}");
        w.record_cycle(&c, &[]).expect("write");
        now += 60_000;
    }
}

#[test]
fn pruning_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let instants = schedule(BASE_MS - DAY_MS, 20);
    older_tool_db(&path, &cycles_on(&instants, CHILD_SERVICES));
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = Rng::from_clock();
    for _ in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "retention::prune_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start child");
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap child");

        let conn = Connection::open(&path).expect("open after kill");
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(integrity, "ok");
        assert_eq!(orphans(&conn), (0, 0));
        assert_eq!(incomplete_cycles(&conn, CHILD_SERVICES as i64), 0);
        let covered = meta(&conn, "covered_from_ms").expect("covered");
        let below: i64 = conn
            .query_row(
                "SELECT count(*) FROM monitoring_cycles WHERE ts_ms < ?1",
                [covered],
                |r| r.get(0),
            )
            .expect("below");
        let want = instants.iter().filter(|&&t| t < covered).count() as i64;
        assert_eq!(below, want, "uncovered raw rows lost");
    }
    let conn = read_only(&path);
    eprintln!(
        "after {KILLS} kills: {} cycles, covered from {:?}, backfill done {:?}",
        count(&conn, "SELECT count(*) FROM monitoring_cycles"),
        meta(&conn, "covered_from_ms"),
        meta(&conn, "backfill_done")
    );
}
