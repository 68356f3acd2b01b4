//! The unwritten-cycle queue: locks, the bound, refused cycles and a full disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use hb_store::{DurableWriter, PendingOp};
use hb_store_sqlite::SqliteStore;
use rusqlite::Connection;

use crate::support::{count, cycle, cycle_id, incomplete_cycles, read_only, stored_cycle_ids};

fn op(i: u64, services: usize) -> PendingOp {
    PendingOp::Cycle(cycle(i, services), Vec::new())
}

fn stored_ts(conn: &Connection) -> Vec<i64> {
    conn.prepare("SELECT ts_ms FROM monitoring_cycles ORDER BY rowid")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn lock(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("locker");
    conn.execute_batch("BEGIN EXCLUSIVE")
        .expect("take the lock");
    conn
}

#[test]
fn cycles_written_while_locked_wait_and_land_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut durable = DurableWriter::new(Box::new(SqliteStore::new(path.clone())), 100);
    assert_eq!(durable.submit(op(0, 3)).written, 1);

    let locker = lock(&path);
    for i in 1..=3 {
        let report = durable.submit(op(i, 3));
        assert_eq!(report.written, 0);
        assert_eq!(report.pending, i as usize);
        assert_eq!(report.dropped, 0);
        assert!(report.last_error.is_some());
    }
    assert_eq!(durable.pending(), 3);
    locker.execute_batch("COMMIT").expect("release");
    drop(locker);

    let report = durable.submit(op(4, 3));
    assert_eq!(
        (report.written, report.pending, report.last_error),
        (4, 0, None)
    );

    let conn = read_only(&path);
    assert_eq!(
        stored_cycle_ids(&conn),
        (0..=4).map(cycle_id).collect::<Vec<_>>()
    );
    assert_eq!(
        stored_ts(&conn),
        (0..=4)
            .map(|i| cycle(i, 0).timestamp_ms)
            .collect::<Vec<_>>()
    );
    assert_eq!(incomplete_cycles(&conn, 3), 0);
}

#[test]
fn the_bound_drops_the_oldest_cycles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut durable = DurableWriter::new(Box::new(SqliteStore::new(path.clone())), 3);
    let locker = lock(&path);
    let dropped: Vec<usize> = (1..=5).map(|i| durable.submit(op(i, 2)).dropped).collect();
    assert_eq!(dropped, vec![0, 0, 0, 1, 1]);
    assert_eq!(durable.pending(), 3);
    assert_eq!(durable.dropped_total(), 2);
    locker.execute_batch("COMMIT").expect("release");
    drop(locker);

    let report = durable.flush();
    assert_eq!((report.written, report.pending, report.dropped), (3, 0, 0));
    let conn = read_only(&path);
    assert_eq!(
        stored_cycle_ids(&conn),
        (3..=5).map(cycle_id).collect::<Vec<_>>()
    );
}

#[test]
fn a_refused_cycle_does_not_block_the_ones_behind_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut durable = DurableWriter::new(Box::new(SqliteStore::new(path.clone())), 10);
    let mut bad = cycle(1, 2);
    // NaN is stored as NULL, which the NOT NULL column refuses.
    bad.host.cpu_percent = f64::NAN;
    let report = durable.submit(PendingOp::Cycle(bad, Vec::new()));
    assert_eq!((report.written, report.rejected, report.pending), (0, 1, 0));
    let report = durable.submit(op(2, 2));
    assert_eq!((report.written, report.pending), (1, 0));
    let conn = read_only(&path);
    assert_eq!(stored_cycle_ids(&conn), vec![cycle_id(2)]);
    assert_eq!(count(&conn, "SELECT count(*) FROM service_checks"), 2);
}

#[test]
fn an_unopenable_path_queues_until_it_can_be_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("data");
    std::fs::write(&blocker, b"a file where the directory should be").expect("blocker");
    let path = blocker.join("metrics.db");
    let mut durable = DurableWriter::new(Box::new(SqliteStore::new(path.clone())), 10);
    let report = durable.submit(op(1, 1));
    assert_eq!((report.written, report.pending), (0, 1));
    assert!(report.last_error.is_some());
    std::fs::remove_file(&blocker).expect("remove blocker");
    let report = durable.flush();
    assert_eq!((report.written, report.pending), (1, 0));
    assert_eq!(stored_cycle_ids(&read_only(&path)), vec![cycle_id(1)]);
}

