//! Wall-clock grid arithmetic for the cycle loop: cycles start on multiples of the interval
//! since the Unix epoch, and an overrunning cycle skips the ticks it missed.

/// The first grid point strictly after `now_ms`. Total: an interval below 1 ms is taken as
/// 1 ms (the configuration refuses such intervals; this only keeps the arithmetic from
/// dividing by zero whatever it is given), and the result saturates instead of overflowing.
pub fn next_tick_ms(now_ms: i64, interval_ms: i64) -> i64 {
    let interval_ms = interval_ms.max(1);
    now_ms
        .div_euclid(interval_ms)
        .saturating_add(1)
        .saturating_mul(interval_ms)
}

/// How many grid points lie strictly between `tick_ms` (the tick a cycle started on) and the
/// next tick after `now_ms`: the ticks an overrunning cycle skipped.
pub fn missed_ticks(tick_ms: i64, now_ms: i64, interval_ms: i64) -> i64 {
    let next = next_tick_ms(now_ms, interval_ms);
    (next.saturating_sub(tick_ms) / interval_ms.max(1) - 1).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_land_on_the_grid() {
        let table = [
            (0, 10_000, 10_000),
            (1, 10_000, 10_000),
            (9_999, 10_000, 10_000),
            (10_000, 10_000, 20_000),
            (1_795_984_829_123, 10_000, 1_795_984_830_000),
            (-1, 10_000, 0),
            (1_500, 1_000, 2_000),
        ];
        for (now, interval, want) in table {
            assert_eq!(
                next_tick_ms(now, interval),
                want,
                "now={now} interval={interval}"
            );
        }
    }

    #[test]
    fn degenerate_intervals_never_panic() {
        for interval in [0, -1, -10_000, i64::MIN] {
            let next = next_tick_ms(1_795_984_829_123, interval);
            assert_eq!(next, 1_795_984_829_124, "interval {interval}");
            assert_eq!(
                missed_ticks(1_000, 1_005, interval),
                5,
                "interval {interval}"
            );
        }
        assert_eq!(next_tick_ms(i64::MAX - 1, i64::MAX), i64::MAX);
        assert_eq!(missed_ticks(i64::MIN, i64::MAX, 1), i64::MAX - 1);
    }

    #[test]
    fn overruns_skip_missed_ticks() {
        // A cycle started at tick 10 s with a 10 s interval.
        let table = [
            (10_050, 0), // finished quickly: next tick 20 s, nothing missed
            (19_999, 0),
            (20_000, 1), // finished exactly on 20 s: 20 s is gone, next is 30 s
            (25_000, 1),
            (41_000, 3), // 20, 30, 40 missed; next is 50
        ];
        for (now, want) in table {
            assert_eq!(missed_ticks(10_000, now, 10_000), want, "now={now}");
        }
    }
}
