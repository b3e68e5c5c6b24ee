//! The canvas host, 2026.9.6 mode (spec `nodes-canvas.md` §9.1, §9.3):
//! `GET|HEAD /__openclaw__/canvas/documents/<docId>/<path>` serves
//! `<stateDir>/canvas/documents/<docId>/<path>` on the gateway's own port,
//! byte for byte, `no-store`, to a caller with the gateway's Bearer secret
//! or a live capability (`/__openclaw__/cap/<cap>/...` or `?oc_cap=`).
//!
//! A capability belongs to one WebSocket (every operator socket, and node
//! sockets whose approved caps include `canvas`, get one in `hello-ok`'s
//! `pluginSurfaceUrls.canvas`): 18 random bytes, valid 10 minutes from its
//! last use, dead the moment its socket closes or it is refreshed.
//! Anything else under `/__openclaw__/canvas/` falls through to the page at
//! `/`, as the real gateway's does to its Control UI.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt;

use crate::protocol::now_ms;
use crate::server::Gateway;
use crate::settings::Auth;

/// How long a capability lives after its last use.
pub const CAP_TTL_MS: u64 = 600_000;
/// The largest document file served.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The documents route.
pub const DOCUMENTS_PATH: &str = "/__openclaw__/canvas/documents";

/// The widget CSP of a `cspSandbox: "scripts"` document (the real
/// gateway's `buildBoardWidgetContentSecurityPolicy` with no granted
/// network origins): inline scripts run, nothing may be fetched.
pub const SANDBOX_CSP: &str = "default-src 'none'; \
script-src 'unsafe-inline' https://cdnjs.cloudflare.com https://cdn.jsdelivr.net https://esm.sh https://unpkg.com https://fonts.googleapis.com https://fonts.gstatic.com https://fonts.bunny.net 'self'; \
style-src 'unsafe-inline' https://cdnjs.cloudflare.com https://cdn.jsdelivr.net https://esm.sh https://unpkg.com https://fonts.googleapis.com https://fonts.gstatic.com https://fonts.bunny.net; \
font-src data: https://cdnjs.cloudflare.com https://cdn.jsdelivr.net https://esm.sh https://unpkg.com https://fonts.googleapis.com https://fonts.gstatic.com https://fonts.bunny.net; \
img-src data: 'self'; media-src data: https: blob: 'self'; connect-src 'none'; webrtc 'block'; \
base-uri 'none'; object-src 'none'; form-action 'none'; frame-src 'none'; sandbox allow-scripts";

#[derive(Debug, Clone)]
struct Cap {
    conn_id: String,
    base: String,
    expires_at_ms: u64,
}

/// Live capabilities: by their secret, and each socket's by its
/// connection id, so that every operation costs the same with ten sockets
/// or ten thousand.
#[derive(Debug, Default)]
pub struct Caps {
    map: Mutex<CapMaps>,
}

#[derive(Debug, Default)]
struct CapMaps {
    by_cap: HashMap<String, Cap>,
    by_conn: HashMap<String, String>,
}

fn new_cap() -> String {
    let bytes: [u8; 18] = rand::rng().random();
    crate::identity::encode_b64(&bytes)
}

impl Caps {
    /// A new capability for socket `conn_id` (its older one dies); returns
    /// the surface URL under `base` and its expiry.
    pub fn issue(&self, conn_id: &str, base: &str) -> (String, u64) {
        let cap = new_cap();
        let expires_at_ms = now_ms() + CAP_TTL_MS;
        if let Ok(mut m) = self.map.lock() {
            if let Some(old) = m.by_conn.insert(conn_id.to_string(), cap.clone()) {
                m.by_cap.remove(&old);
            }
            m.by_cap.insert(
                cap.clone(),
                Cap {
                    conn_id: conn_id.to_string(),
                    base: base.to_string(),
                    expires_at_ms,
                },
            );
        }
        (surface_url(base, &cap), expires_at_ms)
    }

    /// The socket's live capability, its URL and expiry, if it has one.
    pub fn current(&self, conn_id: &str) -> Option<(String, String, u64)> {
        let m = self.map.lock().ok()?;
        let cap = m.by_conn.get(conn_id)?;
        m.by_cap
            .get(cap)
            .filter(|c| c.expires_at_ms > now_ms())
            .map(|c| (cap.clone(), surface_url(&c.base, cap), c.expires_at_ms))
    }

    /// True if `cap` is live; a use slides its expiry.
    pub fn check(&self, cap: &str) -> bool {
        let Ok(mut m) = self.map.lock() else {
            return false;
        };
        let now = now_ms();
        match m.by_cap.get_mut(cap) {
            Some(c) if c.expires_at_ms > now => {
                c.expires_at_ms = now + CAP_TTL_MS;
                true
            }
            Some(_) => {
                if let Some(c) = m.by_cap.remove(cap) {
                    m.by_conn.remove(&c.conn_id);
                }
                false
            }
            None => false,
        }
    }

    /// Forgets the capability of a closed socket.
    pub fn drop_conn(&self, conn_id: &str) {
        if let Ok(mut m) = self.map.lock()
            && let Some(cap) = m.by_conn.remove(conn_id)
        {
            m.by_cap.remove(&cap);
        }
    }
}

