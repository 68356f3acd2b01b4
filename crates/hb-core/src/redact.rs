//! Removal of credentials from URLs before they are stored, logged or shown.

/// Returns `url` without a `user:pass@` (or `user@`) part in its authority. Anything that is not
/// an URL with an authority is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    match authority.rfind('@') {
        Some(at) => format!(
            "{}{}",
            &url[..authority_start],
            &url[authority_start + at + 1..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn strips_credentials_only() {
        let table = [
            ("http://example.com/x", "http://example.com/x"),
            ("https://u:p@example.com/x", "https://example.com/x"),
            ("https://user@example.com:8443", "https://example.com:8443"),
            ("http://u:p%40ss@h/p?q=a@b", "http://h/p?q=a@b"),
            ("http://a:b@c@host/", "http://host/"),
            ("http://host/path@x", "http://host/path@x"),
            ("docker:db", "docker:db"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }
}
