//! The per-item debounce state machine (SPEC §3.5): a stable status, a transient candidate and
//! its counter. Knows nothing about services, workers or texts; `alerting` builds on it.

/// What one observation did to an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition<S> {
    /// First observation: it became the stable status without an alert.
    Initial,
    /// Nothing to tell: the observation matches the stable status, or a change is still being
    /// counted.
    Quiet,
    /// A good observation while stable-bad. Takes effect at once.
    Recovered { from: S },
    /// Stable-good became stable-bad after `threshold` consecutive bad observations of any mix.
    Failed { from: S },
    /// Stable-bad became a different bad status held for `threshold` consecutive observations.
    Changed { from: S },
}

/// Debounced status of one item. `S` is the item's status key; what counts as good is decided
/// by the caller's predicate, so services and the worker share the same rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debouncer<S> {
    stable: Option<S>,
    candidate: Option<S>,
    count: u32,
}

impl<S> Default for Debouncer<S> {
    fn default() -> Self {
        Debouncer {
            stable: None,
            candidate: None,
            count: 0,
        }
    }
}

impl<S: Clone + PartialEq> Debouncer<S> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stable(&self) -> Option<&S> {
        self.stable.as_ref()
    }

    /// Rebuilds the state an earlier run of the agent ended with, from what it stored:
    /// `last_alert` (the newest alert's new status and its instant) and `recent` (the newest
    /// stored observations with their instants, newest first; `threshold` of them suffice).
    /// `None` when nothing tells (no alert, no good observation): the first observation then
    /// becomes the stable status, as on a first start.
    ///
    /// Why the alert and not simply the last stored row: alerts are written exactly when the
    /// stable status changes, in the transaction of the cycle that changed it, so the newest
    /// one *is* the confirmed status; the last row may be one bad observation still below the
    /// threshold, and taking it as stable would turn the next healthy one into a false
    /// recovery (and a real outage into a silent one). The rows still count for two things:
    /// a good observation settles at once, so a good row newer than the alert means the item
    /// was good (its recovery was folded into an internet alert, or it never alerted at all);
    /// and the bad rows after the newest good one are the transient count, kept below the
    /// threshold so the seed itself never alerts.
    pub fn resume(
        last_alert: Option<(S, i64)>,
        recent: &[(S, i64)],
        is_good: impl Fn(&S) -> bool,
        threshold: u32,
    ) -> Option<Self> {
        let threshold = threshold.max(1);
        let trailing_bad = recent.iter().take_while(|(s, _)| !is_good(s)).count();
        let newest_good = recent.get(trailing_bad);
        let stable = match (last_alert, newest_good) {
            (Some((_, at)), Some((good, good_at))) if at < *good_at => good.clone(),
            (Some((alerted, _)), _) => alerted,
            (None, Some((good, _))) => good.clone(),
            (None, None) => return None,
        };
        let count = u32::try_from(trailing_bad)
            .unwrap_or(u32::MAX)
            .min(threshold - 1);
        let candidate = recent
            .first()
            .filter(|_| count > 0 && is_good(&stable))
            .map(|(s, _)| s.clone());
        Some(Debouncer {
            count: if candidate.is_some() { count } else { 0 },
            candidate,
            stable: Some(stable),
        })
    }

    /// The transient candidate and how many consecutive observations support it.
    pub fn transient(&self) -> Option<(&S, u32)> {
        self.candidate.as_ref().map(|c| (c, self.count))
    }

    /// Feeds one observation. A `threshold` of 0 is treated as 1 (the configuration rejects 0;
    /// this keeps the machine total).
    pub fn observe(
        &mut self,
        obs: S,
        is_good: impl Fn(&S) -> bool,
        threshold: u32,
    ) -> Transition<S> {
        let threshold = threshold.max(1);
        let Some(stable) = self.stable.clone() else {
            self.settle(obs);
            return Transition::Initial;
        };
        let obs_good = is_good(&obs);
        let stable_good = is_good(&stable);
        match (stable_good, obs_good) {
            (_, true) => {
                self.settle(obs);
                if stable_good {
                    Transition::Quiet
                } else {
                    Transition::Recovered { from: stable }
                }
            }
            (true, false) => {
                // Any mix of bad statuses counts toward a failure; the latest one is reported.
                self.count += 1;
                self.candidate = Some(obs.clone());
                if self.count >= threshold {
                    self.settle(obs);
                    Transition::Failed { from: stable }
                } else {
                    Transition::Quiet
                }
            }
            (false, false) => {
                if obs == stable {
                    self.candidate = None;
                    self.count = 0;
                    return Transition::Quiet;
                }
                if self.candidate.as_ref() == Some(&obs) {
                    self.count += 1;
                } else {
                    self.candidate = Some(obs.clone());
                    self.count = 1;
                }
                if self.count >= threshold {
                    self.settle(obs);
                    Transition::Changed { from: stable }
                } else {
                    Transition::Quiet
                }
            }
        }
    }

    fn settle(&mut self, obs: S) {
        self.stable = Some(obs);
        self.candidate = None;
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Transition::{Changed, Failed, Initial, Quiet, Recovered};
    use super::*;

    fn good(s: &&str) -> bool {
        *s == "ok"
    }

    fn run(threshold: u32, seq: &[&'static str]) -> Vec<Transition<&'static str>> {
        let mut d = Debouncer::new();
        seq.iter().map(|s| d.observe(*s, good, threshold)).collect()
    }

    #[test]
    fn table() {
        type Case<'a> = (&'a str, u32, &'a [&'a str], &'a [Transition<&'a str>]);
        let cases: &[Case] = &[
            ("first good silent", 3, &["ok"], &[Initial]),
            (
                "first bad silent",
                3,
                &["down", "down", "down", "down"],
                &[Initial, Quiet, Quiet, Quiet],
            ),
            (
                "below threshold",
                3,
                &["ok", "down", "down", "ok"],
                &[Initial, Quiet, Quiet, Quiet],
            ),
            (
                "threshold reached once",
                3,
                &["ok", "down", "down", "down", "down"],
                &[Initial, Quiet, Quiet, Failed { from: "ok" }, Quiet],
            ),
            (
                "mixed bad statuses count",
                3,
                &["ok", "timeout", "down", "timeout"],
                &[Initial, Quiet, Quiet, Failed { from: "ok" }],
            ),
            (
                "recovery is immediate",
                2,
                &["ok", "down", "down", "ok"],
                &[
                    Initial,
                    Quiet,
                    Failed { from: "ok" },
                    Recovered { from: "down" },
                ],
            ),
            (
                "first bad then good recovers",
                4,
                &["down", "ok"],
                &[Initial, Recovered { from: "down" }],
            ),
            (
                "change between bad statuses needs consecutive",
                2,
                &["down", "error", "down", "error", "error", "error"],
                &[
                    Initial,
                    Quiet,
                    Quiet,
                    Quiet,
                    Changed { from: "down" },
                    Quiet,
                ],
            ),
            (
                "flapping between two bad statuses never changes",
                2,
                &["down", "error", "down", "error", "down"],
                &[Initial, Quiet, Quiet, Quiet, Quiet],
            ),
            (
                "threshold one",
                1,
                &["ok", "down", "ok"],
                &[Initial, Failed { from: "ok" }, Recovered { from: "down" }],
            ),
            (
                "threshold zero acts as one",
                0,
                &["ok", "down"],
                &[Initial, Failed { from: "ok" }],
            ),
        ];
        for (name, threshold, seq, want) in cases {
            assert_eq!(run(*threshold, seq), want.to_vec(), "{name}");
        }
    }

    /// (last alert, recent newest first) -> (stable, transient). Instants are the numbers.
    #[test]
    fn resume_table() {
        type Seed<'a> = (Option<(&'a str, i64)>, &'a [(&'a str, i64)]);
        type Want<'a> = Option<(&'a str, Option<(&'a str, u32)>)>;
        let cases: &[(&str, Seed, Want)] = &[
            ("nothing stored", (None, &[]), None),
            (
                "only bad rows, no alert",
                (None, &[("down", 3), ("down", 2)]),
                None,
            ),
            (
                "healthy rows",
                (None, &[("ok", 3), ("ok", 2)]),
                Some(("ok", None)),
            ),
            (
                "transient bad below threshold",
                (None, &[("down", 3), ("timeout", 2), ("ok", 1)]),
                Some(("ok", Some(("down", 2)))),
            ),
            (
                "alerted down: stable down",
                (Some(("down", 2)), &[("down", 3), ("down", 2), ("ok", 1)]),
                Some(("down", None)),
            ),
            (
                "recovered alert then a transient bad row",
                (Some(("ok", 2)), &[("down", 3), ("ok", 2), ("down", 1)]),
                Some(("ok", Some(("down", 1)))),
            ),
            (
                "a good row newer than the down alert wins",
                (Some(("down", 1)), &[("ok", 3), ("down", 2), ("down", 1)]),
                Some(("ok", None)),
            ),
            (
                "alert and no rows",
                (Some(("error", 5)), &[]),
                Some(("error", None)),
            ),
            (
                "a long unalerted bad run keeps one below the threshold",
                (
                    Some(("ok", 0)),
                    &[("down", 9), ("down", 8), ("down", 7), ("down", 6)],
                ),
                Some(("ok", Some(("down", 2)))),
            ),
        ];
        for (name, (alert, recent), want) in cases {
            let got = Debouncer::resume(*alert, recent, good, 3);
            let got = got.as_ref().map(|d| {
                (
                    *d.stable().expect("stable"),
                    d.transient().map(|(c, n)| (*c, n)),
                )
            });
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn a_resumed_transient_alerts_at_the_threshold() {
        let mut d = Debouncer::resume(None, &[("down", 2), ("ok", 1)], good, 3).expect("seeded");
        assert_eq!(d.observe("down", good, 3), Quiet);
        assert_eq!(d.observe("down", good, 3), Failed { from: "ok" });
        let mut d = Debouncer::resume(Some(("down", 1)), &[("down", 1)], good, 3).expect("seeded");
        assert_eq!(d.observe("down", good, 3), Quiet);
        assert_eq!(d.observe("ok", good, 3), Recovered { from: "down" });
    }

    #[test]
    fn counter_resets_on_good() {
        let mut d = Debouncer::new();
        d.observe("ok", good, 3);
        d.observe("down", good, 3);
        assert_eq!(d.transient(), Some((&"down", 1)));
        d.observe("ok", good, 3);
        assert_eq!(d.transient(), None);
        assert_eq!(d.stable(), Some(&"ok"));
    }
}
