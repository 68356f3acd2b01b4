//! The page and its scripts, embedded at compile time (`web/`, plus Alpine.js and Chart.js from
//! `web/node_modules`, checked by `build.rs`), served with ETags. Owns no data: the page reads
//! the JSON API like any other client.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

/// The optional web analytics snippet (`UMAMI_SCRIPT_URL`, `UMAMI_WEBSITE_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analytics {
    pub script_url: String,
    pub website_id: String,
}

impl Analytics {
    /// The snippet is injected only when both settings are present.
    pub fn from_settings(script_url: Option<&str>, website_id: Option<&str>) -> Option<Analytics> {
        match (script_url, website_id) {
            (Some(url), Some(id)) if !url.is_empty() && !id.is_empty() => Some(Analytics {
                script_url: url.to_owned(),
                website_id: id.to_owned(),
            }),
            _ => None,
        }
    }

    fn script_tag(&self) -> String {
        format!(
            r#"<script defer src="{}" data-website-id="{}"></script>"#,
            escape_attr(&self.script_url),
            escape_attr(&self.website_id)
        )
    }
}

const INDEX_PATH: &str = "/";
const ANALYTICS_MARKER: &str = "<!--heartbeat:analytics-->";

/// (route, content type, bytes).
const ASSETS: [(&str, &str, &[u8]); 5] = [
    (
        INDEX_PATH,
        "text/html; charset=utf-8",
        include_bytes!("../../../web/index.html"),
    ),
    (
        "/assets/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/app.js"),
    ),
    (
        "/assets/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/app.css"),
    ),
    (
        "/assets/alpine.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/node_modules/alpinejs/dist/cdn.min.js"),
    ),
    (
        "/assets/chart.umd.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/node_modules/chart.js/dist/chart.umd.min.js"),
    ),
];

/// The names carry no content hash, so browsers revalidate every time; the ETag makes that a
/// bodiless 304.
const CACHE_CONTROL: &str = "no-cache";

struct Served {
    content_type: &'static str,
    body: Vec<u8>,
    etag: HeaderValue,
}

/// Routes for the page (`/`) and its assets (`/assets/...`), mergeable into any router.
pub fn router<S: Clone + Send + Sync + 'static>(analytics: Option<&Analytics>) -> Router<S> {
    let mut router = Router::new();
    for (path, content_type, bytes) in ASSETS {
        let body = if path == INDEX_PATH {
            inject_analytics(bytes, analytics)
        } else {
            bytes.to_vec()
        };
        let served = Arc::new(Served {
            content_type,
            etag: etag_of(&body),
            body,
        });
        router = router.route(
            path,
            get(move |headers: HeaderMap| {
                let served = served.clone();
                async move { respond(&served, &headers) }
            }),
        );
    }
    router
}

fn respond(served: &Served, request: &HeaderMap) -> Response {
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || tag.trim() == served.etag);
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else {
        (StatusCode::OK, Body::from(served.body.clone()))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::ETAG, served.etag.clone());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !fresh {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(served.content_type),
        );
    }
    response
}

fn inject_analytics(html: &[u8], analytics: Option<&Analytics>) -> Vec<u8> {
    let html = String::from_utf8_lossy(html);
    let snippet = analytics.map(Analytics::script_tag).unwrap_or_default();
    html.replacen(ANALYTICS_MARKER, &snippet, 1).into_bytes()
}

fn escape_attr(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// A strong ETag: FNV-1a over the exact bytes served (stable across builds and restarts).
fn etag_of(bytes: &[u8]) -> HeaderValue {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    HeaderValue::from_str(&format!("\"{hash:016x}-{:x}\"", bytes.len()))
        .expect("a quoted hex string is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(analytics: Option<Analytics>) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app: Router = router(analytics.as_ref());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn serves_every_asset_with_type_etag_and_cache_control() {
        let base = start(None).await;
        let client = reqwest::Client::new();
        for (path, content_type, bytes) in ASSETS {
            let res = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let h = res.headers().clone();
            assert_eq!(h[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(h[header::CACHE_CONTROL], CACHE_CONTROL, "{path}");
            let etag = h[header::ETAG].to_str().unwrap().to_owned();
            assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
            let body = res.bytes().await.unwrap();
            if path != INDEX_PATH {
                assert_eq!(&body[..], bytes, "{path}");
            }

            let again = client
                .get(format!("{base}{path}"))
                .header(header::IF_NONE_MATCH, &etag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{path}");
            assert!(again.bytes().await.unwrap().is_empty());

            let stale = client
                .get(format!("{base}{path}"))
                .header(header::IF_NONE_MATCH, "\"other\"")
                .send()
                .await
                .unwrap();
            assert_eq!(stale.status(), 200, "{path}");
        }
    }

    #[tokio::test]
    async fn the_page_loads_only_embedded_scripts_and_no_analytics_by_default() {
        let base = start(None).await;
        let html = reqwest::get(format!("{base}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (path, ..) in &ASSETS[1..] {
            assert!(
                html.contains(&format!("\"{path}\"")),
                "page does not load {path}"
            );
        }
        assert!(!html.contains("data-website-id"));
        assert!(!html.contains(ANALYTICS_MARKER));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[tokio::test]
    async fn analytics_snippet_is_injected_with_escaped_attributes() {
        let analytics = Analytics::from_settings(
            Some("https://stats.example/script.js?a=1&b=\"x\""),
            Some("id-<1>"),
        );
        let base = start(analytics).await;
        let res = reqwest::get(format!("{base}/")).await.unwrap();
        let etag = res.headers()[header::ETAG].clone();
        let html = res.text().await.unwrap();
        assert!(html.contains(
            r#"<script defer src="https://stats.example/script.js?a=1&amp;b=&quot;x&quot;" data-website-id="id-&lt;1&gt;"></script>"#
        ), "{html}");
        assert_ne!(etag, etag_of(include_bytes!("../../../web/index.html")));
    }

    #[test]
    fn analytics_needs_both_settings() {
        assert_eq!(Analytics::from_settings(Some("https://s/x.js"), None), None);
        assert_eq!(Analytics::from_settings(None, Some("id")), None);
        assert_eq!(Analytics::from_settings(Some(""), Some("id")), None);
        assert!(Analytics::from_settings(Some("https://s/x.js"), Some("id")).is_some());
    }

    #[test]
    fn etag_changes_with_content() {
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
    }
}
