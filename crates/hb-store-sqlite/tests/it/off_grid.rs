//! Windows whose bucket edges are not whole minutes (an odd `TARGET_DATA_POINTS`) after
//! retention pruned the older raw rows: the pruned part is answered from the rollups.

use hb_store::{ReadStore, Source};
use hb_store_sqlite::{SqliteReader, Writer};
use jiff::{Timestamp, tz};

use crate::support::{count, cycle};

/// 2026-11-01T00:00:00Z.
const T0_S: i64 = 1_793_491_200;

#[test]
fn pruned_raw_rows_are_answered_from_rollups_on_off_grid_buckets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.db");
    let mut writer = Writer::open(&path).expect("open");
    // One cycle a minute for three days, two services.
    let cycles: Vec<_> = (0..3 * 1440_u64)
        .map(|i| {
            let mut c = cycle(i, 2);
            c.timestamp_ms = (T0_S + 60 * i as i64) * 1000 + 500;
            c.timestamp = Timestamp::from_millisecond(c.timestamp_ms)
                .expect("ts")
                .display_with_offset(tz::offset(0))
                .to_string();
            c
        })
        .collect();
    writer.record_cycles(&cycles).expect("write");
    drop(writer);

    // Seven buckets over the three days: 37,028 s each, not whole minutes.
    let (width, n) = (3 * 86_400 / 7, 7);
    let reader = SqliteReader::new(&path);
    let store: &dyn ReadStore = &reader;
    let before = store
        .query(|q| q.window(T0_S, width, n))
        .expect("window before pruning");
    assert_eq!(before.source, Source::Raw);

    // What retention does: raw rows of the first two days go, rollups stay.
    let rw = rusqlite::Connection::open(&path).expect("rw");
    let cut_ms = (T0_S + 2 * 86_400) * 1000;
    rw.execute_batch(&format!(
        "DELETE FROM service_checks WHERE cycle_id IN
             (SELECT id FROM monitoring_cycles WHERE ts_ms < {cut_ms});
         DELETE FROM monitoring_cycles WHERE ts_ms < {cut_ms};"
    ))
    .expect("prune");
    assert_eq!(count(&rw, "SELECT COUNT(*) FROM monitoring_cycles"), 1440);
    drop(rw);

    let reader = SqliteReader::new(&path);
    let store: &dyn ReadStore = &reader;
    let after = store
        .query(|q| q.window(T0_S, width, n))
        .expect("window after pruning");
    assert_eq!(after.source, Source::Mixed);
    for (i, (a, b)) in before.buckets.iter().zip(&after.buckets).enumerate() {
        let (was, is) = (a.cycles.n as i64, b.cycles.n as i64);
        assert!(was > 0, "bucket {i} has data");
        assert!(
            (was - is).abs() <= 1,
            "bucket {i}: {was} cycles from raw rows, {is} after pruning (a minute at each edge at most)"
        );
        let svc = |acc: &hb_store::BucketAcc| acc.services.get("svc-00").map_or(0, |s| s.n as i64);
        assert!((svc(a) - svc(b)).abs() <= 1, "bucket {i} service checks");
    }
}
