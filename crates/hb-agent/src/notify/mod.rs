//! Notifiers: the heartbeat sender and the alert webhook dispatcher.
