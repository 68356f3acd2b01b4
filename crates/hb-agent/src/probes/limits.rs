//! The agent's own limits: the open-file limit many concurrent checks need, and telling a check
//! that failed because of the agent (no file descriptors, no memory, shutting down) from one
//! that failed because of its service.

use std::error::Error as StdError;

use rustix::io::Errno;
use rustix::process::{Resource, getrlimit, setrlimit};

/// Descriptors the agent holds besides one socket per concurrent check: the database and its
/// WAL, the Docker socket, the heartbeat and webhook clients, the runtime, logging.
const BASE_FDS: u64 = 64;

/// Why a check could not run, when the agent itself is the cause.
pub const FAULT_NO_FDS: &str =
    "Agent out of file descriptors (raise the agent's open-file limit, e.g. LimitNOFILE=)";
pub const FAULT_NO_MEMORY: &str = "Agent out of memory";
pub const FAULT_NO_PORTS: &str = "Agent out of local ports";
pub const FAULT_SHUTTING_DOWN: &str = "Agent shutting down";

/// What [`raise_nofile_limit`] found and did, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit before the agent changed it.
    pub soft_before: Option<u64>,
    /// The soft limit now.
    pub soft: Option<u64>,
    /// The hard limit (`None`: unlimited).
    pub hard: Option<u64>,
}

impl NofileLimit {
    /// Descriptors `checks` concurrent checks need, with room for the agent's own.
    pub fn needed(checks: usize) -> u64 {
        (checks as u64).saturating_add(BASE_FDS)
    }

    /// Whether the soft limit leaves room for `checks` concurrent checks.
    pub fn suffices(&self, checks: usize) -> bool {
        self.soft.is_none_or(|soft| soft >= Self::needed(checks))
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. A thousand concurrent checks each hold a
/// socket, and the usual soft limit of 1,024 would turn the excess into failed checks. Failure
/// only leaves the limit as it was: the caller logs what came out.
pub fn raise_nofile_limit() -> NofileLimit {
    let limit = getrlimit(Resource::Nofile);
    let mut out = NofileLimit {
        soft_before: limit.current,
        soft: limit.current,
        hard: limit.maximum,
    };
    if limit.current == limit.maximum {
        return out;
    }
    let wanted = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if setrlimit(Resource::Nofile, wanted).is_ok() {
        out.soft = getrlimit(Resource::Nofile).current;
    }
    out
}

/// The agent-side cause of a failed request, if the error chain shows one: the operating
/// system refused the agent a resource, or the runtime is going away.
pub fn agent_fault_of(err: &(dyn StdError + 'static)) -> Option<&'static str> {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(code) = io.raw_os_error()
            && let Some(fault) = fault_of_errno(Errno::from_raw_os_error(code))
        {
            return Some(fault);
        }
        // tokio's wording when I/O is attempted on a runtime that is shutting down.
        let text = e.to_string();
        if text.contains("being shutdown") || text.contains("runtime is shutting down") {
            return Some(FAULT_SHUTTING_DOWN);
        }
        cause = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            // `io::Error::source()` skips its own payload: step into it.
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

fn fault_of_errno(errno: Errno) -> Option<&'static str> {
    match errno {
        Errno::MFILE | Errno::NFILE => Some(FAULT_NO_FDS),
        Errno::NOMEM | Errno::NOBUFS => Some(FAULT_NO_MEMORY),
        Errno::ADDRNOTAVAIL => Some(FAULT_NO_PORTS),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn agent_faults_are_told_from_service_faults() {
        let table = [
            (Errno::MFILE, Some(FAULT_NO_FDS)),
            (Errno::NFILE, Some(FAULT_NO_FDS)),
            (Errno::NOMEM, Some(FAULT_NO_MEMORY)),
            (Errno::ADDRNOTAVAIL, Some(FAULT_NO_PORTS)),
            (Errno::CONNREFUSED, None),
            (Errno::CONNRESET, None),
            (Errno::HOSTUNREACH, None),
        ];
        for (errno, want) in table {
            let io = std::io::Error::from_raw_os_error(errno.raw_os_error());
            assert_eq!(agent_fault_of(&Wrapper(io)), want, "{errno:?}");
            // The same error nested inside another io::Error's payload.
            let inner = std::io::Error::from_raw_os_error(errno.raw_os_error());
            let outer = std::io::Error::other(Wrapper(inner));
            assert_eq!(agent_fault_of(&outer), want, "nested {errno:?}");
        }
        let shutdown =
            std::io::Error::other("A Tokio 1.x context was found, but it is being shutdown.");
        assert_eq!(agent_fault_of(&shutdown), Some(FAULT_SHUTTING_DOWN));
    }

    #[test]
    fn needed_descriptors() {
        let limit = NofileLimit {
            soft_before: Some(256),
            soft: Some(256),
            hard: Some(256),
        };
        assert!(limit.suffices(100));
        assert!(!limit.suffices(500));
        let unlimited = NofileLimit {
            soft_before: None,
            soft: None,
            hard: None,
        };
        assert!(unlimited.suffices(1_000_000));
    }
}
