//! Rollup backfill of an older tool's database: once done, every window equals the one of a
//! database rolled up from the start; it resumes after the writer is dropped mid-way; cycles
//! written during it are counted once; and its progress is in `rollup_meta`.

use std::path::Path;
use std::time::Duration;

use hb_store::{Retention, Source, Window};
use hb_store_sqlite::Writer;

use crate::support::{
    BASE_MS, cycle_at, cycles_on, layout, meta, older_tool_db, read_only, schedule, windows,
};

const SERVICES: usize = 3;
const DAYS: i64 = 33;
/// The dashboard's bucket widths (5m … 30d ranges at 30 points) plus the long ranges'.
const WIDTHS: [i64; 9] = [
    120, 360, 720, 1_440, 2_880, 20_160, 86_400, 259_200, 1_051_200,
];

fn layouts(end_s: i64) -> Vec<(i64, i64, usize)> {
    let mut out: Vec<_> = WIDTHS.iter().map(|&w| layout(end_s, w, 31)).collect();
    // Off the width grid (still whole minutes), and a bucket layout ending an hour earlier.
    out.push((layout(end_s, 3_600, 31).0 + 420, 3_600, 31));
    out.push(layout(end_s - 3_600, 60, 31));
    out
}

fn buckets(ws: &[Window]) -> Vec<Vec<hb_store::BucketAcc>> {
    ws.iter().map(|w| w.buckets.clone()).collect()
}

/// (a) a database the Writer rolled up from the start.
fn fresh(path: &Path, cycles: &[hb_core::CycleRecord]) {
    let mut w = Writer::open(path).expect("open fresh");
    for chunk in cycles.chunks(500) {
        w.record_cycles(chunk).expect("write");
    }
}

/// Runs maintenance until it reports nothing left; the number of calls.
fn finish(w: &mut Writer, now_ms: i64) -> usize {
    for calls in 1..10_000 {
        let m = w
            .maintain(now_ms, Duration::from_millis(25))
            .expect("maintain");
        if !m.more {
            return calls;
        }
    }
    panic!("maintenance never finished");
}

fn assert_backfilled(path: &Path, old_cycles: i64) {
    let conn = read_only(path);
    assert_eq!(meta(&conn, "backfill_done"), Some(1));
    assert_eq!(meta(&conn, "backfill_remaining_cycles"), Some(0));
    assert_eq!(meta(&conn, "backfill_total_cycles"), Some(old_cycles));
    let covered = meta(&conn, "covered_from_ms").expect("covered_from_ms");
    let oldest: i64 = conn
        .query_row("SELECT MIN(ts_ms) FROM monitoring_cycles", [], |r| r.get(0))
        .expect("oldest");
    assert!(
        covered <= oldest,
        "covered_from {covered} after oldest {oldest}"
    );
    assert_eq!(covered % 3_600_000, 0, "covered_from on an hour");
}

#[test]
fn backfill_equals_rollups_from_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let instants = schedule(BASE_MS, DAYS);
    let cycles = cycles_on(&instants, SERVICES);
    let end_s = BASE_MS / 1000 + 1;
    let ls = layouts(end_s);

    let a = dir.path().join("fresh.db");
    fresh(&a, &cycles);
    let want = windows(&a, &ls);
    assert!(want.iter().all(|w| w.source == Source::Rollup));
    let total_n: u64 = want[7].buckets.iter().map(|b| b.cycles.n).sum();
    assert_eq!(
        total_n,
        cycles.len() as u64,
        "the 90d layout sees every cycle"
    );

    let b = dir.path().join("older.db");
    older_tool_db(&b, &cycles);
    let mut w = Writer::open(&b)
        .expect("upgrade")
        .with_retention(Retention::KEEP_ALL);
    // Before backfill the raw path answers, and agrees.
    let raw = windows(&b, &ls);
    assert!(raw.iter().all(|w| w.source != Source::Rollup));
    assert_eq!(buckets(&raw), buckets(&want), "raw answers before backfill");

    let calls = finish(&mut w, BASE_MS + 60_000);
    assert!(calls >= 1);
    assert_backfilled(&b, cycles.len() as i64);
    let got = windows(&b, &ls);
    assert_eq!(buckets(&got), buckets(&want));
    // Every range from the covered instant on comes from rollups.
    assert_eq!(got[0].source, Source::Rollup);
    assert_eq!(got[6].source, Source::Rollup);
}

