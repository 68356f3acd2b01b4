//! The fleet dashboard's reader: every host's data in the fleet database, through the same
//! [`Snapshot`] a host's own SQLite reader answers, so `/api/live?host=H` is built by the same
//! code from the same numbers. Read-only twice over: every session sets
//! `default_transaction_read_only`, and every snapshot is a `READ ONLY` repeatable-read
//! transaction; a role with nothing but `SELECT` is enough.
//!
//! The store's interfaces are blocking (the dashboard calls them on its blocking threads), the
//! driver is async: each call runs the driver's future on the runtime of the calling thread
//! (a blocking thread of the dashboard's runtime), where the sessions' drivers run too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hb_core::aggregate::{bucket_index, status_index, stored_status, tier_ranges};
use hb_store::{
    AlertRow, BucketAcc, CheckRow, ErrorKind, FleetStore, HostAlert, HostPick, HostSummary,
    IncidentRow, LatestCycle, ReadStore, Snapshot, Source, StoreError, StoreInfo, Window,
};
use tokio::runtime::Handle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Row, Statement, Transaction};

use crate::fold::{cycle_block, service_block};
use crate::sink::{Session, open};
use crate::{FleetError, schema};

/// Sessions kept open for reads (and so reads at once).
const POOL: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The six-minute tier the overview's sparkline reads, and how many of its blocks.
const SPARK_TIER_S: i64 = 360;
const SPARK_BLOCKS: i64 = 10;

/// Reads the fleet database at a `postgres://` URL.
pub struct FleetReader {
    url: String,
    shown: String,
    idle: Mutex<Vec<Pooled>>,
}

/// A session and the statements prepared on it so far.
struct Pooled {
    session: Session,
    prepared: RefCell<HashMap<String, Statement>>,
}

/// A transaction whose statements are prepared once per session and reused afterwards: each
/// later query saves a parse and a round trip.
struct Tx<'a> {
    tx: &'a Transaction<'a>,
    prepared: &'a RefCell<HashMap<String, Statement>>,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(st) = self.prepared.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare(sql).await?;
        self.prepared
            .borrow_mut()
            .insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    async fn query(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let st = self.statement(sql).await?;
        self.tx.query(&st, params).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let st = self.statement(sql).await?;
        self.tx.query_opt(&st, params).await
    }

    async fn query_one(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Row, tokio_postgres::Error> {
        let st = self.statement(sql).await?;
        self.tx.query_one(&st, params).await
    }
}

