//! Maintenance windows (`MAINTENANCE_WINDOWS`): when the alerts of some or all items are held.
//! Pure: every question takes the instant it is about.
//!
//! A window is one of
//! - recurring, on local wall-clock times in the configured zone: `Sun 02:00-03:00`,
//!   `Mon-Fri 01:00-01:30`, `daily 04:00-04:15`. An end at or before the start means the window
//!   crosses midnight and ends on the next day (`Sat 23:30-00:30` runs from Saturday 23:30 to
//!   Sunday 00:30). The day names the day the window starts on;
//! - one-off, an ISO-8601 interval: `2026-12-24T22:00/2026-12-25T02:00` (local times in the
//!   zone) or with an offset (`2026-12-24T21:00Z/2026-12-25T01:00Z`).
//!
//! Either may end with `@name` tokens (`Sun 02:00-03:00 @db @backup`) to limit it to those items
//! (services, or `worker`); without any it covers every item. Windows are separated by `;` or
//! `,`.
//!
//! Daylight saving time: a local time that does not exist (skipped by the clocks going forward)
//! is taken as the same offset later, and one that exists twice (the clocks going back) as its
//! first occurrence. So `daily 02:00-03:00` in a zone that skips 02:00-03:00 is empty that day,
//! `daily 01:30-02:30` lasts its usual hour, and on the day 02:00-03:00 repeats the window lasts
//! both of them.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
enum When {
    /// `days[i]`: the window starts on weekday `i` (Monday first).
    Recurring {
        days: [bool; 7],
        start: Time,
        end: Time,
    },
    Once {
        start_ms: i64,
        end_ms: i64,
    },
}

/// One configured window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// As configured (trimmed), for alert texts and the page.
    pub text: String,
    /// The items it covers; empty: every item.
    pub items: Vec<String>,
    when: When,
}

impl MaintenanceWindow {
    /// Whether this window covers `item` (a service name, `worker` or `internet`).
    pub fn covers(&self, item: &str) -> bool {
        self.items.is_empty() || self.items.iter().any(|i| i == item)
    }
}

/// One occurrence of a window: a half-open interval of epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// Index of the window in [`MaintenanceSchedule::windows`].
    pub window: usize,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Every configured window, with the zone their wall-clock times are in.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceSchedule {
    windows: Vec<MaintenanceWindow>,
    tz: Option<TimeZone>,
}

impl PartialEq for MaintenanceSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.windows == other.windows
    }
}

