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

/// `postgres://user:***@host:5432/db?sslmode=require`: a database URL with its password hidden
/// (the user kept, so a message still says who tried), in the authority or as a `password=`
/// query parameter.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    // A password may also come as a query parameter.
    let tail = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) => format!("{before}password=***"),
            None => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::{redact_password, redact_url};

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

    #[test]
    fn redaction_hides_every_password() {
        let table = [
            (
                "postgres://hb:s3cret@db.example:5432/fleet",
                "postgres://hb:***@db.example:5432/fleet",
            ),
            (
                "postgresql://hb:p%40ss@10.0.0.2/fleet?sslmode=require",
                "postgresql://hb:***@10.0.0.2/fleet?sslmode=require",
            ),
            ("postgres://hb@db/fleet", "postgres://hb@db/fleet"),
            (
                "postgres://db/fleet?user=hb&password=s3cret",
                "postgres://db/fleet?user=hb&password=***",
            ),
            ("not a url", "(not a URL)"),
        ];
        for (url, shown) in table {
            assert_eq!(redact_password(url), shown, "{url}");
            assert!(!redact_password(url).contains("s3cret"));
        }
    }
}
