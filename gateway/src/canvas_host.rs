//! The canvas host, the seed's mode (spec `nodes-canvas.md` §9.2): with
//! `canvasHost.enabled`, a second listener on `canvasHost.port` (default
//! gateway port + 4, inside the profile's reserved range), bound to the
//! gateway's own bind address and never wider, serves `canvasHost.root`
//! (default `<stateDir>/canvas`) under `/__openclaw__/canvas/`:
//! directories answer with their `index.html`, `..` and symlinks are
//! refused, GET/HEAD only, `no-store`. With `canvasHost.liveReload`
//! (default true) a file watcher (inotify, 75 ms debounce, dotfiles and
//! `node_modules` ignored) sends `reload` to every socket on
//! `/__openclaw__/ws`, and every HTML page gets a small script before its
//! last `</body>` that reloads it then. `OPENCLAW_SKIP_CANVAS_HOST=1`
//! turns it off.
//!
//! Access is the same as the documents route's: the gateway's Bearer
//! secret or a live capability (`/__openclaw__/cap/<cap>/...`, or
//! `?oc_cap=`), which the injected script carries on to its socket.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::Value;

use crate::server::Gateway;

/// Debounce of file events (editors save in bursts).
pub const DEBOUNCE: Duration = Duration::from_millis(75);
/// Live-reload sockets at once.
const MAX_RELOAD_SOCKETS: usize = 256;

/// `canvasHost.*` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Port (0: any free one, for tests).
    pub port: u16,
    /// The directory served.
    pub root: PathBuf,
    /// Watch and reload.
    pub live_reload: bool,
}

impl Config {
    /// `None` unless `canvasHost.enabled` is true (and the env does not
    /// skip it); the port defaults to the gateway's + 4.
    pub fn from_raw(raw: &Value, gateway_port: u16, state_dir: &Path, skip: bool) -> Option<Self> {
        let c = raw.get("canvasHost")?;
        if skip || c["enabled"].as_bool() != Some(true) {
            return None;
        }
        let port = c["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| gateway_port.saturating_add(4));
        let root = c["root"].as_str().map_or_else(
            || state_dir.join("canvas"),
            |r| match (r.strip_prefix("~/"), std::env::var_os("HOME")) {
                (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
                _ => PathBuf::from(r),
            },
        );
        Some(Self {
            port,
            root,
            live_reload: c["liveReload"].as_bool().unwrap_or(true),
        })
    }
}

struct Host {
    gw: Arc<Gateway>,
    cfg: Config,
    reload: tokio::sync::broadcast::Sender<()>,
    sockets: Arc<tokio::sync::Semaphore>,
}

/// Binds and serves until the gateway stops. A port that cannot be bound
/// is an error the caller logs: the gateway runs on without its canvas.
pub async fn serve(gw: Arc<Gateway>, cfg: Config) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((gw.settings.bind_addr, cfg.port)).await?;
    let addr = listener.local_addr()?;
    let _ = gw.canvas_host_addr.set(addr);
    let (reload, _) = tokio::sync::broadcast::channel(16);
    // The watcher lives as long as this function.
    let _watcher = if cfg.live_reload {
        match watch(&cfg.root, reload.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(root = %cfg.root.display(), "canvas live reload is off: cannot watch ({e})");
                None
            }
        }
    } else {
        None
    };
    tracing::info!(root = %cfg.root.display(), "canvas host on http://{addr}/__openclaw__/canvas/");
    let host = Arc::new(Host {
        gw: gw.clone(),
        cfg,
        reload,
        sockets: Arc::new(tokio::sync::Semaphore::new(MAX_RELOAD_SOCKETS)),
    });
    let app = Router::new()
        .route("/__openclaw__/canvas", any(canvas))
        .route("/__openclaw__/canvas/", any(canvas))
        .route("/__openclaw__/canvas/{*rest}", any(canvas))
        .route("/__openclaw__/ws", any(reload_socket))
        .route("/__openclaw__/cap/{cap}/{*rest}", any(with_cap))
        .with_state(host);
    let shutdown = gw.shutdown.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// Watches `root` (recursively), debounced; changes outside dotfiles and
/// `node_modules` fire `reload`.
fn watch(
    root: &Path,
    reload: tokio::sync::broadcast::Sender<()>,
) -> Result<
    notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>,
    String,
> {
    use notify_debouncer_mini::notify::RecursiveMode;
    std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
    let base = root.to_path_buf();
    let mut debouncer = notify_debouncer_mini::new_debouncer(
        DEBOUNCE,
        move |res: notify_debouncer_mini::DebounceEventResult| {
            let Ok(events) = res else {
                return;
            };
            if events.iter().any(|e| relevant(&base, &e.path)) {
                let _ = reload.send(());
            }
        },
    )
    .map_err(|e| e.to_string())?;
    debouncer
        .watcher()
        .watch(root, RecursiveMode::Recursive)
        .map_err(|e| e.to_string())?;
    Ok(debouncer)
}

/// A change under `root` that reloads pages: not in a dotfile or dot
/// directory, not under `node_modules`.
fn relevant(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    !rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.starts_with('.') || s == "node_modules"
    })
}

