//! Notifier tests.
