//! Host metrics for each cycle (SPEC §3 step 1): CPU since the previous sample, memory, disk
//! use of one path the way `df` computes it, and uptime. Owns one long-lived `System`.

use std::path::{Path, PathBuf};

use hb_core::HostMetrics;
use sysinfo::System;

const MIB: f64 = 1024.0 * 1024.0;

/// Keeps one `System` for the life of the agent so that CPU usage is the average since the
/// previous sample: no warm-up sleep is ever needed.
pub struct HostCollector {
    system: Option<System>,
    disk_path: PathBuf,
    disk_error_logged: bool,
}

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCollector")
            .field("disk_path", &self.disk_path)
            .finish_non_exhaustive()
    }
}

impl HostCollector {
    /// `disk_path` is the path whose filesystem use is reported (`/`, or the host's root
    /// mounted into a container).
    pub fn new(disk_path: &Path) -> HostCollector {
        let system = match System::new() {
            Ok(mut s) => {
                // The baseline that the first sample's CPU figure is measured from.
                s.refresh_cpu_usage();
                Some(s)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read CPU and memory figures on this system");
                None
            }
        };
        HostCollector {
            system,
            disk_path: disk_path.to_path_buf(),
            disk_error_logged: false,
        }
    }

    pub fn sample(&mut self) -> HostMetrics {
        let mut metrics = HostMetrics {
            uptime_seconds: System::uptime().ok().map(|s| s as f64),
            disk_percent: self.disk_percent(),
            ..HostMetrics::default()
        };
        if let Some(system) = self.system.as_mut() {
            system.refresh_cpu_usage();
            system.refresh_memory();
            metrics.cpu_percent = f64::from(system.global_cpu_usage()).clamp(0.0, 100.0);
            let total = system.total_memory();
            // "Used" as total − available: page cache the kernel can drop is not in use.
            let used = total.saturating_sub(system.available_memory());
            metrics.ram_used_mb = used as f64 / MIB;
            metrics.ram_percent = if total == 0 {
                0.0
            } else {
                used as f64 / total as f64 * 100.0
            };
        }
        metrics
    }

    fn disk_percent(&mut self) -> f64 {
        match df_percent(&self.disk_path) {
            Ok(pct) => {
                self.disk_error_logged = false;
                pct
            }
            Err(e) => {
                if !self.disk_error_logged {
                    tracing::warn!(path = %self.disk_path.display(), error = %e, "cannot read disk use");
                    self.disk_error_logged = true;
                }
                0.0
            }
        }
    }
}

/// Disk use as `df` shows it. Blocks reserved for root count neither as used nor as
/// available, so `(total − available) / total` would overstate use on most filesystems.
fn df_percent(path: &Path) -> rustix::io::Result<f64> {
    let st = rustix::fs::statvfs(path)?;
    let frsize = st.f_frsize as f64;
    let used = st.f_blocks.saturating_sub(st.f_bfree) as f64 * frsize;
    let avail = st.f_bavail as f64 * frsize;
    if used + avail <= 0.0 {
        return Ok(0.0);
    }
    Ok(used / (used + avail) * 100.0)
}
