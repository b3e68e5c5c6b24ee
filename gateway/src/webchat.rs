//! The web chat page (`GET /` without a WebSocket upgrade, plus its script
//! and style): three static files compiled into the binary, no CDN, no
//! build step. The page holds no secret and can do nothing by itself:
//! everything it shows comes over the gateway's WebSocket, which it opens
//! with the gateway token (from `#token=…` or a form) and a device
//! identity of its own, so it is exactly as protected as the gateway.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("webchat/index.html");
const SCRIPT: &str = include_str!("webchat/webchat.js");
const STYLE: &str = include_str!("webchat/webchat.css");

/// Only this origin's files and WebSocket; no inline script, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// The page.
pub fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// Its script.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// Its style.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