/// `<base>/__openclaw__/cap/<cap>`.
pub fn surface_url(base: &str, cap: &str) -> String {
    format!("{base}/__openclaw__/cap/{cap}")
}

/// `<scheme>://<host>` as the client reached us: forwarded headers from a
/// trusted proxy, else the `Host` header, else `fallback`.
pub fn public_base(
    headers: &HeaderMap,
    trusted: bool,
    fallback: impl FnOnce() -> String,
) -> String {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic()))
    };
    let scheme = trusted
        .then(|| h("x-forwarded-proto"))
        .flatten()
        .filter(|p| p == "https" || p == "http")
        .unwrap_or_else(|| "http".into());
    let host = trusted
        .then(|| h("x-forwarded-host"))
        .flatten()
        .or_else(|| h("host"))
        .unwrap_or_else(fallback);
    format!("{scheme}://{host}")
}

/// The file a documents-route path names, by the real gateway's rules: at
/// least a document id and one more segment, the id `[A-Za-z0-9._-]+`
/// (not `.`/`..`), no segment `.`, `..`, with `:`, a slash, a backslash or
/// a control character. `None`: not a document path (falls through).
pub fn resolve(documents: &Path, rest: &str) -> Option<PathBuf> {
    let segments = safe_segments(rest, &[':'])?;
    if segments.len() < 2 {
        return None;
    }
    let id = segments[0].trim();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return None;
    }
    let mut path = documents.join(id);
    path.extend(&segments[1..]);
    Some(path)
}

/// The percent-decoded, non-empty segments of a URL path, or `None` if one
/// is `.` or `..`, holds a slash, a backslash, a control character or one
/// of `forbidden`, or does not decode.
pub(crate) fn safe_segments(rest: &str, forbidden: &[char]) -> Option<Vec<String>> {
    rest.split('/')
        .filter(|s| !s.is_empty())
        .map(|raw| {
            percent_decode(raw).filter(|s| {
                s != "."
                    && s != ".."
                    && !s.contains(['/', '\\'])
                    && !s.contains(forbidden)
                    && !s.chars().any(char::is_control)
            })
        })
        .collect()
}

/// A `200` carrying a served file: `no-store`, `nosniff`, its length, and
/// `extra` headers; HEAD gets the headers alone.
pub(crate) fn file_response(
    method: &Method,
    content_type: &str,
    body: Vec<u8>,
    extra: &[(header::HeaderName, &str)],
) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_LENGTH, body.len());
    for (name, value) in extra {
        resp = resp.header(name, *value);
    }
    let body = if method == Method::HEAD {
        axum::body::Body::empty()
    } else {
        axum::body::Body::from(body)
    };
    resp.body(body)
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error"))
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads `path` if it is a regular file reached without a symlink below
/// `documents`, at most [`MAX_FILE_BYTES`].
pub(crate) fn read_inside(documents: &Path, path: &Path) -> Result<Vec<u8>, StatusCode> {
    use std::os::unix::fs::OpenOptionsExt;
    let rel = path
        .strip_prefix(documents)
        .map_err(|_| StatusCode::NOT_FOUND)?;
    let mut at = documents.to_path_buf();
    for part in rel.components() {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at).map_err(|_| StatusCode::NOT_FOUND)?;
        if meta.file_type().is_symlink() {
            return Err(StatusCode::NOT_FOUND);
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|_| StatusCode::NOT_FOUND)?;
    let meta = file.metadata().map_err(|_| StatusCode::NOT_FOUND)?;
    if !meta.is_file() {
        return Err(StatusCode::NOT_FOUND);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    use std::io::Read;
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|_| StatusCode::NOT_FOUND)?;
    Ok(data)
}

/// MIME by extension; HTML gets a charset, the rest none.
pub(crate) fn mime(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

pub(crate) fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub(crate) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        r#"{"error":{"message":"Unauthorized","type":"unauthorized"}}"#,
    )
        .into_response()
}

/// Who may read documents: the gateway's Bearer secret (a wrong one counts
/// toward the auth lockout), or a live capability.
pub(crate) fn authorized(
    gw: &Gateway,
    peer: SocketAddr,
    headers: &HeaderMap,
    cap: Option<&str>,
) -> bool {
    if let Some(cap) = cap {
        return gw.canvas_caps.check(cap);
    }
    let expected = match &gw.settings.auth {
        Auth::None => return true,
        Auth::Token(s) | Auth::Password(s) => s,
    };
    let ip = crate::proxy::client_addr(peer, headers, &gw.settings.trusted_proxies).0;
    if gw
        .limiter
        .lock()
        .ok()
        .and_then(|l| l.locked(ip, now_ms()))
        .is_some()
    {
        return false;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match bearer {
        Some(b) if crate::auth::secrets_equal(b, expected.expose()) => true,
        Some(_) => {
            if let Ok(mut l) = gw.limiter.lock() {
                l.failed(ip, now_ms());
            }
            false
        }
        None => false,
    }
}

pub(crate) fn oc_cap(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("oc_cap="))
        .and_then(percent_decode)
}

