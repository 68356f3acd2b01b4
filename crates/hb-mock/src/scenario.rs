//! A scripted outage, so the demo shows alerting without anyone touching it: one simulated
//! service is healthy for `healthy_for`, down for `down_for`, and so on in a loop. A change of
//! that service through `POST /api/config` (the controller page) stops the script for good: the
//! visitor's choice wins.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::MockState;
use crate::sim::{Behavior, ConfigPatch, ServicePatch};

/// The service the demo's script drives.
pub const DEFAULT_SCENARIO_SERVICE: &str = "scripted";
/// Healthy this long after start (and after each recovery).
pub const DEFAULT_HEALTHY_FOR: Duration = Duration::from_secs(20);
/// Then down this long.
pub const DEFAULT_DOWN_FOR: Duration = Duration::from_secs(40);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub service: String,
    pub healthy_for: Duration,
    pub down_for: Duration,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            service: DEFAULT_SCENARIO_SERVICE.to_owned(),
            healthy_for: DEFAULT_HEALTHY_FOR,
            down_for: DEFAULT_DOWN_FOR,
        }
    }
}

/// The script as `GET /api/config` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioState {
    pub service: String,
    pub healthy_for_s: f64,
    pub down_for_s: f64,
    /// False once a manual change of the service stopped the script.
    pub active: bool,
}

impl ScenarioState {
    pub(crate) fn new(s: &Scenario) -> ScenarioState {
        ScenarioState {
            service: s.service.clone(),
            healthy_for_s: s.healthy_for.as_secs_f64(),
            down_for_s: s.down_for.as_secs_f64(),
            active: true,
        }
    }
}

fn patch_for(service: &str, behavior: Behavior) -> ConfigPatch {
    ConfigPatch {
        services: Some(BTreeMap::from([(
            service.to_owned(),
            Some(ServicePatch {
                behavior: Some(behavior.as_str().to_owned()),
                delay_ms: None,
            }),
        )])),
        ..ConfigPatch::default()
    }
}

/// Runs `scenario` until the mock shuts down or a manual change stops it.
pub(crate) async fn run(state: MockState, scenario: Scenario) {
    let token = state.shutdown_token();
    let phases = [
        (Behavior::Down, scenario.healthy_for),
        (Behavior::Healthy, scenario.down_for),
    ];
    tracing::info!(
        service = %scenario.service,
        healthy_for_s = scenario.healthy_for.as_secs_f64(),
        down_for_s = scenario.down_for.as_secs_f64(),
        "mock scenario started"
    );
    for (next, wait) in phases.into_iter().cycle() {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if !state.apply_scripted(patch_for(&scenario.service, next)) {
            return;
        }
    }
}
