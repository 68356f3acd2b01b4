//! The UTC offsets a database's timestamps really carry, for databases without an instant
//! column (the older tool's, not upgraded yet). Their rows can only be found by the text of
//! `timestamp_lima`, a local time with its offset; knowing the smallest and largest offset in
//! the table narrows a search for the instants `[from, to)` to the local times
//! `[from + min offset, to + max offset)` instead of a day's margin on each side. The table is
//! read once, then only the rows appended since (by rowid), so a request pays for new rows only.

use rusqlite::Connection;

/// What the timestamps of a table look like so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct OffsetCache {
    /// Rows up to this rowid have been read.
    scanned_to: i64,
    /// Smallest and largest offset seen, seconds east of UTC.
    range: Option<(i64, i64)>,
    /// A row whose offset could not be read, or whose date and time are not separated by `T`:
    /// text bounds finer than a day are not safe then.
    irregular: bool,
}

/// Text bounds for a search by `timestamp_lima`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextBounds {
    min_offset_s: i64,
    max_offset_s: i64,
    /// Bounds to the second (`YYYY-MM-DDTHH:MM:SS`); otherwise to the day.
    fine: bool,
}

/// Wider than any UTC offset (they run from -12:00 to +14:00).
const ANY_OFFSET_S: i64 = 15 * 3600;

impl TextBounds {
    /// Bounds that hold whatever the rows carry: a day's margin beyond any offset.
    pub(crate) const WIDE: TextBounds = TextBounds {
        min_offset_s: -ANY_OFFSET_S,
        max_offset_s: ANY_OFFSET_S,
        fine: false,
    };

    /// The smallest text a row at or after the instant `from_s` can have.
    pub(crate) fn lo(&self, from_s: i64) -> String {
        if self.fine {
            civil(from_s + self.min_offset_s - 1, "%Y-%m-%dT%H:%M:%S")
        } else {
            civil(from_s + self.min_offset_s, "%Y-%m-%d")
        }
    }

    /// A text above every row before the instant `to_s`.
    pub(crate) fn hi(&self, to_s: i64) -> String {
        if self.fine {
            civil(to_s + self.max_offset_s + 1, "%Y-%m-%dT%H:%M:%S")
        } else {
            civil(to_s + self.max_offset_s + 86_400, "%Y-%m-%d")
        }
    }

    /// How far (seconds) the text of a later instant can lie before the text of an earlier one:
    /// the spread of the offsets.
    pub(crate) fn spread_s(&self) -> i64 {
        self.max_offset_s - self.min_offset_s
    }

    #[cfg(test)]
    pub(crate) fn is_fine(&self) -> bool {
        self.fine
    }

    /// Given the greatest text of the table, the smallest text a row of a later instant can
    /// have (a later instant with a smaller offset has a smaller text, by at most the spread);
    /// `None` when the bounds are not fine or the text does not parse.
    pub(crate) fn below_latest(&self, max_text: &str) -> Option<String> {
        if !self.fine {
            return None;
        }
        let instant_s = crate::reader::parse_instant_ms(max_text)?.div_euclid(1000);
        let local_s = instant_s + offset_of(max_text)?;
        Some(civil(local_s - self.spread_s() - 1, "%Y-%m-%dT%H:%M:%S"))
    }
}

fn civil(s: i64, format: &str) -> String {
    jiff::Timestamp::from_second(s)
        .map(|t| t.strftime(format).to_string())
        .unwrap_or_default()
}

