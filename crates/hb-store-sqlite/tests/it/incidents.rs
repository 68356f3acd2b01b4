//! Incidents written with each cycle: a service bad since its first check has an ongoing one,
//! an outage in the middle ends at the first healthy check, the agent's own faults change
//! nothing, and a writer opened again picks up the open incident.

use hb_core::{CheckOutcome, ServiceStatus};
use hb_store::ReadStore;
use hb_store_sqlite::{SqliteReader, Writer};

use crate::support::{BASE_MS, cycle};

fn set(c: &mut hb_core::CycleRecord, name: &str, outcome: CheckOutcome) {
    if let Some(s) = c.services.iter_mut().find(|s| s.name == name) {
        s.outcome = outcome;
    }
}

fn down() -> CheckOutcome {
    CheckOutcome::down("Connection refused")
}

#[test]
fn runs_of_bad_checks_become_incidents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.db");
    let mut writer = Writer::open(&path).expect("open");
    // svc-00 bad from its first check; svc-02 down for cycles 3..=5 (timeout at 4), healthy
    // at 6; an agent fault on svc-03 at 2 changes nothing.
    for i in 0..8_u64 {
        let mut c = cycle(i, 4);
        set(&mut c, "svc-01", CheckOutcome::healthy(Some(3.0)));
        set(&mut c, "svc-00", CheckOutcome::from_http_status(503, 4.0));
        if (3..=5).contains(&i) {
            let o = if i == 4 {
                CheckOutcome::timeout()
            } else {
                down()
            };
            set(&mut c, "svc-02", o);
        }
        if i == 2 {
            set(
                &mut c,
                "svc-03",
                CheckOutcome::agent_fault("out of file descriptors"),
            );
        }
        if i == 5 {
            // Reopening the writer keeps the open incidents open.
            drop(writer);
            writer = Writer::open(&path).expect("reopen");
        }
        writer.record_cycle(&c, &[]).expect("write");
    }
    let reader = SqliteReader::new(&path);
    let store: &dyn ReadStore = &reader;
    let all = store
        .query(|q| q.incidents(0, i64::MAX, 100))
        .expect("incidents");
    assert_eq!(all.len(), 2, "{all:#?}");
    let outage = all.iter().find(|i| i.service == "svc-02").expect("svc-02");
    let ts = |i: i64| BASE_MS + i * 1000 + i % 997;
    assert_eq!(outage.started_ms, ts(3));
    assert_eq!(outage.last_bad_ms, ts(5));
    assert_eq!(
        outage.ended_ms,
        Some(ts(6)),
        "ends at the first healthy check"
    );
    assert_eq!((outage.checks, outage.down, outage.timeout), (3, 2, 1));
    assert_eq!(outage.first_status, ServiceStatus::Down);
    assert_eq!(outage.last_status, ServiceStatus::Down);
    assert_eq!(outage.last_reason.as_deref(), Some("Connection refused"));
    let ongoing = all.iter().find(|i| i.service == "svc-00").expect("svc-00");
    assert_eq!(ongoing.started_ms, ts(0), "bad since its first check");
    assert_eq!(ongoing.ended_ms, None);
    assert_eq!((ongoing.checks, ongoing.error), (8, 8));
    assert_eq!(ongoing.first_code, Some(503));

    // Only what overlaps the window: after svc-02's end, only the ongoing one.
    let late = store
        .query(|q| q.incidents(ts(7), ts(8), 100))
        .expect("incidents");
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].service, "svc-00");
    // Rewriting a stored cycle changes nothing.
    writer.record_cycle(&cycle(7, 4), &[]).expect("again");
    let again = store
        .query(|q| q.incidents(0, i64::MAX, 100))
        .expect("incidents");
    assert_eq!(again, all);
}