/// `hello-ok.canvasHostUrl` for protocol-3 clients: the gateway's public
/// base (`http://host:port`) with the canvas host's port.
pub fn host_url(base: &str, port: u16) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let host = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => &rest[..i],
        _ => rest,
    };
    format!("{scheme}://{host}:{port}")
}

/// The script every served page gets: reconnecting WebSocket to
/// `/__openclaw__/ws` (through the same capability prefix or `oc_cap` the
/// page came with); `reload` reloads the page.
const RELOAD_SCRIPT: &str = r#"<script>(()=>{const p=location.pathname,i=p.indexOf('/__openclaw__/canvas'),pre=i>0?p.slice(0,i):'',q=new URLSearchParams(location.search).get('oc_cap');const u=(location.protocol==='https:'?'wss://':'ws://')+location.host+pre+'/__openclaw__/ws'+(q?'?oc_cap='+encodeURIComponent(q):'');let d=250;const go=()=>{const s=new WebSocket(u);s.onopen=()=>{d=250;document.documentElement.dataset.openclawReload='connected'};s.onmessage=e=>{if(e.data==='reload')location.reload()};s.onclose=()=>{setTimeout(go,d);d=Math.min(d*2,5000)}};go();window.OpenClaw=window.OpenClaw||{};window.OpenClaw.sendUserAction=a=>{try{window.webkit.messageHandlers.openclawCanvasA2UIAction.postMessage({userAction:a});return true}catch(_){return false}};})();</script>"#;

/// `html` with the reload script before its last `</body>` (at the end if
/// it has none).
pub fn inject(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    match lower.rfind("</body>") {
        Some(i) => format!("{}{RELOAD_SCRIPT}{}", &html[..i], &html[i..]),
        None => format!("{html}{RELOAD_SCRIPT}"),
    }
}

async fn canvas(
    State(host): State<Arc<Host>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    rest: Option<UrlPath<String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cap = crate::canvas::oc_cap(query.as_deref());
    if !crate::canvas::authorized(&host.gw, peer, &headers, cap.as_deref()) {
        return crate::canvas::unauthorized();
    }
    let rest = rest.map(|UrlPath(r)| r).unwrap_or_default();
    serve_file(&host, &method, &rest)
}

async fn with_cap(
    State(host): State<Arc<Host>>,
    UrlPath((cap, rest)): UrlPath<(String, String)>,
    method: Method,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !host.gw.canvas_caps.check(&cap) {
        return crate::canvas::unauthorized();
    }
    if rest == "__openclaw__/ws" {
        return upgrade(host, ws);
    }
    match rest.strip_prefix("__openclaw__/canvas") {
        Some(inner) => serve_file(&host, &method, inner.trim_start_matches('/')),
        None => crate::canvas::unauthorized(),
    }
}

async fn reload_socket(
    State(host): State<Arc<Host>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let cap = crate::canvas::oc_cap(query.as_deref());
    if !crate::canvas::authorized(&host.gw, peer, &headers, cap.as_deref()) {
        return crate::canvas::unauthorized();
    }
    upgrade(host, ws)
}