/// Unmounts the tmpfs when the test ends, pass or fail.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_queues_cycles_until_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount_point = dir.path().join("small");
    std::fs::create_dir(&mount_point).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mount_point)
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            crate::support::require(
                false,
                &format!(
                    "mount tmpfs failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            return;
        }
        Err(e) => {
            crate::support::require(false, &format!("cannot run mount: {e}"));
            return;
        }
    }
    let _mount = Mount(mount_point.clone());

    let path = mount_point.join("metrics.db");
    let filler = mount_point.join("filler");
    let mut durable = DurableWriter::new(Box::new(SqliteStore::new(path.clone())), 1000);
    assert_eq!(durable.submit(op(0, 20)).written, 1);

    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).expect("filler");
        let block = [0u8; 4096];
        while file.write_all(&block).is_ok() {}
    }

    let mut next = 1;
    let mut failed = false;
    while next < 500 {
        let report = durable.submit(op(next, 20));
        next += 1;
        if report.pending > 0 {
            failed = true;
            break;
        }
    }
    assert!(failed, "writes never failed on a full disk");
    for _ in 0..3 {
        let report = durable.submit(op(next, 20));
        next += 1;
        assert!(report.pending > 0);
        assert_eq!(report.dropped, 0);
    }
    let queued = durable.pending();
    assert!(queued >= 4, "{queued}");

    std::fs::remove_file(&filler).expect("remove filler");
    let report = durable.flush();
    assert_eq!(
        (report.written, report.pending),
        (queued, 0),
        "{:?}",
        report.last_error
    );

    drop(durable);
    let conn = read_only(&path);
    assert_eq!(
        stored_cycle_ids(&conn),
        (0..next).map(cycle_id).collect::<Vec<_>>()
    );
    assert_eq!(incomplete_cycles(&conn, 20), 0);
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity");
    assert_eq!(integrity, "ok");
    // The failed writes left nothing behind in the rollups (the writer keeps the current blocks
    // in memory and must forget them when a transaction rolls back): every tier still counts
    // each cycle and each check exactly once.
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let cycles = count("SELECT count(*) FROM monitoring_cycles");
    let checks = count("SELECT count(*) FROM service_checks");
    for tier in [60, 360, 3600, 86400] {
        assert_eq!(
            count(&format!(
                "SELECT sum(n) FROM rollup_cycles WHERE tier_s = {tier}"
            )),
            cycles,
            "tier {tier}"
        );
        assert_eq!(
            count(&format!(
                "SELECT sum(n) FROM rollup_services WHERE tier_s = {tier}"
            )),
            checks,
            "tier {tier}"
        );
    }
}

fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = [0u8; 4096];
    while file.write_all(&block).is_ok() {}
}

/// Issue #21: on a full 2 MiB disk, freeing space let a few cycles through and then the
/// write-ahead log (merged only at 1,000 pages) filled it again. With the log merged and
/// emptied before each retry and kept small, a little freed space takes the whole queue and the
/// cycles after it.
#[test]
fn a_little_freed_space_takes_the_queue_and_the_cycles_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount_point = dir.path().join("small");
    std::fs::create_dir(&mount_point).expect("mount point");
    match Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mount_point)
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            crate::support::require(
                false,
                &format!(
                    "mount tmpfs failed (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            return;
        }
        Err(e) => {
            crate::support::require(false, &format!("cannot run mount: {e}"));
            return;
        }
    }
    let _mount = Mount(mount_point.clone());
    let reserve = mount_point.join("reserve");
    std::fs::write(&reserve, vec![0u8; 256 * 1024]).expect("reserve");

    let path = mount_point.join("metrics.db");
    let mut durable = DurableWriter::new(Box::new(SqliteStore::new(path.clone())), 1000);
    let mut next = 0;
    for _ in 0..5 {
        assert_eq!(durable.submit(op(next, 10)).pending, 0);
        next += 1;
    }
    fill(&mount_point.join("filler"));
    while durable.pending() == 0 {
        assert!(next < 1000, "writes never failed on a full disk");
        durable.submit(op(next, 10));
        next += 1;
    }
    for _ in 0..5 {
        assert!(durable.submit(op(next, 10)).pending > 0);
        next += 1;
    }
    let queued = durable.pending();

    std::fs::remove_file(&reserve).expect("free a little space");
    let report = durable.flush();
    assert_eq!(
        (report.written, report.pending),
        (queued, 0),
        "{:?}",
        report.last_error
    );
    // The bug: the log refilled the freed space within a few cycles.
    for _ in 0..60 {
        let report = durable.submit(op(next, 10));
        next += 1;
        assert_eq!(report.pending, 0, "cycle {next}: {:?}", report.last_error);
    }
    let wal = std::fs::metadata(mount_point.join("metrics.db-wal")).expect("-wal kept");
    assert!(
        wal.len() <= hb_store_sqlite::JOURNAL_SIZE_LIMIT_BYTES as u64 + 256 * 1024,
        "the log grew to {} bytes",
        wal.len()
    );
    drop(durable);
    let conn = read_only(&path);
    assert_eq!(
        stored_cycle_ids(&conn),
        (0..next).map(cycle_id).collect::<Vec<_>>()
    );
    assert_eq!(incomplete_cycles(&conn, 10), 0);
}

#[test]
fn the_log_is_bounded_and_a_truncating_checkpoint_keeps_the_wal_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = hb_store_sqlite::Writer::open(&path).expect("open");
    let reader = read_only(&path);
    for i in 0..30 {
        writer.record_cycle(&cycle(i, 10), &[]).expect("record");
    }
    let wal = dir.path().join("metrics.db-wal");
    // Merged every few cycles: far below SQLite's default of 1,000 pages (4 MiB).
    let wal_len = std::fs::metadata(&wal).expect("wal").len();
    assert!(
        wal_len < 1024 * 1024,
        "the log holds {wal_len} bytes after 30 cycles"
    );
    assert!(writer.checkpoint_truncate().expect("checkpoint"));
    assert_eq!(std::fs::metadata(&wal).expect("wal kept").len(), 0);
    assert_eq!(count(&reader, "SELECT count(*) FROM monitoring_cycles"), 30);
    writer.record_cycle(&cycle(30, 10), &[]).expect("record");
    drop(writer);
    assert!(wal.exists(), "the -wal file must outlive the writer");
    assert_eq!(
        count(&read_only(&path), "SELECT count(*) FROM monitoring_cycles"),
        31
    );
}
