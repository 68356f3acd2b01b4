//! One session with the fleet database and the transaction that ships a batch.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use hb_store::{JournalAlert, JournalBatch, JournalCursor};
use tokio_postgres::Client;
use tokio_postgres::config::SslMode as DriverSslMode;

use crate::tls::{SslMode, connector};
use crate::{FleetError, redact};

/// Who is shipping.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    /// `HOST_NAME`.
    pub name: String,
    /// This program's version.
    pub version: String,
    /// `LOOP_INTERVAL_SECONDS`.
    pub interval_seconds: f64,
}

/// A connection to the fleet database and the task driving it (stopped with it).
pub(crate) struct Session {
    pub(crate) client: Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// An open session with the fleet database, for an agent's shipping.
pub struct Sink {
    session: Session,
    shown: String,
}

/// Connects to `url` (`postgres://` or `postgresql://`, libpq's `sslmode` honoured: see
/// [`crate::tls`]) within `timeout`.
pub async fn connect(url: &str, application: &str, timeout: Duration) -> Result<Sink, FleetError> {
    Ok(Sink {
        session: open(url, application, timeout).await?,
        shown: redact(url),
    })
}

/// Opens a connection to `url` within `timeout` (see [`connect`]).
pub(crate) async fn open(
    url: &str,
    application: &str,
    timeout: Duration,
) -> Result<Session, FleetError> {
    let shown = redact(url);
    let bad = |why: String| FleetError::Url {
        shown: shown.clone(),
        why,
    };
    let (without_mode, mode) = split_sslmode(url).map_err(bad)?;
    let mut config = tokio_postgres::Config::from_str(&without_mode)
        .map_err(|e| bad(format!("not a PostgreSQL URL: {e}")))?;
    config
        .application_name(application)
        .connect_timeout(timeout)
        .ssl_mode(match mode {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::Verify => DriverSslMode::Require,
        });
    let at = |e: tokio_postgres::Error| FleetError::from(e).at(&shown);
    let (client, driver) = match connector(mode).map_err(bad)? {
        None => {
            let (client, connection) =
                tokio::time::timeout(timeout, config.connect(tokio_postgres::NoTls))
                    .await
                    .map_err(|_| timed_out(&shown))?
                    .map_err(at)?;
            (client, tokio::spawn(drive(connection)))
        }
        Some(tls) => {
            let (client, connection) = tokio::time::timeout(timeout, config.connect(tls))
                .await
                .map_err(|_| timed_out(&shown))?
                .map_err(at)?;
            (client, tokio::spawn(drive(connection)))
        }
    };
    Ok(Session { client, driver })
}

async fn drive<C>(connection: C)
where
    C: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %crate::describe(&e), "fleet database connection ended");
    }
}

fn timed_out(shown: &str) -> FleetError {
    FleetError::Server {
        shown: shown.to_owned(),
        why: "no connection within the timeout".to_owned(),
    }
}

