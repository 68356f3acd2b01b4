//! Who sent a heartbeat: the `Authorization: Bearer <key>` header matched against every
//! configured key in constant time. Owns no state and never logs or returns a key.

use axum::http::HeaderValue;
use hb_config::ReceiverAgent;

/// Compares every byte up to the longer length whatever differs, so the time taken tells
/// nothing about where two keys differ (only, at most, about the longer one's length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u64::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// The index of the agent whose key the header carries. Every key is compared (no early exit),
/// so the answer's timing does not say which agent a near-miss key belongs to.
pub fn identify(agents: &[ReceiverAgent], header: Option<&HeaderValue>) -> Option<usize> {
    let value = header?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    let mut found = None;
    for (i, agent) in agents.iter().enumerate() {
        if constant_time_eq(agent.key.expose().as_bytes(), token) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hb_config::Secret;

    use super::*;

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        for (a, b, want) in [
            (&b"abc"[..], &b"abc"[..], true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"", b"", true),
            (b"abc\0", b"abc", false),
        ] {
            assert_eq!(constant_time_eq(a, b), want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn the_bearer_key_names_its_agent() {
        let agent = |name: &str, key: &str| ReceiverAgent {
            name: name.to_owned(),
            key: Secret::new(key),
            grace: Duration::from_secs(60),
        };
        let agents = [agent("a", "key-a"), agent("b", "key-b")];
        let h = |v: &'static str| HeaderValue::from_static(v);
        assert_eq!(identify(&agents, Some(&h("Bearer key-b"))), Some(1));
        assert_eq!(identify(&agents, Some(&h("bearer key-a"))), Some(0));
        assert_eq!(identify(&agents, Some(&h("Bearer key-c"))), None);
        assert_eq!(identify(&agents, Some(&h("Basic key-a"))), None);
        assert_eq!(identify(&agents, Some(&h("Bearer"))), None);
        assert_eq!(identify(&agents, None), None);
    }
}
