//! Latency thresholds that mark an answering service "slow" on the dashboard. A mark beside the
//! status, never a status: a slow service is still `healthy` by the contract.

use std::collections::BTreeMap;

/// `SERVICE_SLOW_MS` (every service) and `SERVICE_SLOW_MS_<name>` (one service; `off` exempts
/// it from the default), in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlowThresholds {
    pub default_ms: Option<f64>,
    /// By case-preserving service name; `None` means `off`.
    pub per_service: BTreeMap<String, Option<f64>>,
}

impl SlowThresholds {
    /// The threshold that applies to `service`, if any.
    pub fn for_service(&self, service: &str) -> Option<f64> {
        match self.per_service.get(service) {
            Some(v) => *v,
            None => self.default_ms,
        }
    }

    /// Whether a check that answered in `latency_ms` is slow for `service`.
    pub fn is_slow(&self, service: &str, latency_ms: Option<f64>) -> bool {
        matches!((self.for_service(service), latency_ms), (Some(t), Some(l)) if l > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_service_wins_and_off_exempts() {
        let t = SlowThresholds {
            default_ms: Some(500.0),
            per_service: BTreeMap::from([
                ("api".to_owned(), Some(100.0)),
                ("batch".to_owned(), None),
            ]),
        };
        assert!(t.is_slow("api", Some(100.5)));
        assert!(
            !t.is_slow("api", Some(100.0)),
            "at the threshold is not above it"
        );
        assert!(!t.is_slow("batch", Some(10_000.0)));
        assert!(t.is_slow("web", Some(501.0)));
        assert!(
            !t.is_slow("web", None),
            "no answer is a status, not slowness"
        );
        assert!(!SlowThresholds::default().is_slow("web", Some(1e9)));
    }
}
