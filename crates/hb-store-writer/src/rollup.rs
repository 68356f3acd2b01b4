//! Aggregates the dashboard reads, maintained inside each cycle's transaction.