impl FleetReader {
    /// A reader of `url`. Connects on first use, so a database that is not up yet answers
    /// "unavailable" until it is.
    pub fn new(url: &str) -> FleetReader {
        FleetReader {
            url: url.to_owned(),
            shown: crate::redact(url),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn session(&self, runtime: &Handle) -> Result<Pooled, StoreError> {
        if let Some(p) = self.idle.lock().ok().and_then(|mut idle| idle.pop())
            && !p.session.client.is_closed()
        {
            return Ok(p);
        }
        runtime.block_on(async {
            let session = open(&self.url, "heartbeat dashboard", CONNECT_TIMEOUT)
                .await
                .map_err(unavailable)?;
            session
                .client
                .batch_execute("SET default_transaction_read_only = on")
                .await
                .map_err(|e| read_error(e, &self.shown))?;
            check_schema(&session.client, &self.shown).await?;
            Ok(Pooled {
                session,
                prepared: RefCell::new(HashMap::new()),
            })
        })
    }

    fn give_back(&self, session: Pooled) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POOL
        {
            idle.push(session);
        }
    }

    /// Runs `f` in a read-only repeatable-read transaction of one session (dropped, not kept,
    /// after a failure).
    fn transaction<T>(
        &self,
        f: impl FnOnce(&Handle, &Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let runtime = Handle::try_current().map_err(|_| {
            StoreError::new(ErrorKind::Broken, "the fleet reader runs outside a runtime")
        })?;
        let mut pooled = self.session(&runtime)?;
        let shown = self.shown.clone();
        let out = (|| {
            let tx = runtime
                .block_on(
                    pooled
                        .session
                        .client
                        .build_transaction()
                        .isolation_level(IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start(),
                )
                .map_err(|e| read_error(e, &shown))?;
            let out = f(
                &runtime,
                &Tx {
                    tx: &tx,
                    prepared: &pooled.prepared,
                },
            )?;
            runtime
                .block_on(tx.commit())
                .map_err(|e| read_error(e, &shown))?;
            Ok(out)
        })();
        if out.is_ok() {
            self.give_back(pooled);
        }
        out
    }
}

/// The reader needs the schema the agents write since version 3 (the rollups with
/// histograms); an agent of this version migrates it on its start.
async fn check_schema(client: &Client, shown: &str) -> Result<(), StoreError> {
    let has: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'heartbeat_migrations')",
            &[],
        )
        .await
        .map_err(|e| read_error(e, shown))?
        .get(0);
    if !has {
        return Err(StoreError::unavailable(
            "the fleet database has no tables yet: start an agent with FLEET_DATABASE_URL first",
        ));
    }
    let version: Option<i32> = client
        .query_one("SELECT max(version) FROM heartbeat_migrations", &[])
        .await
        .map_err(|e| read_error(e, shown))?
        .get(0);
    let version = version.unwrap_or(0);
    if version < schema::latest_version() {
        return Err(StoreError::unavailable(format!(
            "the fleet database has schema version {version}, older than this dashboard's {}: \
             start an agent of this version, which upgrades it",
            schema::latest_version()
        )));
    }
    if version > schema::latest_version() {
        return Err(StoreError::new(
            ErrorKind::Misconfigured,
            format!(
                "the fleet database has schema version {version}, newer than this dashboard knows \
                 ({}): upgrade the dashboard",
                schema::latest_version()
            ),
        ));
    }
    Ok(())
}

fn unavailable(e: FleetError) -> StoreError {
    StoreError::unavailable(e.to_string())
}

/// A failed statement as a store error: a lost connection is `Broken`, anything else the server
/// refused (a missing privilege) `Misconfigured`. The message names the redacted URL.
fn read_error(e: tokio_postgres::Error, shown: &str) -> StoreError {
    let kind = if e.is_closed() || e.as_db_error().is_none() {
        ErrorKind::Broken
    } else {
        ErrorKind::Misconfigured
    };
    StoreError::new(
        kind,
        format!("FLEET_DATABASE_URL ({shown}): {}", crate::describe(&e)),
    )
}

impl ReadStore for FleetReader {
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&dyn Snapshot) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self.host_snapshot(None, f)? {
            HostPick::Ran => Ok(()),
            HostPick::Unknown => Err(StoreError::unavailable("the fleet database has no host")),
            HostPick::Ambiguous(0) => Err(StoreError::unavailable(
                "no agent has shipped to the fleet database yet",
            )),
            HostPick::Ambiguous(n) => Err(StoreError::new(
                ErrorKind::Rejected,
                format!("the fleet database has {n} hosts: name one"),
            )),
        }
    }

    fn max_concurrent_reads(&self) -> usize {
        POOL
    }

    fn describe(&self) -> String {
        format!("fleet database {}", self.shown)
    }

    fn fleet(&self) -> Option<&dyn FleetStore> {
        Some(self)
    }
}

impl FleetStore for FleetReader {
    fn hosts(&self, now_ms: i64) -> Result<Vec<HostSummary>, StoreError> {
        let shown = self.shown.clone();
        self.transaction(|runtime, tx| {
            runtime
                .block_on(hosts(tx, now_ms))
                .map_err(|e| read_error(e, &shown))
        })
    }

    fn host_snapshot(
        &self,
        host: Option<&str>,
        f: &mut dyn FnMut(&dyn Snapshot) -> Result<(), StoreError>,
    ) -> Result<HostPick, StoreError> {
        let shown = self.shown.clone();
        self.transaction(|runtime, tx| {
            let picked = runtime
                .block_on(pick(tx, host))
                .map_err(|e| read_error(e, &shown))?;
            let (name, rollups_from_ms) = match picked {
                Ok(found) => found,
                Err(pick) => return Ok(pick),
            };
            let snap = HostSnapshot {
                tx,
                runtime,
                shown: &shown,
                host: &name,
                rollups_from_ms,
            };
            f(&snap)?;
            Ok(HostPick::Ran)
        })
    }

