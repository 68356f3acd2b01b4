//! Process resource limits the probes need: many concurrent checks need many file descriptors.

use rustix::process::{Resource, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. A thousand concurrent checks each hold a
/// socket, and the usual soft limit of 1,024 would turn the excess into spurious `down`s.
/// Failure is only logged: the agent still works for smaller configurations.
pub fn raise_nofile_limit() {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        tracing::debug!(soft = ?limit.current, "nofile limit already at the hard limit");
        return;
    }
    let wanted = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, wanted) {
        Ok(()) => tracing::debug!(
            from = ?limit.current,
            to = ?limit.maximum,
            "raised the nofile soft limit"
        ),
        Err(e) => tracing::debug!(error = %e, "could not raise the nofile soft limit"),
    }
}
