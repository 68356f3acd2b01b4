//! The dashboard driven by a test double of the read interface: no database at all, so what
//! the API answers is what the interface handed it, and the store's errors map to HTTP as the
//! interface promises whatever the backend.

use std::sync::{Arc, Mutex};

use hb_core::ServiceStatus;
use hb_core::aggregate::ServiceAcc;
use hb_store::{
    AlertRow, BucketAcc, CheckRow, ErrorKind, IncidentRow, LatestCycle, ReadStore, Snapshot,
    Source, StoreError, StoreInfo, Window,
};

use super::{NOW, Opts, start_on};

/// One bucket's contents: how many cycles, and the checks of service `api`.
type Fill = (usize, Vec<(ServiceStatus, Option<f64>)>);

/// Answers from fixed rows; records the windows asked for.
struct Double {
    latest: Option<LatestCycle>,
    /// Per bucket: (cycles, checks of service `api` as (status, latency)).
    fill: Vec<Fill>,
    fail: Option<ErrorKind>,
    asked: Mutex<Vec<(i64, i64, usize)>>,
}

impl Snapshot for Double {
    fn info(&self) -> StoreInfo {
        StoreInfo::default()
    }

    fn latest_cycle(&self) -> Result<Option<LatestCycle>, StoreError> {
        if let Some(kind) = self.fail {
            return Err(StoreError::new(
                kind,
                "postgres://user:hunter2@db/x refused",
            ));
        }
        Ok(self.latest.clone())
    }

    fn alerts(&self, _limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        Ok(Vec::new())
    }

    fn incidents(
        &self,
        _from_ms: i64,
        _to_ms: i64,
        _limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        Ok(Vec::new())
    }

    fn recent_cycle_instants_ms(&self, limit: usize) -> Result<Vec<i64>, StoreError> {
        let newest = self.latest.as_ref().and_then(|c| c.ts_ms);
        Ok(newest
            .map(|ms| (0..limit as i64).map(|i| ms - 10_000 * i).collect())
            .unwrap_or_default())
    }

    fn window(&self, start_s: i64, width_s: i64, count: usize) -> Result<Window, StoreError> {
        self.asked
            .lock()
            .expect("lock")
            .push((start_s, width_s, count));
        let mut buckets = vec![BucketAcc::default(); count];
        for (i, (cycles, checks)) in self.fill.iter().enumerate() {
            let Some(b) = buckets.get_mut(count - self.fill.len() + i) else {
                continue;
            };
            for _ in 0..*cycles {
                b.cycles
                    .add(10.0, 20.0, 30.0, Some(5.0), true, Some(1.0), Some(200));
            }
            let mut acc = ServiceAcc::default();
            for (status, latency) in checks {
                acc.add(*status, *latency);
            }
            b.services.insert("api".into(), acc);
        }
        Ok(Window {
            start_s,
            width_s,
            buckets,
            source: Source::Rollup,
        })
    }
}

impl ReadStore for Double {
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&dyn Snapshot) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        f(self)
    }

    fn max_concurrent_reads(&self) -> usize {
        2
    }

    fn describe(&self) -> String {
        "double".into()
    }
}

fn latest() -> LatestCycle {
    LatestCycle {
        id: "c1".into(),
        timestamp: "2025-11-25T12:00:00+00:00".into(),
        ts_ms: Some((NOW - 5) * 1000),
        cpu_percent: 12.5,
        ram_percent: 40.0,
        ram_used_mb: 512.0,
        disk_percent: 70.0,
        uptime_seconds: Some(90_061.0),
        container_count: 3,
        internet_status: true,
        ping_ms: Some(4.0),
        worker_status: Some(200),
        cycle_duration_ms: Some(21),
        checks: vec![CheckRow {
            name: "api".into(),
            url: Some("http://api.local/health".into()),
            status: ServiceStatus::Timeout,
            status_code: None,
            latency_ms: None,
            error_message: Some("Timeout".into()),
            cert_expires_ms: None,
        }],
    }
}

#[tokio::test]
async fn live_answers_from_whatever_the_read_interface_returns() {
    let double = Arc::new(Double {
        latest: Some(latest()),
        fill: vec![
            (
                2,
                vec![
                    (ServiceStatus::Healthy, Some(10.0)),
                    (ServiceStatus::Healthy, Some(30.0)),
                ],
            ),
            (
                2,
                vec![(ServiceStatus::Down, None), (ServiceStatus::Timeout, None)],
            ),
        ],
        fail: None,
        asked: Mutex::new(Vec::new()),
    });
    let server = start_on(double.clone(), Opts::default()).await;
    let (status, j) = server.json("/api/live?range=1h").await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        *double.asked.lock().expect("lock"),
        vec![((NOW / 120) * 120 - 30 * 120, 120, 31)],
        "the 1h layout: 31 buckets of 2 minutes ending with the one holding now"
    );
    let api = &j["services"][0];
    assert_eq!(api["name"], "api");
    assert_eq!(api["status"], "timeout");
    assert_eq!(api["stats"]["uptime"], 50.0);
    assert_eq!(api["stats"]["success"], 2);
    assert_eq!(api["stats"]["failure"], 2);
    assert_eq!(
        api["stats"]["distribution"],
        serde_json::json!({"healthy": 2, "down": 1, "timeout": 1})
    );
    assert_eq!(api["stats"]["max"], 30.0);
    assert_eq!(api["stats"]["min"], 10.0);
    assert_eq!(j["monitor"]["uptime"]["1h"], 100.0);
    assert_eq!(j["system"]["containers"], "3 Containers");
    let latency = j["history"]["services"]["api"].as_array().expect("series");
    assert_eq!(latency.len(), 31);
    assert_eq!(latency[29], 20.0, "the healthy bucket's average");
    assert!(latency[30].is_null(), "a bucket without latency is null");
}

#[tokio::test]
async fn store_errors_map_to_http_without_their_message_leaking() {
    for (kind, want) in [
        (ErrorKind::Unavailable, 503),
        (ErrorKind::Broken, 500),
        (ErrorKind::Busy, 500),
    ] {
        let double = Arc::new(Double {
            latest: Some(latest()),
            fill: Vec::new(),
            fail: Some(kind),
            asked: Mutex::new(Vec::new()),
        });
        let server = start_on(double, Opts::default()).await;
        let (status, body) = server.get("/api/live").await;
        assert_eq!(status, want, "{kind:?}: {body}");
        if want == 500 {
            assert!(!body.contains("hunter2"), "{body}");
        }
        let (status, health) = server.json("/health").await;
        assert_eq!(status, 200);
        let expect = if want == 503 { "unavailable" } else { "error" };
        assert_eq!(health["database"], expect, "{kind:?}");
    }
    let empty = Arc::new(Double {
        latest: None,
        fill: Vec::new(),
        fail: None,
        asked: Mutex::new(Vec::new()),
    });
    let server = start_on(empty, Opts::default()).await;
    let (status, body) = server.get("/api/live").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No metrics found in database"));
}
