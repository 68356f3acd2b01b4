//! The receiver's page at `/`: one HTML file with its own style and script, compiled into the
//! binary (nothing from a CDN). It reads `GET /api/agents` like any other client.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("page.html");

pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}