/// The URL without its `sslmode` parameter (the driver knows only some of libpq's modes), and
/// the mode (default `prefer`, as libpq).
fn split_sslmode(url: &str) -> Result<(String, SslMode), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("expected postgres://user:password@host:port/database".to_owned());
    }
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), SslMode::Prefer));
    };
    let mut mode = SslMode::Prefer;
    let mut kept = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        match part.strip_prefix("sslmode=") {
            Some(value) => {
                mode = SslMode::parse(value).ok_or_else(|| {
                    format!(
                        "sslmode={value} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    )
                })?;
            }
            None => kept.push(part),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

const UPSERT_HOST: &str = "INSERT INTO hosts (name, first_seen_ms, last_seen_ms, interval_seconds, version) \
     VALUES ($1, $2, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
     last_seen_ms = GREATEST(hosts.last_seen_ms, excluded.last_seen_ms), \
     interval_seconds = excluded.interval_seconds, version = excluded.version";

const INSERT_CYCLES: &str = "INSERT INTO monitoring_cycles (id, host, seq, timestamp_lima, ts_ms, \
     cpu_percent, ram_percent, ram_used_mb, disk_percent, uptime_seconds, container_count, \
     internet_status, ping_ms, worker_status, cycle_duration_ms) \
     SELECT u.id, $1, u.seq, u.ts, u.ts_ms, u.cpu, u.ram, u.ram_mb, u.disk, u.up, u.containers, \
            u.inet, u.ping, u.worker, u.dur \
     FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::float8[], $7::float8[], \
                 $8::float8[], $9::float8[], $10::float8[], $11::bigint[], $12::bool[], \
                 $13::float8[], $14::bigint[], $15::bigint[]) WITH ORDINALITY \
          AS u(id, seq, ts, ts_ms, cpu, ram, ram_mb, disk, up, containers, inet, ping, worker, dur, ord) \
     ORDER BY u.ord \
     ON CONFLICT (id) DO NOTHING RETURNING id";

const INSERT_CHECKS: &str = "INSERT INTO service_checks (host, cycle_id, service_name, service_url, \
     status, status_code, latency_ms, error_message) \
     SELECT $1, u.cycle, u.name, u.url, u.status, u.code, u.latency, u.error \
     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::float8[], \
                 $8::text[]) WITH ORDINALITY AS u(cycle, name, url, status, code, latency, error, ord) \
     ORDER BY u.ord";

const UPSERT_ALERTS: &str = "INSERT INTO alerts (host, uid, seq, created_at, created_ms, item, \
     old_status, new_status, title, message, attempts, delivered_at, last_error, delivery_state, \
     redelivered_at) \
     SELECT $1, u.uid, u.seq, u.created_at, u.created_ms, u.item, u.old_status, u.new_status, \
            u.title, u.message, u.attempts, u.delivered_at, u.last_error, u.state, u.redelivered_at \
     FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], \
                 $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::text[], \
                 $14::text[], $15::text[]) \
          AS u(uid, seq, created_at, created_ms, item, old_status, new_status, title, message, \
               attempts, delivered_at, last_error, state, redelivered_at) \
     ON CONFLICT (host, uid) DO UPDATE SET attempts = excluded.attempts, \
       delivered_at = excluded.delivered_at, last_error = excluded.last_error, \
       delivery_state = excluded.delivery_state, redelivered_at = excluded.redelivered_at";

const SAVE_POSITION: &str = "UPDATE hosts SET cycle_seq = $2, cycle_id = $3, alert_seq = $4, \
     shipped_ms = $5 WHERE name = $1";

impl Sink {
    /// Brings the schema up to date (see [`crate::schema::migrate`]).
    pub async fn migrate(&mut self) -> Result<Vec<i32>, FleetError> {
        crate::schema::migrate(&mut self.session.client)
            .await
            .map_err(|e| e.at(&self.shown))
    }

    /// Claims `host` for the journal `journal_id`: the first journal to ship under a name owns
    /// it; another one is refused ([`FleetError::HostTaken`]) before it writes anything. A name
    /// whose owner was released (`journal_id` set to NULL by the operator: the agent's local
    /// database was replaced) is claimed with its position reset, since the old position counts
    /// in another journal; the new journal then ships from its start (nothing twice: cycles and
    /// alerts are keyed by their ids).
    pub async fn claim(
        &self,
        host: &HostInfo,
        journal_id: &str,
        now_ms: i64,
    ) -> Result<(), FleetError> {
        let owner: Option<String> = self
            .session
            .client
            .query_one(
                "INSERT INTO hosts (name, first_seen_ms, last_seen_ms, interval_seconds, version, journal_id) \
                 VALUES ($1, $2, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
                 cycle_seq = CASE WHEN hosts.journal_id IS NULL THEN 0 ELSE hosts.cycle_seq END, \
                 cycle_id = CASE WHEN hosts.journal_id IS NULL THEN NULL ELSE hosts.cycle_id END, \
                 alert_seq = CASE WHEN hosts.journal_id IS NULL THEN 0 ELSE hosts.alert_seq END, \
                 journal_id = COALESCE(hosts.journal_id, excluded.journal_id) \
                 RETURNING journal_id",
                &[&host.name, &now_ms, &host.interval_seconds, &host.version, &journal_id],
            )
            .await
            .map_err(|e| FleetError::from(e).at(&self.shown))?
            .get(0);
        match owner {
            Some(owner) if owner != journal_id => Err(FleetError::HostTaken(host.name.clone())),
            _ => Ok(()),
        }
    }

    /// How far `host` got, as the fleet database knows it (`None`: never shipped).
    pub async fn position(&self, host: &str) -> Result<Option<JournalCursor>, FleetError> {
        let row = self
            .session
            .client
            .query_opt(
                "SELECT cycle_seq, cycle_id, alert_seq FROM hosts WHERE name = $1",
                &[&host],
            )
            .await
            .map_err(|e| FleetError::from(e).at(&self.shown))?;
        Ok(row.map(|r| JournalCursor {
            cycle_seq: r.get(0),
            cycle_id: r.get(1),
            alert_seq: r.get(2),
        }))
    }

    /// The uids of `host`'s alerts still pending in the fleet database (their delivery may
    /// change locally).
    pub async fn pending_alerts(&self, host: &str) -> Result<Vec<String>, FleetError> {
        Ok(self
            .session
            .client
            .query(
                "SELECT uid FROM alerts WHERE host = $1 AND delivery_state IS NULL",
                &[&host],
            )
            .await
            .map_err(|e| FleetError::from(e).at(&self.shown))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Writes `batch` and `host`'s new position `to` in one transaction: the cycles not there
    /// yet (by id) with their service rows, the alerts (new, or with their delivery updated),
    /// the host's row. A batch shipped twice changes nothing the second time.
    /// Returns how many cycles were new.
    pub async fn ship(
        &mut self,
        host: &HostInfo,
        batch: &JournalBatch,
        to: &JournalCursor,
        now_ms: i64,
    ) -> Result<u64, FleetError> {
        let shown = self.shown.clone();
        self.ship_inner(host, batch, to, now_ms)
            .await
            .map_err(|e| e.at(&shown))
    }

    async fn ship_inner(
        &mut self,
        host: &HostInfo,
        batch: &JournalBatch,
        to: &JournalCursor,
        now_ms: i64,
    ) -> Result<u64, FleetError> {
        let tx = self.session.client.transaction().await?;
        let last_seen = batch
            .cycles
            .iter()
            .filter_map(|c| c.ts_ms)
            .max()
            .unwrap_or(now_ms);
        tx.execute(
            UPSERT_HOST,
            &[
                &host.name,
                &last_seen,
                &host.interval_seconds,
                &host.version,
            ],
        )
        .await?;
        let mut inserted = 0;
        if !batch.cycles.is_empty() {
            let c = &batch.cycles;
            let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
            let seqs: Vec<i64> = c.iter().map(|c| c.seq).collect();
            let ts: Vec<&str> = c.iter().map(|c| c.timestamp.as_str()).collect();
            let ts_ms: Vec<Option<i64>> = c.iter().map(|c| c.ts_ms).collect();
            let cpu: Vec<f64> = c.iter().map(|c| c.cpu_percent).collect();
            let ram: Vec<f64> = c.iter().map(|c| c.ram_percent).collect();
            let ram_mb: Vec<f64> = c.iter().map(|c| c.ram_used_mb).collect();
            let disk: Vec<f64> = c.iter().map(|c| c.disk_percent).collect();
            let up: Vec<Option<f64>> = c.iter().map(|c| c.uptime_seconds).collect();
            let containers: Vec<i64> = c.iter().map(|c| c.container_count).collect();
            let inet: Vec<bool> = c.iter().map(|c| c.internet_status).collect();
            let ping: Vec<Option<f64>> = c.iter().map(|c| c.ping_ms).collect();
            let worker: Vec<Option<i64>> = c.iter().map(|c| c.worker_status).collect();
            let dur: Vec<Option<i64>> = c.iter().map(|c| c.cycle_duration_ms).collect();
            let new: HashSet<String> = tx
                .query(
                    INSERT_CYCLES,
                    &[
                        &host.name,
                        &ids,
                        &seqs,
                        &ts,
                        &ts_ms,
                        &cpu,
                        &ram,
                        &ram_mb,
                        &disk,
                        &up,
                        &containers,
                        &inet,
                        &ping,
                        &worker,
                        &dur,
                    ],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            inserted = new.len() as u64;
            let checks: Vec<(&str, &hb_store::JournalCheck)> = c
                .iter()
                .filter(|c| new.contains(&c.id))
                .flat_map(|c| c.checks.iter().map(move |k| (c.id.as_str(), k)))
                .collect();
            if !checks.is_empty() {
                let cycle: Vec<&str> = checks.iter().map(|(id, _)| *id).collect();
                let name: Vec<&str> = checks
                    .iter()
                    .map(|(_, k)| k.service_name.as_str())
                    .collect();
                let url: Vec<Option<&str>> = checks
                    .iter()
                    .map(|(_, k)| k.service_url.as_deref())
                    .collect();
                let status: Vec<&str> = checks.iter().map(|(_, k)| k.status.as_str()).collect();
                let code: Vec<Option<i64>> = checks.iter().map(|(_, k)| k.status_code).collect();
                let latency: Vec<Option<f64>> = checks.iter().map(|(_, k)| k.latency_ms).collect();
                let error: Vec<Option<&str>> = checks
                    .iter()
                    .map(|(_, k)| k.error_message.as_deref())
                    .collect();
                tx.execute(
                    INSERT_CHECKS,
                    &[
                        &host.name, &cycle, &name, &url, &status, &code, &latency, &error,
                    ],
                )
                .await?;
            }
            // Only the cycles just inserted (a replay inserts none), so each block always
            // equals the aggregate of its shipped raw rows.
            let fresh: Vec<&hb_store::JournalCycle> =
                c.iter().filter(|c| new.contains(&c.id)).collect();
            crate::fold::fold(&tx, &host.name, &fresh).await?;
        }
        let alerts = newest_per_uid(&batch.alerts);
        if !alerts.is_empty() {
            let a = &alerts;
            let uid: Vec<&str> = a.iter().map(|a| a.uid.as_str()).collect();
            let seq: Vec<i64> = a.iter().map(|a| a.seq).collect();
            let created_at: Vec<Option<&str>> = a.iter().map(|a| a.created_at.as_deref()).collect();
            let created_ms: Vec<Option<i64>> = a.iter().map(|a| a.created_ms).collect();
            let item: Vec<Option<&str>> = a.iter().map(|a| a.item.as_deref()).collect();
            let old: Vec<Option<&str>> = a.iter().map(|a| a.old_status.as_deref()).collect();
            let new: Vec<Option<&str>> = a.iter().map(|a| a.new_status.as_deref()).collect();
            let title: Vec<Option<&str>> = a.iter().map(|a| a.title.as_deref()).collect();
            let message: Vec<Option<&str>> = a.iter().map(|a| a.message.as_deref()).collect();
            let attempts: Vec<Option<i64>> = a.iter().map(|a| a.attempts).collect();
            let delivered: Vec<Option<&str>> =
                a.iter().map(|a| a.delivered_at.as_deref()).collect();
            let error: Vec<Option<&str>> = a.iter().map(|a| a.last_error.as_deref()).collect();
            let state: Vec<Option<&str>> = a.iter().map(|a| a.delivery_state.as_deref()).collect();
            let late: Vec<Option<&str>> = a.iter().map(|a| a.redelivered_at.as_deref()).collect();
            tx.execute(
                UPSERT_ALERTS,
                &[
                    &host.name,
                    &uid,
                    &seq,
                    &created_at,
                    &created_ms,
                    &item,
                    &old,
                    &new,
                    &title,
                    &message,
                    &attempts,
                    &delivered,
                    &error,
                    &state,
                    &late,
                ],
            )
            .await?;
        }
        tx.execute(
            SAVE_POSITION,
            &[
                &host.name,
                &to.cycle_seq,
                &to.cycle_id,
                &to.alert_seq,
                &now_ms,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(inserted)
    }
}

/// One row per uid (the last read wins: a refreshed pending alert may also be new), in order.
fn newest_per_uid(alerts: &[JournalAlert]) -> Vec<&JournalAlert> {
    let last: HashMap<&str, usize> = alerts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.uid.as_str(), i))
        .collect();
    alerts
        .iter()
        .enumerate()
        .filter(|(i, a)| last.get(a.uid.as_str()) == Some(i))
        .map(|(_, a)| a)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        let table = [
            ("postgres://h/db", "postgres://h/db", SslMode::Prefer),
            (
                "postgres://u:p@h/db?sslmode=verify-full",
                "postgres://u:p@h/db",
                SslMode::Verify,
            ),
            (
                "postgresql://h/db?connect_timeout=3&sslmode=require",
                "postgresql://h/db?connect_timeout=3",
                SslMode::Require,
            ),
            (
                "postgres://h/db?sslmode=disable",
                "postgres://h/db",
                SslMode::Disable,
            ),
        ];
        for (url, rest, mode) in table {
            assert_eq!(split_sslmode(url), Ok((rest.to_owned(), mode)), "{url}");
        }
        assert!(split_sslmode("postgres://h/db?sslmode=maybe").is_err());
        assert!(split_sslmode("mysql://h/db").is_err());
    }
}