fn upgrade(host: Arc<Host>, ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Response {
    let Ok(ws) = ws else {
        return (StatusCode::UPGRADE_REQUIRED, "upgrade required").into_response();
    };
    let Ok(permit) = host.sockets.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live-reload sockets",
        )
            .into_response();
    };
    let mut reload = host.reload.subscribe();
    let shutdown = host.gw.shutdown.clone();
    ws.max_message_size(1024)
        .on_upgrade(move |mut socket: WebSocket| async move {
            let _permit = permit;
            loop {
                tokio::select! {
                    r = reload.recv() => match r {
                        Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if socket.send(Message::Text("reload".into())).await.is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    m = socket.recv() => match m {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        })
}

/// A file under the root by the legacy rules.
fn serve_file(host: &Host, method: &Method, rest: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return crate::canvas::plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let Some(path) = resolve(&host.cfg.root, rest) else {
        return crate::canvas::plain(StatusCode::NOT_FOUND, "not found");
    };
    let target = if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
        path.join("index.html")
    } else {
        path
    };
    let data = match crate::canvas::read_inside(&host.cfg.root, &target) {
        Ok(d) => d,
        Err(StatusCode::PAYLOAD_TOO_LARGE) => {
            return crate::canvas::plain(StatusCode::PAYLOAD_TOO_LARGE, "file too large");
        }
        Err(_) => return crate::canvas::plain(StatusCode::NOT_FOUND, "not found"),
    };
    let content_type = crate::canvas::mime(&target);
    let body = if content_type.starts_with("text/html") && host.cfg.live_reload {
        inject(&String::from_utf8_lossy(&data)).into_bytes()
    } else {
        data
    };
    crate::canvas::file_response(method, content_type, body, &[])
}

/// `rest` under `root`: percent-decoded segments, none `.`/`..`, with a
/// backslash, a NUL or a control character.
fn resolve(root: &Path, rest: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    path.extend(crate::canvas::safe_segments(rest, &[])?);
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_goes_before_the_last_body_close() {
        let out = inject("<html><body>a</body><!-- </BODY> --></html>");
        let i = out.find("<script>").unwrap();
        assert!(out[..i].ends_with("<!-- "), "{out}");
        assert!(inject("<p>x</p>").ends_with("</script>"));
    }

    #[test]
    fn config_needs_enabled_and_defaults_to_port_plus_four() {
        let state = Path::new("/s");
        let raw = serde_json::json!({"canvasHost": {"enabled": true}});
        let c = Config::from_raw(&raw, 18789, state, false).unwrap();
        assert_eq!(
            (c.port, c.root.as_path(), c.live_reload),
            (18793, Path::new("/s/canvas"), true)
        );
        assert!(
            Config::from_raw(&raw, 18789, state, true).is_none(),
            "OPENCLAW_SKIP_CANVAS_HOST"
        );
        assert!(
            Config::from_raw(&serde_json::json!({"canvasHost": {}}), 1, state, false).is_none()
        );
        assert!(Config::from_raw(&serde_json::json!({}), 1, state, false).is_none());
    }

    #[test]
    fn the_host_url_keeps_the_host_and_takes_the_canvas_port() {
        assert_eq!(
            host_url("http://gw.local:18789", 18793),
            "http://gw.local:18793"
        );
        assert_eq!(host_url("http://[::1]:18789", 18793), "http://[::1]:18793");
        assert_eq!(host_url("https://gw.example", 9), "https://gw.example:9");
    }

    #[test]
    fn dotfiles_and_node_modules_reload_nothing() {
        let r = Path::new("/root");
        assert!(relevant(r, Path::new("/root/index.html")));
        assert!(relevant(r, Path::new("/root/a/b.css")));
        for quiet in [
            "/root/.index.html.swp",
            "/root/.git/HEAD",
            "/root/node_modules/x/y.js",
            "/root/a/.cache/z",
        ] {
            assert!(!relevant(r, Path::new(quiet)), "{quiet}");
        }
    }

    #[test]
    fn legacy_paths_refuse_traversal() {
        let r = Path::new("/root");
        assert_eq!(resolve(r, "").unwrap(), Path::new("/root"));
        assert_eq!(resolve(r, "a/b.html").unwrap(), Path::new("/root/a/b.html"));
        for bad in ["..", "a/../..", "%2e%2e/x", "a%2fb", "a%5cb", "%00"] {
            assert!(resolve(r, bad).is_none(), "{bad}");
        }
    }
}