    fn alerts(&self, host: Option<&str>, limit: u32) -> Result<Option<Vec<HostAlert>>, StoreError> {
        let shown = self.shown.clone();
        self.transaction(|runtime, tx| {
            runtime
                .block_on(async {
                    if let Some(h) = host
                        && tx
                            .query_opt("SELECT 1 FROM hosts WHERE name = $1", &[&h])
                            .await?
                            .is_none()
                    {
                        return Ok(None);
                    }
                    let rows = tx
                        .query(
                            &format!(
                                "SELECT host, {ALERT_COLUMNS} FROM alerts \
                                 WHERE $1::text IS NULL OR host = $1 \
                                 ORDER BY created_ms DESC NULLS LAST, seq DESC LIMIT $2"
                            ),
                            &[&host, &i64::from(limit)],
                        )
                        .await?;
                    Ok(Some(
                        rows.iter()
                            .map(|r| HostAlert {
                                host: r.get(0),
                                alert: alert_row(r, 1),
                            })
                            .collect(),
                    ))
                })
                .map_err(|e| read_error(e, &shown))
        })
    }
}

/// The host to read: the named one, or the fleet's only one.
async fn pick(
    tx: &Tx<'_>,
    host: Option<&str>,
) -> Result<Result<(String, i64), HostPick>, tokio_postgres::Error> {
    if let Some(name) = host {
        let row = tx
            .query_opt(
                "SELECT rollups_from_ms FROM hosts WHERE name = $1",
                &[&name],
            )
            .await?;
        return Ok(row
            .map(|r| (name.to_owned(), r.get(0)))
            .ok_or(HostPick::Unknown));
    }
    let rows = tx
        .query(
            "SELECT name, rollups_from_ms FROM hosts ORDER BY name LIMIT 2",
            &[],
        )
        .await?;
    if let [only] = rows.as_slice() {
        return Ok(Ok((only.get(0), only.get(1))));
    }
    let n: i64 = tx
        .query_one("SELECT count(*) FROM hosts", &[])
        .await?
        .get(0);
    Ok(Err(HostPick::Ambiguous(usize::try_from(n).unwrap_or(0))))
}

async fn hosts(tx: &Tx<'_>, now_ms: i64) -> Result<Vec<HostSummary>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT h.name, h.interval_seconds, h.shipped_ms, c.id, c.ts_ms, c.timestamp_lima, \
                    c.internet_status, c.worker_status \
             FROM hosts h LEFT JOIN LATERAL ( \
                 SELECT id, ts_ms, timestamp_lima, internet_status, worker_status \
                 FROM monitoring_cycles m WHERE m.host = h.name AND m.ts_ms IS NOT NULL \
                 ORDER BY m.ts_ms DESC LIMIT 1) c ON true \
             ORDER BY h.name",
            &[],
        )
        .await?;
    let mut out: Vec<HostSummary> = rows
        .iter()
        .map(|r| HostSummary {
            name: r.get(0),
            interval_seconds: r.get(1),
            shipped_ms: r.get(2),
            last_cycle_ms: r.get(4),
            last_updated: r.get(5),
            statuses: [0; 5],
            internet_status: r.get(6),
            worker_status: r.get(7),
            uptime_1h: vec![None; SPARK_BLOCKS as usize],
        })
        .collect();
    let cycle_ids: Vec<Option<String>> = rows.iter().map(|r| r.get(3)).collect();
    let ids: Vec<&str> = cycle_ids.iter().flatten().map(String::as_str).collect();
    let counts = tx
        .query(
            "SELECT cycle_id, status, count(*) FROM service_checks \
             WHERE cycle_id = ANY($1) GROUP BY 1, 2",
            &[&ids],
        )
        .await?;
    let by_cycle: HashMap<&str, usize> = cycle_ids
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.as_deref().map(|c| (c, i)))
        .collect();
    for r in &counts {
        let Some(&i) = by_cycle.get(r.get::<_, &str>(0)) else {
            continue;
        };
        let n: i64 = r.get(2);
        out[i].statuses[status_index(stored_status(r.get(1)))] += u64::try_from(n).unwrap_or(0);
    }
    let names: Vec<&str> = out.iter().map(|h| h.name.as_str()).collect();
    let by_name: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).to_owned(), i))
        .collect();
    let last = now_ms.div_euclid(1000).div_euclid(SPARK_TIER_S) * SPARK_TIER_S;
    let first = last - (SPARK_BLOCKS - 1) * SPARK_TIER_S;
    let tier = SPARK_TIER_S as i32;
    let blocks = tx
        .query(
            "SELECT host, start_s, checks, healthy_checks FROM rollup_cycles \
             WHERE host = ANY($1) AND tier_s = $2 AND start_s >= $3 AND start_s <= $4",
            &[&names, &tier, &first, &last],
        )
        .await?;
    for r in &blocks {
        let Some(h) = by_name
            .get(r.get::<_, &str>(0))
            .and_then(|&i| out.get_mut(i))
        else {
            continue;
        };
        let (n, healthy): (i64, i64) = (r.get(2), r.get(3));
        let slot = (r.get::<_, i64>(1) - first).div_euclid(SPARK_TIER_S);
        if let Some(v) = usize::try_from(slot)
            .ok()
            .and_then(|i| h.uptime_1h.get_mut(i))
            && n > 0
        {
            *v = Some(healthy as f64 * 100.0 / n as f64);
        }
    }
    Ok(out)
}