/// The offset at the end of an ISO-8601 text, seconds east of UTC: `Z`, `+HH:MM` or `+HHMM`.
fn offset_of(ts: &str) -> Option<i64> {
    let ts = ts.trim_end();
    if ts.ends_with('Z') || ts.ends_with('z') {
        return Some(0);
    }
    let tail = |n: usize| ts.len().checked_sub(n).and_then(|i| ts.get(i..));
    let (sign, hh, mm) = match (tail(6), tail(5)) {
        (Some(t), _) if t.as_bytes().get(3) == Some(&b':') => {
            (t.get(..1)?, t.get(1..3)?, t.get(4..6)?)
        }
        (_, Some(t)) => (t.get(..1)?, t.get(1..3)?, t.get(3..5)?),
        _ => return None,
    };
    let sign = match sign {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let (hh, mm): (i64, i64) = (hh.parse().ok()?, mm.parse().ok()?);
    (hh <= 14 && mm < 60).then_some(sign * (hh * 3600 + mm * 60))
}

impl OffsetCache {
    /// Reads the rows appended since the last call and returns the bounds they allow.
    pub(crate) fn refresh(&mut self, conn: &Connection) -> rusqlite::Result<TextBounds> {
        let max_rowid: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(rowid), 0) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        if max_rowid < self.scanned_to {
            // Rows went away (another file, or a rebuilt table): read it all again.
            *self = OffsetCache::default();
        }
        let mut st = conn.prepare_cached(
            "SELECT rowid, timestamp_lima FROM monitoring_cycles WHERE rowid > ?1",
        )?;
        let mut rows = st.query([self.scanned_to])?;
        while let Some(r) = rows.next()? {
            let rowid: i64 = r.get(0)?;
            self.scanned_to = self.scanned_to.max(rowid);
            let Ok(ts) = r.get_ref(1)?.as_str() else {
                self.irregular = true;
                continue;
            };
            if ts.as_bytes().get(10) != Some(&b'T') {
                self.irregular = true;
            }
            match offset_of(ts) {
                Some(o) => {
                    self.range = Some(match self.range {
                        Some((lo, hi)) => (lo.min(o), hi.max(o)),
                        None => (o, o),
                    });
                }
                None => self.irregular = true,
            }
        }
        Ok(self.bounds())
    }

    fn bounds(&self) -> TextBounds {
        match self.range {
            Some((min_offset_s, max_offset_s)) if !self.irregular => TextBounds {
                min_offset_s,
                max_offset_s,
                fine: true,
            },
            _ => TextBounds::WIDE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_read_from_the_end() {
        assert_eq!(
            offset_of("2026-11-29T15:41:02.123456-05:00"),
            Some(-5 * 3600)
        );
        assert_eq!(
            offset_of("2026-11-29T15:41:02+05:30"),
            Some(5 * 3600 + 1800)
        );
        assert_eq!(offset_of("2026-11-29T15:41:02+0100"), Some(3600));
        assert_eq!(offset_of("2026-11-29T15:41:02Z"), Some(0));
        assert_eq!(offset_of("2026-11-29T15:41:02"), None);
        assert_eq!(offset_of("junk"), None);
        assert_eq!(offset_of(""), None);
    }

    #[test]
    fn bounds_hold_every_row_of_the_window() {
        let b = TextBounds {
            min_offset_s: -5 * 3600,
            max_offset_s: 3600,
            fine: true,
        };
        // 2026-11-29T20:00:00Z .. 20:05:00Z
        let (from, to) = (1_795_982_400, 1_795_982_700);
        assert_eq!(b.lo(from), "2026-11-29T14:59:59");
        assert_eq!(b.hi(to), "2026-11-29T21:05:01");
        for row in ["2026-11-29T15:00:00-05:00", "2026-11-29T21:04:59.999+01:00"] {
            assert!(
                row >= b.lo(from).as_str() && row < b.hi(to).as_str(),
                "{row}"
            );
        }
        assert_eq!(TextBounds::WIDE.lo(from), "2026-11-29");
        assert_eq!(TextBounds::WIDE.hi(to), "2026-12-01");
    }

    #[test]
    fn the_cache_reads_only_new_rows_and_notices_irregular_ones() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE monitoring_cycles (id TEXT PRIMARY KEY, timestamp_lima TEXT NOT NULL);
             INSERT INTO monitoring_cycles VALUES ('a', '2026-11-29T15:00:00-05:00');",
        )
        .expect("schema");
        let mut cache = OffsetCache::default();
        let b = cache.refresh(&conn).expect("refresh");
        assert!(b.is_fine());
        assert_eq!(b.spread_s(), 0);
        conn.execute_batch(
            "INSERT INTO monitoring_cycles VALUES ('b', '2026-11-29T21:00:00+01:00');",
        )
        .expect("insert");
        let b = cache.refresh(&conn).expect("refresh");
        assert_eq!(b.spread_s(), 6 * 3600);
        conn.execute_batch(
            "INSERT INTO monitoring_cycles VALUES ('c', '2026-11-29 21:00:01+01:00');",
        )
        .expect("insert");
        assert_eq!(cache.refresh(&conn).expect("refresh"), TextBounds::WIDE);
        conn.execute_batch("DELETE FROM monitoring_cycles; INSERT INTO monitoring_cycles VALUES ('d', '2026-11-29T15:00:00+00:00');")
            .expect("reset");
        let b = cache.refresh(&conn).expect("refresh");
        assert!(b.is_fine(), "rows that went away start the scan again");
    }
}