#[test]
fn a_restart_mid_backfill_resumes_and_cycles_written_meanwhile_count_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let instants = schedule(BASE_MS, DAYS);
    let old = cycles_on(&instants, SERVICES);
    // The agent keeps writing every 10 s while the backfill runs.
    let new: Vec<_> = (0..40u64)
        .map(|k| cycle_at(1_000_000 + k, BASE_MS + 10_000 * (k as i64 + 1), SERVICES))
        .collect();
    let all: Vec<_> = old.iter().chain(&new).cloned().collect();
    let end_ms = BASE_MS + 10_000 * 41;
    let ls = layouts(end_ms / 1000);

    let a = dir.path().join("fresh.db");
    fresh(&a, &all);
    let want = windows(&a, &ls);

    let b = dir.path().join("older.db");
    older_tool_db(&b, &old);
    let mut new = new.iter();
    let covered_mid;
    {
        let mut w = Writer::open(&b)
            .expect("upgrade")
            .with_retention(Retention::KEEP_ALL);
        let start = meta(&read_only(&b), "covered_from_ms").expect("covered");
        // A zero budget is one step per call: the start, then one batch each.
        for _ in 0..4 {
            let m = w.maintain(BASE_MS, Duration::ZERO).expect("maintain");
            assert!(m.more);
            for c in new.by_ref().take(10) {
                w.record_cycle(c, &[]).expect("cycle during backfill");
            }
        }
        covered_mid = meta(&read_only(&b), "covered_from_ms").expect("covered");
        assert!(covered_mid < start, "three batches lowered covered_from");
        let conn = read_only(&b);
        assert_eq!(meta(&conn, "backfill_done"), Some(0));
        let left = meta(&conn, "backfill_remaining_cycles").expect("remaining");
        let below: i64 = conn
            .query_row(
                "SELECT count(*) FROM monitoring_cycles WHERE ts_ms < ?1",
                [covered_mid],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(left, below, "remaining is what lies before covered_from");
        assert!(left > 0);
        // Mid-way the reader's split is exact too.
        assert_eq!(buckets(&windows(&b, &ls)[..7]), buckets(&want[..7]));
    } // dropped: the agent stopped (or was killed) here.

    let mut w = Writer::open(&b)
        .expect("reopen")
        .with_retention(Retention::KEEP_ALL);
    assert_eq!(
        meta(&read_only(&b), "covered_from_ms"),
        Some(covered_mid),
        "reopening resumes where the last batch committed"
    );
    for c in new {
        w.record_cycle(c, &[]).expect("cycle after restart");
    }
    finish(&mut w, end_ms);
    assert_backfilled(&b, old.len() as i64);
    assert_eq!(buckets(&windows(&b, &ls)), buckets(&want));
}

#[test]
fn rows_without_an_instant_do_not_keep_backfill_busy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("older.db");
    let mut cycles = cycles_on(&schedule(BASE_MS, 1), 1);
    cycles[0].timestamp = "not a time".to_owned();
    older_tool_db(&path, &cycles);
    let mut w = Writer::open(&path).expect("upgrade");
    let calls = finish(&mut w, BASE_MS + 60_000);
    assert!(calls < 10, "{calls} calls");
    let conn = read_only(&path);
    assert_eq!(meta(&conn, "backfill_done"), Some(1));
    let kept: i64 = conn
        .query_row(
            "SELECT count(*) FROM monitoring_cycles WHERE ts_ms IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(kept, 1, "the row without an instant is kept, not looped on");
}

#[test]
fn a_fresh_database_needs_no_backfill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fresh.db");
    let mut w = Writer::open(&path).expect("open");
    w.record_cycle(&cycle_at(0, BASE_MS, 2), &[])
        .expect("write");
    let m = w
        .maintain(BASE_MS, Duration::from_millis(25))
        .expect("maintain");
    assert!(!m.more);
    assert_eq!(m.cycles_backfilled, 0);
    assert_eq!(meta(&read_only(&path), "backfill_done"), Some(1));
}
