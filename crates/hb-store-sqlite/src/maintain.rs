//! The writer's housekeeping between cycles ([`Housekeeping`]): decides what the next small
//! step is (pruning when due, else one backfill batch), keeps each call within its time budget,
//! and writes the log lines (the upgrade warning at the first call, backfill progress, one
//! retention line a day). The statements themselves live in `retention` and `backfill`.

use std::path::Path;
use std::time::{Duration, Instant};

use hb_store::{DAY_MS, Maintenance, Retention};
use rusqlite::{Connection, TransactionBehavior};

use crate::{SqliteError, backfill, retention, rollup};

/// How long after a pruning pass found nothing left the next one looks again. Pruning keeps up
/// with the minute tier at this pace (a block a minute), and looking costs a few index probes.
const PRUNE_EVERY_MS: i64 = 60_000;
/// Backfill progress is logged at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Backfill {
    /// Not looked at since the writer opened (or a cycle older than `covered_from_ms` was
    /// written since).
    Unknown,
    Running(Progress),
    Done,
}

#[derive(Debug)]
struct Progress {
    remaining: u64,
    done: u64,
    batches: u64,
    started: Instant,
    last_log: Instant,
}

/// The housekeeping state of one writer connection.
#[derive(Debug)]
pub(crate) struct Housekeeping {
    retention: Retention,
    started: bool,
    next_prune_ms: i64,
    backfill: Backfill,
    /// What was pruned since the last daily line.
    since_line: Maintenance,
    last_line_ms: Option<i64>,
}

impl Housekeeping {
    pub(crate) fn new(retention: Retention) -> Housekeeping {
        Housekeeping {
            retention,
            started: false,
            next_prune_ms: i64::MIN,
            backfill: Backfill::Unknown,
            since_line: Maintenance::default(),
            last_line_ms: None,
        }
    }

    pub(crate) fn retention(&self) -> Retention {
        self.retention
    }

    /// A cycle older than `covered_from_ms` was written (not rolled up): backfill picks it up.
    pub(crate) fn uncovered_write(&mut self) {
        if matches!(self.backfill, Backfill::Done) {
            self.backfill = Backfill::Unknown;
        }
    }

    /// Steps until nothing is left or `budget` is spent (a step that starts before the end of
    /// the budget runs to its end: one transaction of at most a batch).
    pub(crate) fn run(
        &mut self,
        conn: &mut Connection,
        path: &Path,
        rollups: &mut rollup::RollupCache,
        covered_from_ms: &mut i64,
        now_ms: i64,
        budget: Duration,
    ) -> Result<Maintenance, SqliteError> {
        let deadline = Instant::now() + budget;
        let mut report = Maintenance::default();
        if !self.started {
            self.first_start(conn, now_ms)?;
            self.started = true;
            self.last_line_ms = Some(now_ms);
        }
        let result = loop {
            match self.step(conn, rollups, covered_from_ms, now_ms, &mut report) {
                Ok(true) if Instant::now() < deadline => continue,
                Ok(worked) => {
                    report.more = worked;
                    break Ok(());
                }
                Err(e) => break Err(e),
            }
        };
        self.since_line.cycles_pruned += report.cycles_pruned;
        self.since_line.checks_pruned += report.checks_pruned;
        self.since_line.rollups_pruned += report.rollups_pruned;
        self.since_line.alerts_pruned += report.alerts_pruned;
        self.daily_line(path, now_ms);
        if let Err(e) = result {
            // A rolled-back step may have touched blocks the cache holds.
            rollups.clear();
            return Err(e);
        }
        Ok(report)
    }

