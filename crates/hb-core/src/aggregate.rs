//! The mergeable aggregate maths every store backend shares: running stats, latency
//! histograms and their percentiles, per-span cycle and service aggregates, and the placement
//! of time buckets on the rollup tiers. Pure: no I/O, no clock, no SQL.

use std::collections::BTreeMap;

use crate::ServiceStatus;

/// Tier widths in seconds, largest first. Every block starts at a multiple of its width since
/// the Unix epoch, so a block of a larger tier is an exact union of blocks of the smaller ones.
/// Six minutes divides the default bucket widths of every range from 3h to 30d (6, 12, 24, 48,
/// 336 and 1440 minutes), so bucket edges inside an hour cost a few rows, not sixty.
pub const TIERS_S: [i64; 4] = [86_400, 3_600, 360, 60];

/// Running count/sum/min/max of one measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub n: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Stat {
    fn default() -> Self {
        Stat {
            n: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Stat {
    pub fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, o: &Stat) {
        self.n += o.n;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    pub fn avg(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    pub fn min_opt(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }

    pub fn max_opt(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }

    /// `max − min`, the jitter of the SPEC.
    pub fn jitter(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max - self.min)
    }

    /// Rebuilds a stat from its stored columns (`min`/`max` are NULL when `n` is 0).
    pub fn from_columns(n: i64, sum: f64, min: Option<f64>, max: Option<f64>) -> Stat {
        let n = u64::try_from(n).unwrap_or(0);
        if n == 0 {
            return Stat::default();
        }
        Stat {
            n,
            sum,
            min: min.unwrap_or(f64::INFINITY),
            max: max.unwrap_or(f64::NEG_INFINITY),
        }
    }
}

/// Relative width of one latency histogram bin: percentiles read from the histogram are within
/// about ±1 % of the exact value (the bin's geometric centre, clamped to the observed min/max).
pub const HIST_RATIO: f64 = 1.02;
const HIST_BASE_MS: f64 = 0.01;
const HIST_MAX_BIN: u16 = 2_000;

/// Histogram bin of a latency in ms. Bin 0 holds everything at or below 0.01 ms.
pub fn hist_bin(latency_ms: f64) -> u16 {
    if latency_ms.is_nan() || latency_ms <= HIST_BASE_MS {
        return 0;
    }
    let b = ((latency_ms / HIST_BASE_MS).ln() / HIST_RATIO.ln()).floor() + 1.0;
    if b >= f64::from(HIST_MAX_BIN) {
        HIST_MAX_BIN
    } else {
        b as u16
    }
}

/// The value a bin stands for: its geometric centre.
pub fn hist_value(bin: u16) -> f64 {
    if bin == 0 {
        return HIST_BASE_MS;
    }
    HIST_BASE_MS * HIST_RATIO.powi(i32::from(bin) - 1) * HIST_RATIO.sqrt()
}

/// Sparse counts keyed by a small integer (latency bins, or worker status codes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts(pub BTreeMap<u16, u64>);

impl Counts {
    pub fn add(&mut self, key: u16, n: u64) {
        *self.0.entry(key).or_insert(0) += n;
    }

    pub fn merge(&mut self, o: &Counts) {
        for (k, v) in &o.0 {
            self.add(*k, *v);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Little-endian `(u16 key, u32 count)` pairs in key order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 6);
        for (k, v) in &self.0 {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&u32::try_from(*v).unwrap_or(u32::MAX).to_le_bytes());
        }
        out
    }

    /// Decodes [`Counts::encode`]; a truncated tail is ignored.
    pub fn decode(bytes: &[u8]) -> Counts {
        let mut c = Counts::default();
        c.merge_encoded(bytes);
        c
    }

    /// Adds the counts of an encoded blob.
    pub fn merge_encoded(&mut self, bytes: &[u8]) {
        for ch in bytes.chunks_exact(6) {
            let k = u16::from_le_bytes([ch[0], ch[1]]);
            let v = u32::from_le_bytes([ch[2], ch[3], ch[4], ch[5]]);
            self.add(k, u64::from(v));
        }
    }

    /// Nearest-rank percentile of a latency histogram, clamped to the observed range.
    pub fn percentile(&self, p: f64, lat: &Stat) -> Option<f64> {
        let total = self.total();
        if total == 0 || lat.n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bin, n) in &self.0 {
            seen += n;
            if seen >= rank {
                return Some(hist_value(*bin).clamp(lat.min, lat.max));
            }
        }
        Some(lat.max)
    }
}

/// Key for a worker status in [`CycleAcc::workers`]: the HTTP code, 0 for no answer.
pub fn worker_key(code: Option<i64>) -> u16 {
    code.and_then(|c| u16::try_from(c).ok()).unwrap_or(0)
}

