//! Crash safety: a writer process killed with SIGKILL at random moments never leaves a corrupt
//! database or a cycle without all its services.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hb_store_sqlite::Writer;
use rusqlite::Connection;

use crate::support::{Rng, count, cycle, incomplete_cycles};

const CHILD_ENV: &str = "HB_STORE_CRASH_CHILD_DB";
const SERVICES: usize = 10;
const KILLS: usize = 20;

/// Not a test of its own: the body of the child process that `writer_survives_sigkill`
/// starts by re-running this test binary with `CHILD_ENV` set. Without it, it returns at once.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut writer = Writer::open(Path::new(&path)).expect("child open");
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let mut i = 0u64;
    loop {
        let mut record = cycle(i, SERVICES);
        record.id = format!("{start}-{i}");
        writer.record_cycle(&record, &[]).expect("child write");
        i += 1;
    }
}

fn check(path: &Path) -> i64 {
    let conn = Connection::open(path).expect("open after kill");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    let has_table = count(
        &conn,
        "SELECT count(*) FROM sqlite_schema WHERE name = 'monitoring_cycles'",
    );
    if has_table == 0 {
        return 0;
    }
    assert_eq!(incomplete_cycles(&conn, SERVICES as i64), 0);
    count(&conn, "SELECT count(*) FROM monitoring_cycles")
}

#[test]
fn writer_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = Rng::from_clock();
    let mut cycles = 0;
    for _ in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start child");
        std::thread::sleep(Duration::from_millis(20 + rng.below(181)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap child");
        let now = check(&path);
        assert!(now >= cycles, "cycles went from {cycles} to {now}");
        cycles = now;
    }
    assert!(cycles > 0, "the child never wrote a cycle");
    eprintln!("{cycles} cycles survived {KILLS} kills");
}