    /// One transaction's worth of work; whether there was any.
    fn step(
        &mut self,
        conn: &mut Connection,
        rollups: &mut rollup::RollupCache,
        covered_from_ms: &mut i64,
        now_ms: i64,
        report: &mut Maintenance,
    ) -> Result<bool, SqliteError> {
        if now_ms >= self.next_prune_ms && self.retention != Retention::KEEP_ALL {
            let pruned = retention::step(conn, &self.retention, now_ms)?;
            if pruned.rollups > 0 {
                rollups.clear();
            }
            if pruned.any() {
                report.cycles_pruned += pruned.cycles;
                report.checks_pruned += pruned.checks;
                report.rollups_pruned += pruned.rollups;
                report.alerts_pruned += pruned.alerts;
                return Ok(true);
            }
            self.next_prune_ms = now_ms.saturating_add(PRUNE_EVERY_MS);
        }
        match &mut self.backfill {
            Backfill::Done => Ok(false),
            Backfill::Unknown => {
                let remaining = backfill::uncovered_cycles(conn)?;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if remaining == 0 {
                    if backfill::meta(&tx, backfill::KEY_DONE)? != Some(1) {
                        backfill::set_meta(&tx, backfill::KEY_REMAINING, 0)?;
                        backfill::set_meta(&tx, backfill::KEY_DONE, 1)?;
                    }
                    tx.commit()?;
                    self.backfill = Backfill::Done;
                    return Ok(false);
                }
                let n = i64::try_from(remaining).unwrap_or(i64::MAX);
                if backfill::meta(&tx, backfill::KEY_TOTAL)?.is_none() {
                    backfill::set_meta(&tx, backfill::KEY_TOTAL, n)?;
                }
                backfill::set_meta(&tx, backfill::KEY_REMAINING, n)?;
                backfill::set_meta(&tx, backfill::KEY_DONE, 0)?;
                tx.commit()?;
                tracing::info!(
                    remaining_cycles = remaining,
                    covered_from_ms = *covered_from_ms,
                    "rollup backfill: building rollups for {remaining} older raw cycles in the background, newest first"
                );
                let now = Instant::now();
                self.backfill = Backfill::Running(Progress {
                    remaining,
                    done: 0,
                    batches: 0,
                    started: now,
                    last_log: now,
                });
                Ok(true)
            }
            Backfill::Running(progress) => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let batch = backfill::batch(&tx, now_ms, &self.retention, progress.remaining)?;
                tx.commit()?;
                // The batch merged into blocks the cache may hold (the newest ones, when the
                // backfill front is near the present).
                rollups.clear();
                let Some(batch) = batch else {
                    tracing::info!(
                        cycles = progress.done,
                        batches = progress.batches,
                        elapsed_s = progress.started.elapsed().as_secs_f64(),
                        covered_from_ms = *covered_from_ms,
                        "rollup backfill done: every raw cycle is rolled up"
                    );
                    self.backfill = Backfill::Done;
                    return Ok(true);
                };
                *covered_from_ms = batch.covered_from_ms;
                report.cycles_backfilled += batch.cycles;
                progress.done += batch.cycles;
                progress.batches += 1;
                progress.remaining = progress.remaining.saturating_sub(batch.cycles);
                if progress.last_log.elapsed() >= PROGRESS_EVERY {
                    let rate = progress.done as f64 / progress.started.elapsed().as_secs_f64();
                    let eta_s = (rate > 0.0).then(|| (progress.remaining as f64 / rate).round());
                    tracing::info!(
                        done_cycles = progress.done,
                        remaining_cycles = progress.remaining,
                        cycles_per_s = rate.round(),
                        eta_s,
                        covered_from_ms = batch.covered_from_ms,
                        "rollup backfill in progress"
                    );
                    progress.last_log = Instant::now();
                }
                // Raw rows past their retention that this batch covered may go now.
                if self.retention.raw_days > 0 {
                    self.next_prune_ms = i64::MIN;
                }
                Ok(true)
            }
        }
    }

    /// The one warning of a start on a database holding raw rows past the retention that no
    /// rollup covers yet (an older tool's database): nothing is lost by surprise.
    fn first_start(&self, conn: &Connection, now_ms: i64) -> Result<(), SqliteError> {
        let days = self.retention.raw_days;
        let Some(cutoff) = Retention::cutoff_ms(days, now_ms) else {
            return Ok(());
        };
        let count = |before: i64| -> rusqlite::Result<i64> {
            conn.prepare_cached("SELECT count(*) FROM monitoring_cycles WHERE ts_ms < ?1")?
                .query_row([before], |r| r.get(0))
        };
        let old = count(cutoff)?;
        if old == 0 {
            return Ok(());
        }
        let uncovered = count(cutoff.min(backfill::covered_from(conn)?))?;
        if uncovered > 0 {
            tracing::warn!(
                old_cycles = old,
                retention_days = days,
                "{old} raw cycles (with their service checks) are older than RETENTION_DAYS={days}: \
                 their rollups are built first (backfill, in the background) so every chart keeps \
                 its history, and only then are those raw rows deleted. To keep every raw row, \
                 set RETENTION_DAYS=0"
            );
        } else {
            tracing::info!(
                old_cycles = old,
                retention_days = days,
                "deleting {old} raw cycles older than RETENTION_DAYS={days} (their rollups stay)"
            );
        }
        Ok(())
    }

    fn daily_line(&mut self, path: &Path, now_ms: i64) {
        let Some(last) = self.last_line_ms else {
            return;
        };
        if now_ms.saturating_sub(last) < DAY_MS || self.retention == Retention::KEEP_ALL {
            return;
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = path.as_os_str().to_os_string();
        wal.push("-wal");
        let s = &self.since_line;
        tracing::info!(
            cycles_pruned = s.cycles_pruned,
            checks_pruned = s.checks_pruned,
            rollups_pruned = s.rollups_pruned,
            alerts_pruned = s.alerts_pruned,
            file_bytes = size(path),
            wal_bytes = size(Path::new(&wal)),
            "retention: pruned {} cycles, {} checks, {} rollup rows and {} alerts since the last line",
            s.cycles_pruned,
            s.checks_pruned,
            s.rollups_pruned,
            s.alerts_pruned
        );
        self.since_line = Maintenance::default();
        self.last_line_ms = Some(now_ms);
    }
}
