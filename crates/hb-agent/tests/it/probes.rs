//! Probe tests.