const ALERT_COLUMNS: &str = "seq, created_at, item, old_status, new_status, title, message, \
     attempts, delivered_at, last_error, \
     COALESCE(delivery_state, CASE WHEN delivered_at IS NOT NULL THEN 'delivered' ELSE 'pending' END), \
     redelivered_at";

fn alert_row(r: &Row, at: usize) -> AlertRow {
    AlertRow {
        id: r.get(at),
        created_at: r.get(at + 1),
        item: r.get(at + 2),
        old_status: r.get(at + 3),
        new_status: r.get(at + 4),
        title: r.get(at + 5),
        message: r.get(at + 6),
        attempts: r.get(at + 7),
        delivered_at: r.get(at + 8),
        last_error: r.get(at + 9),
        delivery_state: r.get(at + 10),
        redelivered_at: r.get(at + 11),
        deliveries: Vec::new(),
    }
}

/// One host's data inside one transaction.
struct HostSnapshot<'a> {
    tx: &'a Tx<'a>,
    runtime: &'a Handle,
    shown: &'a str,
    host: &'a str,
    rollups_from_ms: i64,
}

impl HostSnapshot<'_> {
    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        self.runtime
            .block_on(f)
            .map_err(|e| read_error(e, self.shown))
    }

    /// Raw cycles and checks of `[from_s, to_s)`, each in the bucket of its instant; in
    /// instant order, as the SQLite reader reads them through its index.
    async fn raw_into(
        &self,
        buckets: &mut [BucketAcc],
        (start_s, width_s): (i64, i64),
        from_s: i64,
        to_s: i64,
    ) -> Result<(), tokio_postgres::Error> {
        let (from_ms, to_ms) = (from_s * 1000, to_s * 1000);
        let bucket = |ts_ms: i64| bucket_index(start_s * 1000, width_s * 1000, ts_ms);
        let cycles = self
            .tx
            .query(
                "SELECT ts_ms, cpu_percent, ram_percent, disk_percent, cycle_duration_ms, \
                        internet_status, ping_ms, worker_status \
                 FROM monitoring_cycles WHERE host = $1 AND ts_ms >= $2 AND ts_ms < $3 \
                 ORDER BY ts_ms, seq",
                &[&self.host, &from_ms, &to_ms],
            )
            .await?;
        for r in &cycles {
            let Some(b) = bucket(r.get(0)).and_then(|i| buckets.get_mut(i)) else {
                continue;
            };
            b.cycles.add(
                r.get(1),
                r.get(2),
                r.get(3),
                r.get::<_, Option<i64>>(4).map(|d| d as f64),
                r.get(5),
                r.get(6),
                r.get(7),
            );
        }
        let checks = self
            .tx
            .query(
                "SELECT c.ts_ms, s.service_name, s.status, s.latency_ms \
                 FROM monitoring_cycles c JOIN service_checks s ON s.cycle_id = c.id \
                 WHERE c.host = $1 AND c.ts_ms >= $2 AND c.ts_ms < $3 \
                 ORDER BY c.ts_ms, c.seq, s.id",
                &[&self.host, &from_ms, &to_ms],
            )
            .await?;
        for r in &checks {
            let Some(b) = bucket(r.get(0)).and_then(|i| buckets.get_mut(i)) else {
                continue;
            };
            if let Some(acc) = b.service(r.get(1)) {
                acc.add(stored_status(r.get(2)), r.get(3));
            }
        }
        Ok(())
    }

    /// Rollup blocks of `[from_s, to_s)`, each in the bucket of its start, merged in the order
    /// the SQLite reader merges them (its tier ranges in turn, blocks by start in each). Each
    /// range is its own index scan (`LATERAL ... OFFSET 0` keeps the planner from turning many
    /// ranges into a hash join over all of the host's blocks: 1.3 s instead of 30 ms for `7d`
    /// on 30 days of 20 services).
    async fn rollups_into(
        &self,
        buckets: &mut [BucketAcc],
        (start_s, width_s): (i64, i64),
        from_s: i64,
        to_s: i64,
    ) -> Result<(), tokio_postgres::Error> {
        let ranges = tier_ranges(start_s, width_s, buckets.len(), from_s, to_s);
        if ranges.is_empty() {
            return Ok(());
        }
        let tiers: Vec<i32> = ranges
            .iter()
            .map(|r| i32::try_from(r.0).unwrap_or(i32::MAX))
            .collect();
        let froms: Vec<i64> = ranges.iter().map(|r| r.1).collect();
        let tos: Vec<i64> = ranges.iter().map(|r| r.2).collect();
        let idx = |s: i64| bucket_index(start_s, width_s, s);
        let cycles = self
            .tx
            .query(
                "SELECT r.start_s, r.n, r.cpu_sum, r.ram_sum, r.disk_sum, r.dur_n, r.dur_sum, \
                        r.dur_min, r.dur_max, r.ping_n, r.ping_sum, r.ping_min, r.ping_max, \
                        r.inet_up, r.workers \
                 FROM UNNEST($2::int[], $3::bigint[], $4::bigint[]) WITH ORDINALITY \
                      AS k(tier, a, b, ord) \
                 CROSS JOIN LATERAL (SELECT * FROM rollup_cycles \
                      WHERE host = $1 AND tier_s = k.tier AND start_s >= k.a AND start_s < k.b \
                      OFFSET 0) r \
                 ORDER BY k.ord, r.start_s",
                &[&self.host, &tiers, &froms, &tos],
            )
            .await?;
        for r in &cycles {
            if let Some(b) = idx(r.get(0)).and_then(|i| buckets.get_mut(i)) {
                b.cycles.merge(&cycle_block(r, 1));
            }
        }
        let services = self
            .tx
            .query(
                "SELECT r.start_s, r.service_name, r.n, r.healthy, r.error, r.timeout, r.down, \
                        r.unknown, r.lat_n, r.lat_sum, r.lat_min, r.lat_max, r.hist \
                 FROM UNNEST($2::int[], $3::bigint[], $4::bigint[]) WITH ORDINALITY \
                      AS k(tier, a, b, ord) \
                 CROSS JOIN LATERAL (SELECT * FROM rollup_services \
                      WHERE host = $1 AND tier_s = k.tier AND start_s >= k.a AND start_s < k.b \
                      OFFSET 0) r \
                 ORDER BY k.ord, r.start_s, r.service_name",
                &[&self.host, &tiers, &froms, &tos],
            )
            .await?;
        for r in &services {
            let Some(b) = idx(r.get(0)).and_then(|i| buckets.get_mut(i)) else {
                continue;
            };
            if let Some(acc) = b.service(r.get(1)) {
                acc.merge(&service_block(r, 2));
            }
        }
        Ok(())
    }

    /// As the SQLite reader: on a grid of whole minutes, rollups from the first whole minute
    /// they cover and raw rows before; off that grid, raw rows from their oldest minute and
    /// rollups before (off by at most a minute at each bucket edge there).
    async fn window(
        &self,
        start_s: i64,
        width_s: i64,
        count: usize,
    ) -> Result<Window, tokio_postgres::Error> {
        let width_s = width_s.max(1);
        let mut buckets = vec![BucketAcc::default(); count];
        let end_s = start_s + width_s * count as i64;
        let minute_grid = width_s % 60 == 0 && start_s % 60 == 0;
        let (split_s, older) = if minute_grid {
            (
                Source::rollup_split_s(self.rollups_from_ms, start_s, end_s),
                Source::Raw,
            )
        } else {
            let oldest: Option<i64> = self
                .tx
                .query_one(
                    "SELECT min(ts_ms) FROM monitoring_cycles WHERE host = $1",
                    &[&self.host],
                )
                .await?
                .get(0);
            // Raw rows are never pruned here, so they reach back before any rollup.
            let raw_from_s = oldest.map_or(end_s, |ms| ms.div_euclid(60_000) * 60);
            (raw_from_s.clamp(start_s, end_s), Source::Rollup)
        };
        let (parts, source) = Source::split(older, start_s, split_s, end_s);
        for (kind, a, b) in parts {
            if a >= b {
                continue;
            }
            if kind == Source::Raw {
                self.raw_into(&mut buckets, (start_s, width_s), a, b)
                    .await?;
            } else {
                self.rollups_into(&mut buckets, (start_s, width_s), a, b)
                    .await?;
            }
        }
        Ok(Window {
            start_s,
            width_s,
            buckets,
            source,
        })
    }
}

