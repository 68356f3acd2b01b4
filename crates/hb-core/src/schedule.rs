//! Wall-clock grid arithmetic for the cycle loop: cycles start on multiples of the interval
//! since the Unix epoch, and an overrunning cycle skips the ticks it missed.

/// The first grid point strictly after `now_ms`.
pub fn next_tick_ms(now_ms: i64, interval_ms: i64) -> i64 {
    debug_assert!(interval_ms > 0);
    (now_ms.div_euclid(interval_ms) + 1) * interval_ms
}

/// How many grid points lie strictly between `tick_ms` (the tick a cycle started on) and the
/// next tick after `now_ms`: the ticks an overrunning cycle skipped.
pub fn missed_ticks(tick_ms: i64, now_ms: i64, interval_ms: i64) -> i64 {
    let next = next_tick_ms(now_ms, interval_ms);
    ((next - tick_ms) / interval_ms - 1).max(0)
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