/// Aggregate of monitoring cycles over some span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleAcc {
    pub n: u64,
    pub cpu_sum: f64,
    pub ram_sum: f64,
    pub disk_sum: f64,
    pub duration: Stat,
    pub ping: Stat,
    pub inet_up: u64,
    pub workers: Counts,
}

impl CycleAcc {
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        cpu: f64,
        ram: f64,
        disk: f64,
        duration_ms: Option<f64>,
        internet_up: bool,
        ping_ms: Option<f64>,
        worker_status: Option<i64>,
    ) {
        self.n += 1;
        self.cpu_sum += cpu;
        self.ram_sum += ram;
        self.disk_sum += disk;
        if let Some(d) = duration_ms {
            self.duration.add(d);
        }
        if let Some(p) = ping_ms {
            self.ping.add(p);
        }
        if internet_up {
            self.inet_up += 1;
        }
        self.workers.add(worker_key(worker_status), 1);
    }

    pub fn merge(&mut self, o: &CycleAcc) {
        self.n += o.n;
        self.cpu_sum += o.cpu_sum;
        self.ram_sum += o.ram_sum;
        self.disk_sum += o.disk_sum;
        self.duration.merge(&o.duration);
        self.ping.merge(&o.ping);
        self.inet_up += o.inet_up;
        self.workers.merge(&o.workers);
    }
}

/// Status counters in the order of [`ServiceStatus::ALL`]: healthy, error, timeout, down,
/// unknown.
pub fn status_index(status: ServiceStatus) -> usize {
    match status {
        ServiceStatus::Healthy => 0,
        ServiceStatus::Error => 1,
        ServiceStatus::Timeout => 2,
        ServiceStatus::Down => 3,
        ServiceStatus::Unknown => 4,
    }
}

/// A stored status string as the taxonomy: anything outside it (a hand-edited or foreign row)
/// counts as `unknown`, as the older tool's dashboard counted it.
pub fn stored_status(status: &str) -> ServiceStatus {
    status.parse().unwrap_or(ServiceStatus::Unknown)
}

/// Aggregate of one service's checks over some span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceAcc {
    pub n: u64,
    pub statuses: [u64; 5],
    pub latency: Stat,
    pub hist: Counts,
}

impl ServiceAcc {
    pub fn add(&mut self, status: ServiceStatus, latency_ms: Option<f64>) {
        self.n += 1;
        self.statuses[status_index(status)] += 1;
        if let Some(l) = latency_ms {
            self.latency.add(l);
            self.hist.add(hist_bin(l), 1);
        }
    }

    pub fn merge(&mut self, o: &ServiceAcc) {
        self.n += o.n;
        for (a, b) in self.statuses.iter_mut().zip(o.statuses.iter()) {
            *a += b;
        }
        self.latency.merge(&o.latency);
        self.hist.merge(&o.hist);
    }

    pub fn healthy(&self) -> u64 {
        self.statuses[0]
    }

    /// Checks counted with `status`.
    pub fn count(&self, status: ServiceStatus) -> u64 {
        self.statuses[status_index(status)]
    }
}

/// Covers the span `[a, b)` (whole minutes) with the largest tier blocks that fit, appending
/// `(tier_s, from_s, to_s)` ranges of block starts to `out`. `tiers` is largest first, as
/// [`TIERS_S`]; every block of a larger tier is a union of blocks of the next.
pub fn cover(a: i64, b: i64, tiers: &[i64], out: &mut Vec<(i64, i64, i64)>) {
    let Some((&tier, smaller)) = tiers.split_first() else {
        return;
    };
    if smaller.is_empty() {
        if a < b {
            out.push((tier, a, b));
        }
        return;
    }
    let ca = a.div_euclid(tier) * tier + if a.rem_euclid(tier) == 0 { 0 } else { tier };
    let cb = b.div_euclid(tier) * tier;
    if ca < cb {
        cover(a, ca, smaller, out);
        out.push((tier, ca, cb));
        cover(cb, b, smaller, out);
    } else {
        cover(a, b, smaller, out);
    }
}