impl MaintenanceSchedule {
    /// Parses `MAINTENANCE_WINDOWS`. The error names the part that is wrong and the forms that
    /// are accepted.
    pub fn parse(raw: &str, tz: TimeZone) -> Result<MaintenanceSchedule, String> {
        let mut windows = Vec::new();
        for part in raw.split([';', ',']) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            windows.push(parse_window(part, &tz).map_err(|why| {
                format!(
                    "{why} in {part:?} (expected e.g. \"Sun 02:00-03:00\", \"Mon-Fri 01:00-01:30\", \
                     \"daily 04:00-04:15 @db\" or \"2026-12-24T22:00/2026-12-25T02:00\")"
                )
            })?);
        }
        Ok(MaintenanceSchedule {
            windows,
            tz: Some(tz),
        })
    }

    pub fn windows(&self) -> &[MaintenanceWindow] {
        &self.windows
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The occurrences open at `at_ms` (start inclusive, end exclusive), in window order.
    pub fn active_at(&self, at_ms: i64) -> Vec<Occurrence> {
        self.occurrences(at_ms, at_ms.saturating_add(1))
    }

    /// Every occurrence overlapping `[from_ms, to_ms)`, ordered by start.
    pub fn occurrences(&self, from_ms: i64, to_ms: i64) -> Vec<Occurrence> {
        let mut out = Vec::new();
        let Some(tz) = &self.tz else {
            return out;
        };
        for (index, window) in self.windows.iter().enumerate() {
            match window.when {
                When::Once { start_ms, end_ms } => {
                    if start_ms < to_ms && from_ms < end_ms {
                        out.push(Occurrence {
                            window: index,
                            start_ms,
                            end_ms,
                        });
                    }
                }
                When::Recurring { days, start, end } => {
                    let (Some(first), Some(last)) =
                        (local_date(from_ms, tz), local_date(to_ms, tz))
                    else {
                        continue;
                    };
                    // A window starting the day before may still be open (it crosses midnight).
                    let mut day = first.yesterday().unwrap_or(first);
                    while day <= last {
                        if days[weekday_index(day)]
                            && let Some((s, e)) = occurrence_on(day, start, end, tz)
                            && s < to_ms
                            && from_ms < e
                        {
                            out.push(Occurrence {
                                window: index,
                                start_ms: s,
                                end_ms: e,
                            });
                        }
                        match day.tomorrow() {
                            Ok(next) => day = next,
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        out.sort_by_key(|o| (o.start_ms, o.window));
        out
    }
}

fn local_date(ms: i64, tz: &TimeZone) -> Option<Date> {
    Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_zoned_datetime(tz.clone()).date())
}

fn weekday_index(day: Date) -> usize {
    usize::from(day.weekday().to_monday_zero_offset().unsigned_abs())
}

/// The instants of a recurring window starting on `day`: empty occurrences (a start skipped by
/// a DST change up to the end) are `None`.
fn occurrence_on(day: Date, start: Time, end: Time, tz: &TimeZone) -> Option<(i64, i64)> {
    let end_day = if end <= start {
        day.tomorrow().ok()?
    } else {
        day
    };
    let s = day.to_datetime(start).to_zoned_datetime(tz.clone()).ok()?;
    let e = end_day
        .to_datetime(end)
        .to_zoned_datetime(tz.clone())
        .ok()?;
    let (s, e) = (
        s.timestamp().as_millisecond(),
        e.timestamp().as_millisecond(),
    );
    (s < e).then_some((s, e))
}

fn parse_window(part: &str, tz: &TimeZone) -> Result<MaintenanceWindow, String> {
    let mut tokens: Vec<&str> = part.split_whitespace().collect();
    let mut items = Vec::new();
    while let Some(last) = tokens.last() {
        let Some(item) = last.strip_prefix('@') else {
            break;
        };
        if item.is_empty() {
            return Err("an empty @name".to_owned());
        }
        items.insert(0, item.to_owned());
        tokens.pop();
    }
    let when = match tokens.as_slice() {
        [interval] if interval.contains('/') => parse_once(interval, tz)?,
        [days, times] => {
            let days = parse_days(days)?;
            let (start, end) = times
                .split_once('-')
                .ok_or_else(|| "no HH:MM-HH:MM time range".to_owned())?;
            let start = parse_time(start)?;
            let end = parse_time(end)?;
            if start == end {
                return Err("a window that starts and ends at the same time".to_owned());
            }
            When::Recurring { days, start, end }
        }
        [] => return Err("no days and times".to_owned()),
        _ => return Err("not a day and a time range, nor a start/end interval".to_owned()),
    };
    Ok(MaintenanceWindow {
        text: part.split_whitespace().collect::<Vec<_>>().join(" "),
        items,
        when,
    })
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let lower = text.to_ascii_lowercase();
    if lower == "daily" {
        return Ok([true; 7]);
    }
    let day = |name: &str| {
        let name = name.get(..3).unwrap_or(name);
        DAYS.iter()
            .position(|d| *d == name)
            .ok_or_else(|| format!("unknown day {name:?} (Mon..Sun or daily)"))
    };
    let mut days = [false; 7];
    match lower.split_once('-') {
        Some((from, to)) => {
            let (from, to) = (day(from)?, day(to)?);
            let mut i = from;
            loop {
                days[i] = true;
                if i == to {
                    break;
                }
                i = (i + 1) % 7;
            }
        }
        None => days[day(&lower)?] = true,
    }
    Ok(days)
}

fn parse_time(text: &str) -> Result<Time, String> {
    let bad = || format!("{text:?} is not a time of day (HH:MM)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    // 24:00 is the end of the day, the same as 00:00 for a window end.
    if h == 24 && m == 0 {
        return Ok(Time::midnight());
    }
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

fn parse_once(text: &str, tz: &TimeZone) -> Result<When, String> {
    let (start, end) = text
        .split_once('/')
        .ok_or_else(|| "no start/end".to_owned())?;
    let (start_ms, end_ms) = (parse_instant(start, tz)?, parse_instant(end, tz)?);
    if end_ms <= start_ms {
        return Err("an end that is not after its start".to_owned());
    }
    Ok(When::Once { start_ms, end_ms })
}

/// An ISO-8601 date-time: with an offset (`Z`, `+01:00`) it is that instant, without one it is
/// a wall-clock time in `tz`.
fn parse_instant(text: &str, tz: &TimeZone) -> Result<i64, String> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let civil: jiff::civil::DateTime = text
        .parse()
        .map_err(|_| format!("{text:?} is not an ISO-8601 date-time"))?;
    civil
        .to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().expect("instant").as_millisecond()
    }

    fn schedule(raw: &str, tz: &str) -> MaintenanceSchedule {
        MaintenanceSchedule::parse(raw, TimeZone::get(tz).expect("zone")).expect(raw)
    }

    /// (windows, zone, instant, open?) with a pinned clock.
    #[test]
    fn windows_open_and_close_on_the_wall_clock() {
        let table = [
            // 2026-12-06 is a Sunday.
            ("Sun 02:00-03:00", "UTC", "2026-12-06T01:59:59Z", false),
            ("Sun 02:00-03:00", "UTC", "2026-12-06T02:00:00Z", true),
            ("Sun 02:00-03:00", "UTC", "2026-12-06T02:59:59Z", true),
            ("Sun 02:00-03:00", "UTC", "2026-12-06T03:00:00Z", false),
            ("Sun 02:00-03:00", "UTC", "2026-12-07T02:30:00Z", false),
            // In the zone, not in UTC: 02:30 in Lima is 07:30 UTC.
            (
                "Sun 02:00-03:00",
                "America/Lima",
                "2026-12-06T02:30:00Z",
                false,
            ),
            (
                "Sun 02:00-03:00",
                "America/Lima",
                "2026-12-06T07:30:00Z",
                true,
            ),
            // Crossing midnight: starts Saturday 23:30, ends Sunday 00:30.
            ("Sat 23:30-00:30", "UTC", "2026-12-05T23:45:00Z", true),
            ("Sat 23:30-00:30", "UTC", "2026-12-06T00:15:00Z", true),
            ("Sat 23:30-00:30", "UTC", "2026-12-06T00:30:00Z", false),
            ("Sat 23:30-00:30", "UTC", "2026-12-06T23:45:00Z", false),
            ("daily 23:00-01:00", "UTC", "2026-12-01T00:59:00Z", true),
            ("daily 22:00-24:00", "UTC", "2026-12-01T23:59:00Z", true),
            ("Mon-Fri 01:00-01:30", "UTC", "2026-12-04T01:10:00Z", true), // Friday
            ("Mon-Fri 01:00-01:30", "UTC", "2026-12-05T01:10:00Z", false), // Saturday
            ("Fri-Mon 01:00-01:30", "UTC", "2026-12-06T01:10:00Z", true), // Sunday, wraps
            ("Fri-Mon 01:00-01:30", "UTC", "2026-12-08T01:10:00Z", false), // Tuesday
            // One-off, local and with an offset.
            (
                "2026-12-24T22:00/2026-12-25T02:00",
                "Europe/Berlin",
                "2026-12-24T21:00:00Z",
                true,
            ),
            (
                "2026-12-24T22:00/2026-12-25T02:00",
                "Europe/Berlin",
                "2026-12-25T01:00:00Z",
                false,
            ),
            (
                "2026-12-24T22:00Z/2026-12-25T02:00Z",
                "Europe/Berlin",
                "2026-12-25T01:00:00Z",
                true,
            ),
            // DST in Berlin: on 2026-03-29 the clocks go from 02:00 to 03:00.
            (
                "daily 02:00-03:00",
                "Europe/Berlin",
                "2026-03-29T00:30:00Z",
                false,
            ),
            (
                "daily 02:00-03:00",
                "Europe/Berlin",
                "2026-03-28T01:30:00Z",
                true,
            ),
            (
                "daily 01:30-02:30",
                "Europe/Berlin",
                "2026-03-29T00:45:00Z",
                true,
            ), // 01:45 CET
            (
                "daily 01:30-02:30",
                "Europe/Berlin",
                "2026-03-29T01:15:00Z",
                true,
            ), // 03:15 CEST
            (
                "daily 01:30-02:30",
                "Europe/Berlin",
                "2026-03-29T01:30:00Z",
                false,
            ), // 03:30 CEST
            // On 2026-10-25 02:00-03:00 happens twice: the window covers both.
            (
                "daily 02:00-03:00",
                "Europe/Berlin",
                "2026-10-25T00:30:00Z",
                true,
            ), // 02:30 CEST
            (
                "daily 02:00-03:00",
                "Europe/Berlin",
                "2026-10-25T01:30:00Z",
                true,
            ), // 02:30 CET
            (
                "daily 02:00-03:00",
                "Europe/Berlin",
                "2026-10-25T02:00:00Z",
                false,
            ), // 03:00 CET
        ];
        for (raw, tz, at, open) in table {
            let s = schedule(raw, tz);
            assert_eq!(
                !s.active_at(ms(at)).is_empty(),
                open,
                "{raw} in {tz} at {at}"
            );
        }
    }

    #[test]
    fn occurrences_cover_a_range_in_order() {
        let s = schedule("daily 23:30-00:30; Sun 02:00-03:00 @db", "UTC");
        let got = s.occurrences(ms("2026-12-05T12:00:00Z"), ms("2026-12-07T00:00:00Z"));
        let got: Vec<(usize, i64, i64)> = got
            .iter()
            .map(|o| (o.window, o.start_ms, o.end_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, ms("2026-12-05T23:30:00Z"), ms("2026-12-06T00:30:00Z")),
                (1, ms("2026-12-06T02:00:00Z"), ms("2026-12-06T03:00:00Z")),
                (0, ms("2026-12-06T23:30:00Z"), ms("2026-12-07T00:30:00Z")),
            ]
        );
        // The occurrence still open from the day before is found too.
        let open = s.active_at(ms("2026-12-06T00:10:00Z"));
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].start_ms, ms("2026-12-05T23:30:00Z"));
    }

    #[test]
    fn items_limit_a_window() {
        let s = schedule("Sun 02:00-03:00 @db @backup, daily 04:00-04:15", "UTC");
        let w = s.windows();
        assert_eq!(w[0].items, ["db", "backup"]);
        assert!(w[0].covers("db") && !w[0].covers("api"));
        assert!(w[1].covers("api") && w[1].covers("worker"));
        assert_eq!(w[0].text, "Sun 02:00-03:00 @db @backup");
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let table = [
            ("@db", "no days and times"),
            ("Sun", "not a day and a time range"),
            ("Someday 02:00-03:00", "unknown day"),
            ("Sun 02:00", "no HH:MM-HH:MM"),
            ("Sun 25:00-26:00", "not a time of day"),
            ("Sun 02:00-02:00", "starts and ends at the same time"),
            ("2026-12-25T02:00/2026-12-24T22:00", "not after its start"),
            ("2026-13-01T00:00/2026-12-24T22:00", "not an ISO-8601"),
            ("Sun 02:00-03:00 @", "an empty @name"),
            ("Sun 02:00-03:00 extra", "not a day and a time range"),
        ];
        for (raw, want) in table {
            let err = MaintenanceSchedule::parse(raw, TimeZone::UTC).expect_err(raw);
            assert!(err.contains(want), "{raw}: {err}");
            assert!(err.contains("expected e.g."), "{raw}: {err}");
        }
        assert!(
            MaintenanceSchedule::parse(" ; ", TimeZone::UTC)
                .expect("empty")
                .is_empty()
        );
    }
}
