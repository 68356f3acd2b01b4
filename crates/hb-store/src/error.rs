//! The store's error, the same for every backend: a kind that tells the caller whether trying
//! again can help, and a message that names the store (a path, a host) but never row contents
//! or credentials, so nothing secret can leak through it.

/// What went wrong, as far as a caller needs to know to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The store is not there yet or cannot be reached (a missing file, no tables yet, a server
    /// that refuses connections). Retry later, with a new connection.
    Unavailable,
    /// The store is busy or out of room (a lock held by another connection, a full disk, no
    /// memory). Retry the same operation later; the connection is fine.
    Busy,
    /// The connection may be unusable (an I/O error, a lost connection). Reopen, then retry.
    Broken,
    /// This operation will never be accepted (a constraint, a value the store cannot hold).
    /// Retrying it is pointless.
    Rejected,
    /// The store cannot be used as it is (an unknown schema version, a journal mode that is
    /// not WAL, permissions): an operator must act. Retried after reopening, since they may.
    Misconfigured,
}

/// A store failure. `Display` is the message alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
}

impl StoreError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> StoreError {
        StoreError::new(ErrorKind::Unavailable, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the same operation may succeed later.
    pub fn is_transient(&self) -> bool {
        self.kind != ErrorKind::Rejected
    }

    /// Whether the connection should be dropped and opened again before retrying.
    pub fn needs_reopen(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unavailable | ErrorKind::Broken | ErrorKind::Misconfigured
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_what_to_do() {
        let table = [
            (ErrorKind::Unavailable, true, true),
            (ErrorKind::Busy, true, false),
            (ErrorKind::Broken, true, true),
            (ErrorKind::Rejected, false, false),
            (ErrorKind::Misconfigured, true, true),
        ];
        for (kind, transient, reopen) in table {
            let e = StoreError::new(kind, "x");
            assert_eq!(e.is_transient(), transient, "{kind:?}");
            assert_eq!(e.needs_reopen(), reopen, "{kind:?}");
        }
        assert_eq!(StoreError::unavailable("no file").to_string(), "no file");
    }
}