impl Snapshot for HostSnapshot<'_> {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            rollups_from_ms: Some(self.rollups_from_ms),
        }
    }

    fn latest_cycle(&self) -> Result<Option<LatestCycle>, StoreError> {
        self.run(async {
            let Some(r) = self
                .tx
                .query_opt(
                    "SELECT id, timestamp_lima, ts_ms, cpu_percent, ram_percent, ram_used_mb, \
                            disk_percent, uptime_seconds, container_count, internet_status, \
                            ping_ms, worker_status, cycle_duration_ms \
                     FROM monitoring_cycles WHERE host = $1 AND ts_ms IS NOT NULL \
                     ORDER BY ts_ms DESC LIMIT 1",
                    &[&self.host],
                )
                .await?
            else {
                return Ok(None);
            };
            let id: String = r.get(0);
            let checks = self
                .tx
                .query(
                    "SELECT s.service_name, s.service_url, s.status, s.status_code, \
                            s.latency_ms, s.error_message, c.expires_ms \
                     FROM service_checks s LEFT JOIN service_certificates c \
                          ON c.host = s.host AND c.service_name = s.service_name \
                     WHERE s.cycle_id = $1 ORDER BY s.id",
                    &[&id],
                )
                .await?
                .iter()
                .map(|c| CheckRow {
                    name: c.get(0),
                    url: c.get(1),
                    status: stored_status(c.get(2)),
                    status_code: c.get(3),
                    latency_ms: c.get(4),
                    error_message: c.get(5),
                    cert_expires_ms: c.get(6),
                })
                .collect();
            Ok(Some(LatestCycle {
                id,
                timestamp: r.get(1),
                ts_ms: r.get(2),
                cpu_percent: r.get(3),
                ram_percent: r.get(4),
                ram_used_mb: r.get(5),
                disk_percent: r.get(6),
                uptime_seconds: r.get(7),
                container_count: r.get(8),
                internet_status: r.get(9),
                ping_ms: r.get(10),
                worker_status: r.get(11),
                cycle_duration_ms: r.get(12),
                checks,
            }))
        })
    }

    fn alerts(&self, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        self.run(async {
            let rows = self
                .tx
                .query(
                    &format!(
                        "SELECT {ALERT_COLUMNS} FROM alerts WHERE host = $1 \
                         ORDER BY created_ms DESC NULLS LAST, seq DESC LIMIT $2"
                    ),
                    &[&self.host, &i64::from(limit)],
                )
                .await?;
            Ok(rows.iter().map(|r| alert_row(r, 0)).collect())
        })
    }

    fn window(&self, start_s: i64, width_s: i64, count: usize) -> Result<Window, StoreError> {
        self.run(HostSnapshot::window(self, start_s, width_s, count))
    }

    fn recent_cycle_instants_ms(&self, limit: usize) -> Result<Vec<i64>, StoreError> {
        self.run(async {
            let rows = self
                .tx
                .query(
                    "SELECT ts_ms FROM monitoring_cycles WHERE host = $1 AND ts_ms IS NOT NULL \
                     ORDER BY ts_ms DESC LIMIT $2",
                    &[&self.host, &i64::try_from(limit).unwrap_or(i64::MAX)],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Incidents are not shipped to the fleet database.
    fn incidents(
        &self,
        _from_ms: i64,
        _to_ms: i64,
        _limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        Ok(Vec::new())
    }
}
