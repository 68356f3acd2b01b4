//! Error masking for public dashboards: a stored failure reason becomes one of a few fixed
//! categories, so nothing the check saw (hosts, headers, bodies) reaches a response.

/// The `error` field of a service: `None` when healthy; with `mask` on, one category of SPEC
/// §4.1; with it off, the stored reason.
pub fn mask_error(
    mask: bool,
    service_type: &str,
    status: &str,
    status_code: Option<i64>,
    error_message: Option<&str>,
) -> Option<String> {
    if status == "healthy" {
        return None;
    }
    if !mask {
        return Some(error_message.unwrap_or(status).to_owned());
    }
    // The original tool stored no code for 4xx/5xx answers, only the reason `HTTP <code>`.
    let code = status_code.or_else(|| error_message.and_then(code_in_reason));
    let category = match (status, code) {
        (_, Some(404)) => "Not Found (404)",
        // Any 5xx is an answer from the server, 503 too: "Service Unavailable" is for a
        // service that did not answer at all (refused, reset, DNS, container not running).
        (_, Some(c)) if (500..600).contains(&c) => "Server Error (5xx)",
        ("timeout", _) => "Request Timeout",
        ("unknown", _) if service_type == "docker" => "Docker Socket Unavailable",
        ("down", _) => "Service Unavailable",
        _ => "Health Check Failed",
    };
    Some(category.to_owned())
}

/// The status code of a stored reason `HTTP <code>[ ...]`.
fn code_in_reason(reason: &str) -> Option<i64> {
    let rest = reason.strip_prefix("HTTP ")?;
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    if digits.len() != 3 {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Service type, status, status code, stored reason, expected category.
    type Row<'a> = (&'a str, &'a str, Option<i64>, Option<&'a str>, &'a str);

    /// Every category of SPEC §4.1, from every kind of stored row that should produce it.
    #[test]
    fn every_category() {
        let table: &[Row<'_>] = &[
            // Any 5xx answer, 503 included (503 is an answer, not a connection failure).
            (
                "http",
                "error",
                Some(500),
                Some("HTTP 500"),
                "Server Error (5xx)",
            ),
            (
                "http",
                "error",
                Some(501),
                Some("HTTP 501"),
                "Server Error (5xx)",
            ),
            (
                "http",
                "error",
                Some(502),
                Some("HTTP 502"),
                "Server Error (5xx)",
            ),
            (
                "http",
                "error",
                Some(503),
                Some("HTTP 503"),
                "Server Error (5xx)",
            ),
            (
                "http",
                "error",
                Some(504),
                Some("HTTP 504"),
                "Server Error (5xx)",
            ),
            (
                "http",
                "error",
                Some(599),
                Some("HTTP 599"),
                "Server Error (5xx)",
            ),
            // The original tool stored no code for 4xx/5xx answers, only the reason.
            (
                "http",
                "error",
                None,
                Some("HTTP 503"),
                "Server Error (5xx)",
            ),
            (
                "http",
                "error",
                None,
                Some("HTTP 502 Bad Gateway"),
                "Server Error (5xx)",
            ),
            ("http", "error", None, Some("HTTP 404"), "Not Found (404)"),
            (
                "http",
                "error",
                Some(404),
                Some("HTTP 404"),
                "Not Found (404)",
            ),
            ("http", "timeout", None, Some("Timeout"), "Request Timeout"),
            (
                "docker",
                "timeout",
                None,
                Some("Timeout"),
                "Request Timeout",
            ),
            (
                "http",
                "down",
                None,
                Some("Connection refused"),
                "Service Unavailable",
            ),
            (
                "http",
                "down",
                None,
                Some("DNS failure"),
                "Service Unavailable",
            ),
            (
                "docker",
                "down",
                None,
                Some("Container state: exited"),
                "Service Unavailable",
            ),
            (
                "docker",
                "down",
                None,
                Some("Container not found"),
                "Service Unavailable",
            ),
            (
                "docker",
                "unknown",
                None,
                Some("Docker Socket Unavailable"),
                "Docker Socket Unavailable",
            ),
            ("docker", "unknown", None, None, "Docker Socket Unavailable"),
            (
                "http",
                "error",
                Some(401),
                Some("HTTP 401"),
                "Health Check Failed",
            ),
            (
                "http",
                "error",
                Some(418),
                Some("HTTP 418"),
                "Health Check Failed",
            ),
            (
                "http",
                "error",
                Some(600),
                Some("HTTP 600"),
                "Health Check Failed",
            ),
            (
                "http",
                "error",
                None,
                Some("HTTP nonsense"),
                "Health Check Failed",
            ),
            (
                "http",
                "unknown",
                None,
                Some("internal"),
                "Health Check Failed",
            ),
            ("unknown", "weird", None, None, "Health Check Failed"),
        ];
        for &(kind, status, code, msg, want) in table {
            assert_eq!(
                mask_error(true, kind, status, code, msg).as_deref(),
                Some(want),
                "{kind} {status} {code:?} {msg:?}"
            );
        }
        let categories: std::collections::BTreeSet<&str> = table.iter().map(|row| row.4).collect();
        assert_eq!(
            categories.len(),
            6,
            "every category is covered: {categories:?}"
        );
    }

    #[test]
    fn healthy_has_no_error_and_unmasked_shows_the_reason() {
        assert_eq!(mask_error(true, "http", "healthy", Some(200), None), None);
        assert_eq!(mask_error(false, "http", "healthy", Some(200), None), None);
        assert_eq!(
            mask_error(false, "http", "error", Some(503), Some("HTTP 503")).as_deref(),
            Some("HTTP 503")
        );
        assert_eq!(
            mask_error(false, "http", "timeout", None, None).as_deref(),
            Some("timeout")
        );
    }
}
