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
    let category = match (status, status_code) {
        (_, Some(404)) => "Not Found (404)",
        (_, Some(503)) => "Service Unavailable",
        (_, Some(c)) if (500..600).contains(&c) => "Server Error (5xx)",
        ("timeout", _) => "Request Timeout",
        ("unknown", _) if service_type == "docker" => "Docker Socket Unavailable",
        ("down", _) => "Service Unavailable",
        _ => "Health Check Failed",
    };
    Some(category.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        let table = [
            ("http", "error", Some(404), "HTTP 404", "Not Found (404)"),
            (
                "http",
                "error",
                Some(503),
                "HTTP 503",
                "Service Unavailable",
            ),
            ("http", "error", Some(500), "HTTP 500", "Server Error (5xx)"),
            ("http", "error", Some(502), "HTTP 502", "Server Error (5xx)"),
            ("http", "timeout", None, "Timeout", "Request Timeout"),
            (
                "docker",
                "unknown",
                None,
                "socket gone",
                "Docker Socket Unavailable",
            ),
            ("http", "down", None, "refused", "Service Unavailable"),
            ("docker", "down", None, "exited", "Service Unavailable"),
            (
                "http",
                "error",
                Some(401),
                "HTTP 401",
                "Health Check Failed",
            ),
            ("http", "unknown", None, "x", "Health Check Failed"),
        ];
        for (kind, status, code, msg, want) in table {
            assert_eq!(
                mask_error(true, kind, status, code, Some(msg)).as_deref(),
                Some(want),
                "{kind} {status} {code:?}"
            );
        }
        assert_eq!(mask_error(true, "http", "healthy", Some(200), None), None);
        assert_eq!(
            mask_error(false, "http", "error", Some(500), Some("HTTP 500")).as_deref(),
            Some("HTTP 500")
        );
    }
}
