//! Probes: one module per kind of target (http, docker, host, internet).
