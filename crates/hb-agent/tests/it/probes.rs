//! Probe tests: HTTP and TCP checks against real local servers, Docker checks against a real engine
//! (and a fake API on a Unix socket), host metrics against `df`.

mod docker;
mod host;
mod http;
mod tcp;