/// The part `[from_s, to_s)` of the buckets `[start_s + i*width_s, start_s + (i+1)*width_s)`
/// (`count` of them), covered with tier blocks ([`cover`]), adjacent blocks of one tier joined
/// into one range. No range straddles a bucket boundary, so a block belongs to the bucket of
/// its start ([`bucket_index`]). Exact when the bucket edges are whole minutes; otherwise a
/// minute block that straddles an edge counts in the bucket where it starts.
pub fn tier_ranges(
    start_s: i64,
    width_s: i64,
    count: usize,
    from_s: i64,
    to_s: i64,
) -> Vec<(i64, i64, i64)> {
    let mut pieces = Vec::new();
    for i in 0..count {
        let a = (start_s + width_s * i as i64).max(from_s);
        let b = (start_s + width_s * (i as i64 + 1)).min(to_s);
        if a < b {
            cover(a, b, &TIERS_S, &mut pieces);
        }
    }
    pieces.sort_by_key(|p| (p.0, p.1));
    let mut merged: Vec<(i64, i64, i64)> = Vec::new();
    for p in pieces {
        match merged.last_mut() {
            Some(last) if last.0 == p.0 && last.2 == p.1 => last.2 = p.2,
            _ => merged.push(p),
        }
    }
    merged
}

/// The index of the bucket holding the instant `t` (any unit, the same as `start` and
/// `width`), `None` before the first bucket.
pub fn bucket_index(start: i64, width: i64, t: i64) -> Option<usize> {
    usize::try_from((t - start).div_euclid(width.max(1))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_uses_largest_blocks() {
        let mut out = Vec::new();
        // 23:00 on day 0 to 02:30 on day 2.
        cover(82_800, 2 * 86_400 + 9_000, &TIERS_S, &mut out);
        assert_eq!(
            out,
            vec![
                (3_600, 82_800, 86_400),
                (86_400, 86_400, 172_800),
                (3_600, 172_800, 180_000),
                (360, 180_000, 181_800),
            ]
        );
        let mut out = Vec::new();
        cover(120, 240, &TIERS_S, &mut out);
        assert_eq!(out, vec![(60, 120, 240)]);
        let mut out = Vec::new();
        cover(300, 840, &TIERS_S, &mut out);
        assert_eq!(out, vec![(60, 300, 360), (360, 360, 720), (60, 720, 840)]);
    }

    #[test]
    fn tier_ranges_join_adjacent_blocks_and_skip_the_covered_part() {
        // Two 6-minute buckets from minute 0; only from minute 3 on.
        assert_eq!(
            tier_ranges(0, 360, 2, 180, 720),
            vec![(60, 180, 360), (360, 360, 720)]
        );
        assert_eq!(tier_ranges(0, 60, 3, 0, 180), vec![(60, 0, 180)]);
        assert_eq!(
            tier_ranges(0, 60, 3, 0, 120),
            vec![(60, 0, 120)],
            "up to `to_s`"
        );
        assert_eq!(bucket_index(0, 60, -1), None);
        assert_eq!(bucket_index(0, 60, 59), Some(0));
        assert_eq!(bucket_index(0, 60, 60), Some(1));
    }

    #[test]
    fn statuses_outside_the_taxonomy_count_as_unknown() {
        let mut acc = ServiceAcc::default();
        acc.add(stored_status("healthy"), Some(2.0));
        acc.add(stored_status("exploded"), None);
        assert_eq!(acc.count(ServiceStatus::Healthy), 1);
        assert_eq!(acc.count(ServiceStatus::Unknown), 1);
        assert_eq!(acc.n, 2);
    }

    #[test]
    fn bins_are_within_one_percent() {
        for v in [0.5, 1.0, 12.0, 99.9, 250.0, 1234.5, 30_000.0] {
            let r = hist_value(hist_bin(v));
            assert!((r - v).abs() / v <= 0.0101, "{v} -> {r}");
        }
        assert_eq!(hist_bin(0.0), 0);
        assert_eq!(hist_bin(-3.0), 0);
        assert_eq!(hist_bin(f64::NAN), 0);
    }

    #[test]
    fn counts_round_trip_and_percentiles() {
        let mut c = Counts::default();
        let mut s = Stat::default();
        for v in 1..=100 {
            c.add(hist_bin(f64::from(v)), 1);
            s.add(f64::from(v));
        }
        assert_eq!(Counts::decode(&c.encode()), c);
        let p50 = c.percentile(50.0, &s).expect("data");
        assert!((p50 - 50.0).abs() <= 0.5, "{p50}");
        assert_eq!(c.percentile(100.0, &s), Some(100.0));
        assert_eq!(Counts::default().percentile(50.0, &Stat::default()), None);
    }

    #[test]
    fn stat_merge_matches_adding() {
        let mut a = Stat::default();
        let mut b = Stat::default();
        let mut all = Stat::default();
        for v in [3.0, 9.0] {
            a.add(v);
            all.add(v);
        }
        for v in [1.0, 4.0] {
            b.add(v);
            all.add(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.jitter(), Some(8.0));
    }
}