/// `/__openclaw__/canvas/{*rest}`: documents, else the page at `/`.
pub async fn canvas_route(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    UrlPath(rest): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cap = oc_cap(query.as_deref());
    serve(&gw, peer, &method, &rest, &headers, cap.as_deref())
}

/// `/__openclaw__/cap/{cap}/{*rest}`: the same with a capability.
pub async fn cap_route(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    UrlPath((cap, rest)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match rest.strip_prefix("__openclaw__/canvas/") {
        Some(inner) if gw.canvas_caps.check(&cap) => {
            serve(&gw, peer, &method, inner, &headers, Some(&cap))
        }
        _ => unauthorized(),
    }
}

/// `/__openclaw__/canvas/` itself: no canvas root, the page at `/`.
pub async fn fallthrough() -> Response {
    crate::webchat::index()
}

/// `/__openclaw__/cap/{cap}` with no path.
pub async fn bare_cap() -> Response {
    unauthorized()
}

fn serve(
    gw: &Gateway,
    peer: SocketAddr,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    cap: Option<&str>,
) -> Response {
    let documents = gw.settings.paths.state_dir.join("canvas").join("documents");
    let Some(path) = rest
        .strip_prefix("documents/")
        .and_then(|r| resolve(&documents, r))
    else {
        // Not a document: the page at `/`, as the real gateway's SPA.
        return crate::webchat::index();
    };
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    if !authorized(gw, peer, headers, cap) {
        return unauthorized();
    }
    let data = match read_inside(&documents, &path) {
        Ok(d) => d,
        Err(StatusCode::PAYLOAD_TOO_LARGE) => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "document file too large");
        }
        Err(_) => return plain(StatusCode::NOT_FOUND, "not found"),
    };
    let content_type = mime(&path);
    let mut extra = vec![
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    if content_type.starts_with("text/html") && sandboxed(&documents, &path) {
        extra.push((header::CONTENT_SECURITY_POLICY, SANDBOX_CSP));
    }
    file_response(method, content_type, data, &extra)
}

/// True if the document's `manifest.json` says `cspSandbox: "scripts"`.
fn sandboxed(documents: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(documents) else {
        return false;
    };
    let Some(id) = rel.components().next() else {
        return false;
    };
    let manifest = documents.join(id).join("manifest.json");
    read_inside(documents, &manifest)
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .is_some_and(|m| m["cspSandbox"] == "scripts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_paths_follow_the_real_gateways_rules() {
        let d = Path::new("/s/canvas/documents");
        let ok = |r: &str| resolve(d, r).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(
            ok("cv_1/index.html").as_deref(),
            Some("/s/canvas/documents/cv_1/index.html")
        );
        assert_eq!(
            ok("cv_1/a/b.css").as_deref(),
            Some("/s/canvas/documents/cv_1/a/b.css")
        );
        assert_eq!(
            ok("cv_1/a%20b.txt").as_deref(),
            Some("/s/canvas/documents/cv_1/a b.txt")
        );
        for bad in [
            "cv_1",
            "cv_1/",
            "../x/y",
            "cv_1/../../etc/passwd",
            "cv_1/%2e%2e/x",
            "cv_1/a%2fb",
            "cv_1/a%5cb",
            "cv_1/c:x",
            "cv%201/x",
            "cv_1/%00",
            "cv_1/%zz",
            "./x",
        ] {
            assert_eq!(resolve(d, bad), None, "{bad}");
        }
    }

    #[test]
    fn capabilities_slide_die_with_their_socket_and_on_refresh() {
        let caps = Caps::default();
        let (url, _) = caps.issue("c1", "http://h:1");
        let cap = url.rsplit('/').next().unwrap().to_string();
        assert_eq!(cap.len(), 24);
        assert!(caps.check(&cap));
        let (again, _) = caps.issue("c1", "http://h:1");
        assert_ne!(again, url);
        assert!(!caps.check(&cap), "a refresh kills the old one");
        let fresh = again.rsplit('/').next().unwrap().to_string();
        // Past its TTL it is dead too (and forgotten).
        caps.map
            .lock()
            .unwrap()
            .by_cap
            .get_mut(&fresh)
            .unwrap()
            .expires_at_ms = now_ms() - 1;
        assert!(!caps.check(&fresh), "expired");
        assert!(caps.current("c1").is_none());
        let (last, _) = caps.issue("c1", "http://h:1");
        let last = last.rsplit('/').next().unwrap().to_string();
        caps.drop_conn("c1");
        assert!(!caps.check(&last), "dead with its socket");
    }

    #[test]
    fn the_public_base_believes_forwarding_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("host", "gw.local:18789".parse().unwrap());
        h.insert("x-forwarded-host", "evil.example".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(
            public_base(&h, false, || "x".into()),
            "http://gw.local:18789"
        );
        assert_eq!(public_base(&h, true, || "x".into()), "https://evil.example");
        assert_eq!(
            public_base(&HeaderMap::new(), false, || "127.0.0.1:1".into()),
            "http://127.0.0.1:1"
        );
    }
}
