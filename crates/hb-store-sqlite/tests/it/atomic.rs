//! One cycle, one transaction: a concurrent reader never sees a cycle without all its services.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hb_store_sqlite::Writer;

use crate::support::{cycle, read_only};

const CYCLES: u64 = 500;
const SERVICES: usize = 20;

#[test]
fn readers_never_see_half_a_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = Writer::open(&path).expect("open");

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        let path = path.clone();
        std::thread::spawn(move || {
            let conn = read_only(&path);
            let mut reads = Vec::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                // One statement reads one snapshot of both tables.
                let pair: (i64, i64) = conn
                    .query_row(
                        "SELECT (SELECT count(*) FROM monitoring_cycles), \
                                (SELECT count(*) FROM service_checks)",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .expect("read");
                reads.push(pair);
                if finished {
                    return reads;
                }
            }
        })
    };

    for i in 0..CYCLES {
        writer
            .record_cycle(&cycle(i, SERVICES), &[])
            .expect("record");
    }
    done.store(true, Ordering::Release);
    let reads = reader.join().expect("reader thread");

    for (cycles, checks) in &reads {
        assert_eq!(
            *checks,
            cycles * SERVICES as i64,
            "a read saw a partial cycle"
        );
    }
    assert_eq!(
        reads.last(),
        Some(&(CYCLES as i64, (CYCLES as usize * SERVICES) as i64))
    );
    let distinct: std::collections::BTreeSet<_> = reads.iter().collect();
    eprintln!("{} reads, {} distinct states", reads.len(), distinct.len());
}
